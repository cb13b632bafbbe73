"""The pure train step, its jit (with mesh shardings), and held-out evaluation.

``train_step(state, batch, optimizer)`` is a pure function of explicit state; ``compile_train_step``
is the one place it is jitted (donated state, explicit shardings on a mesh). Both take the
per-position ``loss`` (default next-token cross-entropy) and serve any model with the
``model(inputs, probes)`` protocol (``init_state(..., build=...)``; e.g. ``myojax.heads``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.loss import Batch, PositionLoss, batch_losses, cross_entropy, loss_and_grad
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


def train_step(
    state: TrainState,
    batch: Batch,
    optimizer: optax.GradientTransformation,
    loss_fn: PositionLoss = cross_entropy,
) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
    """One optimizer step on ``batch`` with the mean of ``loss_fn`` over positions; pure.
    Metrics: the batch loss before the update and the global gradient norm before clipping."""
    loss, grads = loss_and_grad(state.model, batch, loss_fn)
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
    *,
    loss_fn: PositionLoss = cross_entropy,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """``train_step`` jitted, with the state's buffers donated to the new state.

    With a ``mesh`` and the state's ``NamedSharding``s: explicit in/out shardings, the state
    keeping its layout across steps, the batch split over (data, fsdp), metrics replicated.
    """
    step = functools.partial(train_step, optimizer=optimizer, loss_fn=loss_fn)
    if mesh is None:
        return jax.jit(step, donate_argnums=0)
    if state_shardings is None:
        raise ValueError("compile_train_step: a mesh needs the state's shardings")
    return shd.shard_train_step(step, mesh, state_shardings, shd.batch_sharding(mesh))


def _eval_losses(model: GPT, batch: Batch) -> Float[Array, " T"]:
    return jnp.mean(batch_losses(model, batch), axis=0)


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
