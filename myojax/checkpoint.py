"""Orbax checkpoints of a training run, and restoring them for analysis or for resuming.

Layout of a run directory ``RUN``::

    RUN/config.json                  the run's configuration (train + model)
    RUN/metrics.jsonl                one JSON object per logged step / evaluation
    RUN/checkpoints/<step>/model     the GPT parameter tree (orbax StandardSave)
    RUN/checkpoints/<step>/opt_state the optax state
    RUN/checkpoints/<step>/data      the grain iterator state, one JSON file per process
    RUN/checkpoints/<step>/config    the configuration again, so a step is self-describing

The parameter tree loads with plain orbax, no myojax code::

    import orbax.checkpoint as ocp
    params = ocp.StandardCheckpointer().restore("/abs/path/RUN/checkpoints/300/model")
    params["wte"], params["blocks"]["w_qkv"]   # (V, D), (n_layers, D, 3D) numpy/jax arrays

A step that fails to restore (corrupt or partial files) is reported and skipped in favour of
the previous good step; when resuming it is moved aside to ``RUN/corrupt-checkpoints/`` (never
deleted) so the run can write that step again.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import grain
import jax
import orbax.checkpoint as ocp
from jaxtyping import PyTree

from myojax.config import ModelConfig
from myojax.model import GPT

CHECKPOINTS = "checkpoints"
QUARANTINE = "corrupt-checkpoints"


class CheckpointError(RuntimeError):
    """No restorable checkpoint where one was required."""


def _say(message: str) -> None:
    print(f"[myojax.checkpoint] {message}", file=sys.stderr, flush=True)


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``RUN/checkpoints`` (absolute, as orbax requires); also accepts that directory itself."""
    path = Path(run_dir).resolve()
    return path if path.name == CHECKPOINTS else path / CHECKPOINTS


def make_manager(run_dir: str | Path, *, keep: int | None = None, save_interval_steps: int = 1,
                 read_only: bool = False) -> ocp.CheckpointManager:
    """A manager keeping the last ``keep`` steps, saving asynchronously."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        save_interval_steps=save_interval_steps,
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=True,
    )
    return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)


def save(manager: ocp.CheckpointManager, step: int, *, model: GPT, opt_state: PyTree,
         data_iterator: grain.DatasetIterator, config: dict[str, Any], force: bool = False) -> bool:
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
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                       sharding=getattr(x, "sharding", None) or default), tree)


def _restore_model(manager: ocp.CheckpointManager, step: int) -> tuple[ModelConfig, GPT, dict]:
    config = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    model_cfg = ModelConfig.from_dict(config["model"])
    abstract = eqx.filter_eval_shape(lambda: GPT(model_cfg, key=jax.random.key(0)))
    restored = manager.restore(
        step, args=ocp.args.Composite(model=ocp.args.StandardRestore(_abstract(abstract)))
    )
    return model_cfg, restored["model"], config


def _steps_to_try(manager: ocp.CheckpointManager, step: int | None, where: Path) -> list[int]:
    steps = sorted(manager.all_steps(), reverse=True)
    if step is None:
        if not steps:
            raise CheckpointError(f"no checkpoints in {where}")
        return steps
    if step not in steps:
        raise CheckpointError(f"no checkpoint for step {step} in {where} (have {sorted(steps)})")
    return [step]


def restore(run_dir: str | Path, step: int | None = None) -> tuple[ModelConfig, GPT]:
    """``(model config, model)`` of ``step`` (default: the latest step that restores).

    Analysis only: needs no training code, changes nothing on disk.
    """
    where = checkpoint_dir(run_dir)
    if not where.is_dir():
        raise CheckpointError(f"{run_dir} has no checkpoint directory {where}")
    manager = make_manager(where, read_only=True)
    try:
        for s in _steps_to_try(manager, step, where):
            try:
                model_cfg, model, _ = _restore_model(manager, s)
                return model_cfg, model
            except Exception as e:  # orbax/tensorstore raise many types for damaged files
                if step is not None:
                    raise CheckpointError(f"checkpoint step {s} in {where} is unreadable: {e}") from e
                _say(f"checkpoint step {s} in {where} is unreadable ({type(e).__name__}: "
                     f"{str(e)[:200]}); falling back to the previous step")
        raise CheckpointError(f"no readable checkpoint in {where}")
    finally:
        manager.close()


def read_config(run_dir: str | Path, step: int | None = None) -> dict[str, Any]:
    """The full run configuration (``{"train": ..., "model": ...}``) stored with a checkpoint."""
    where = checkpoint_dir(run_dir)
    manager = make_manager(where, read_only=True)
    try:
        s = _steps_to_try(manager, step, where)[0]
        return manager.restore(s, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
    finally:
        manager.close()


def _quarantine(manager: ocp.CheckpointManager, step: int) -> Path:
    src = checkpoint_dir(manager.directory) / str(step)
    dest_root = src.parent.parent / QUARANTINE
    dest_root.mkdir(exist_ok=True)
    dest = dest_root / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    shutil.move(src, dest)
    manager.reload()
    return dest


def restore_for_resume(
    manager: ocp.CheckpointManager,
    *,
    abstract_model: GPT,
    abstract_opt_state: PyTree,
    data_iterator: grain.DatasetIterator,
) -> tuple[int, GPT, PyTree] | None:
    """``(step, model, opt_state)`` of the latest good step, with ``data_iterator`` set to its
    state; ``None`` if there is no checkpoint. Unreadable steps are moved aside, not deleted."""
    manager.wait_until_finished()
    for s in sorted(manager.all_steps(), reverse=True):
        try:
            restored = manager.restore(s, args=ocp.args.Composite(
                model=ocp.args.StandardRestore(_abstract(abstract_model)),
                opt_state=ocp.args.StandardRestore(_abstract(abstract_opt_state)),
                data=grain.checkpoint.CheckpointRestore(data_iterator),
            ))
        except Exception as e:  # orbax/tensorstore raise many types for damaged files
            dest = _quarantine(manager, s)
            _say(f"checkpoint step {s} is unreadable ({type(e).__name__}: {str(e)[:200]}); "
                 f"moved it to {dest} and falling back to the previous step")
            continue
        return s, restored["model"], restored["opt_state"]
    return None
