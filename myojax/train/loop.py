"""The resumable training loop: ``run(train_cfg, model_cfg)``.

Rerunning on an existing run directory resumes from its last good checkpoint (model, optimizer,
data iterator); on CPU the continued run is bitwise identical to an uninterrupted one.
SIGTERM/SIGINT save a checkpoint and exit cleanly.

Sharded: ``TrainConfig.mesh`` (``data=A,fsdp=B``) lays all devices of all processes out as a
data x fsdp mesh. Multi-host: start the same command on every host (see
``myojax.sharding.maybe_initialize_distributed``); each process reads only its rows of every
batch, process 0 alone writes config, metrics and progress, all processes save the checkpoint
together, and a signal on any process stops all of them at the same step.
"""

from __future__ import annotations

import functools
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.loss import Batch
from myojax.model import GPT, count_params
from myojax.mup import lr_multipliers
from myojax.progress import Progress
from myojax.train.config import TrainConfig
from myojax.train.faults import fault_point
from myojax.train.monitor import StopFlag, stop_on_signals
from myojax.train.optim import learning_rate_schedule, make_optimizer
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
from myojax.train.step import (
    TrainState,
    compile_eval_losses,
    compile_train_step,
    evaluate,
    global_batch,
    init_state,
)


class NonFiniteLoss(RuntimeError):
    """A training step produced a NaN/Inf loss, gradient norm or parameters; it was not saved."""


def data_seeds(key: PRNGKeyArray) -> tuple[int, int]:
    """grain seeds for the training and the held-out stream, derived from a JAX key."""
    k_train, k_eval = jax.random.split(key)
    return tuple(int(jax.random.bits(k, dtype=jnp.uint32)) for k in (k_train, k_eval))


def run(
    train_cfg: TrainConfig,
    model_cfg: ModelConfig,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    restore_config: bool = False,
    stop: StopFlag | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in ``train_cfg.out`` on the mesh ``train_cfg.mesh``; returns
    the final metrics (on every process).

    Keys: ``step``, ``loss``, ``val_loss``, ``val_loss_per_position``, ``resumed_from``
    (step or None), ``preempted`` (stopped by a signal), ``wall_s``, ``params``, ``mesh``.
    ``restore_config``: rewrite a malformed ``config.json`` from the latest checkpoint.
    ``stop``: a flag a caller's signal handler already sets (signals before the run starts).
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
    stop = StopFlag() if stop is None else stop
    lock = RunLock(Path(train_cfg.out))
    with stop_on_signals(stop):
        try:
            return _run(train_cfg, model_cfg, overwrite, progress, restore_config, stop, lock)
        finally:
            lock.release()


def _run(
    train_cfg: TrainConfig,
    model_cfg: ModelConfig,
    overwrite: bool,
    progress: bool | None,
    restore_config: bool,
    stop: StopFlag,
    lock: RunLock,
) -> dict[str, Any]:
    t_start = time.perf_counter()
    shd.maybe_initialize_distributed()  # before anything touches a device
    mesh = shd.make_mesh(shd.MeshConfig.parse(train_cfg.mesh))
    shd.check_batch_size(train_cfg.batch_size, mesh)
    train_cfg.microbatch_size(mesh.size)  # the microbatches must split each device's rows
    main_process = shd.is_main_process()
    out = Path(train_cfg.out)
    data = pipeline.load_data(train_cfg.data)
    if data.vocab_size > model_cfg.vocab_size:
        raise ValueError(
            f"data {train_cfg.data!r} has vocab_size {data.vocab_size} but "
            f"ModelConfig.vocab_size is {model_cfg.vocab_size}"
        )
    pipeline.check_windows_fit(data, model_cfg.seq_len + 1)
    config = run_config(
        train_cfg, model_cfg, {"tokenizer": data.tokenizer, "vocab_size": data.vocab_size}
    )
    notes = prepare_run_dir_on_main(
        out, config, overwrite=overwrite, restore_config=restore_config, lock=lock
    )

    init_key, data_key = jax.random.split(jax.random.key(train_cfg.seed))
    train_seed, eval_seed = data_seeds(data_key)
    abstract_model = eqx.filter_eval_shape(GPT, model_cfg, key=init_key)
    optimizer = make_optimizer(train_cfg, abstract_model, lr_multipliers(model_cfg))
    schedule = learning_rate_schedule(train_cfg)
    init_fn = functools.partial(init_state, model_cfg, optimizer)
    shardings = shd.state_shardings(
        jax.eval_shape(init_fn, init_key), mesh, min_shard_size=train_cfg.min_shard_size
    )
    restore_target = shd.abstract_state(jax.eval_shape(init_fn, init_key), shardings)

    # Only this process's rows of every global batch, in the order its devices hold them.
    rows = shd.process_batch_indices(train_cfg.batch_size, shd.batch_sharding(mesh))
    window = dict(seq_len=model_cfg.seq_len, batch_size=train_cfg.batch_size, rows=rows)
    train_ds = pipeline.window_dataset(
        data.train, num_batches=train_cfg.steps, seed=train_seed, **window
    )
    train_iter = pipeline.batch_iterator(train_ds)
    eval_ds = pipeline.window_dataset(
        data.val, num_batches=train_cfg.eval_batches, seed=eval_seed, **window
    )
    eval_windows = [eval_ds[i] for i in range(len(eval_ds))]

    manager = ckpt.make_manager(
        out, keep=train_cfg.keep, save_interval_steps=train_cfg.checkpoint_interval
    )
    log = None
    try:
        had_checkpoints = bool(manager.all_steps())
        resumed = ckpt.restore_for_resume(
            manager,
            abstract_model=restore_target.model,
            abstract_opt_state=restore_target.opt_state,
            data_iterator=train_iter,
        )
        if resumed is None:
            # A failed restore may have moved the iterator: never pair fresh weights with it.
            train_iter = pipeline.batch_iterator(train_ds)
            if mesh.size == 1:
                # Op-by-op init, bitwise the values of single-device runs before meshes; a
                # jitted init fuses the scaling and may round differently (<= 1 ulp).
                state = jax.device_put(init_fn(init_key), shardings)
            else:
                state, _ = shd.create_sharded_state(
                    init_fn, init_key, mesh, min_shard_size=train_cfg.min_shard_size
                )
            start = 0
            if had_checkpoints and main_process:
                moved = set_aside(out / METRICS_FILE)
                notes.append(
                    f"no checkpoint in {ckpt.checkpoint_dir(out)} could be read (moved to "
                    f"{out / ckpt.QUARANTINE}); starting again from step 0"
                    + (f", previous metrics moved to {moved}" if moved else "")
                )
        else:
            start, model, opt_state = resumed
            step = jax.make_array_from_callback(
                (), shardings.step, lambda _: np.asarray(start, np.int32)
            )
            state = TrainState(step, model, opt_state)
        if main_process:
            write_run_config(out, config)  # the run has started: its config is now settled
        log = MetricsLog(out / METRICS_FILE, keep_until=start) if main_process else NoLog()
        bar = Progress(train_cfg.steps, start, progress, quiet=not main_process)
        for note in notes:
            bar.write(note)
        n_params = count_params(state.model)
        data_par, fsdp = shd.mesh_sizes(mesh)
        bar.write(
            f"{'resuming from step ' + str(start) if resumed else 'starting'}: "
            f"{n_params} params, mode {model_cfg.gradient_mode}, {data.description}, "
            f"mesh data={data_par},fsdp={fsdp} over {jax.process_count()} process(es), "
            f"run dir {out}"
        )
        fault_point("start")
        train_step_fn = compile_train_step(optimizer, mesh, shardings, train_cfg.microbatches)
        finite_fn = jax.jit(ckpt.all_finite, out_shardings=shd.replicated(mesh))

        def step_fn(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Array]]:
            state, metrics = train_step_fn(state, batch)
            # Queued before the next step donates the state: are the updated parameters finite?
            return state, {**metrics, "params_finite": finite_fn(state.model)}

        eval_fn = functools.partial(
            evaluate,
            losses_fn=compile_eval_losses(mesh, shardings.model),
            batch_fn=functools.partial(global_batch, mesh=mesh),
        )
        final = _loop(
            train_cfg,
            model_cfg,
            state,
            start,
            step_fn,
            functools.partial(global_batch, mesh=mesh),
            eval_fn,
            schedule,
            train_iter,
            eval_windows,
            manager,
            log,
            bar,
            config,
            stop,
        )
        if final["loss"] is None and isinstance(log, MetricsLog):
            _fill_from_log(final, log.kept)  # a finished run rerun: report what it logged
        bar.close()
    finally:
        manager.wait_until_finished()  # an async save in flight must land, even on errors
        manager.close()
        if log is not None:
            log.close()
    final.update(
        resumed_from=None if resumed is None else start,
        params=n_params,
        mesh=dict(mesh.shape),
        wall_s=time.perf_counter() - t_start,
    )
    return final


def _fill_from_log(final: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row.get("step") == final["step"] and "loss" in row:
            final["loss"] = row["loss"]
        if "val_loss" in row:
            final.update(
                val_loss=row["val_loss"], val_loss_per_position=row.get("val_loss_per_position")
            )


def _loop(
    train_cfg: TrainConfig,
    model_cfg: ModelConfig,
    state: TrainState,
    step: int,
    step_fn: Callable,
    batch_fn: Callable[[np.ndarray], Batch],
    eval_fn: Callable[[GPT, list[np.ndarray]], dict[str, Any]],
    schedule: optax.Schedule,
    train_iter: Iterator[np.ndarray],
    eval_windows: list[np.ndarray],
    manager: Any,
    log: MetricsLog | NoLog,
    bar: Progress,
    config: dict[str, Any],
    stop: StopFlag,
) -> dict[str, Any]:
    final: dict[str, Any] = {
        "step": step,
        "loss": None,
        "val_loss": None,
        "val_loss_per_position": None,
        "preempted": False,
    }
    tokens_per_step = train_cfg.batch_size * model_cfg.seq_len
    clock = {"t": time.perf_counter(), "step": step}
    pending: list[tuple[int, dict[str, Array]]] = []
    last_saved = first = step

    def drain() -> None:
        # Read back metrics one step late so the host never waits for the device in between.
        # Every save and evaluation drains first: no state is saved before its step is checked.
        while pending:
            s, m = pending.pop(0)
            loss, grad_norm, params_ok = jax.device_get(
                (m["loss"], m["grad_norm"], m["params_finite"])
            )
            loss, grad_norm = float(loss), float(grad_norm)
            if not (math.isfinite(loss) and math.isfinite(grad_norm) and params_ok):
                what = (
                    f"loss is {loss}"
                    if not math.isfinite(loss)
                    else f"gradient norm is {grad_norm} (loss {loss:.4f})"
                    if not math.isfinite(grad_norm)
                    else "parameters became non-finite"
                )
                latest = manager.latest_step()
                raise NonFiniteLoss(
                    f"{what} at step {s}; stopped without saving it. Last good checkpoint: "
                    f"{'none' if latest is None else 'step ' + str(latest)} in "
                    f"{ckpt.checkpoint_dir(train_cfg.out)} (every saved step is finite); "
                    "lower --lr or raise --warmup-steps, with --overwrite or another --out"
                )
            final.update(step=s, loss=loss)
            row = None
            if s % train_cfg.log_interval == 0 or s == train_cfg.steps:
                now = time.perf_counter()
                row = {
                    "step": s,
                    "loss": loss,
                    "lr": float(schedule(s - 1)),
                    "grad_norm": grad_norm,
                    "tokens_per_s": tokens_per_step * (s - clock["step"]) / (now - clock["t"]),
                }
                clock.update(t=now, step=s)
                log.write(row)
            if row is None:
                bar.update(s)
            else:
                bar.update(
                    s,
                    postfix={"loss": f"{loss:.4f}", "tok_s": f"{row['tokens_per_s']:.0f}"},
                    line=f"step {s} loss {loss:.4f} lr {row['lr']:.3g} "
                    f"grad_norm {grad_norm:.3g} tok/s {row['tokens_per_s']:.0f}",
                )

    def save(s: int, force: bool) -> None:
        nonlocal last_saved
        if s != last_saved and ckpt.save(
            manager,
            s,
            model=state.model,
            opt_state=state.opt_state,
            data_iterator=train_iter,
            config=config,
            force=force,
        ):
            last_saved = s
            fault_point("save", s)

    signum = 0
    while step < train_cfg.steps:
        # Before drawing the batch: the checkpointed iterator must not run ahead of the step.
        signum = stop.agreed()
        if signum:
            break
        try:
            windows = next(train_iter)
        except StopIteration:
            raise RuntimeError(
                f"the data iterator ran out at step {step} of {train_cfg.steps}: the "
                "checkpoint's iterator position does not belong to this run"
            ) from None
        state, metrics = step_fn(state, batch_fn(windows))
        step += 1
        fault_point("step", step)
        drain()
        pending.append((step, metrics))
        is_last = step == train_cfg.steps
        if is_last or step % train_cfg.eval_interval == 0:
            drain()
            row = {"step": step, **eval_fn(state.model, eval_windows)}
            fault_point("eval", step)
            log.write(row)
            final.update(
                val_loss=row["val_loss"], val_loss_per_position=row["val_loss_per_position"]
            )
            bar.write(f"step {step} val_loss {row['val_loss']:.4f}")
        if is_last or manager.should_save(step):
            drain()
            save(step, force=is_last)
    drain()
    if signum:
        save(step, force=True)
        manager.wait_until_finished()
        final["preempted"] = True
        bar.write(
            f"received {signal.Signals(signum).name} at step {step}: "
            + ("checkpoint saved" if step != first else "no new step to save")
            + ", exiting; rerun the same command to resume"
        )
    return final
