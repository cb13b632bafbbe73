"""The pure train step and its jit (with mesh shardings).

``train_step(state, batch, optimizer)`` is a pure function of explicit state; ``compile_train_step``
is the one place it is jitted (donated state, explicit shardings on a mesh). Both take the
per-position ``loss`` (default next-token cross-entropy) and serve any model with the
``model(inputs, probes)`` protocol (``init_state(..., build=...)``; e.g. ``myojax.heads``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.loss import Batch, PositionLoss, cross_entropy, loss_and_grad
from myojax.model import GPT


class TrainState(eqx.Module):
    """Everything that changes during training (the optimizer itself is static)."""

    step: Int[Array, ""]
    model: GPT  # or any model built from myojax pieces (init_state's ``build``)
    opt_state: optax.OptState


def init_state(
    model_cfg: ModelConfig,
    optimizer: optax.GradientTransformation,
    key: PRNGKeyArray,
    *,
    build: Callable[..., eqx.Module] = GPT,
) -> TrainState:
    """Step 0: ``build(model_cfg, key=key)`` (default ``GPT``) and its optimizer state."""
    model = build(model_cfg, key=key)
    return TrainState(jnp.zeros((), jnp.int32), model, optimizer.init(model))


def split_microbatches(batch: Batch, microbatches: int) -> Batch:
    """``(B, T)`` leaves -> ``(K, B/K, T)``; microbatch ``k`` takes rows ``k, K+k, 2K+k, ...``.

    Strided, not contiguous: a batch split over devices in contiguous blocks of ``b`` rows
    (``K`` dividing ``b``) then gives every device ``b/K`` rows of every microbatch, so each
    microbatch is as sharded as the full batch and the reshape moves no data.
    """

    def split(x: Array) -> Array:
        if x.shape[0] % microbatches:
            raise ValueError(
                f"TrainConfig.microbatches={microbatches} must divide the batch ({x.shape[0]})"
            )
        rows = x.reshape(x.shape[0] // microbatches, microbatches, *x.shape[1:])
        return jnp.swapaxes(rows, 0, 1)

    return jax.tree.map(split, batch)


def accumulated_loss_and_grad(
    model: GPT, batch: Batch, microbatches: int = 1, loss_fn: PositionLoss = cross_entropy
) -> tuple[Float[Array, ""], Any]:
    """``loss_and_grad`` over ``microbatches`` equal slices of ``batch``, one at a time
    (``lax.scan``): the mean loss and mean gradient, equal to the full batch's up to float
    rounding, with the activations of one microbatch alive at a time."""
    if microbatches == 1:
        return loss_and_grad(model, batch, loss_fn)
    micro = split_microbatches(batch, microbatches)
    first = jax.tree.map(lambda x: x[0], micro)
    shapes = jax.eval_shape(lambda m, b: loss_and_grad(m, b, loss_fn), model, first)

    def acc_dtype(dtype: Any) -> Any:  # sum bfloat16 gradients in float32
        return jnp.promote_types(dtype, jnp.float32)

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, acc_dtype(s.dtype)), shapes)

    def add(total: Any, mb: Batch) -> tuple[Any, None]:
        value = loss_and_grad(model, Batch(*mb), loss_fn)
        return jax.tree.map(lambda t, v: t + v.astype(t.dtype), total, value), None

    total, _ = jax.lax.scan(add, zeros, micro)
    return jax.tree.map(lambda t, s: (t / microbatches).astype(s.dtype), total, shapes)


def train_step(
    state: TrainState,
    batch: Batch,
    optimizer: optax.GradientTransformation,
    microbatches: int = 1,
    loss_fn: PositionLoss = cross_entropy,
) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
    """One optimizer step on ``batch`` with the mean of ``loss_fn`` over positions; pure.
    Metrics: the batch loss before the update and the global gradient norm before clipping.
    ``microbatches`` > 1 accumulates the mean gradient over that many slices of the batch
    (``accumulated_loss_and_grad``) before the one update."""
    loss, grads = accumulated_loss_and_grad(state.model, batch, microbatches, loss_fn)
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
    microbatches: int = 1,
    *,
    loss_fn: PositionLoss = cross_entropy,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """``train_step`` jitted, with the state's buffers donated to the new state.

    With a ``mesh`` and the state's ``NamedSharding``s: explicit in/out shardings, the state
    keeping its layout across steps, the batch split over (data, fsdp), metrics replicated.
    """
    step = functools.partial(
        train_step, optimizer=optimizer, microbatches=microbatches, loss_fn=loss_fn
    )
    if mesh is None:
        return jax.jit(step, donate_argnums=0)
    if state_shardings is None:
        raise ValueError("compile_train_step: a mesh needs the state's shardings")
    return shd.shard_train_step(
        shd.in_mesh(step, mesh), mesh, state_shardings, shd.batch_sharding(mesh)
    )
