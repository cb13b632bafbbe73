"""Orbax checkpoints of a training run, and restoring them for analysis or for resuming.

Layout of a run directory ``RUN``::

    RUN/config.json                  the run's configuration (train + model)
    RUN/metrics.jsonl                one JSON object per logged step / evaluation
    RUN/checkpoints/<step>/model     the GPT parameter tree (orbax StandardSave)
    RUN/checkpoints/<step>/opt_state the optax state
    RUN/checkpoints/<step>/data      the grain iterator state, one JSON file per process
                                     (all equal: the next global batch index)
    RUN/checkpoints/<step>/config    the configuration again, so a step is self-describing

The parameter tree loads with plain orbax, no myojax code::

    import orbax.checkpoint as ocp
    params = ocp.StandardCheckpointer().restore("/abs/path/RUN/checkpoints/300/model")
    params["wte"], params["blocks"]["w_qkv"]   # (V, D), (n_layers, D, 3D) numpy/jax arrays

A step that fails to restore (corrupt or partial files) or holds non-finite parameters (a run
saved by a version that did not check) is reported in one line and skipped in favour of the
previous good step; when resuming it is moved aside to ``RUN/corrupt-checkpoints/`` (never
deleted) so the run can write that step again. A normal read prints nothing: orbax's absl
warnings for read-only managers and its "Event loop is closed" tracebacks after a failed read
are filtered (``quiet_orbax``), every other message passes through.

Checkpoints are mesh-independent: every process of a sharded run writes its own shards, and
``restore(RUN, mesh="fsdp=8")`` (or ``restore_for_resume`` with sharded targets) reads each
device's shard straight onto another mesh, in any number of processes.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jaxtyping import PyTree

from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.model import GPT
from myojax.orbax_noise import quiet_orbax

__all__ = ["quiet_orbax"]  # re-exported for the CLI

CHECKPOINTS = "checkpoints"
QUARANTINE = "corrupt-checkpoints"


class CheckpointError(RuntimeError):
    """No restorable checkpoint where one was required."""


class NonFiniteCheckpoint(CheckpointError):
    """A checkpoint whose parameters hold NaN or Inf."""


def _say(message: str) -> None:
    print(f"[myojax.checkpoint] {message}", file=sys.stderr, flush=True)


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"


@jax.jit
def _finite_flags(tree: PyTree) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.stack([jnp.isfinite(x).all() for x in leaves]) if leaves else jnp.ones(1, bool)


def all_finite(tree: PyTree) -> jax.Array:
    """A scalar (on device, not yet read back): whether every float in ``tree`` is finite."""
    return _finite_flags(tree).all()


def _finite_on_every_process(tree: PyTree) -> bool:
    """Each process checks the shards it holds; all agree (multi-host safe, at resume only)."""
    local = all(
        bool(np.isfinite(np.asarray(shard.data)).all())
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
        for shard in x.addressable_shards
    )
    return bool(shd.gather_ints(int(local)).min())


def count_nonfinite_leaves(tree: PyTree) -> tuple[int, int]:
    """``(leaves holding NaN/Inf, float leaves)`` of a parameter or optimizer tree."""
    flags = jax.device_get(_finite_flags(tree))
    return int((~flags).sum()), int(flags.size)


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``RUN/checkpoints`` (absolute, as orbax requires); also accepts that directory itself."""
    path = Path(run_dir).resolve()
    return path if path.name == CHECKPOINTS else path / CHECKPOINTS


def make_manager(
    run_dir: str | Path,
    *,
    keep: int | None = None,
    save_interval_steps: int = 1,
    read_only: bool = False,
) -> ocp.CheckpointManager:
    """A manager keeping the last ``keep`` steps, saving asynchronously."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        save_interval_steps=0 if read_only else save_interval_steps,  # orbax warns otherwise
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=True,
    )
    return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)


def save(
    manager: ocp.CheckpointManager,
    step: int,
    *,
    model: GPT,
    opt_state: PyTree,
    data_iterator: grain.DatasetIterator,
    config: dict[str, Any],
    force: bool = False,
) -> bool:
    """Start an async save of ``step``; returns whether the manager saved (its interval rule)."""
    args = ocp.args.Composite(
        model=ocp.args.StandardSave(model),
        opt_state=ocp.args.StandardSave(opt_state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        config=ocp.args.JsonSave(config),
    )
    return manager.save(step, args=args, force=force)


def _abstract(tree: PyTree) -> PyTree:
    """Restore targets; arrays without a sharding go to the default device."""
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(
            x.shape, x.dtype, sharding=getattr(x, "sharding", None) or default
        ),
        tree,
    )


def _restore_model(
    manager: ocp.CheckpointManager, step: int, mesh: jax.sharding.Mesh | None, min_shard_size: int
) -> tuple[ModelConfig, GPT, dict]:
    config = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    model_cfg = ModelConfig.from_dict(config["model"])
    abstract = eqx.filter_eval_shape(lambda: GPT(model_cfg, key=jax.random.key(0)))
    if mesh is not None:  # each device reads only its shard of the target layout
        abstract = shd.abstract_state(
            abstract, shd.state_shardings(abstract, mesh, min_shard_size=min_shard_size)
        )
    restored = manager.restore(
        step, args=ocp.args.Composite(model=ocp.args.StandardRestore(_abstract(abstract)))
    )
    return model_cfg, restored["model"], config


def _as_mesh(mesh: jax.sharding.Mesh | str | None) -> jax.sharding.Mesh | None:
    if mesh is None or isinstance(mesh, jax.sharding.Mesh):
        return mesh
    return shd.make_mesh(shd.MeshConfig.parse(mesh))


def latest_first(manager: ocp.CheckpointManager) -> list[int]:
    """The candidate steps, newest first: the one order in which the trainer's resume,
    ``restore``/``restore_step`` and every analysis tool (``myojax.analysis.runs.open_run``)
    look for the latest good step. orbax lists finished saves only, so the temporary directory
    of a save killed midway (``N.orbax-checkpoint-tmp-*``) is never a step."""
    return sorted(manager.all_steps(), reverse=True)


def _steps_to_try(manager: ocp.CheckpointManager, step: int | None, where: Path) -> list[int]:
    steps = latest_first(manager)
    if step is None:
        if not steps:
            raise CheckpointError(f"no checkpoints in {where}")
        return steps
    if step not in steps:
        raise CheckpointError(f"no checkpoint for step {step} in {where} (have {sorted(steps)})")
    return [step]


def restore(
    run_dir: str | Path,
    step: int | None = None,
    *,
    mesh: jax.sharding.Mesh | str | None = None,
    min_shard_size: int = shd.DEFAULT_MIN_SHARD_SIZE,
) -> tuple[ModelConfig, GPT]:
    """``(model config, model)`` of ``step`` (default: the latest step that restores with finite
    parameters).

    Without ``mesh`` every array lands on the default device. With a ``Mesh`` or a spec such as
    ``"data=1,fsdp=8"`` (over all devices) the parameters are restored FSDP-sharded onto it,
    whatever mesh and process count wrote them: a model too large for one device can be
    analysed sharded. Analysis only: needs no training code, changes nothing on disk.
    ``restore_step`` also says which step it read.
    """
    _, model_cfg, model = restore_step(run_dir, step, mesh=mesh, min_shard_size=min_shard_size)
    return model_cfg, model


def restore_step(
    run_dir: str | Path,
    step: int | None = None,
    *,
    mesh: jax.sharding.Mesh | str | None = None,
    min_shard_size: int = shd.DEFAULT_MIN_SHARD_SIZE,
) -> tuple[int, ModelConfig, GPT]:
    """``(step, model config, model)``: ``restore`` and the step it read. An explicit ``step``
    with NaN/Inf parameters raises ``NonFiniteCheckpoint``; without one, such steps are reported
    and skipped like unreadable ones."""
    where = checkpoint_dir(run_dir)
    if not where.is_dir():
        raise CheckpointError(f"{run_dir} has no checkpoint directory {where}")
    mesh = _as_mesh(mesh)
    skipped: list[str] = []
    with quiet_orbax():
        manager = make_manager(where, read_only=True)
        try:
            for s in _steps_to_try(manager, step, where):
                try:
                    model_cfg, model, _ = _restore_model(manager, s, mesh, min_shard_size)
                except Exception as e:  # orbax/tensorstore raise many types for damaged files
                    if step is not None:
                        raise CheckpointError(
                            f"checkpoint step {s} in {where} is unreadable: {_one_line(e)}"
                        ) from e
                    _say(
                        f"checkpoint step {s} in {where} is unreadable ({_one_line(e)}); "
                        "falling back to the previous step"
                    )
                    skipped.append(f"step {s} unreadable")
                    continue
                bad, total = count_nonfinite_leaves(model)
                if bad:
                    message = (
                        f"checkpoint step {s} in {where} has non-finite parameters "
                        f"({bad} of {total} arrays hold NaN or Inf)"
                    )
                    if step is not None:
                        raise NonFiniteCheckpoint(message)
                    _say(f"{message}; falling back to the previous step")
                    skipped.append(f"step {s} non-finite")
                    continue
                return s, model_cfg, model
            raise CheckpointError(
                f"no readable, finite checkpoint in {where} ({', '.join(skipped)})"
            )
        finally:
            manager.close()


def read_config(run_dir: str | Path, step: int | None = None) -> dict[str, Any]:
    """The full run configuration (``{"train": ..., "model": ...}``) stored with a checkpoint."""
    where = checkpoint_dir(run_dir)
    if not where.is_dir():
        raise CheckpointError(f"{run_dir} has no checkpoint directory {where}")
    with quiet_orbax():
        manager = make_manager(where, read_only=True)
        try:
            for s in _steps_to_try(manager, step, where):
                try:
                    items = ocp.args.Composite(config=ocp.args.JsonRestore())
                    return manager.restore(s, args=items)["config"]
                except Exception as e:  # a damaged step: try the previous one
                    if step is not None:
                        raise CheckpointError(
                            f"checkpoint step {s} in {where} is unreadable: {_one_line(e)}"
                        ) from e
            raise CheckpointError(f"no checkpoint in {where} has a readable config")
        finally:
            manager.close()


def _quarantine(manager: ocp.CheckpointManager, step: int) -> Path:
    src = checkpoint_dir(manager.directory) / str(step)
    dest_root = src.parent.parent / QUARANTINE
    dest = dest_root / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    if jax.process_index() == 0:  # one mover; the others wait below before rescanning
        dest_root.mkdir(exist_ok=True)
        shutil.move(src, dest)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"myojax quarantine {step}")
    manager.reload()
    return dest


def _data_state(step_dir: Path) -> dict:
    """The grain iterator state of a checkpoint written by a different number of processes.

    myojax's pipeline keeps the same state (the next global batch index) on every process, so
    any process's file serves any new layout; differing states mean another pipeline wrote it.
    """
    files = sorted((step_dir / "data").glob("process_*-of-*.json"))
    states = [json.loads(f.read_text()) for f in files]
    if not states:  # a damaged step: the caller moves it aside
        raise FileNotFoundError(f"{step_dir / 'data'} holds no data iterator state")
    if any(st != states[0] for st in states):
        raise CheckpointError(
            f"{step_dir / 'data'} holds different iterator states per process "
            f"({[f.name for f in files]}); resume with the process count that wrote it"
        )
    return states[0]


def restore_for_resume(
    manager: ocp.CheckpointManager,
    *,
    abstract_model: GPT,
    abstract_opt_state: PyTree,
    data_iterator: grain.DatasetIterator,
) -> tuple[int, GPT, PyTree] | None:
    """``(step, model, opt_state)`` of the latest good step, with ``data_iterator`` set to its
    state; ``None`` if there is no checkpoint. Unreadable steps are moved aside, not deleted.

    Arrays land on the shardings the abstract leaves carry (``sharding.abstract_state``), so a
    run resumes on a different mesh or process count than the one that saved it.
    """
    manager.wait_until_finished()
    with quiet_orbax():
        return _restore_latest_good(manager, abstract_model, abstract_opt_state, data_iterator)


def _restore_latest_good(
    manager: ocp.CheckpointManager,
    abstract_model: GPT,
    abstract_opt_state: PyTree,
    data_iterator: grain.DatasetIterator,
) -> tuple[int, GPT, PyTree] | None:
    own_file = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    for s in latest_first(manager):
        step_dir = checkpoint_dir(manager.directory) / str(s)
        same_layout = (step_dir / "data" / own_file).exists()
        items = dict(
            model=ocp.args.StandardRestore(_abstract(abstract_model)),
            opt_state=ocp.args.StandardRestore(_abstract(abstract_opt_state)),
        )
        if same_layout:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = manager.restore(s, args=ocp.args.Composite(**items))
            if not same_layout:
                data_iterator.set_state(_data_state(step_dir))
        except CheckpointError:
            raise  # readable, but not resumable in this layout: nothing to move aside
        except Exception as e:  # orbax/tensorstore raise many types for damaged files
            dest = _quarantine(manager, s)
            _say(
                f"checkpoint step {s} is unreadable ({_one_line(e)}); "
                f"moved it to {dest} and falling back to the previous step"
            )
            continue
        state = (restored["model"], restored["opt_state"])
        if not _finite_on_every_process(state):  # saved before steps were checked
            dest = _quarantine(manager, s)
            _say(
                f"checkpoint step {s} has non-finite parameters; moved it to {dest} and "
                "falling back to the previous step"
            )
            continue
        return s, *state
    return None
