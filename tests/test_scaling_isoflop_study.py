"""experiments.scaling.isoflop_study: token reads replayed from each run's own training stream
(1 with disjoint windows, > 1 without: the negative control), the isoflop-smoke preset end
to end (slow: ``pytest -m slow``), resumable and with no run repeating a training token, and
``--share``: runs another process holds are passed over and named, the lr sweep is waited for,
and two real processes sharing one study train every run once (slow); ``--status`` reads
finished, running and stopped runs from the files alone."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from experiments.scaling import isoflop, isoflop_study, records, watch
from experiments.scaling.__main__ import main
from myojax import cli
from myojax.data import pipeline
from myojax.train.rundir import RunLock


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
    report_only = [*args, "--report-only"]
    assert main(report_only) == 0  # every budget finished: not partial
    assert json.loads((out / "isoflop.json").read_text())["partial"] is False
    shutil.rmtree(next((out / "runs" / "myopic").glob("*-s1")))  # one run of one budget gone
    with pytest.raises(cli.UsageError, match="2 of 3 budgets have finished"):
        main(report_only)


def _finished_runs(d: isoflop.Design, skip: set[tuple[float, str]]) -> list:
    """Every size run of the design as finished ok, except the (budget, size name) in skip."""
    done = []
    for r in d.runs:
        if (r.budget, r.size.name) in skip:
            continue
        for mode in isoflop.MODES:
            for seed in d.preset.base.seeds:
                spec = isoflop_study._spec(d, r, mode, 4e-3, seed, "size")
                losses = (1.0 + 0.01 * seed, 1.1 + 0.01 * seed)
                record = dataclasses.replace(
                    records.planned(spec), status="ok", test_loss_per_sequence=losses
                )
                done.append(isoflop_study.IsoflopRun(record, r.budget, 1, "size"))
    return done


def test_a_partial_study_rests_only_on_budgets_whose_every_run_finished():
    d, _ = _tiny(True)
    full = _finished_runs(d, set())
    assert isoflop_study.finished_budgets(d, full) == d.budgets
    last = d.runs[-1]  # one size of the largest budget missing: that budget is left out
    partial = _finished_runs(d, {(last.budget, last.size.name)})
    assert isoflop_study.finished_budgets(d, partial) == d.budgets[:-1]
    diverged = [  # a diverged run does not count as finished either
        dataclasses.replace(x, record=dataclasses.replace(x.record, status="diverged"))
        if x.budget == d.budgets[0] and x.record.seed == 0
        else x
        for x in full
    ]
    assert isoflop_study.finished_budgets(d, diverged) == d.budgets[1:]
    study = isoflop_study.losses(d, partial, d.budgets[:-1])
    assert study.loss.shape[1] == len(d.budgets) - 1 and np.array_equal(
        study.budgets, d.budgets[:-1]
    )
    with pytest.raises(KeyError):  # the unfinished budget has no losses to read
        isoflop_study.losses(d, partial)


def test_planned_runs_count_the_sweep_and_every_size_mode_and_seed():
    d, _ = _tiny(True)
    base = d.preset.base
    assert isoflop_study.planned_runs(d) == 2 * len(base.lrs) + 2 * len(d.runs) * len(base.seeds)


LRS = {"standard": 1.6e-2, "myopic": 4e-3}


def _write_finished(d: isoflop.Design, spec, out) -> None:
    """``spec``'s run on disk as finished ok (its record only: nothing is trained); a sweep
    run's validation loss is lowest at LRS[mode]."""
    val = 1.0 + abs(np.log(spec.lr / LRS[spec.mode]))
    record = dataclasses.replace(
        records.planned(spec),
        status="ok",
        val_loss=val,
        test_loss_per_sequence=(1.0, 1.1),
        final_step=spec.steps,
        wall_s=0.01 * spec.steps,  # what --status prices the runs left at
    )
    records.write_run(spec.run_dir(out), record)


def _specs(d: isoflop.Design) -> list:
    base = d.preset.base
    sweep = [
        isoflop_study._spec(d, d.sweep, m, lr, base.seeds[0], "sweep")
        for m in isoflop.MODES
        for lr in base.lrs
    ]
    sizes = [
        isoflop_study._spec(d, r, m, LRS[m], seed, "size")
        for r in d.runs
        for m in isoflop.MODES
        for seed in base.seeds
    ]
    return sweep + sizes


def test_share_passes_over_a_run_another_process_holds_and_waits_for_the_sweep(
    tmp_path, monkeypatch
):
    d, _ = _tiny(True)
    out, data = tmp_path / "iso", pipeline.EMBEDDED
    specs = _specs(d)
    held, locked, sweep_run = specs[-1], specs[-2], specs[0]
    for spec in specs:
        if spec not in (held, locked, sweep_run):
            _write_finished(d, spec, out)
    # a process not sharing trains `locked`: it holds that run's own lock, not its claim
    run_lock = RunLock(locked.run_dir(out))
    run_lock.acquire()
    claims = {s: RunLock(s.run_dir(out), isoflop_study.CLAIM_FILE) for s in (held, sweep_run)}
    for claim in claims.values():
        claim.acquire()  # another process training these two runs

    def sweep_run_finishes() -> None:
        _write_finished(d, sweep_run, out)
        claims[sweep_run].release()

    monkeypatch.setattr(isoflop_study, "WAIT_S", 0.05)
    timer = threading.Timer(0.5, sweep_run_finishes)
    timer.start()
    with pytest.raises(isoflop_study.HeldByOthers) as e:
        isoflop_study.run(d, out, data, share=True)
    timer.join()
    # the sweep run was waited for; the other two are passed over, in the design's order
    assert e.value.runs == (locked.run_dir(out).name, held.run_dir(out).name)
    # the holders finish: a sharing process now finds every run, with the sweep's lrs
    for spec, lock in ((held, claims[held]), (locked, run_lock)):
        _write_finished(d, spec, out)
        lock.release()
    lrs, done = isoflop_study.run(d, out, data, share=True)
    assert lrs == LRS and len(done) == isoflop_study.planned_runs(d) == len(specs)
    assert all(x.max_token_reads == 1 for x in done)


@pytest.mark.slow
def test_two_processes_sharing_a_study_train_every_run_once(tmp_path):
    out = tmp_path / "iso"
    args = ["--preset", "isoflop-smoke", "--out", str(out), "--progress", "false", "--share"]
    cmd = [sys.executable, "-m", "experiments.scaling", *args]
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    logs = [p.communicate(timeout=1500)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    doc = json.loads((out / "isoflop.json").read_text())  # the last one wrote the analysis
    assert doc["partial"] is False and any("Myopic training at compute C" in x for x in logs)
    # both processes trained: each "starting:" line is one run trained, none twice, none missed
    started = [
        line.split("run dir ")[-1]
        for log in logs
        for line in log.splitlines()
        if line.startswith("starting:")
    ]
    run_dirs = {
        x["record"]["run_dir"] for x in doc["runs"]
    }  # the sweep's best lr run is a size run
    assert len(started) == len(set(started)) == len(run_dirs)
    assert all(any(line.startswith("starting:") for line in log.splitlines()) for log in logs)


def _started(run_dir, step: int, lock: str, pid: int) -> None:
    """A run that has logged ``step`` and whose ``lock`` file names ``pid`` on this host."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": step, "loss": 2.0}) + "\n")
    holder = {"pid": pid, "host": socket.gethostname(), "started": "now"}
    (run_dir / lock).write_text(json.dumps(holder) + "\n")


def test_status_reads_finished_running_and_stopped_runs_from_the_files_alone(tmp_path):
    d, _ = _tiny(True)
    out = tmp_path / "iso"
    specs = _specs(d)
    n_sweep = 2 * len(d.preset.base.lrs)
    for spec in specs[: n_sweep + 3]:
        _write_finished(d, spec, out)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a holder that has exited
    _started(specs[-1].run_dir(out), 7, isoflop_study.CLAIM_FILE, os.getpid())
    _started(specs[-2].run_dir(out), 3, ".lock", gone.pid)
    st = isoflop_study.status(d, out)
    finished = sum(records.read_run(s.run_dir(out)) is not None for s in specs)
    assert (st.done, st.total) == (finished, isoflop_study.planned_runs(d))
    assert f"{specs[-1].run_dir(out).name} at step 7 (pid {os.getpid()} on" in st.current
    assert f"{specs[-2].run_dir(out).name} at step 3 (stopped)" in st.current
    assert st.processes == 1 and st.eta_s > 0 and "processes" not in st.line()
    timed = {s.run_dir(out): s.steps for s in specs[: n_sweep + 3]}  # each run's time once
    assert st.elapsed_s == pytest.approx(0.01 * sum(timed.values()))
    # the ETA prices the steps not yet logged (none of a run logged past its end)
    _started(specs[-1].run_dir(out), 1, isoflop_study.CLAIM_FILE, os.getpid())
    done = [records.read_run(s.run_dir(out)) for s in specs[: n_sweep + 3]]
    per_step = watch.eta_s([specs[-1]], done) / specs[-1].steps
    more = min(7, specs[-1].steps) - 1
    assert isoflop_study.status(d, out).eta_s == pytest.approx(st.eta_s + more * per_step)
    _started(specs[-1].run_dir(out), 7, isoflop_study.CLAIM_FILE, os.getpid())
    # a second live holder: the ETA is said to be one process's work, shared by two
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _started(specs[-2].run_dir(out), 3, ".lock", sleeper.pid)
        line = isoflop_study.status(d, out).line()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "of one process's work (at best" in line and "over the 2 processes" in line
    # a run claimed before its first logged step is starting; its holder (this process, which
    # holds another run too) counts once
    (specs[-3].run_dir(out) / isoflop_study.CLAIM_FILE).parent.mkdir(parents=True)
    claim = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"})
    (specs[-3].run_dir(out) / isoflop_study.CLAIM_FILE).write_text(claim)
    st = isoflop_study.status(d, out)
    assert f"{specs[-3].run_dir(out).name} starting (pid {os.getpid()} on" in st.current
    assert st.processes == 1


def test_status_of_a_directory_without_runs_is_one_clear_error(tmp_path, capsys):
    args = ["--preset", "isoflop-smoke", "--status", "--out", str(tmp_path / "none")]
    assert cli.run(main, args) == 2
    assert "holds no study runs" in capsys.readouterr().err


def test_share_outside_an_isoflop_preset_is_one_clear_error(tmp_path, capsys):
    assert cli.run(main, ["--preset", "smoke", "--share", "--out", str(tmp_path)]) == 2
    assert "--share runs an isoFLOP preset's design" in capsys.readouterr().err
