"""experiments.gpt2_steps: real optimizer steps at gpt2-117m's shape on a 2-device CPU mesh.

Slow (minutes: two 124M-parameter runs on CPU), so outside the default run:
``python -m pytest -m slow tests/test_gpt2_steps.py``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from experiments.gpt2_steps import run as gpt2_steps
from experiments.gpt2_steps.__main__ import main
from myojax import cli

RESULTS = Path(__file__).parents[1] / "results"


@pytest.mark.slow
def test_gpt2_small_shape_trains_in_both_modes_and_restores(tmp_path) -> None:
    report = tmp_path / "report.md"
    assert main(["--steps", "5", "--out", str(tmp_path), "--report", str(report)]) == 0
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["verdicts"] and all(doc["verdicts"].values()), doc["verdicts"]
    for mode in gpt2_steps.MODES:
        run = doc["runs"][mode]
        assert run["params"] == 124_439_808 and len(run["losses"]) == 5
        assert all(math.isfinite(x) for x in run["losses"])
        assert run["losses"][-1] < run["losses"][0] - 0.5
    assert doc["checks"]["forward_bitwise_equal"] and doc["checks"]["forward_max_abs_diff"] == 0
    assert "| forward outputs bitwise equal" in report.read_text()


def test_steps_below_five_are_refused(capsys) -> None:
    assert cli.run(main, ["--steps", "4"]) == 2
    assert capsys.readouterr().err == "error: --steps must be >= 5, got 4\n"


def test_the_committed_page_redraws_byte_for_byte_from_its_json(tmp_path) -> None:
    """The load triples come back from JSON as lists and print as the run printed them."""
    shutil.copy(RESULTS / "gpt2_steps.json", tmp_path / "saved.json")
    report = tmp_path / "gpt2_steps.md"
    assert main(["--from-json", str(tmp_path / "saved.json"), "--report", str(report)]) == 0
    assert report.read_text() == (RESULTS / "gpt2_steps.md").read_text()
    doc = json.loads((tmp_path / "saved.json").read_text())
    doc["checks"]["forward_bitwise_equal"] = False  # negative control: a failed check shows
    assert "| **NO** |" in gpt2_steps.render(doc, doc["meta"])
