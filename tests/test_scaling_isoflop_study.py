"""experiments.scaling.isoflop_study: token reads replayed from each run's own training stream
(1 with disjoint windows, > 1 without: the negative control), and the isoflop-smoke preset end
to end (slow: ``pytest -m slow``), resumable and with no run repeating a training token."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments.scaling import isoflop, isoflop_study
from experiments.scaling.__main__ import main
from myojax.data import pipeline


def _tiny(disjoint: bool) -> tuple[isoflop.Design, pipeline.TokenData]:
    base = dataclasses.replace(isoflop.ISOFLOP_SMOKE.base, disjoint_windows=disjoint)
    preset = dataclasses.replace(isoflop.ISOFLOP_SMOKE, base=base)
    costs = isoflop.cost_model(isoflop.recorded_costs(preset))
    data = pipeline.TokenData((np.zeros(60_000, np.uint16),), (np.zeros(100, np.uint16),), 256, "")
    return isoflop.design(preset, costs), data


@pytest.mark.parametrize("disjoint", [True, False])
def test_token_reads_replay_the_runs_training_stream(disjoint):
    d, data = _tiny(disjoint)
    run = max(d.runs, key=lambda r: r.tokens)
    spec = isoflop_study._spec(d, run, "standard", 4e-3, 0, "size")
    reads = isoflop_study.token_reads(d, spec, data)
    assert reads == 1 if disjoint else reads > 1  # random starts overlap: the negative control


@pytest.mark.slow
def test_isoflop_smoke_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "iso"
    args = ["--preset", "isoflop-smoke", "--out", str(out), "--progress", "false"]
    assert main(args) == 0
    doc = json.loads((out / "isoflop.json").read_text())
    assert doc["runs"] and all(r["max_token_reads"] == 1 for r in doc["runs"])
    assert all(r["record"]["test_loss"] is not None for r in doc["runs"] if r["role"] == "size")
    page = (out / "isoflop.md").read_text()
    assert page.splitlines()[2].startswith("Myopic training at compute C is worth standard")
    before = (out / "isoflop.json").stat().st_mtime_ns
    assert main(args) == 0  # every run cached: the analysis only
    assert json.loads((out / "isoflop.json").read_text())["runs"] == doc["runs"]
    assert (out / "isoflop.json").stat().st_mtime_ns >= before
