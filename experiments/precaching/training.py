"""Training for the pre-caching experiments: myojax's own optimizer and jitted train step, fed
a task's batches, with an optional switch of gradient mode mid-training (breadcrumbs)."""

from __future__ import annotations

import copy
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
from myojax.train.step import compile_train_step


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


def with_config(tree: object, config: ModelConfig, kind: type) -> object:
    """``tree`` with every ``kind`` subtree (the model and the optimizer's moments) carrying
    ``config``: it is static tree metadata, so the optimizer's trees must change with it. The
    field is set on a shallow copy, since a model's constructor need not take its fields."""

    def reconfigured(x: object) -> object:
        if not isinstance(x, kind):
            return x
        x = copy.copy(x)
        object.__setattr__(x, "config", config)  # frozen module: set on the fresh copy only
        return x

    return jax.tree.map(reconfigured, tree, is_leaf=lambda x: isinstance(x, kind))


def train(
    config: ModelConfig,
    build: Callable[..., eqx.Module],
    loss_fn: PositionLoss,
    sample: Callable[[jax.Array, int], Batch],
    schedule: Schedule,
    key: jax.Array,
    *,
    switch: tuple[int, str] | None = None,
    init: eqx.Module | None = None,
    desc: str = "",
    show: bool = False,
) -> tuple[eqx.Module, list[float]]:
    """Train ``build(config)`` on fresh batches ``sample(key, batch_size)``; returns the model
    and the per-step training losses. ``switch=(step, mode)`` changes the gradient mode at
    ``step`` (the parameters and optimizer state carry over; only the backward pass changes).
    ``init``: start from this model's parameters (a curriculum's earlier stage) with a fresh
    optimizer state and schedule; its shapes must be ``config``'s."""
    k_model, k_data = jax.random.split(key)
    optimizer, step = _compiled(config, build, loss_fn, schedule)
    state = init_state(config, optimizer, k_model, build=build)
    if init is not None:
        model = with_config(init, config, type(init))
        state = dataclasses.replace(state, model=model, opt_state=optimizer.init(model))
    draw = _sampler(sample, schedule.batch_size)
    losses: list[float] = []
    progress = Progress(schedule.steps, enabled=show, desc=desc)
    for i, k in enumerate(jax.random.split(k_data, schedule.steps)):
        if switch is not None and i == switch[0]:
            new_config = config.replace(gradient_mode=switch[1])
            state = with_config(state, new_config, type(state.model))
        state, metrics = step(state, draw(k))
        losses.append(float(metrics["loss"]))
        if i % 50 == 0 or i == schedule.steps - 1:
            progress.update(i + 1, {"loss": f"{losses[-1]:.3f}"})
    progress.close()
    if not np.isfinite(losses[-1]):
        raise FloatingPointError(f"{desc}: training loss is {losses[-1]}")
    return state.model, losses
