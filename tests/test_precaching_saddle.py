"""The saddle experiment: every arm trains and is measured, the page is written after every
run, and a rerun with the same settings resumes instead of retraining."""

from __future__ import annotations

import json

import pytest

from experiments.precaching import saddle
from experiments.precaching.__main__ import main
from myojax import cli

TINY = saddle.SaddleSettings(
    tasks=("map", "facts"), seeds=1, steps=8, long_factor=2, batch_size=8, eval_sequences=16,
    probe_sequences=16, d_model=16, n_layers=1,
)  # fmt: skip


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_every_arm_runs_and_a_rerun_resumes(tmp_path, capsys):
    results = saddle.run_all(TINY, tmp_path, command="test", log=False)
    arms = [a.name for a in TINY.arms()]
    assert [r["arm"] for r in results["runs"]] == arms * 2
    assert results["runs_planned"] == len(results["runs"]) == 2 * len(arms)
    for r in results["runs"]:
        assert 0 <= r["accuracy"] <= 1 and len(r["attention"]) == TINY.n_layers
        assert len(r["precache_future"]) == TINY.n_layers + 1
        assert (r["pretrain_accuracy"] is not None) == (r["arm"] == saddle.CURRICULUM)
    long_run = next(r for r in results["runs"] if r["arm"].endswith("2x steps"))
    assert len(long_run["curve"]) == 1  # 16 steps: one window of 50
    page = (tmp_path / "precaching_saddle.md").read_text()
    assert "## The lagged random map" in page and "## Synthetic facts" in page
    before = json.loads((tmp_path / "precaching_saddle.json").read_text())
    again = saddle.run_all(TINY, tmp_path, command="test", log=False)
    assert json.loads(json.dumps(again["runs"])) == before["runs"]  # nothing retrained
    assert again["cpu_s"] >= before["cpu_s"]


def test_command_runs_the_saddle_task_and_refuses_bad_flags(tmp_path, capsys):
    assert cli.run(main, ["--task", "saddle", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds must be >= 1")


@pytest.mark.parametrize("mode", ["myopic"])
def test_curriculum_stage_is_myopic_on_the_copy_variant(mode):
    arm = next(a for a in TINY.arms() if a.name == saddle.CURRICULUM)
    assert arm.mode == mode and arm.pretrain == TINY.steps
