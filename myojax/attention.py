"""Causal self-attention with explicit gradient modes (README, "Gradient modes").

A gradient mode says, for keys and values at *past* positions s < t, which part of the
computation gradients may flow through:

* ``"live"``  — everything (standard attention);
* ``"input"`` — the projection weights stay live but the layer input h_s is stopped:
  k_s = W_K · sg(h_s) + b_K (the ``myopic`` mode);
* ``"value"`` — the key/value itself is stopped: sg(k_s) (the ``myopic_kv`` mode).

The diagonal s = t always stays live. It is routed through an exact zero,
``y_t − sg(y_t)``, added to the stopped term, so the forward values are bitwise those of
standard attention and no second attention pass is needed. Under ``jax.jit`` the stopped
and live copies of the fused QKV matmul are the same computation, which XLA's CSE merges,
so a myopic step runs one forward projection and, in the backward pass, one weight- and one
input-gradient matmul — the same as a standard step.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

PastGrad = Literal["live", "input", "value"]
sg = jax.lax.stop_gradient


@dataclasses.dataclass(frozen=True)
class GradientSpec:
    """What a past key / value passes gradient through, and whether the diagonal is live."""

    past_k: PastGrad = "live"
    past_v: PastGrad = "live"
    live_diagonal: bool = True

    def __post_init__(self) -> None:
        for name in ("past_k", "past_v"):
            if getattr(self, name) not in ("live", "input", "value"):
                raise ValueError(f"GradientSpec.{name} must be live|input|value")

    @property
    def stops_inputs(self) -> bool:
        return "input" in (self.past_k, self.past_v)


GRADIENT_SPECS: dict[str, GradientSpec] = {
    "standard": GradientSpec("live", "live"),
    "myopic": GradientSpec("input", "input"),
    "myopic_kv": GradientSpec("value", "value"),
}


def split_heads(y: Float[Array, "T D"], n_heads: int) -> Float[Array, "T H Dh"]:
    return y.reshape(y.shape[0], n_heads, y.shape[1] // n_heads)


def _past_and_delta(
    live: Float[Array, "T D"],
    weight_only: Float[Array, "T D"],
    input_only: Float[Array, "T D"],
    bias: Float[Array, " D"],
    how: PastGrad,
    live_diagonal: bool,
) -> tuple[Float[Array, "T D"], Float[Array, "T D"] | None]:
    """The tensor attended to at past positions, and the zero-valued diagonal correction.

    The correction carries exactly the gradient the stopped term withheld from position t.
    """
    if how == "live":
        return live, None
    if how == "input":
        past = weight_only + bias
        delta = input_only - sg(input_only)
    else:  # "value"
        past = sg(live)
        delta = live - sg(live)
    return past, (delta if live_diagonal else None)


def project_qkv(
    h: Float[Array, "T D"],
    w_qkv: Float[Array, "D 3D"],
    b_qkv: Float[Array, " 3D"],
    spec: GradientSpec,
) -> tuple[Array, Array, Array, Array | None, Array | None]:
    """Fused QKV projection split into (q, k_past, v_past, k_delta, v_delta)."""
    d = h.shape[-1]

    def part(a: Array, i: int) -> Array:
        return a[:, i * d : (i + 1) * d]

    if spec.stops_inputs:
        # Same matmul twice: one passes gradient only to W, one only to h (CSE merges them).
        y_w = sg(h) @ w_qkv
        y_h = h @ sg(w_qkv)

        def live(i: int) -> Array:  # value y, gradient to both W and h
            return part(y_w, i) + (part(y_h, i) - sg(part(y_h, i))) + b_qkv[i * d : (i + 1) * d]

    else:
        y_w = y_h = h @ w_qkv

        def live(i: int) -> Array:
            return part(y_w, i) + b_qkv[i * d : (i + 1) * d]

    k_past, k_delta = _past_and_delta(
        live(1), part(y_w, 1), part(y_h, 1), b_qkv[d : 2 * d], spec.past_k, spec.live_diagonal
    )
    v_past, v_delta = _past_and_delta(
        live(2), part(y_w, 2), part(y_h, 2), b_qkv[2 * d :], spec.past_v, spec.live_diagonal
    )
    return live(0), k_past, v_past, k_delta, v_delta


def causal_mask(t: int) -> Bool[Array, "T T"]:
    return jnp.tril(jnp.ones((t, t), dtype=bool))


def causal_attention(
    q: Float[Array, "T D"],
    k_past: Float[Array, "T D"],
    v_past: Float[Array, "T D"],
    k_delta: Float[Array, "T D"] | None,
    v_delta: Float[Array, "T D"] | None,
    *,
    n_heads: int,
    scale: float,
    softmax_dtype: jnp.dtype = jnp.float32,
) -> Float[Array, "T D"]:
    """softmax(c·q_t·k_s) v_s over s ≤ t, with zero-valued diagonal corrections added."""
    t = q.shape[0]
    q_h, k_h, v_h = (split_heads(a, n_heads) for a in (q, k_past, v_past))
    eye = jnp.eye(t, dtype=bool)
    diag_HxT = None
    if k_delta is not None:
        diag_HxT = jnp.einsum("thd,thd->ht", q_h, split_heads(k_delta, n_heads))
    scores_HxTxS = masked_scores(q_h, k_h, diag_HxT, scale=scale, softmax_dtype=softmax_dtype)
    probs_HxTxS = jax.nn.softmax(scores_HxTxS, axis=-1).astype(q.dtype)
    out_TxHxDh = jnp.einsum("hts,shd->thd", probs_HxTxS, v_h)
    if v_delta is not None:
        p_diag_HxT = jnp.sum(jnp.where(eye, probs_HxTxS, 0), axis=-1)
        out_TxHxDh = out_TxHxDh + jnp.einsum(
            "ht,thd->thd", p_diag_HxT, split_heads(v_delta, n_heads)
        )
    return out_TxHxDh.reshape(t, -1)


def masked_scores(
    q_h: Float[Array, "T H Dh"],
    k_h: Float[Array, "S H Dh"],
    diag_HxT: Float[Array, "H T"] | None = None,
    *,
    scale: float,
    softmax_dtype: jnp.dtype,
) -> Float[Array, "H T S"]:
    """c·q_t·k_s (plus ``diag_HxT`` on s = t) in ``softmax_dtype``, its min above the diagonal:
    the scores both attention implementations softmax, with the same operations."""
    t = q_h.shape[0]
    scores_HxTxS = jnp.einsum("thd,shd->hts", q_h, k_h)
    if diag_HxT is not None:
        eye = jnp.eye(t, dtype=bool)
        scores_HxTxS = jnp.where(eye, scores_HxTxS + diag_HxT[:, :, None], scores_HxTxS)
    scores_HxTxS = (scores_HxTxS * scale).astype(softmax_dtype)
    return jnp.where(causal_mask(t), scores_HxTxS, jnp.finfo(softmax_dtype).min)
