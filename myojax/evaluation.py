"""Held-out evaluation, the one home for it: cutting the windows, computing the losses batch by
batch (on one device or on a mesh), and reducing them.

- ``heldout_windows``: the one way of cutting held-out windows: ``num_batches`` batches of
  ``batch_size`` uniformly random windows of ``seq_len + 1`` tokens (``pipeline.window_dataset``),
  fixed by ``seed`` whatever the run; ``rows`` keeps only this process's rows of each batch.
- ``compile_losses``: the jitted losses of one batch, per token ``[B, T]`` or averaged over the
  batch ``[T]``; on a mesh with explicit shardings and the result replicated on every device.
- ``token_losses``: per-token losses ``[N, T]`` of a list of batches, fetched batch by batch, so
  the logits of one batch only are alive at a time; ``in_batches`` cuts a large array of windows.
- ``evaluate``: the trainer's held-out loss (batch means on the device, then their mean).
- ``LossSummary``: the mean, per-sequence and per-position reductions of per-token losses.

A mesh run passes ``batch_fn``: ``myojax.sharding.global_batch`` for this process's rows of a
batch, or ``mesh_batch_fn(mesh)`` for windows every process holds whole.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from myojax import sharding as shd
from myojax.data import pipeline
from myojax.loss import Batch, PositionLoss, batch_losses, cross_entropy, to_batch

Per = Literal["token", "position"]
LossesFn = Callable[[Any, Batch], Array]
BatchFn = Callable[[np.ndarray], Batch]


def heldout_windows(
    arrays: Sequence[np.ndarray],
    *,
    seq_len: int,
    batch_size: int,
    num_batches: int,
    seed: int,
    rows: Sequence[int] | np.ndarray | None = None,
) -> list[Int[np.ndarray, "B T1"]]:
    """``num_batches`` batches of ``batch_size`` random windows of ``seq_len + 1`` tokens from
    ``arrays`` (never straddling two), the same for every model evaluated with ``seed``.
    ``rows``: only these rows of every batch (this process's, on a mesh); default all of them."""
    rows = np.arange(batch_size) if rows is None else rows
    ds = pipeline.window_dataset(
        arrays,
        seq_len=seq_len,
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
        rows=rows,
    )
    return [ds[i] for i in range(len(ds))]


def in_batches(windows: Int[np.ndarray, "N T1"], batch_size: int) -> list[np.ndarray]:
    """``windows`` in consecutive batches of at most ``batch_size`` rows."""
    return [windows[i : i + batch_size] for i in range(0, windows.shape[0], batch_size)]


def _losses(model: Any, batch: Batch, per: Per, loss_fn: PositionLoss) -> Array:
    losses_BxT = batch_losses(model, batch, loss_fn)
    return losses_BxT if per == "token" else jnp.mean(losses_BxT, axis=0)


@functools.cache
def _local_losses(per: Per, loss_fn: PositionLoss) -> LossesFn:
    # One jitted function per (per, loss): repeated evaluations reuse its compilations.
    return eqx.filter_jit(functools.partial(_losses, per=per, loss_fn=loss_fn))


def compile_losses(
    per: Per = "token",
    mesh: shd.Mesh | None = None,
    model_shardings: Any = None,
    *,
    loss_fn: PositionLoss = cross_entropy,
) -> LossesFn:
    """The jitted ``(model, batch) -> losses``: per token ``[B, T]`` (``per="token"``) or their
    mean over the batch ``[T]`` (``per="position"``). With a ``mesh`` and the model's shardings:
    the model traced in the mesh, the batch split over (data, fsdp), the result replicated."""
    if mesh is None:
        return _local_losses(per, loss_fn)
    if model_shardings is None:
        raise ValueError("compile_losses: a mesh needs the model's shardings")

    def losses(model: Any, batch: Batch) -> Array:
        return _losses(model, batch, per, loss_fn)

    return jax.jit(
        shd.in_mesh(losses, mesh),
        in_shardings=(model_shardings, shd.batch_sharding(mesh)),
        out_shardings=shd.replicated(mesh),
    )


def mesh_batch_fn(mesh: shd.Mesh) -> BatchFn:
    """Whole batches of windows (every process holds all rows) -> global batches on ``mesh``,
    each process contributing the rows its devices hold."""

    def to_mesh(windows: Int[np.ndarray, "B T1"]) -> Batch:
        shd.check_batch_size(windows.shape[0], mesh)
        rows = shd.process_batch_indices(windows.shape[0], shd.batch_sharding(mesh))
        return shd.global_batch(np.asarray(windows)[rows], mesh)

    return to_mesh


def token_losses(
    model: Any,
    batches: Iterable[Int[np.ndarray, "B T1"]],
    *,
    losses_fn: LossesFn | None = None,
    batch_fn: BatchFn = to_batch,
) -> Float[np.ndarray, "N T"]:
    """Per-token losses of every window of ``batches``, in order, on the host; one batch's
    logits at a time on the device. ``losses_fn``: ``compile_losses("token", ...)``."""
    losses_fn = compile_losses("token") if losses_fn is None else losses_fn
    fetched = [np.asarray(jax.device_get(losses_fn(model, batch_fn(w)))) for w in batches]
    if not fetched:
        raise ValueError("token_losses: no windows to evaluate")
    return np.concatenate(fetched)


def evaluate(
    model: Any,
    windows: Sequence[Int[np.ndarray, "B T1"]],
    *,
    losses_fn: LossesFn | None = None,
    batch_fn: BatchFn = to_batch,
) -> dict[str, Any]:
    """The trainer's held-out loss: each batch's per-position mean (on the device), averaged
    over the batches; ``val_loss`` is the mean over positions, ``val_loss_per_position`` the
    vector. ``losses_fn``: ``compile_losses("position", ...)``."""
    losses_fn = compile_losses("position") if losses_fn is None else losses_fn
    per_position_T = sum(losses_fn(model, batch_fn(w)) for w in windows) / len(windows)
    per_position = [float(x) for x in jax.device_get(per_position_T)]
    return {"val_loss": float(np.mean(per_position)), "val_loss_per_position": per_position}


@dataclasses.dataclass(frozen=True)
class LossSummary:
    """Per-token held-out losses reduced three ways (each in the losses' own dtype)."""

    mean: float
    per_sequence: list[float]
    per_position: list[float]

    @classmethod
    def of(cls, losses_NxT: Float[np.ndarray, "N T"]) -> LossSummary:
        return cls(
            float(losses_NxT.mean()),
            losses_NxT.mean(axis=1).tolist(),
            losses_NxT.mean(axis=0).tolist(),
        )
