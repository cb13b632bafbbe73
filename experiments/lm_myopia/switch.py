"""Breadcrumbs versus pre-caching on the language model: the gradient mode switched halfway.

A study's size run is retrained exactly as the trainer trained it (its own saved configuration:
the same initialisation, data order, optimizer, muP multipliers and schedule; the trainer's
``plan_layout`` and compiled step), except that at step ``steps // 2`` the gradient mode
changes (standard → myopic, or myopic → standard); the parameters and the optimizer state
carry over. Nothing is written to the source run. Without a switch the loop is the trainer's,
so the unswitched arms are the study's own runs.

Pre-caching is maintained by the cross-position gradient: after standard → myopic, what the
standard half computed only for later positions loses that gradient and may decay, while
breadcrumbs (features the position itself uses) survive.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np
from jaxtyping import Float, Int

from experiments.precaching.training import with_config
from myojax import checkpoint as ckpt
from myojax import evaluation
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.model import GPT
from myojax.train import TrainConfig
from myojax.train.setup import compile_step_fn, plan_layout, run_data, run_mesh


def run_configs(run_dir: str | Path) -> tuple[TrainConfig, ModelConfig]:
    """The training and model configuration a run was trained with (saved with its
    checkpoints)."""
    saved = ckpt.read_config(run_dir)
    return TrainConfig(**saved["train"]), ModelConfig.from_dict(saved["model"])


def train_switched(
    train_cfg: TrainConfig, model_cfg: ModelConfig, switch: tuple[int, str] | None
) -> GPT:
    """The trainer's run of (``train_cfg``, ``model_cfg``) on one device, with the gradient
    mode changed at ``switch = (step, mode)``; returns the final model."""
    mesh = run_mesh(train_cfg)
    if mesh.size != 1:
        raise ValueError("the mode switch replays a run on one device only")
    data = run_data(train_cfg, model_cfg)
    layout = plan_layout(train_cfg, model_cfg, mesh, data)
    state = jax.device_put(layout.init_fn(layout.init_key), layout.shardings)
    batches = pipeline.batch_iterator(layout.train_ds)
    batch_fn = functools.partial(shd.global_batch, mesh=mesh)
    step_fn = compile_step_fn(train_cfg, mesh, layout)
    for step in range(train_cfg.steps):
        if switch is not None and step == switch[0]:
            model_cfg = model_cfg.replace(gradient_mode=switch[1])
            state = with_config(state, model_cfg, GPT)
            step_fn = compile_step_fn(
                train_cfg, mesh, plan_layout(train_cfg, model_cfg, mesh, data)
            )
        state, metrics = step_fn(state, batch_fn(next(batches)))
    if not bool(metrics["params_finite"]):
        raise FloatingPointError("the switched run's parameters are not finite")
    return state.model


def switched_losses(
    run_dir: str | Path, to_mode: str, windows: Int[np.ndarray, "M T1"]
) -> Float[np.ndarray, "M T"]:
    """Per-token test losses of ``run_dir``'s run retrained with its mode switched to
    ``to_mode`` at half its steps."""
    train_cfg, model_cfg = run_configs(run_dir)
    model = train_switched(train_cfg, model_cfg, (train_cfg.steps // 2, to_mode))
    return evaluation.token_losses(model, evaluation.in_batches(windows, 64)).astype(np.float64)
