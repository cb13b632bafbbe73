"""Training for the pre-caching experiments: myojax's own optimizer and jitted train step, fed
a task's batches, with an optional switch of gradient mode mid-training (breadcrumbs)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np

from myojax.config import ModelConfig
from myojax.loss import Batch, PositionLoss
from myojax.progress import Progress
from myojax.train import TrainConfig, init_state, make_optimizer
from myojax.train.step import TrainState, compile_train_step


@dataclasses.dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float = 0.0

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
        )


@functools.cache
def _compiled(
    config: ModelConfig, build: Callable, loss_fn: PositionLoss, schedule: Schedule
) -> tuple[object, Callable]:
    """One optimizer and jitted step per (config, model, loss, schedule): seeds reuse the
    compilation (the optimizer is a pure function of the schedule and the parameter tree)."""
    skeleton = eqx.filter_eval_shape(build, config, key=jax.random.key(0))
    optimizer = make_optimizer(schedule.train_config(), skeleton)
    return optimizer, compile_train_step(optimizer, loss_fn=loss_fn)


@functools.cache
def _sampler(sample: Callable, batch_size: int) -> Callable:
    return jax.jit(lambda k: sample(k, batch_size))


def _with_config(state: TrainState, config: ModelConfig) -> TrainState:
    """``state`` with every model-shaped tree (the model and the optimizer's moments) carrying
    ``config``: it is static tree metadata, so the optimizer's trees must change with it."""
    kind = type(state.model)
    return jax.tree.map(
        lambda x: dataclasses.replace(x, config=config) if isinstance(x, kind) else x,
        state,
        is_leaf=lambda x: isinstance(x, kind),
    )


def train(
    config: ModelConfig,
    build: Callable[..., eqx.Module],
    loss_fn: PositionLoss,
    sample: Callable[[jax.Array, int], Batch],
    schedule: Schedule,
    key: jax.Array,
    *,
    switch: tuple[int, str] | None = None,
    desc: str = "",
    show: bool = False,
) -> tuple[eqx.Module, list[float]]:
    """Train ``build(config)`` on fresh batches ``sample(key, batch_size)``; returns the model
    and the per-step training losses. ``switch=(step, mode)`` changes the gradient mode at
    ``step`` (the parameters and optimizer state carry over; only the backward pass changes)."""
    k_model, k_data = jax.random.split(key)
    optimizer, step = _compiled(config, build, loss_fn, schedule)
    state = init_state(config, optimizer, k_model, build=build)
    draw = _sampler(sample, schedule.batch_size)
    losses: list[float] = []
    progress = Progress(schedule.steps, enabled=show, desc=desc)
    for i, k in enumerate(jax.random.split(k_data, schedule.steps)):
        if switch is not None and i == switch[0]:
            state = _with_config(state, config.replace(gradient_mode=switch[1]))
        state, metrics = step(state, draw(k))
        losses.append(float(metrics["loss"]))
        if i % 50 == 0 or i == schedule.steps - 1:
            progress.update(i + 1, {"loss": f"{losses[-1]:.3f}"})
    progress.close()
    if not np.isfinite(losses[-1]):
        raise FloatingPointError(f"{desc}: training loss is {losses[-1]}")
    return state.model, losses
