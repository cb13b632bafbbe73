"""Next-token losses: per position for one sequence, and the batch mean used by training."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from myojax.model import GPT


class Batch(NamedTuple):
    inputs: Int[Array, "B T"]
    targets: Int[Array, "B T"]

    @classmethod
    def from_windows(cls, windows: Int[Array, "B T+1"]) -> Batch:
        """Split windows of T+1 tokens into inputs and next-token targets."""
        return cls(windows[:, :-1], windows[:, 1:])


def token_losses(logits: Float[Array, "T V"], targets: Int[Array, " T"]) -> Float[Array, " T"]:
    """Cross-entropy of each row of logits against its target."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[:, None], axis=-1)[:, 0]


def per_position_loss(
    model: GPT,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    probes: Float[Array, "L T D"] | None = None,
) -> Float[Array, " T"]:
    """Cross-entropy of each position's next-token prediction, L_t."""
    return token_losses(model(tokens, probes), targets)


def batch_losses(model: GPT, batch: Batch) -> Float[Array, "B T"]:
    """Per-position losses of every sequence of the batch (the model runs on one sequence;
    vmap adds the batch)."""
    return jax.vmap(per_position_loss, in_axes=(None, 0, 0))(model, batch.inputs, batch.targets)


def mean_loss(model: GPT, batch: Batch) -> Float[Array, ""]:
    return jnp.mean(batch_losses(model, batch))


def loss_and_grad(model: GPT, batch: Batch) -> tuple[Float[Array, ""], PyTree]:
    """Mean next-token loss over the batch and its gradient: the one function training uses."""
    return eqx.filter_value_and_grad(mean_loss)(model, batch)
