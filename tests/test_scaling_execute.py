"""experiments.scaling.execute: a run's record on divergence, interruption and success (the
trainer faked), the cost adding up over resumed invocations, and --report-only gathering the
finished runs without training."""

from __future__ import annotations

import dataclasses
import signal

import numpy as np
import pytest

from experiments.scaling import execute, records
from experiments.scaling.protocol import STUDY_PRESETS, sweep_specs
from myojax import train
from myojax.train.monitor import StopFlag
from tests.scaling_synthetic import smoke_pass

SMOKE = STUDY_PRESETS["smoke"]


def _fake_train(monkeypatch, outcome: str, loss: float = 2.0) -> list:
    calls = []

    def fake_run(train_cfg, model_cfg, progress=None, heldout=None, stop=None, tracker=None):
        calls.append(train_cfg)
        if outcome == "diverge":
            raise train.NonFiniteLoss("loss is nan at step 3")
        if outcome == "preempt":
            return {"step": 1, "loss": 1.0, "preempted": True, "heldout_losses": None}
        per_token = {split: np.full((4, 3), loss) for split in heldout}
        return {"step": 7, "loss": 1.5, "preempted": False, "heldout_losses": per_token}

    monkeypatch.setattr(train, "run", fake_run)
    return calls


def _windows() -> execute.Windows:
    return {"validation": [], "test": []}


def test_diverged_run_is_recorded_and_not_retried(tmp_path, monkeypatch):
    calls = _fake_train(monkeypatch, "diverge")
    spec = sweep_specs(SMOKE, ["myopic"])[0]
    record, skipped = execute.execute(SMOKE, spec, tmp_path, "shakespeare", {}, write=True)
    assert record.status == "diverged" and "nan" in record.error and not skipped
    assert record.val_loss is None and record.wall_s > 0
    again, skipped = execute.execute(SMOKE, spec, tmp_path, "shakespeare", {}, write=True)
    assert skipped and again == record and len(calls) == 1


def test_interrupted_run_writes_no_record_and_resumes_its_cost(tmp_path, monkeypatch):
    _fake_train(monkeypatch, "preempt")
    spec = sweep_specs(SMOKE, ["standard"])[0]
    record, _ = execute.execute(SMOKE, spec, tmp_path, "shakespeare", {}, write=True)
    assert record.status == "interrupted"
    run_dir = spec.run_dir(tmp_path)
    assert records.read_run(run_dir) is None  # the rerun resumes training
    first = records.read_cost(run_dir)
    assert first is not None and first.wall_s > 0
    _fake_train(monkeypatch, "finish")
    record, _ = execute.execute(SMOKE, spec, tmp_path, "shakespeare", _windows(), write=True)
    assert record.ok and record.wall_s > first.wall_s and record.load_start == first.load_start


def test_finished_run_records_its_held_out_losses(tmp_path, monkeypatch):
    _fake_train(monkeypatch, "finish", loss=2.5)
    spec = sweep_specs(SMOKE, ["myopic"])[1]
    record, skipped = execute.execute(SMOKE, spec, tmp_path, "shakespeare", _windows(), write=True)
    assert not skipped and record.ok and record.final_step == 7 and record.train_loss == 1.5
    assert record.val_loss == record.test_loss == 2.5
    assert (
        record.test_loss_per_sequence == (2.5,) * 4 and record.test_loss_per_position == (2.5,) * 3
    )
    assert (record.mode, record.lr, record.seed) == (spec.mode, spec.lr, spec.seed)
    assert records.read_run(spec.run_dir(tmp_path)) == record
    # Negative control: a non-finite held-out loss is a divergence, not a result.
    nan = execute.evaluated(
        record,
        7,
        1.5,
        execute.summaries({"validation": np.full((2, 2), np.nan), "test": np.ones((2, 2))}),
    )
    assert nan.status == "diverged"


def test_report_only_collects_finished_runs_without_training(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "run", lambda *a, **k: pytest.fail("report-only trained"))
    spec = sweep_specs(SMOKE, ["standard"])[1]
    record = dataclasses.replace(records.planned(spec), status="ok", val_loss=2.0)
    records.write_run(spec.run_dir(tmp_path), record)
    runs, finished = smoke_pass(tmp_path, "shakespeare", write=False, train=False)
    assert runs == [record] and not finished


def test_ctrl_c_during_a_run_stops_the_study_with_sigint(tmp_path, monkeypatch):
    """Issue 26 (9): the study hands its stop flag to the trainer, so Ctrl-C during a run ends
    the study with SIGINT (130), not the SIGTERM it assumed for any interruption (143)."""

    def interrupted_by_ctrl_c(
        train_cfg, model_cfg, progress=None, heldout=None, stop=None, tracker=None
    ):
        flag = StopFlag() if stop is None else stop  # the trainer's own flag when given none
        flag.signum = signal.SIGINT
        return {"step": 1, "loss": 1.0, "preempted": True, "heldout_losses": None}

    monkeypatch.setattr(train, "run", interrupted_by_ctrl_c)
    monkeypatch.setattr(execute, "heldout_windows", lambda p, data: _windows())
    stop = StopFlag()
    _, finished = smoke_pass(tmp_path, "shakespeare", stop=stop)
    assert not finished and stop.signum == signal.SIGINT


def test_finite_but_exploded_run_is_recorded_diverged(tmp_path, monkeypatch):
    """Issue 26 (2): a held-out loss of 5.8e6 is finite but no trained model: recorded diverged
    by the documented rule (above EXPLODED_FACTOR x ln(vocab)), with the reason."""
    _fake_train(monkeypatch, "finish", loss=5.8e6)
    spec = sweep_specs(SMOKE, ["standard"])[0]
    record, _ = execute.execute(SMOKE, spec, tmp_path, "shakespeare", _windows(), write=True)
    assert record.status == "diverged" and "exploded" in record.error
    # Negative control: a poor but plausible loss (worse than uniform, under the bound) is kept.
    assert not execute.exploded(1.5 * np.log(256), 256) and execute.exploded(1e3, 256)
    _fake_train(monkeypatch, "finish", loss=7.0)
    spec = sweep_specs(SMOKE, ["standard"])[1]
    record, _ = execute.execute(SMOKE, spec, tmp_path, "shakespeare", _windows(), write=True)
    assert record.ok and record.error is None


def test_a_study_never_mixes_attention_implementations(tmp_path, monkeypatch):
    """A finished run trained with another attention implementation (or recorded before the
    fast path existed: the reference formulation) is refused in one line, not reused."""
    calls = _fake_train(monkeypatch, "finish")
    spec = sweep_specs(SMOKE, ["myopic"])[0]
    assert spec.model.attention_impl == "fast"  # the study's default
    record = dataclasses.replace(records.planned(spec), status="ok", val_loss=2.0)
    assert record.attention_impl == "fast"
    records.write_run(spec.run_dir(tmp_path), record)
    # Negative control: the same implementation reuses the finished run.
    again, skipped = execute.execute(SMOKE, spec, tmp_path, "shakespeare", {}, write=True)
    assert skipped and again == record and not calls
    for recorded in ("reference", None):  # None: a run from before the field
        records.write_run(
            spec.run_dir(tmp_path), dataclasses.replace(record, attention_impl=recorded)
        )
        with pytest.raises(execute.StudyMixError, match="attention_impl='reference'.*never mixes"):
            execute.execute(SMOKE, spec, tmp_path, "shakespeare", {}, write=True)
    reference = dataclasses.replace(SMOKE, attention_impl="reference")
    (ref_spec,) = [s for s in sweep_specs(reference, ["myopic"]) if s.name == spec.name]
    again, skipped = execute.execute(reference, ref_spec, tmp_path, "shakespeare", {}, write=True)
    assert skipped and not calls
