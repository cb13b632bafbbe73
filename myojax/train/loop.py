"""The resumable training loop: ``run(train_cfg, model_cfg)``.

Rerunning on an existing run directory resumes from its last good checkpoint (model, optimizer,
data iterator); on CPU the continued run is bitwise identical to an uninterrupted one.
SIGTERM/SIGINT save a checkpoint and exit cleanly. Checkpoints are saved every
``checkpoint_interval`` steps and, with ``checkpoint_minutes``, also by the clock.

Sharded: ``TrainConfig.mesh`` (``data=A,fsdp=B``) lays all devices of all processes out as a
data x fsdp mesh. Multi-host: start the same command on every host (see
``myojax.sharding.maybe_initialize_distributed``); each process reads only its rows of every
batch, process 0 alone writes config, metrics and progress, all processes save the checkpoint
together, and a signal on any process stops all of them at the same step.

A caller may hand ``run`` held-out windows of its own (``heldout``): the final model is
evaluated on them once, on the run's mesh, and their per-token losses are returned, also when
the run had already finished before this call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from jaxtyping import Array, Int

from myojax import checkpoint as ckpt
from myojax import evaluation
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.loss import Batch
from myojax.model import count_params
from myojax.progress import Progress
from myojax.train.config import TrainConfig
from myojax.train.faults import fault_point
from myojax.train.monitor import StopFlag, clock_save_due, stop_on_signals
from myojax.train.rundir import (
    METRICS_FILE,
    MetricsLog,
    NoLog,
    RunLock,
    prepare_run_dir_on_main,
    run_config,
    set_aside,
    write_run_config,
)
from myojax.train.setup import (
    Layout,
    Start,
    compile_eval_fn,
    compile_step_fn,
    plan_layout,
    restore_or_init,
    run_data,
    run_mesh,
)
from myojax.train.step import TrainState
from myojax.train.track import TrackedLog, TrackerSpec, open_tracker

# Caller-given held-out windows: split name -> whole batches of windows [B, T+1].
Heldout = Mapping[str, Sequence[Int[np.ndarray, "B T1"]]]


class NonFiniteLoss(RuntimeError):
    """A training step produced a NaN/Inf loss, gradient norm or parameters; it was not saved."""


@dataclasses.dataclass(frozen=True)
class Options:
    """How ``run`` was asked to treat the run directory and its caller."""

    overwrite: bool
    progress: bool | None
    restore_config: bool
    stop: StopFlag
    heldout: Heldout | None
    tracker: TrackerSpec


def run(
    train_cfg: TrainConfig,
    model_cfg: ModelConfig,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    restore_config: bool = False,
    stop: StopFlag | None = None,
    heldout: Heldout | None = None,
    tracker: TrackerSpec | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in ``train_cfg.out`` on the mesh ``train_cfg.mesh``; returns
    the final metrics (on every process).

    Keys: ``step``, ``loss``, ``val_loss``, ``val_loss_per_position``, ``resumed_from``
    (step or None), ``preempted`` (stopped by a signal), ``wall_s``, ``params``, ``mesh``,
    ``heldout_losses`` (per split of ``heldout``, the final model's per-token losses
    ``[N, T]``; None without ``heldout`` or when preempted).
    ``restore_config``: rewrite a malformed ``config.json`` from the latest checkpoint.
    ``stop``: a flag a caller's signal handler already sets (signals before the run starts).
    ``heldout``: split name -> whole batches of windows ``[B, T+1]`` (B divisible over the mesh).
    ``tracker``: where the metrics rows also go (``myojax.train.track``; default: TensorBoard
    when its writer is installed), rebuilt from the kept rows on every start.
    """
    if "float64" in (model_cfg.param_dtype, model_cfg.compute_dtype) and not jax.config.read(
        "jax_enable_x64"
    ):
        raise ValueError(
            "float64 parameters or compute need JAX's 64-bit mode, which is off: set "
            "JAX_ENABLE_X64=1 (the CLI does this itself for float64)"
        )
    # Before our handlers: jax.distributed installs a SIGTERM preemption notifier of its own,
    # which would otherwise replace them (a multi-host run would then ignore SIGTERM).
    shd.maybe_initialize_distributed()
    options = Options(
        overwrite,
        progress,
        restore_config,
        StopFlag() if stop is None else stop,
        heldout,
        TrackerSpec() if tracker is None else tracker,
    )
    lock = RunLock(Path(train_cfg.out))
    with stop_on_signals(options.stop):
        try:
            return _run(train_cfg, model_cfg, options, lock)
        finally:
            lock.release()


@dataclasses.dataclass(frozen=True)
class Run:
    """The trainer's run, as the loop sees it: everything fixed for the run's life. What changes
    step to step is the ``TrainState`` and the loop's ``_Cursor``."""

    train_cfg: TrainConfig
    model_cfg: ModelConfig
    config: dict[str, Any]  # the run's config.json, saved with every checkpoint
    step_fn: Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]
    batch_fn: Callable[[np.ndarray], Batch]
    eval_fn: Callable[[Any, list[np.ndarray]], dict[str, Any]]
    schedule: optax.Schedule
    train_iter: Iterator[np.ndarray]
    eval_windows: list[np.ndarray]
    manager: Any  # orbax CheckpointManager
    log: TrackedLog | NoLog
    bar: Progress
    stop: StopFlag


def _run(
    train_cfg: TrainConfig, model_cfg: ModelConfig, options: Options, lock: RunLock
) -> dict[str, Any]:
    t_start = time.perf_counter()
    shd.maybe_initialize_distributed()  # before anything touches a device
    mesh, data, config, notes = _prepare(train_cfg, model_cfg, options, lock)
    out = Path(train_cfg.out)
    layout = plan_layout(train_cfg, model_cfg, mesh, data)
    manager = ckpt.make_manager(
        out, keep=train_cfg.keep, save_interval_steps=train_cfg.checkpoint_interval
    )
    log: TrackedLog | NoLog = NoLog()
    try:
        start = restore_or_init(layout, mesh, manager, train_cfg.min_shard_size)
        notes += _restart_notes(out, start)  # before the metrics log reopens
        if shd.is_main_process():
            write_run_config(out, config)  # the run has started: its config is now settled
            metrics = MetricsLog(out / METRICS_FILE, keep_until=start.step)
            log = TrackedLog(metrics, open_tracker(out, config, options.tracker))
        bar = Progress(train_cfg.steps, start.step, options.progress, quiet=isinstance(log, NoLog))
        for note in notes:
            bar.write(note)
        n_params = count_params(start.state.model)
        bar.write(_start_line(start, n_params, model_cfg, data.description, mesh, out))
        fault_point("start")
        batch_fn = functools.partial(shd.global_batch, mesh=mesh)
        run_ = Run(
            train_cfg=train_cfg,
            model_cfg=model_cfg,
            config=config,
            step_fn=compile_step_fn(train_cfg, mesh, layout),
            batch_fn=batch_fn,
            eval_fn=compile_eval_fn(mesh, layout, batch_fn),
            schedule=layout.schedule,
            train_iter=start.train_iter,
            eval_windows=layout.eval_windows,
            manager=manager,
            log=log,
            bar=bar,
            stop=options.stop,
        )
        state, final = _loop(run_, start.state, start.step)
        _finish(final, state.model, log, options, mesh, layout)
        bar.close()
    finally:
        manager.wait_until_finished()  # an async save in flight must land, even on errors
        manager.close()
        log.close()
    final.update(
        resumed_from=start.step if start.resumed else None,
        params=n_params,
        mesh=dict(mesh.shape),
        wall_s=time.perf_counter() - t_start,
    )
    return final


def _prepare(
    train_cfg: TrainConfig, model_cfg: ModelConfig, options: Options, lock: RunLock
) -> tuple[shd.Mesh, pipeline.TokenData, dict[str, Any], list[str]]:
    """The mesh and the data, checked; the run's config; the run directory locked and checked
    against it (notes: what was found there)."""
    mesh = run_mesh(train_cfg)
    data = run_data(train_cfg, model_cfg)
    config = run_config(
        train_cfg,
        model_cfg,
        {"tokenizer": data.tokenizer, "vocab_size": data.vocab_size, **data.corpus},
    )
    notes = prepare_run_dir_on_main(
        Path(train_cfg.out),
        config,
        overwrite=options.overwrite,
        restore_config=options.restore_config,
        lock=lock,
    )
    return mesh, data, config, notes


def _finish(
    final: dict[str, Any],
    model: Any,
    log: TrackedLog | NoLog,
    options: Options,
    mesh: shd.Mesh,
    layout: Layout,
) -> None:
    """A finished run rerun reports what it logged; the caller's held-out windows (if any)
    go through the final model, unless a signal stopped the run."""
    if final["loss"] is None and isinstance(log, TrackedLog):
        _fill_from_log(final, log.kept)
    final["heldout_losses"] = (
        None
        if options.heldout is None or final["preempted"]
        else _heldout_losses(model, options.heldout, mesh, layout.shardings.model)
    )


def _restart_notes(out: Path, start: Start) -> list[str]:
    """What a restart from step 0 over unreadable checkpoints did to the old metrics."""
    if not (start.unreadable and shd.is_main_process()):
        return []
    moved = set_aside(out / METRICS_FILE)
    return [
        f"no checkpoint in {ckpt.checkpoint_dir(out)} could be read (moved to "
        f"{out / ckpt.QUARANTINE}); starting again from step 0"
        + (f", previous metrics moved to {moved}" if moved else "")
    ]


def _start_line(
    start: Start, n_params: int, model_cfg: ModelConfig, data: str, mesh: shd.Mesh, out: Path
) -> str:
    data_par, fsdp = shd.mesh_sizes(mesh)
    return (
        f"{'resuming from step ' + str(start.step) if start.resumed else 'starting'}: "
        f"{n_params} params, mode {model_cfg.gradient_mode}, {data}, "
        f"mesh data={data_par},fsdp={fsdp} over {jax.process_count()} process(es), "
        f"run dir {out}"
    )


def _heldout_losses(
    model: Any, heldout: Heldout, mesh: shd.Mesh, model_shardings: Any
) -> dict[str, np.ndarray]:
    """The caller's held-out windows through the final model on the run's mesh, per split."""
    losses_fn = evaluation.compile_losses("token", mesh, model_shardings)
    batch_fn = evaluation.mesh_batch_fn(mesh)
    return {
        split: evaluation.token_losses(model, windows, losses_fn=losses_fn, batch_fn=batch_fn)
        for split, windows in heldout.items()
    }


def _fill_from_log(final: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row.get("step") == final["step"] and "loss" in row:
            final["loss"] = row["loss"]
        if "val_loss" in row:
            final.update(
                val_loss=row["val_loss"], val_loss_per_position=row.get("val_loss_per_position")
            )


@dataclasses.dataclass
class _Cursor:
    """Where the loop is: the last step taken and saved, metrics not yet read back from the
    device, the throughput clock, and the final metrics so far."""

    step: int
    last_saved: int
    clock: tuple[float, int]  # (time, step) of the last logged row
    final: dict[str, Any]
    saved_at: float  # time.monotonic() of the last save (or of the start)
    pending: list[tuple[int, dict[str, Array]]] = dataclasses.field(default_factory=list)


def _loop(run: Run, state: TrainState, start: int) -> tuple[TrainState, dict[str, Any]]:
    """Steps from ``start`` to ``train_cfg.steps`` (or until a signal): train, log, evaluate,
    save. Returns the last state and the final metrics."""
    final = {
        "step": start,
        "loss": None,
        "val_loss": None,
        "val_loss_per_position": None,
        "preempted": False,
    }
    cur = _Cursor(start, start, (time.perf_counter(), start), final, time.monotonic())
    steps = run.train_cfg.steps
    signum = 0
    while cur.step < steps:
        # Before drawing the batch: the checkpointed iterator must not run ahead of the step.
        due = clock_save_due(run.train_cfg.checkpoint_minutes, cur.saved_at)
        signum, save_due = run.stop.agreed(due)  # the same on every process
        if signum:
            break
        state, metrics = run.step_fn(state, run.batch_fn(_next_windows(run, cur.step)))
        cur.step += 1
        fault_point("step", cur.step)
        _drain(run, cur)
        cur.pending.append((cur.step, metrics))
        is_last = cur.step == steps
        if is_last or cur.step % run.train_cfg.eval_interval == 0:
            _drain(run, cur)
            _evaluate(run, cur, state)
        # The interval alone: orbax would also save the first step of a run with no checkpoint.
        if is_last or save_due or cur.step % run.train_cfg.checkpoint_interval == 0:
            _drain(run, cur)
            _save(run, cur, state, force=is_last or save_due)
    _drain(run, cur)
    if signum:
        _stop_on_signal(run, cur, state, signum, first=start)
    return state, cur.final


def _next_windows(run: Run, step: int) -> np.ndarray:
    try:
        return next(run.train_iter)
    except StopIteration:
        raise RuntimeError(
            f"the data iterator ran out at step {step} of {run.train_cfg.steps}: the "
            "checkpoint's iterator position does not belong to this run"
        ) from None


def _drain(run: Run, cur: _Cursor) -> None:
    """Read back metrics one step late so the host never waits for the device in between.
    Every save and evaluation drains first: no state is saved before its step is checked."""
    while cur.pending:
        s, m = cur.pending.pop(0)
        loss, grad_norm, params_ok = jax.device_get((m["loss"], m["grad_norm"], m["params_finite"]))
        loss, grad_norm = float(loss), float(grad_norm)
        if not (math.isfinite(loss) and math.isfinite(grad_norm) and params_ok):
            raise _non_finite(run, s, loss, grad_norm)
        cur.final.update(step=s, loss=loss)
        _log_step(run, cur, s, loss, grad_norm)


def _non_finite(run: Run, step: int, loss: float, grad_norm: float) -> NonFiniteLoss:
    what = (
        f"loss is {loss}"
        if not math.isfinite(loss)
        else f"gradient norm is {grad_norm} (loss {loss:.4f})"
        if not math.isfinite(grad_norm)
        else "parameters became non-finite"
    )
    latest = run.manager.latest_step()
    return NonFiniteLoss(
        f"{what} at step {step}; stopped without saving it. Last good checkpoint: "
        f"{'none' if latest is None else 'step ' + str(latest)} in "
        f"{ckpt.checkpoint_dir(run.train_cfg.out)} (every saved step is finite); "
        "lower --lr or raise --warmup-steps, with --overwrite or another --out"
    )


def _log_step(run: Run, cur: _Cursor, step: int, loss: float, grad_norm: float) -> None:
    """A metrics row every ``log_interval`` steps and at the end; the progress bar always."""
    if not (step % run.train_cfg.log_interval == 0 or step == run.train_cfg.steps):
        run.bar.update(step)
        return
    now = time.perf_counter()
    t, s0 = cur.clock
    tokens_per_step = run.train_cfg.batch_size * run.model_cfg.seq_len
    row = {
        "step": step,
        "loss": loss,
        "lr": float(run.schedule(step - 1)),
        "grad_norm": grad_norm,
        "tokens_per_s": tokens_per_step * (step - s0) / (now - t),
    }
    cur.clock = (now, step)
    run.log.write(row)
    run.bar.update(
        step,
        postfix={"loss": f"{loss:.4f}", "tok_s": f"{row['tokens_per_s']:.0f}"},
        line=f"step {step} loss {loss:.4f} lr {row['lr']:.3g} "
        f"grad_norm {grad_norm:.3g} tok/s {row['tokens_per_s']:.0f}",
    )


def _evaluate(run: Run, cur: _Cursor, state: TrainState) -> None:
    row = {"step": cur.step, **run.eval_fn(state.model, run.eval_windows)}
    fault_point("eval", cur.step)
    run.log.write(row)
    cur.final.update(val_loss=row["val_loss"], val_loss_per_position=row["val_loss_per_position"])
    run.bar.write(f"step {cur.step} val_loss {row['val_loss']:.4f}")


def _save(run: Run, cur: _Cursor, state: TrainState, *, force: bool) -> None:
    if cur.step != cur.last_saved and ckpt.save(
        run.manager,
        cur.step,
        model=state.model,
        opt_state=state.opt_state,
        data_iterator=run.train_iter,
        config=run.config,
        force=force,
    ):
        cur.last_saved, cur.saved_at = cur.step, time.monotonic()
        fault_point("save", cur.step)


def _stop_on_signal(run: Run, cur: _Cursor, state: TrainState, signum: int, first: int) -> None:
    _save(run, cur, state, force=True)
    run.manager.wait_until_finished()
    cur.final["preempted"] = True
    run.bar.write(
        f"received {signal.Signals(signum).name} at step {cur.step}: "
        + ("checkpoint saved" if cur.step != first else "no new step to save")
        + ", exiting; rerun the same command to resume"
    )
