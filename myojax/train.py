"""Single-run training: configs, a pure jitted train step, evaluation, and the resumable loop.

    python -m myojax.train --preset tiny --out runs/tiny --mode myopic

Rerunning the same command on an existing run directory resumes from its last good checkpoint
(model, optimizer, data iterator); on CPU the continued run is bitwise identical to an
uninterrupted one. SIGTERM/SIGINT save a checkpoint and exit cleanly.

Sharded: ``--mesh data=A,fsdp=B`` lays all devices of all processes out as a data x fsdp mesh
(default ``data=-1``: plain data parallelism). Multi-host: start the same command on every
host (see ``myojax.sharding.maybe_initialize_distributed``); each process reads only its rows of
every batch, process 0 alone writes config, metrics and progress, all processes save the
checkpoint together, and a signal on any process stops all of them at the same step.

Reuse from Python: ``init_state``, ``train_step`` (pure), ``compile_train_step`` (the one jit,
where mesh shardings go), ``evaluate``, and ``run(train_cfg, model_cfg)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.data import pipeline
from myojax.loss import Batch, loss_and_grad, per_position_loss
from myojax.model import GPT, count_params
from myojax.optim import learning_rate_schedule, make_optimizer

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything about a run except the model. Validated on construction."""

    steps: int = _field(300, "optimizer steps")
    batch_size: int = _field(32, "global batch size in sequences (split across processes)")
    lr: float = _field(3e-3, "peak learning rate")
    warmup_steps: int = _field(30, "linear warmup from 0 to lr")
    min_lr_ratio: float = _field(0.1, "cosine decay ends at lr * min_lr_ratio at the last step")
    weight_decay: float = _field(0.1, "AdamW decoupled weight decay (hidden matrices, readout)")
    grad_clip: float = _field(1.0, "clip the global gradient norm to this; 0 disables")
    beta1: float = _field(0.9, "Adam beta1")
    beta2: float = _field(0.95, "Adam beta2")
    eps: float = _field(1e-8, "Adam epsilon")
    log_interval: int = _field(10, "write a metrics row every this many steps")
    eval_interval: int = _field(
        100, "evaluate on held-out data every this many steps (and at the end)"
    )
    eval_batches: int = _field(8, "held-out batches per evaluation (the same windows each time)")
    checkpoint_interval: int = _field(
        100, "save a checkpoint every this many steps (and at the end)"
    )
    keep: int = _field(3, "keep the last this many checkpoints")
    seed: int = _field(0, "root PRNG seed (init and data)")
    data: str = _field("shakespeare", "'shakespeare' (embedded, bytes) or a token-shard directory")
    out: str = _field("runs/run", "run directory (config, metrics, checkpoints)")
    mesh: str = _field(
        "data=-1",
        "device mesh over all devices of all processes, e.g. "
        "'data=2,fsdp=4'; one axis may be -1 (fill)",
    )
    min_shard_size: int = _field(
        shd.DEFAULT_MIN_SHARD_SIZE, "FSDP: state leaves with fewer elements stay replicated"
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v, t = getattr(self, f.name), hints[f.name]
            if t is float and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
            elif not isinstance(v, t) or isinstance(v, bool):
                raise ValueError(f"TrainConfig.{f.name} must be {t.__name__}, got {v!r}")
        for name in (
            "steps",
            "batch_size",
            "log_interval",
            "eval_interval",
            "eval_batches",
            "checkpoint_interval",
            "keep",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        try:
            shd.MeshConfig.parse(self.mesh)
        except ValueError as e:
            raise ValueError(f"TrainConfig.mesh: {e}") from None
        if self.min_shard_size < 0:
            raise ValueError(f"TrainConfig.min_shard_size must be >= 0, got {self.min_shard_size}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"TrainConfig.warmup_steps must be in [0, steps={self.steps}), "
                f"got {self.warmup_steps}"
            )
        checks = {
            "lr": 0 < self.lr < math.inf,
            "min_lr_ratio": 0 <= self.min_lr_ratio <= 1,
            "weight_decay": 0 <= self.weight_decay < math.inf,
            "grad_clip": 0 <= self.grad_clip < math.inf,
            "beta1": 0 <= self.beta1 < 1,
            "beta2": 0 <= self.beta2 < 1,
            "eps": 0 < self.eps < math.inf,
            "seed": self.seed >= 0,
            "data": bool(self.data),
            "out": bool(self.out),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name} has invalid value {getattr(self, name)!r}")

    def replace(self, **changes: object) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


_TINY = ModelConfig(vocab_size=256, seq_len=64, d_model=64, n_layers=4, n_heads=4)
_SMALL = ModelConfig(vocab_size=256, seq_len=128, d_model=128, n_layers=6, n_heads=4)
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    # ~0.22M parameters: a few ms per step on a laptop CPU; the test workhorse.
    "tiny": (
        _TINY,
        TrainConfig(
            steps=300,
            batch_size=32,
            lr=3e-3,
            warmup_steps=30,
            eval_interval=100,
            checkpoint_interval=100,
            out="runs/tiny",
        ),
    ),
    # ~1.2M parameters.
    "small": (
        _SMALL,
        TrainConfig(
            steps=2000,
            batch_size=32,
            lr=2e-3,
            warmup_steps=100,
            eval_interval=250,
            checkpoint_interval=250,
            out="runs/small",
        ),
    ),
}


def lr_multipliers_for(model_config: ModelConfig) -> Mapping[str, float] | None:
    """Per-label learning-rate multipliers (see ``myojax.optim.LABELS``); None = all 1.

    The muP hook: muP's width-dependent multipliers (hidden lr / m); None under SP.
    """
    from myojax.mup import lr_multipliers

    return lr_multipliers(model_config)


class TrainState(eqx.Module):
    """Everything that changes during training (the optimizer itself is static)."""

    step: Int[Array, ""]
    model: GPT
    opt_state: optax.OptState


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (different config, malformed files)."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or Inf."""


def init_state(
    model_cfg: ModelConfig, optimizer: optax.GradientTransformation, key: PRNGKeyArray
) -> TrainState:
    model = GPT(model_cfg, key=key)
    return TrainState(jnp.zeros((), jnp.int32), model, optimizer.init(model))


def train_step(
    state: TrainState, batch: Batch, optimizer: optax.GradientTransformation
) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
    """One optimizer step on ``batch``; pure. Metrics: the batch loss before the update and the
    global gradient norm before clipping."""
    loss, grads = loss_and_grad(state.model, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.model)
    model = eqx.apply_updates(state.model, updates)
    return TrainState(state.step + 1, model, opt_state), {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
    }


def compile_train_step(
    optimizer: optax.GradientTransformation,
    mesh: shd.Mesh | None = None,
    state_shardings: TrainState | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """``train_step`` jitted, with the state's buffers donated to the new state.

    With a ``mesh`` and the state's ``NamedSharding``s: explicit in/out shardings, the state
    keeping its layout across steps, the batch split over (data, fsdp), metrics replicated.
    """
    step = functools.partial(train_step, optimizer=optimizer)
    if mesh is None:
        return jax.jit(step, donate_argnums=0)
    if state_shardings is None:
        raise ValueError("compile_train_step: a mesh needs the state's shardings")
    return shd.shard_train_step(step, mesh, state_shardings, shd.batch_sharding(mesh))


def _eval_losses(model: GPT, batch: Batch) -> Float[Array, " T"]:
    losses_BxT = jax.vmap(per_position_loss, in_axes=(None, 0, 0))(
        model, batch.inputs, batch.targets
    )
    return jnp.mean(losses_BxT, axis=0)


eval_losses = jax.jit(_eval_losses)
eval_losses.__doc__ = "Held-out loss per position, averaged over the batch."


def compile_eval_losses(
    mesh: shd.Mesh, model_shardings: GPT
) -> Callable[[GPT, Batch], Float[Array, " T"]]:
    """``eval_losses`` for a sharded model and batch; the result is replicated on every device."""
    return jax.jit(
        _eval_losses,
        in_shardings=(model_shardings, shd.batch_sharding(mesh)),
        out_shardings=shd.replicated(mesh),
    )


def evaluate(
    model: GPT,
    windows: Sequence[np.ndarray],
    *,
    losses_fn: Callable[[GPT, Batch], Array] = eval_losses,
    batch_fn: Callable[[np.ndarray], Batch] | None = None,
) -> dict[str, Any]:
    """Mean and per-position held-out loss over batches of windows ``(B, T+1)``.

    ``batch_fn`` turns host windows into a device batch (default ``to_batch``; sharded runs
    pass ``global_batch`` over this process's rows).
    """
    batch_fn = to_batch if batch_fn is None else batch_fn
    per_position_T = sum(losses_fn(model, batch_fn(w)) for w in windows) / len(windows)
    per_position = [float(x) for x in jax.device_get(per_position_T)]
    return {"val_loss": float(np.mean(per_position)), "val_loss_per_position": per_position}


def to_batch(windows: Int[np.ndarray, "B T1"]) -> Batch:
    """Host windows -> device batch on the default device (one process, no mesh)."""
    return Batch.from_windows(jnp.asarray(windows))


def global_batch(local_windows: Int[np.ndarray, "b T1"], mesh: shd.Mesh) -> Batch:
    """This process's rows -> the global batch, split over (data, fsdp); no cross-host copy."""
    return shd.host_local_batch_to_global(Batch.from_windows(np.asarray(local_windows)), mesh)


def data_seeds(key: PRNGKeyArray) -> tuple[int, int]:
    """grain seeds for the training and the held-out stream, derived from a JAX key."""
    k_train, k_eval = jax.random.split(key)
    return tuple(int(jax.random.bits(k, dtype=jnp.uint32)) for k in (k_train, k_eval))


def run_config(train_cfg: TrainConfig, model_cfg: ModelConfig) -> dict[str, Any]:
    return {"train": train_cfg.to_dict(), "model": model_cfg.to_dict()}


# Where the run lives and how it is laid out on devices: free to change on resume (a checkpoint
# restores onto any mesh), unlike everything else, which defines the experiment.
LAYOUT_FIELDS = ("out", "mesh", "min_shard_size")


def _config_diff(old: dict, new: dict) -> list[str]:
    diffs = []
    for section in ("train", "model"):
        a, b = old.get(section, {}), new.get(section, {})
        for k in sorted(set(a) | set(b)):
            if not (section == "train" and k in LAYOUT_FIELDS) and a.get(k) != b.get(k):
                diffs.append(f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return diffs


def _discard_run(out: Path) -> None:
    for name in (ckpt.CHECKPOINTS, ckpt.QUARANTINE):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (METRICS_FILE, CONFIG_FILE):
        (out / name).unlink(missing_ok=True)


def prepare_run_dir(out: Path, config: dict[str, Any], *, overwrite: bool) -> None:
    """Create ``out`` or check that it holds this same config; with ``overwrite``, discard it."""
    path = out / CONFIG_FILE
    if overwrite:
        _discard_run(out)
    elif path.exists():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise RunDirError(
                f"{path} is malformed ({e}); pass --overwrite to discard the run "
                "directory or choose another --out"
            ) from None
        diffs = _config_diff(old, config)
        if diffs:
            raise RunDirError(
                f"run directory {out} holds a different config ({'; '.join(diffs)}); "
                "choose another --out or pass --overwrite to discard it"
            )
    elif (out / ckpt.CHECKPOINTS).exists():
        raise RunDirError(
            f"{out} has checkpoints but no {CONFIG_FILE}; pass --overwrite to "
            "discard them or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=1) + "\n")
    os.replace(tmp, path)


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows after the restored step are dropped so the
    file reads as if the run had never been interrupted."""

    def __init__(self, path: Path, *, keep_until: int):
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by kill -9
                if row.get("step", math.inf) <= keep_until:
                    rows.append(line)
        path.write_text("".join(r + "\n" for r in rows))
        self._file = path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _NoLog:
    """What processes other than 0 write: nothing."""

    def write(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def _gather(value: int) -> np.ndarray:
    """``value`` from every process, in process order (a host-level all-gather of one int;
    no collective at all in a single process)."""
    if jax.process_count() == 1:
        return np.array([value])
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.int32(value))).reshape(-1)


def _prepare_run_dir_on_main(out: Path, config: dict[str, Any], *, overwrite: bool) -> None:
    """Process 0 checks and writes the run directory; the others learn its verdict (and wait
    for it), so a refusal stops every process instead of leaving some in a collective."""
    error: Exception | None = None
    if shd.is_main_process():
        try:
            prepare_run_dir(out, config, overwrite=overwrite)
        except Exception as e:  # any failure (OSError too) must reach the others first
            error = e
    if _gather(error is None).min() == 0:
        if error is not None:
            raise error
        raise RunDirError(f"process 0 refused the run directory {out}; see its log")


class _Stop:
    signum: int | None = None

    def agreed(self) -> int:
        """The signal to stop on if any process received one (0: none); the same on every
        process, which therefore all save and exit at the same step boundary."""
        return int(_gather(self.signum or 0).max())


@contextmanager
def stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGTERM/SIGINT only set ``stop.signum``; the caller saves and exits at its next boundary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        stop.signum = signum

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class _Progress:
    """tqdm bar on a terminal; plain log lines otherwise; silent on processes other than 0."""

    def __init__(self, total: int, initial: int, enabled: bool | None, *, quiet: bool = False):
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.quiet = quiet
        self.bar = None
        if quiet:
            return
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, step: int, row: dict[str, Any] | None) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if row is not None:
                self.bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}")
        elif row is not None:
            print(
                f"step {step} loss {row['loss']:.4f} lr {row['lr']:.3g} "
                f"grad_norm {row['grad_norm']:.3g} tok/s {row['tokens_per_s']:.0f}",
                flush=True,
            )

    def write(self, message: str) -> None:
        if self.quiet:
            return
        (self.bar.write if self.bar is not None else functools.partial(print, flush=True))(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(
    train_cfg: TrainConfig,
    model_cfg: ModelConfig,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in ``train_cfg.out`` on the mesh ``train_cfg.mesh``; returns
    the final metrics (on every process).

    Keys: ``step``, ``loss``, ``val_loss``, ``val_loss_per_position``, ``resumed_from``
    (step or None), ``preempted`` (stopped by a signal), ``wall_s``, ``params``, ``mesh``.
    """
    t_start = time.perf_counter()
    shd.maybe_initialize_distributed()  # before anything touches a device
    mesh = shd.make_mesh(shd.MeshConfig.parse(train_cfg.mesh))
    shd.check_batch_size(train_cfg.batch_size, mesh)
    main_process = shd.is_main_process()
    out = Path(train_cfg.out)
    data = pipeline.load_data(train_cfg.data)
    if data.vocab_size > model_cfg.vocab_size:
        raise ValueError(
            f"data {train_cfg.data!r} has vocab_size {data.vocab_size} but "
            f"ModelConfig.vocab_size is {model_cfg.vocab_size}"
        )
    config = run_config(train_cfg, model_cfg)
    _prepare_run_dir_on_main(out, config, overwrite=overwrite)

    init_key, data_key = jax.random.split(jax.random.key(train_cfg.seed))
    train_seed, eval_seed = data_seeds(data_key)
    abstract_model = eqx.filter_eval_shape(GPT, model_cfg, key=init_key)
    optimizer = make_optimizer(train_cfg, abstract_model, lr_multipliers_for(model_cfg))
    schedule = learning_rate_schedule(train_cfg)
    init_fn = functools.partial(init_state, model_cfg, optimizer)
    shardings = shd.state_shardings(
        jax.eval_shape(init_fn, init_key), mesh, min_shard_size=train_cfg.min_shard_size
    )
    restore_target = shd.abstract_state(jax.eval_shape(init_fn, init_key), shardings)

    # Only this process's rows of every global batch, in the order its devices hold them.
    rows = shd.process_batch_indices(train_cfg.batch_size, shd.batch_sharding(mesh))
    window = dict(seq_len=model_cfg.seq_len, batch_size=train_cfg.batch_size, rows=rows)
    train_iter = pipeline.batch_iterator(
        pipeline.window_dataset(data.train, num_batches=train_cfg.steps, seed=train_seed, **window)
    )
    eval_ds = pipeline.window_dataset(
        data.val, num_batches=train_cfg.eval_batches, seed=eval_seed, **window
    )
    eval_windows = [eval_ds[i] for i in range(len(eval_ds))]

    manager = ckpt.make_manager(
        out, keep=train_cfg.keep, save_interval_steps=train_cfg.checkpoint_interval
    )
    log = None
    try:
        resumed = ckpt.restore_for_resume(
            manager,
            abstract_model=restore_target.model,
            abstract_opt_state=restore_target.opt_state,
            data_iterator=train_iter,
        )
        if resumed is None:
            if mesh.size == 1:
                # Op-by-op init, bitwise the values of single-device runs before meshes; a
                # jitted init fuses the scaling and may round differently (<= 1 ulp).
                state = jax.device_put(init_fn(init_key), shardings)
            else:
                state, _ = shd.create_sharded_state(
                    init_fn, init_key, mesh, min_shard_size=train_cfg.min_shard_size
                )
            start = 0
        else:
            start, model, opt_state = resumed
            step = jax.make_array_from_callback(
                (), shardings.step, lambda _: np.asarray(start, np.int32)
            )
            state = TrainState(step, model, opt_state)
        log = MetricsLog(out / METRICS_FILE, keep_until=start) if main_process else _NoLog()
        bar = _Progress(train_cfg.steps, start, progress, quiet=not main_process)
        n_params = count_params(state.model)
        data_par, fsdp = shd.mesh_sizes(mesh)
        bar.write(
            f"{'resuming from step ' + str(start) if resumed else 'starting'}: "
            f"{n_params} params, mode {model_cfg.gradient_mode}, {data.description}, "
            f"mesh data={data_par},fsdp={fsdp} over {jax.process_count()} process(es), "
            f"run dir {out}"
        )
        step_fn = compile_train_step(optimizer, mesh, shardings)
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
        )
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
    log: MetricsLog | _NoLog,
    bar: _Progress,
    config: dict[str, Any],
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
    last_saved = step

    def drain() -> None:
        # Read back metrics one step late so the host never waits for the device in between.
        while pending:
            s, m = pending.pop(0)
            loss, grad_norm = (float(x) for x in jax.device_get((m["loss"], m["grad_norm"])))
            if not math.isfinite(loss):
                latest = manager.latest_step()
                raise NonFiniteLoss(
                    f"loss is {loss} at step {s}; stopped without saving. Last good checkpoint: "
                    f"{'none' if latest is None else 'step ' + str(latest)} in "
                    f"{ckpt.checkpoint_dir(train_cfg.out)}"
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
            bar.update(s, row)

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

    stop = _Stop()
    signum = 0
    with stop_on_signals(stop):
        while step < train_cfg.steps:
            # Before drawing the batch: the checkpointed iterator must not run ahead of the step.
            signum = stop.agreed()
            if signum:
                break
            state, metrics = step_fn(state, batch_fn(next(train_iter)))
            step += 1
            drain()
            pending.append((step, metrics))
            is_last = step == train_cfg.steps
            if is_last or step % train_cfg.eval_interval == 0:
                drain()
                row = {"step": step, **eval_fn(state.model, eval_windows)}
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
                f"received {signal.Signals(signum).name} at step {step}: checkpoint "
                "saved, exiting; rerun the same command to resume"
            )
    return final


# ----------------------------------------------------------------------------------------------
# Command line

_MODEL_HELP = {
    "vocab_size": "vocabulary size (>= the data's)",
    "seq_len": "context length; training windows are seq_len + 1 tokens",
    "d_model": "residual width",
    "n_layers": "number of transformer blocks",
    "n_heads": "attention heads (must divide d_model)",
    "d_ff": "MLP width (none = 4 * d_model)",
    "gradient_mode": "attention gradient mode",
    "tie_embeddings": "share the token embedding with the readout",
    "param_dtype": "parameter dtype",
    "compute_dtype": "matmul dtype",
    "remat": "rematerialize blocks in the backward pass",
    "parametrization": "'sp' or 'mup' (docs/mup.md)",
    "base_width": "muP base width (none = d_model)",
}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _argument(
    parser: argparse._ActionsContainer, cls: type, f: dataclasses.Field, hint: Any, help: str
) -> None:
    kwargs: dict[str, Any] = {"dest": f.name, "default": None}
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        kwargs.update(choices=list(args), type=str)
    elif hint is bool:
        kwargs.update(type=_parse_bool, metavar="BOOL")
    elif type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        kwargs.update(
            type=lambda s, t=inner: None if s.lower() == "none" else t(s),
            metavar=f"{inner.__name__.upper()}|none",
        )
    else:
        kwargs.update(type=hint, metavar=hint.__name__.upper())
    default = f.default if f.default is not dataclasses.MISSING else None
    parser.add_argument(
        f"--{f.name.replace('_', '-')}",
        help=f"{help} [{cls.__name__}.{f.name}, default {default!r}]",
        **kwargs,
    )


def abstract_param_count(model_cfg: ModelConfig) -> int:
    """Parameter count of a config without allocating the model."""
    abstract = eqx.filter_eval_shape(GPT, model_cfg, key=jax.random.key(0))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(abstract))


def _preset_summary() -> str:
    lines = []
    for name, (m, t) in PRESETS.items():
        n = abstract_param_count(m)
        lines.append(
            f"  {name}: {n / 1e6:.2f}M params (d_model {m.d_model}, {m.n_layers} layers, "
            f"seq_len {m.seq_len}); {t.steps} steps, batch {t.batch_size}, lr {t.lr}, "
            f"out {t.out}"
        )
    return "presets:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m myojax.train",
        description=__doc__,
        epilog=_preset_summary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        required=True,
        choices=sorted(PRESETS),
        help="starting configuration; every field below overrides it",
    )
    parser.add_argument(
        "--mode",
        dest="gradient_mode",
        choices=GRADIENT_MODES,
        default=None,
        help="alias of --gradient-mode",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard an existing run directory (checkpoints included)",
    )
    parser.add_argument(
        "--progress",
        type=_parse_bool,
        default=None,
        metavar="BOOL",
        help="progress bar (default: only on a terminal)",
    )
    for cls, title, helps in ((TrainConfig, "training", None), (ModelConfig, "model", _MODEL_HELP)):
        group = parser.add_argument_group(
            f"{title} ({cls.__name__} fields)",
            "defaults shown are the dataclass's; the preset's values apply unless given",
        )
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            help = f.metadata.get("help", "") if helps is None else helps.get(f.name, "")
            _argument(group, cls, f, hints[f.name], help)
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, ModelConfig]:
    model_cfg, train_cfg = PRESETS[args.preset]
    given = {k: v for k, v in vars(args).items() if v is not None}
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_cfg = model_cfg.replace(**{k: v for k, v in given.items() if k in model_fields})
    train_cfg = train_cfg.replace(**{k: v for k, v in given.items() if k in train_fields})
    return train_cfg, model_cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    shd.maybe_initialize_distributed()  # before anything (the presets' summary too) touches JAX
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train_cfg, model_cfg = configs_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        final = run(train_cfg, model_cfg, overwrite=args.overwrite, progress=args.progress)
    except (
        ValueError,
        OSError,
        RunDirError,
        NonFiniteLoss,
        pipeline.DataError,
        ckpt.CheckpointError,
        RuntimeError,
    ) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    summary = {k: v for k, v in final.items() if k != "val_loss_per_position"}
    if shd.is_main_process():
        print(json.dumps(summary), flush=True)
    return final


if __name__ == "__main__":
    main()
