"""experiments/gpt2_steps.py: real optimizer steps at gpt2-117m's shape on a 2-device CPU mesh.

Slow (minutes: two 124M-parameter runs on CPU), so outside the default run:
``python -m pytest -m slow tests/test_gpt2_steps.py``.
"""

from __future__ import annotations

import json
import math

import pytest

from experiments import gpt2_steps


@pytest.mark.slow
def test_gpt2_small_shape_trains_in_both_modes_and_restores(tmp_path) -> None:
    report = tmp_path / "report.md"
    assert gpt2_steps.main(["--steps", "5", "--out", str(tmp_path), "--report", str(report)]) == 0
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
    with pytest.raises(SystemExit) as e:
        gpt2_steps.main(["--steps", "4"])
    assert e.value.code == 2 and "--steps must be >= 5" in capsys.readouterr().err
