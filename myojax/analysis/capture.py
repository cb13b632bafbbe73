"""Activation capture: everything an interpretability analysis reads off one forward pass.

``capture(model, inputs, targets)`` returns, for a batch of sequences, the residual stream
entering and leaving every layer, every layer's attention probabilities per head, the logits
and the per-position losses. It runs the model's own collecting forward
(``GPT.activations``, the path the muP coordinate check uses), so the numbers are the model's,
not a re-implementation's. The training forward (``GPT.__call__``) is a different trace: its
``collect`` flag is a Python bool, so training never computes the extra score matrix this
capture needs (tests/test_analysis_capture.py counts the matmuls of both traces).

Memory is O(B·L·T·(D + H·T)) floats; capture large sets in batches.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from myojax.loss import token_losses
from myojax.model import GPT


class Activations(NamedTuple):
    """One forward pass of a batch. L layers, H heads, T positions, D width, V vocabulary."""

    resid_in: Float[Array, "B L T D"]  # the stream entering layer l (l = 0: the embedding)
    resid_out: Float[Array, "B L T D"]  # the stream leaving layer l
    attn_probs: Float[Array, "B L H T S"]  # softmax over key positions s ≤ t (0 above)
    logits: Float[Array, "B T V"]
    losses: Float[Array, "B T"]  # cross-entropy of each position's next-token prediction


def _probs_from_pairs(
    pair_logits: Float[Array, "L H P"], t: int, dtype: jnp.dtype
) -> Float[Array, "L H T T"]:
    """Attention probabilities from the scores of the T(T+1)/2 causal pairs (the collected
    ``attn_logits``), softmaxed like ``causal_attention``: in ``dtype``, masked with its min."""
    rows, cols = jnp.tril_indices(t)
    neg = jnp.finfo(dtype).min
    full = jnp.full((*pair_logits.shape[:2], t, t), neg, dtype)
    full = full.at[:, :, rows, cols].set(pair_logits.astype(dtype))
    return jax.nn.softmax(full, axis=-1)


def _capture_one(model: GPT, tokens: Int[Array, " T"], targets: Int[Array, " T"]) -> Activations:
    acts = model.activations(tokens)
    resid_out = acts["residual"]
    resid_in = jnp.concatenate([acts["embedding"][None].astype(resid_out.dtype), resid_out[:-1]])
    softmax_dtype = jnp.float64 if model.config.compute_dtype == "float64" else jnp.float32
    probs = _probs_from_pairs(acts["attn_logits"], tokens.shape[0], softmax_dtype)
    logits = acts["logits"]
    return Activations(resid_in, resid_out, probs, logits, token_losses(logits, targets))


@eqx.filter_jit
def capture(model: GPT, inputs: Int[Array, "B T"], targets: Int[Array, "B T"]) -> Activations:
    """Residual streams, attention probabilities, logits and per-position losses of a batch
    (``inputs``/``targets`` as in ``myojax.loss.Batch``; ``Batch.from_windows`` splits windows
    of T + 1 tokens)."""
    return jax.vmap(_capture_one, in_axes=(None, 0, 0))(model, inputs, targets)
