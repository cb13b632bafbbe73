"""experiments.scaling.records: the committed results load and write back byte for byte, a run
record's JSON keeps the layout the study has always written, older layouts convert, and what
is not the study's results is one clear error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from experiments.scaling import records, sections
from tests import scaling_synthetic

REPO = Path(__file__).resolve().parents[1]
COMMITTED = ("scaling-cpu.json", "scaling-cpu-large.json")


def _text(value) -> str:
    return json.dumps(records.to_json(value), indent=1) + "\n"  # as myojax.files.write_json


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_load_and_write_back_byte_for_byte(name):
    text = (REPO / "results" / name).read_text()
    res = records.results_from_json(json.loads(text))
    assert _text(res) == text
    assert res.schema_version == records.SCHEMA_VERSION and res.analysis.answer is not None
    assert all(isinstance(r, records.RunRecord) for r in res.runs)
    assert res.analysis.fit.point.E > 0 and res.protocol.sizes[0].n_layers >= 2
    # Negative control: a changed number shows in the text.
    changed = dataclasses.replace(res, wall_s=res.wall_s + 1)
    assert _text(changed) != text


def test_run_record_layouts_ok_diverged_and_reused():
    ok = scaling_synthetic.record(
        scaling_synthetic.PRESET,
        "myopic",
        "sweep",
        scaling_synthetic.PRESET.proxy,
        8e-3,
        1,
        2.0,
        np.random.default_rng(0),
        np.zeros(4),
    )
    keys = list(records.to_json(ok))
    assert keys[:14] == [
        "mode", "role", "size", "seed", "budget", "d_model", "n_layers", "params",
        "non_embedding_params", "tokens", "steps", "lr", "run_dir", "status",
    ]  # fmt: skip
    assert keys[14:] == [
        "final_step", "train_loss", "val_loss", "val_loss_per_sequence", "test_loss",
        "test_loss_per_sequence", "test_loss_per_position", "wall_s", "cpu_s", "load_start",
        "load_end",
    ]  # fmt: skip
    planned = dataclasses.replace(
        ok, **{k: None for k in records.EVALUATION_FIELDS}, wall_s=None, status="diverged"
    )
    diverged = dataclasses.replace(planned, error="loss is nan at step 3").with_cost(
        records.RunCost(wall_s=1.0, cpu_s=2.0, load_start=None, load_end=(1.0, 1.0, 1.0))
    )
    assert list(records.to_json(diverged))[13:] == [
        "status", "error", "wall_s", "cpu_s", "load_start", "load_end"
    ]  # fmt: skip
    assert records.to_json(diverged)["load_start"] is None  # unknown, still written
    reused = dataclasses.replace(ok, role="size", same_run_as_sweep=True)
    assert list(records.to_json(reused))[-1] == "same_run_as_sweep"
    assert records.from_json(records.RunRecord, records.to_json(reused)) == reused


def test_older_run_layouts_convert(tmp_path):
    """A schema-1 row (one seed: no seed, budget, test split or CPU time; per-position losses on
    validation) reads as seed 0 at budget 1 with its CPU time unknown."""
    old = {
        "mode": "myopic",
        "role": "size",
        "size": "L2w32",
        "d_model": 32,
        "n_layers": 2,
        "params": 35712,
        "non_embedding_params": 25472,
        "tokens": 1024,
        "steps": 1,
        "lr": 0.008,
        "run_dir": "runs/myopic/L2w32-lr0.008",
        "status": "ok",
        "val_loss": 2.5,
        "val_loss_per_position": [2.5, 2.5],
        "val_loss_per_sequence": [2.5],
        "wall_s": 3.0,
    }
    records.files.write_json(tmp_path / records.RESULT_FILE, old)
    r = records.read_run(tmp_path)
    assert (r.seed, r.budget, r.cpu_s, r.test_loss, r.val_loss) == (0, 1.0, None, None, 2.5)
    assert "val_loss_per_position" not in records.to_json(r)


def test_unreadable_run_records_are_redone(tmp_path):
    assert records.read_run(tmp_path) is None  # none yet
    (tmp_path / records.RESULT_FILE).write_text('{"status": "ok", "mode"')  # half-written
    assert records.read_run(tmp_path) is None
    (tmp_path / records.RESULT_FILE).write_text('{"status": "ok"}')  # no identity
    assert records.read_run(tmp_path) is None


def test_results_of_another_schema_are_one_clear_error(tmp_path):
    res = scaling_synthetic.study()
    obj = records.to_json(res)
    assert records.results_from_json(obj) == res
    with pytest.raises(ValueError, match="schema 2 .found 1"):
        records.results_from_json({**obj, "schema_version": 1})
    with pytest.raises(ValueError, match="malformed"):
        records.results_from_json({k: v for k, v in obj.items() if k != "protocol"})
    path = tmp_path / "results.json"
    records.files.write_json(path, {**obj, "schema_version": 1})
    assert records.read_results(path) is None
    assert records.read_invocations(path) == res.invocations  # kept across schemas


def test_partial_analysis_leaves_out_what_it_did_not_estimate():
    sweeps_only = [r for r in scaling_synthetic.runs() if r.role == "sweep"]
    an = records.to_json(scaling_synthetic.study(sweeps_only).analysis)
    assert list(an) == [
        "level", "n_boot", "n_boot_fit", "method", "sweeps", "losses", "gaps", "complete_sizes"
    ]  # fmt: skip
    full = records.to_json(scaling_synthetic.study().analysis)
    assert list(full)[-5:] == ["fit", "undertrain", "transfer", "answer", "cpu_s"]
    incomplete = full["transfer"]["myopic"] | {"complete": False}
    back = records.from_json(sections.Transfer, incomplete)
    assert list(records.to_json(back)) == ["complete", "transferred_lr"]
