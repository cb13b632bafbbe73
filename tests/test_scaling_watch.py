"""experiments.scaling.watch: runs done / total, elapsed and the ETA from measured per-step
costs; ``--status --out DIR`` reads a study without touching it; every run's tracker is tagged
with its mode, size, seed and budget."""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments.scaling import execute, records, watch
from experiments.scaling.__main__ import main
from experiments.scaling.protocol import STUDY_PRESETS, param_counts, plan_specs, sweep_specs
from myojax import train
from myojax.train.track import TrackerSpec

SMOKE = STUDY_PRESETS["smoke"]
MODES = ("standard", "myopic")


def finished(spec, wall_s: float) -> records.RunRecord:
    return dataclasses.replace(
        records.planned(spec), status="ok", final_step=spec.steps, wall_s=wall_s, val_loss=2.0
    )


def test_remaining_and_eta_price_each_size_by_its_measured_step_cost():
    plan = plan_specs(SMOKE, MODES)
    assert len({s.size.name for s in plan}) > 1  # the extrapolation to unmeasured sizes runs
    # Three runs of the proxy: one paid for compiling (9 s per step), two hit the cache (2 s).
    done = [finished(s, wall_s=c * s.steps) for s, c in zip(plan[:3], (9.0, 2.0, 2.0))]
    assert len({r.size for r in done}) == 1
    todo = watch.remaining(plan, done)
    assert len(todo) == len(plan) - 3
    proxy, n_proxy = done[0].size, done[0].non_embedding_params
    want = sum(
        2.0 * s.steps  # the cache-hit cost, not the compile-heavy mean
        if s.size.name == proxy
        else s.steps * 2.0 * param_counts(s.model)[1] / n_proxy
        for s in todo
    )
    assert watch.eta_s(todo, done) == pytest.approx(want)
    assert watch.eta_s(todo, []) is None  # the control: nothing measured, no guess
    # a started run is priced for the steps it has not logged; one past its end, for none
    first, last = todo[0], todo[-1]
    per_step = watch.eta_s([first], done) / first.steps
    started = {first: first.steps // 2, last: last.steps + 5}
    left = want - first.steps // 2 * per_step - watch.eta_s([last], done)
    assert watch.eta_s(todo, done, started) == pytest.approx(left)


def test_step_price_fits_a_fixed_plus_per_parameter_cost():
    price = watch.step_price({"a": (1.0 + 2e-4 * 1000, 1000), "b": (1.0 + 2e-4 * 5000, 5000)})
    assert price(10_000) == pytest.approx(1.0 + 2e-4 * 10_000)
    noisy = watch.step_price({"a": (3.0, 1000), "b": (2.0, 5000)})  # larger yet cheaper
    assert noisy(10_000) == pytest.approx(2.5)  # never cheaper with size: slope kept >= 0


def test_duration_reads_as_hours_minutes_seconds():
    assert [watch.duration(s) for s in (None, 42, 185, 3725)] == ["?", "42s", "3m05s", "1h02m"]


def _study_dir(tmp_path):
    """A study in progress: three runs finished, the fourth interrupted at step 5."""
    plan = plan_specs(SMOKE, MODES)
    for spec in plan[:3]:
        records.write_run(spec.run_dir(tmp_path), finished(spec, wall_s=10.0))
    running = plan[3].run_dir(tmp_path)
    running.mkdir(parents=True)
    (running / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 3.0}) + "\n" for s in range(1, 6))
    )
    records.write_cost(running, records.RunCost(wall_s=4.0))
    return plan, running


def test_status_reads_a_study_without_touching_it(tmp_path):
    plan, running = _study_dir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    status = watch.study_status(SMOKE, MODES, tmp_path)
    assert (status.done, status.total) == (3, len(plan))
    assert status.elapsed_s == 34.0  # 3 x 10 s finished + 4 s of the interrupted run
    assert status.eta_s is not None and status.eta_s > 0
    done = [records.read_run(s.run_dir(tmp_path)) for s in plan[:3]]
    todo = watch.remaining(plan, done)
    assert status.eta_s == pytest.approx(watch.eta_s(todo, done, {plan[3]: 5}))
    assert status.eta_s < watch.eta_s(todo, done)  # the 5 steps logged are not priced again
    assert status.current == f"{running.parent.name}/{running.name} at step 5"
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # read-only
    line = status.line()
    assert line.startswith(f"3/{len(plan)} runs, elapsed 34s, ETA ")
    assert "?" not in line


def test_status_command_prints_the_line_and_refuses_an_empty_directory(tmp_path, capsys):
    plan, _ = _study_dir(tmp_path / "study")
    assert main(["--preset", "smoke", "--status", "--out", str(tmp_path / "study")]) == 0
    assert f"3/{len(plan)} runs, elapsed 34s, ETA " in capsys.readouterr().out
    from myojax import cli

    assert cli.run(main, ["--preset", "smoke", "--status", "--out", str(tmp_path)]) == 2
    assert "holds no study runs" in capsys.readouterr().err


def test_each_run_is_tagged_for_its_tracker(tmp_path, monkeypatch):
    seen = []

    def fake_run(train_cfg, model_cfg, progress=None, heldout=None, stop=None, tracker=None):
        seen.append(tracker)
        return {"step": 1, "loss": 1.0, "preempted": True, "heldout_losses": None}

    monkeypatch.setattr(train, "run", fake_run)
    spec = sweep_specs(SMOKE, MODES)[-1]
    out = tmp_path / "scaling-smoke"
    execute.execute(SMOKE, spec, out, "shakespeare", {}, write=False, tracker="wandb")
    tags = execute.run_tags(spec)
    assert seen == [TrackerSpec("wandb", tags, "scaling-smoke")]
    assert [t.partition("=")[0] for t in tags] == ["mode", "size", "seed", "budget", "role", "lr"]
    assert f"mode={spec.mode}" in tags and f"size={spec.size.name}" in tags
