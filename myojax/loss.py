"""Per-position losses for one sequence, and the batch mean used by training.

A *position loss* maps one sequence's outputs and targets to one loss per position,
``(outputs [T, ...], targets [T, ...]) -> [T]``; it is a parameter of every function here and of
the train step (``cross_entropy`` — next-token prediction, the default — ``squared_error``,
``huber``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PyTree

PositionLoss = Callable[[Array, Array], Float[Array, " T"]]


class Batch(NamedTuple):
    """Inputs: tokens [B, T] or real-valued [B, T, I]; targets: tokens [B, T] or values
    [B, T, O] (whatever the model and the position loss take)."""

    inputs: Int[Array, "B T"] | Float[Array, "B T I"]
    targets: Int[Array, "B T"] | Float[Array, "B T O"]

    @classmethod
    def from_windows(cls, windows: Int[Array, "B T+1"]) -> Batch:
        """Split windows of T+1 tokens into inputs and next-token targets."""
        return cls(windows[:, :-1], windows[:, 1:])


def to_batch(windows: Int[ArrayLike, "B T1"]) -> Batch:
    """Host windows -> a batch on the default device (one process, no mesh; a mesh takes
    ``myojax.sharding.global_batch``)."""
    return Batch.from_windows(jnp.asarray(windows))


def token_losses(logits: Float[Array, "T V"], targets: Int[Array, " T"]) -> Float[Array, " T"]:
    """Cross-entropy of each row of logits against its target."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[:, None], axis=-1)[:, 0]


cross_entropy: PositionLoss = token_losses


def _check_shapes(name: str, outputs: Array, targets: Array) -> None:
    if outputs.shape != targets.shape:
        raise ValueError(
            f"{name}: outputs {outputs.shape} and targets {targets.shape} must have one shape "
            "[T, O] (a scalar target per position is [T, 1])"
        )


def squared_error(outputs: Float[Array, "T O"], targets: Float[Array, "T O"]) -> Float[Array, " T"]:
    """Mean over output units of (output − target)² (MSE per position)."""
    _check_shapes("squared_error", outputs, targets)
    return jnp.mean(optax.losses.squared_error(outputs, targets), axis=-1)


def huber(delta: float = 1.0) -> PositionLoss:
    """Mean over output units of the Huber loss: ½r² for |r| ≤ delta, delta·(|r| − ½delta)
    beyond (PyTorch's ``HuberLoss``); one function per delta, so jit caches stay stable."""
    if not delta > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta!r}")
    return _HUBER.setdefault(float(delta), _huber_fn(float(delta)))


def _huber_fn(delta: float) -> PositionLoss:
    def huber_loss(outputs: Float[Array, "T O"], targets: Float[Array, "T O"]) -> Array:
        _check_shapes("huber", outputs, targets)
        return jnp.mean(optax.losses.huber_loss(outputs, targets, delta=delta), axis=-1)

    huber_loss.__name__ = huber_loss.__qualname__ = f"huber_{delta:g}"
    return huber_loss


_HUBER: dict[float, PositionLoss] = {}


def per_position_loss(
    model: eqx.Module,
    tokens: Array,
    targets: Array,
    probes: Float[Array, "L T D"] | None = None,
    loss_fn: PositionLoss = cross_entropy,
) -> Float[Array, " T"]:
    """Each position's loss L_t (next-token cross-entropy by default)."""
    return loss_fn(model(tokens, probes), targets)


def batch_losses(
    model: eqx.Module, batch: Batch, loss_fn: PositionLoss = cross_entropy
) -> Float[Array, "B T"]:
    """Per-position losses of every sequence of the batch (the model runs on one sequence;
    vmap adds the batch)."""
    one = lambda x, y: per_position_loss(model, x, y, None, loss_fn)
    return jax.vmap(one)(batch.inputs, batch.targets)


def mean_loss(
    model: eqx.Module, batch: Batch, loss_fn: PositionLoss = cross_entropy
) -> Float[Array, ""]:
    return jnp.mean(batch_losses(model, batch, loss_fn))


def loss_and_grad(
    model: eqx.Module, batch: Batch, loss_fn: PositionLoss = cross_entropy
) -> tuple[Float[Array, ""], PyTree]:
    """Mean per-position loss over the batch and its gradient: the one function training uses."""
    return eqx.filter_value_and_grad(mean_loss)(model, batch, loss_fn)
