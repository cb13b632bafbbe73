"""myojax.train: configs and CLI errors, the pure step, bitwise resume after kill -9
and SIGTERM (real subprocesses, real orbax and grain), NaN handling, run-directory safety."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from myojax import checkpoint as ckpt
from myojax import cli as command
from myojax.config import ModelConfig
from myojax.data.pipeline import DataError
from myojax.loss import to_batch
from myojax.model import GPT
from myojax.train import (
    RunDirError,
    TrainConfig,
    TrainState,
    init_state,
    make_optimizer,
    run,
    train_step,
)
from myojax.train.__main__ import main
from myojax.train.presets import RUN_PRESETS as PRESETS

REPO = Path(__file__).resolve().parents[1]
# A micro model so that a run is dominated by real checkpoint and data work, not matmuls.
MICRO = [
    "--seq-len",
    "16",
    "--d-model",
    "16",
    "--n-layers",
    "2",
    "--n-heads",
    "2",
    "--batch-size",
    "4",
    "--warmup-steps",
    "3",
    "--log-interval",
    "1",
    "--eval-interval",
    "20",
    "--eval-batches",
    "2",
    "--checkpoint-interval",
    "5",
    "--keep",
    "3",
]
STEPS = 60


def micro_configs(
    out: Path, steps: int = STEPS, **train: object
) -> tuple[TrainConfig, ModelConfig]:
    model_cfg = PRESETS["tiny"][0].replace(seq_len=16, d_model=16, n_layers=2, n_heads=2)
    fields = dict(
        steps=steps,
        batch_size=4,
        warmup_steps=3,
        log_interval=1,
        eval_interval=20,
        eval_batches=2,
        checkpoint_interval=5,
        keep=3,
        out=str(out),
    )
    train_cfg = PRESETS["tiny"][1].replace(**{**fields, **train})
    return train_cfg, model_cfg


def leaves(model: GPT) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(model)]


def logged(run_dir: Path) -> list[dict]:
    """Every metrics row without the timing field, which legitimately differs between runs."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    out = tmp_path_factory.mktemp("reference")
    final = run(*micro_configs(out), progress=False)
    assert final["step"] == STEPS and final["resumed_from"] is None and not final["preempted"]
    _, model = ckpt.restore(out)
    return out, leaves(model)


def cli(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "myojax.train",
        "--preset",
        "tiny",
        "--steps",
        str(STEPS),
        "--out",
        str(out),
        *MICRO,
        *extra,
    ]


def finalized_steps(out: Path) -> list[int]:
    d = out / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not finalized_steps(out):
        assert proc.poll() is None, f"training exited early: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.01)


def assert_same_as_reference(out: Path, reference: tuple[Path, list[np.ndarray]]) -> None:
    ref_dir, ref_leaves = reference
    _, model = ckpt.restore(out)
    for a, b in zip(leaves(model), ref_leaves, strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise
    assert logged(out) == logged(ref_dir)  # every logged loss, lr, grad norm, eval row


def test_resume_after_kill9_is_bitwise_identical(tmp_path, reference):
    out = tmp_path / "run"
    proc = subprocess.Popen(cli(out), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_checkpoint(proc, out)
    proc.kill()  # SIGKILL: no handler runs, an async save may be cut short
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    final = run(*micro_configs(out), progress=False)
    assert final["resumed_from"] is not None and final["resumed_from"] < STEPS, (
        "the killed run had already finished; the test did not interrupt it"
    )
    assert_same_as_reference(out, reference)


def test_sigterm_saves_exits_cleanly_and_resumes_bitwise(tmp_path, reference):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cli(out), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_checkpoint(proc, out)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "received SIGTERM" in stdout + stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["preempted"] and summary["step"] < STEPS
    # The checkpoint is at the step where training stopped, not just the last interval.
    assert finalized_steps(out)[-1] == summary["step"]
    final = run(*micro_configs(out), progress=False)
    assert final["resumed_from"] == summary["step"]
    assert_same_as_reference(out, reference)


def test_train_step_is_pure_and_reports_metrics():
    train_cfg, model_cfg = micro_configs(Path("unused"))
    optimizer = make_optimizer(train_cfg, GPT(model_cfg, key=jax.random.key(0)))
    state = init_state(model_cfg, optimizer, jax.random.key(0))
    before = [np.array(x) for x in jax.tree.leaves(state)]
    windows = np.random.default_rng(0).integers(0, 256, (4, 17)).astype(np.int32)
    step = jax.jit(functools.partial(train_step, optimizer=optimizer))  # no donation here
    a, ma = step(state, to_batch(windows))
    b, mb = step(state, to_batch(windows))
    assert isinstance(a, TrainState) and int(a.step) == 1
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(before, jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(x, y)  # the input state is untouched
    assert not all(np.array_equal(x, y) for x, y in zip(before, jax.tree.leaves(a)))
    assert set(ma) == {"loss", "grad_norm"} and float(ma["loss"]) == float(mb["loss"])
    assert math.isclose(float(ma["loss"]), math.log(256), rel_tol=0.05)  # near-uniform at init
    assert float(ma["grad_norm"]) > 0


def test_caller_heldout_windows_are_evaluated_at_the_end_also_of_a_finished_run(tmp_path):
    """``run(..., heldout=...)``: the final model's per-token losses on the caller's windows,
    the same as evaluating the saved checkpoint; a finished run rerun still measures them; a
    preempted run measures nothing."""
    from myojax import evaluation
    from myojax.data import corpus
    from myojax.train.monitor import StopFlag

    cfgs = micro_configs(tmp_path / "run", steps=4, eval_interval=4, checkpoint_interval=4)
    test = corpus.load().test
    windows = {
        "test": evaluation.heldout_windows((test,), seq_len=16, batch_size=4, num_batches=2, seed=3)
    }
    stop = StopFlag()
    stop.signum = signal.SIGTERM  # stopped before its first step
    stopped = run(*cfgs, progress=False, heldout=windows, stop=stop)
    assert stopped["preempted"] and stopped["heldout_losses"] is None
    final = run(*cfgs, progress=False, heldout=windows)
    _, model = ckpt.restore(tmp_path / "run")
    expected = evaluation.token_losses(model, windows["test"])
    assert final["heldout_losses"]["test"].shape == (8, 16)
    np.testing.assert_array_equal(final["heldout_losses"]["test"], expected)
    again = run(*cfgs, progress=False, heldout=windows)
    assert again["resumed_from"] == 4 and again["step"] == 4
    np.testing.assert_array_equal(again["heldout_losses"]["test"], expected)
    assert run(*cfgs, progress=False)["heldout_losses"] is None  # not asked for


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--preset", "tiny", "--no-such-field", "1"], "unrecognized arguments: --no-such-field"),
        (["--preset", "tiny", "--steps", "0"], "TrainConfig.steps must be positive"),
        (["--preset", "tiny", "--steps", "ten"], "invalid int value: 'ten'"),
        (["--preset", "tiny", "--lr", "-1"], "TrainConfig.lr has invalid value -1.0"),
        (["--preset", "tiny", "--warmup-steps", "500"], "TrainConfig.warmup_steps must be in"),
        (["--preset", "tiny", "--n-heads", "3"], "must be divisible by"),
        (["--preset", "tiny", "--mode", "sideways"], "invalid choice: 'sideways'"),
    ],
)
def test_cli_rejects_bad_input_with_one_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_help_lists_fields_and_presets(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "--checkpoint-interval",
        "--gradient-mode",
        "--mode",
        "--d-model",
        "--overwrite",
        "tiny: 0.22M params",
        "small: 1.2",
        "peak learning rate",
    ):
        assert needle in text


def test_different_config_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    run(*micro_configs(out, steps=5), progress=False)
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    with pytest.raises(RunDirError, match=r"train\.lr: 0\.003 -> 0\.001.*--overwrite"):
        run(*micro_configs(out, steps=5, lr=1e-3), progress=False)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before  # nothing touched
    final = run(*micro_configs(out, steps=5, lr=1e-3), overwrite=True, progress=False)
    assert final["resumed_from"] is None and final["step"] == 5
    # The same config again resumes (nothing left to do) instead of refusing.
    again = run(*micro_configs(out, steps=5, lr=1e-3), progress=False)
    assert again["resumed_from"] == 5


def test_malformed_config_json_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="config.json is malformed"):
        run(*micro_configs(out, steps=5), progress=False)


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="shard directory .*nowhere does not exist"):
        run(
            *micro_configs(tmp_path / "run", steps=5, data=str(tmp_path / "nowhere")),
            progress=False,
        )


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    # Warmup starts at lr 0, so step 1 is finite and saved; the huge lr then blows up the loss.
    argv = ["--preset", "tiny", "--steps", "40", "--out", str(out), *MICRO, "--lr", "1e35"]
    code = command.run(
        main, [*argv, "--warmup-steps", "2", "--checkpoint-interval", "1", "--grad-clip", "0"]
    )
    assert code == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "loss is nan" in line or "loss is inf" in line
    bad_step = int(line.split(" at step ")[1].split(";")[0])
    steps = finalized_steps(out)
    assert steps and max(steps) < bad_step and f"Last good checkpoint: step {max(steps)}" in line
    _, model = ckpt.restore(out)  # the last good checkpoint restores, and is finite
    assert all(np.isfinite(x).all() for x in leaves(model))


# --- Reliability (issue 16): one test per defect; the kill -9 loop is tests/test_faults.py ---


def test_divergence_never_saves_nonfinite_parameters(tmp_path, capsys):
    """lr 1e6: a step with a finite loss but a NaN gradient norm used to be applied and saved,
    and named as the last good checkpoint."""
    out = tmp_path / "run"
    argv = ["--preset", "tiny", "--steps", "8", "--out", str(out), *MICRO]
    assert command.run(main, [*argv, "--lr", "1e6", "--checkpoint-interval", "1"]) == 1
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    bad_step = int(line.split(" at step ")[1].split(";")[0])
    steps = finalized_steps(out)
    assert steps and max(steps) < bad_step and f"Last good checkpoint: step {max(steps)}" in line
    for s in steps:  # every saved step is finite (restore of a NaN step raises)
        _, _, model = ckpt.restore_step(out, step=s)
        assert all(np.isfinite(x).all() for x in leaves(model))


def test_second_run_on_a_locked_dir_is_refused_and_a_dead_holders_lock_taken_over(tmp_path):
    from myojax.train.rundir import RunBusyError, RunLock

    out = tmp_path / "run"
    hold = (
        "import sys, time; from pathlib import Path; from myojax.train.rundir import RunLock; "
        "RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusyError, match=rf"in use by another run \(pid {holder.pid} on"):
            run(*micro_configs(out, steps=2, warmup_steps=1), progress=False)
        assert not (out / "config.json").exists()  # the refused run wrote nothing
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up
        holder.wait()
    lock = RunLock(out)
    note = lock.acquire()  # the kernel dropped the dead holder's flock: taken over
    assert note is not None and f"pid {holder.pid}" in note and "no longer running" in note
    with pytest.raises(RunBusyError, match="in use by another run"):
        RunLock(out).acquire()  # a second holder in the same process is refused too
    # another lock file in the same directory is another lock (the isoFLOP study's claims)
    claim = RunLock(out, ".claim")
    assert claim.acquire() is None and (out / ".claim").exists()
    claim.release()
    lock.release()
    assert RunLock(out).acquire() is None  # a clean release leaves no holder to report


def test_all_checkpoints_unreadable_restarts_from_zero_and_keeps_old_metrics(tmp_path, capsys):
    from tests.test_checkpoint import corrupt

    out = tmp_path / "run"
    cfgs = micro_configs(out, steps=6, checkpoint_interval=3, eval_interval=6)
    run(*cfgs, progress=False)
    original = (out / "metrics.jsonl").read_text()
    for step in finalized_steps(out):
        corrupt(out / "checkpoints" / str(step))
    capsys.readouterr()
    final = run(*cfgs, progress=False)
    assert final["resumed_from"] is None and final["step"] == 6
    (note,) = [x for x in capsys.readouterr().out.splitlines() if "could be read" in x]
    assert "starting again from step 0" in note
    (aside,) = out.glob("metrics.jsonl.*")
    assert aside.read_text() == original and str(aside) in note  # moved, not truncated
    assert (out / "metrics.jsonl").read_text().count("\n") == original.count("\n")
    assert logged(out) == [
        {k: v for k, v in json.loads(r).items() if k != "tokens_per_s"}
        for r in original.splitlines()
    ]  # a clean restart: no state mixed from the unreadable checkpoints


def test_startup_failure_writes_no_config_so_the_corrected_command_runs(tmp_path):
    from myojax.data import prepare as prep

    (tmp_path / "a.txt").write_text("To be, or not to be, that is the question.\n" * 20)
    (tmp_path / "v.txt").write_text("Friends, Romans, countrymen.\n")
    data = tmp_path / "shards"
    prep.prepare([tmp_path / "a.txt"], [tmp_path / "v.txt"], data)
    out = tmp_path / "run"
    train_cfg, model_cfg = micro_configs(out, steps=2, warmup_steps=1, data=str(data))
    with pytest.raises(DataError, match=r"no val shard is that long \(the longest, .*val_000000"):
        run(train_cfg, model_cfg.replace(seq_len=64), progress=False)
    assert not (out / "config.json").exists()
    final = run(train_cfg, model_cfg, progress=False)  # the corrected command
    assert final["step"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == {"tokenizer": "byte", "vocab_size": 256}


def test_extend_a_finished_run_and_restore_a_corrupt_config(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "tiny", "--out", str(out), *MICRO, "--eval-interval", "4"]
    assert main([*argv, "--steps", "4"]) == 0
    before = logged(out)
    # A rerun of the finished run reports its last loss instead of "loss": null.
    capsys.readouterr()
    main([*argv, "--steps", "4"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["loss"] == before[-2]["loss"] and summary["val_loss"] == before[-1]["val_loss"]
    # A corrupt config.json: the refusal offers the checkpoint's copy, not --overwrite.
    (out / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="--restore-config"):
        run(*micro_configs(out, steps=4, eval_interval=4), progress=False)
    main([*argv, "--steps", "4", "--restore-config"])
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 4
    # More steps extend it: the first 4 steps' rows are kept, the schedule changes from step 4.
    capsys.readouterr()
    main([*argv, "--steps", "6"])
    out_text = capsys.readouterr().out
    final = json.loads(out_text.strip().splitlines()[-1])
    assert final["resumed_from"] == 4 and final["step"] == 6
    assert "extending the run from 4 to 6 steps" in out_text
    assert logged(out)[: len(before)] == before
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 6


def test_float64_trains_in_float64_or_is_refused(tmp_path):
    train_cfg, model_cfg = micro_configs(tmp_path / "lib", steps=1, warmup_steps=0)
    if not jax.config.read("jax_enable_x64"):  # the library refuses instead of training in f32
        with pytest.raises(ValueError, match="64-bit mode"):
            run(train_cfg, model_cfg.replace(param_dtype="float64"), progress=False)
    out = tmp_path / "run"
    argv = cli(out, "--param-dtype", "float64", "--steps", "2", "--warmup-steps", "1")
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "UserWarning" not in proc.stderr  # no "requested dtype float64 ... truncated"
    check = (
        "import sys; from myojax.checkpoint import restore as r; print(r(sys.argv[1])[1].wte.dtype)"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "1"}  # else reading converts to float32
    dtype = subprocess.run(
        [sys.executable, "-c", check, str(out)], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert dtype.stdout.strip() == "float64", dtype.stderr


def test_sigterm_before_the_first_step_exits_cleanly(tmp_path):
    """A signal during set-up (the run directory is locked, data and checkpoints not yet read)
    used to kill the process with status 143; now the run stops at its first step boundary."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cli(out), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    t0 = time.monotonic()
    while not (out / ".lock").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 300, "the run never locked its directory"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "received SIGTERM" in stdout and "Traceback" not in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["preempted"] and summary["step"] <= 1  # stopped at the first boundary
    assert '"loss": null' not in stdout and '"val_loss": null' not in stdout


def test_errors_are_one_line_and_tracebacks_need_debug(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "train_000000.bin"
    a_file.write_bytes(b"")
    argv = ["--preset", "tiny", "--out", str(tmp_path / "run"), "--data", str(a_file)]
    assert command.run(main, argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert (
        line
        == f"error: --data {a_file} is a file; give the directory of token shards (e.g. {tmp_path})"
    )
    with pytest.raises(DataError, match="is a file"):
        command.run(main, [*argv, "--debug"])
    monkeypatch.setenv("MYOJAX_DEBUG", "1")
    with pytest.raises(DataError, match="is a file"):
        command.run(main, argv)


def test_full_disk_is_one_useful_line():
    """What orbax raises (after logging it from every save thread) when the disk is full; the
    command drops those background copies and reports this one line."""
    from myojax.orbax_noise import drop_background_save_errors

    error = ValueError(
        'RESOURCE_EXHAUSTED: Error writing local file "/r/checkpoints/2.orbax-checkpoint-tmp/'
        'model/_sharding": Failed writing: "/r/x.__lock": Failed to write 3881 bytes to file 6:'
        " No space left on device [os_error_code='28']"
    )
    line = command.describe(error)
    assert line.startswith("no space left on device while writing /r/checkpoints/2.orbax")
    assert "rerun the same command" in line and "\n" not in line
    assert command.describe(ValueError("lr\n  too high")) == "lr too high"  # control
    record = logging.LogRecord("absl", logging.ERROR, "/site-packages/orbax/f.py", 1, "", (), None)
    assert not drop_background_save_errors(record)
    record.pathname = "/site-packages/myojax/loop.py"
    assert drop_background_save_errors(record)  # everyone else's errors pass


def test_lock_without_flock_support_trusts_a_live_pid_and_takes_over_a_dead_one(
    tmp_path, monkeypatch
):
    import errno
    import socket

    from myojax.train import rundir

    def no_flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(rundir.fcntl, "flock", no_flock)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    lock_file = tmp_path / ".lock"
    for pid, alive in ((os.getpid(), True), (int(dead.stdout), False)):
        holder = {"pid": pid, "host": socket.gethostname(), "started": "then"}
        lock_file.write_text(json.dumps(holder))
        lock = rundir.RunLock(tmp_path)
        if alive:
            with pytest.raises(RunDirError, match=f"in use by another run \\(pid {pid} "):
                lock.acquire()
        else:
            assert f"pid {pid}" in lock.acquire()
            assert json.loads(lock_file.read_text())["pid"] == os.getpid()
            lock.release()


def test_a_lock_files_holder_is_read_without_locking_and_judged_alive_only_on_evidence(
    tmp_path,
):
    """``read_holder`` (for status reports) names who wrote a lock file; a released, garbled
    or missing file names no one. A pid is called gone only when this host can check it."""
    import socket

    from myojax.train.rundir import Holder, read_holder

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    here, path = socket.gethostname(), tmp_path / ".lock"
    for text in ("", "{not json", '{"pid": "x", "host": "h"}', '{"host": "h"}', "[1]"):
        path.write_text(text)
        assert read_holder(path) is None, text
    assert read_holder(tmp_path / "absent") is None
    path.write_text(json.dumps({"pid": os.getpid(), "host": here, "started": "then"}))
    me = read_holder(path)
    assert me == Holder(os.getpid(), here, "then") and me.alive()
    assert str(me) == f"pid {os.getpid()} on {here}, started then"
    assert not Holder(int(dead.stdout), here, "then").alive()  # the control: a gone pid
    assert Holder(int(dead.stdout), here + "-elsewhere", "then").alive()  # cannot be checked


def test_a_short_run_saves_only_at_its_intervals_and_end(tmp_path):
    """Issue 26: a short study run saves at its checkpoint interval and at the end only, not
    also at step 1 (orbax's own rule saves the first step of a run with no checkpoint)."""
    out = tmp_path / "run"
    run(*micro_configs(out, steps=6, checkpoint_interval=4, keep=5), progress=False)
    assert finalized_steps(out) == [4, 6]


def test_time_based_checkpoints_save_between_step_intervals_and_keep_the_last(tmp_path):
    """Issue 30 (defect 7): ``checkpoint_minutes`` saves a long run by the clock as well as by
    steps. A due time at every step saves every step (the step interval alone never would), and
    the last ``keep`` of them are kept."""
    timed = micro_configs(tmp_path / "timed", steps=6, checkpoint_interval=100, keep=2,
                          checkpoint_minutes=1e-12)  # fmt: skip
    run(*timed, progress=False)
    assert finalized_steps(tmp_path / "timed") == [5, 6]  # step 5: saved by the clock alone
    # negative control: by steps only, a run shorter than its interval saves its end alone
    run(*micro_configs(tmp_path / "steps", steps=6, checkpoint_interval=100), progress=False)
    assert finalized_steps(tmp_path / "steps") == [6]


def test_checkpoint_policy_may_change_on_resume(tmp_path):
    """How often and how many checkpoints are kept never changes the trajectory, so a run may
    resume under another policy (e.g. time-based saves added after a preemption)."""
    out = tmp_path / "run"
    run(*micro_configs(out, steps=5), progress=False)
    policy = {"keep": 2, "checkpoint_minutes": 30.0, "checkpoint_interval": 2}
    again = run(*micro_configs(out, steps=5, **policy), progress=False)
    assert again["resumed_from"] == 5
    with pytest.raises(ValueError, match="checkpoint_minutes has invalid value -1.0"):
        micro_configs(out, checkpoint_minutes=-1.0)
