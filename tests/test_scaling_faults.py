"""Study-level faults (issue 26), like tests/test_faults.py for runs: a study interrupted or
damaged at one point ends, after a rerun, with the outputs of an uninterrupted study (or one
clear refusal). The trainer is replaced by the simulated study of ``tests.scaling_synthetic``
so these run in seconds; the real-trainer variants are marked ``slow``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from experiments.scaling import execute, plots, protocol, publishing, records, study
from myojax.train.monitor import StopFlag
from tests import scaling_synthetic as syn

SMOKE = protocol.STUDY_PRESETS["smoke"]


def _run(monkeypatch, out: Path, runs, *, finished: bool = True, **options):
    """``study.run`` over ``runs`` (the trainer's work already done) into ``out``."""
    monkeypatch.setattr(execute, "run_study", lambda *a, **k: (list(runs), finished))
    opts = study.Options(out, "shakespeare", progress=False, **options)
    return study.run(syn.PRESET, syn.MODES, opts, "python -m experiments.scaling")


def _killed(*a, **k):
    raise SystemExit(137)  # what a kill -9 leaves: the files written so far, nothing after


def test_kill_between_results_and_report_rewrites_the_report(tmp_path, monkeypatch):
    """Issue 26 (1): killed after results.json but before report.md, the rerun rewrites the
    report (and plots) instead of saying "nothing new" over an older, partial report."""
    runs = syn.runs()
    out = tmp_path / "study"
    _run(monkeypatch, out, runs[:12], finished=False, train=False)  # a partial report
    partial = (out / "report.md").read_text()
    with monkeypatch.context() as m:
        m.setattr(plots, "plot_all", _killed)
        with pytest.raises(SystemExit):
            _run(monkeypatch, out, runs)
    assert (out / "report.md").read_text() == partial  # the kill left the old page
    outcome = _run(monkeypatch, out, runs)
    assert not outcome.nothing_new
    on_disk = records.read_results(out / "results.json")
    assert on_disk is not None and on_disk.finished and publishing.is_current(on_disk, out)
    assert (out / "report.md").read_text() != partial
    # Negative control: once whole, a rerun changes nothing.
    assert _run(monkeypatch, out, runs).nothing_new


def _diverged(r: records.RunRecord) -> records.RunRecord:
    return dataclasses.replace(
        r,
        status="diverged",
        error="loss is nan at step 3",
        val_loss=None,
        val_loss_per_sequence=None,
        test_loss=None,
        test_loss_per_sequence=None,
        test_loss_per_position=None,
    )


def test_report_is_written_when_the_largest_size_diverges(tmp_path, monkeypatch):
    """Issue 26 (2): every run of the largest size diverged; the report is still written, and
    the transfer check says it cannot decide."""
    largest = syn.PRESET.sizes[-1].name
    runs = [
        _diverged(r) if r.size == largest and r.role in ("size", "transfer") else r
        for r in syn.runs()
    ]
    out = tmp_path / "study"
    _run(monkeypatch, out, runs, rerender=True)
    report = (out / "report.md").read_text()
    assert "every re-sweep run" in report and "**not determined**" in report


def test_a_study_refuses_to_mix_data(tmp_path, monkeypatch):
    """Issue 26 (5): runs record what they trained on, by content; resuming (or rerendering)
    a study with other --data is one clear refusal, not a fit over both datasets."""
    from myojax import train
    from myojax.data import prepare

    src = tmp_path / "a.txt"
    src.write_text("to be or not to be " * 200)
    shards = tmp_path / "d"
    prepare.prepare([src], [src], shards, tokenizer="byte", shard_tokens=1000)
    spec = protocol.sweep_specs(SMOKE, ["standard"])[0]
    record = dataclasses.replace(
        records.planned(spec), status="ok", val_loss=2.0, data=execute.data_identity("shakespeare")
    )
    out = tmp_path / "study"
    records.write_run(spec.run_dir(out), record)
    monkeypatch.setattr(train, "run", lambda *a, **k: pytest.fail("trained on mixed data"))
    monkeypatch.setattr(execute, "heldout_windows", lambda p, data: {})
    for train_ in (True, False):  # resume, and --report-only / --rerender
        with pytest.raises(execute.StudyMixError, match="never mixes data"):
            execute.run_study(
                SMOKE,
                ["standard"],
                out,
                data=str(shards),
                write=True,
                stop=StopFlag(),
                say=lambda _: None,
                train=train_,
            )
    # Negative control: the same data by content, even from a moved directory, is the same.
    moved = tmp_path / "moved"
    shards.rename(moved)
    assert execute.data_identity(str(moved)).startswith("shards sha256:")
    runs, _ = execute.run_study(
        SMOKE,
        ["standard"],
        out,
        data="shakespeare",
        write=False,
        stop=StopFlag(),
        say=lambda _: None,
        train=False,
    )
    assert runs == [record]
