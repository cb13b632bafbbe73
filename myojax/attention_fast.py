"""One attention for every gradient mode; the myopic backward as a custom VJP
(``ModelConfig.attention_impl="fast"``, the default; README, "Gradient modes").

Every mode runs the same forward, ``attention_core`` (batched einsums, the causal mask, a float32
softmax), so forward outputs are bitwise identical across modes. The standard mode
differentiates it directly. A myopic mode calls ``myopic_attention``, a ``jax.custom_vjp`` whose
forward is that same core and whose backward is the standard attention backward (the core's own
``jax.vjp``, its residuals saved by the forward) for the query and the *past* keys and values,
plus O(T·D) diagonal terms for the zero-valued diagonal inputs of ``project_qkv``
(``k_delta``, ``v_delta``). Per head, with p_tt = exp(c·q_t·k_t − lse_t) from the forward's
log-sum-exp and D_t = do_t·o_t:

    dk_delta_t = c·p_tt·(do_t·v_t − D_t)·q_t,      dv_delta_t = p_tt·do_t

These are exactly the s = t terms of the standard dk and dv, so no T×T array is touched to get
them. Where the past keys are W·sg(h) + b (``myopic``) the full dk, dv reach W and b and the
input h receives only the diagonal terms; where they are sg(k) (``myopic_kv``) the full dk, dv
meet a stop_gradient and XLA removes the matmuls that computed them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from myojax.attention import masked_scores, split_heads


def attention_core(
    q: Float[Array, "T D"],
    k: Float[Array, "T D"],
    v: Float[Array, "T D"],
    *,
    n_heads: int,
    scale: float,
    softmax_dtype: jnp.dtype = jnp.float32,
) -> tuple[Float[Array, "T D"], Float[Array, "H T"]]:
    """softmax(c·q_t·k_s) v_s over s <= t, and each row's log-sum-exp (in ``softmax_dtype``).

    The same operations as ``causal_attention`` without corrections (so the fast and reference
    standard modes agree bitwise); the log-sum-exp repeats the softmax's max, exp and sum, which
    XLA computes once.
    """
    t = q.shape[0]
    q_h, k_h, v_h = (split_heads(a, n_heads) for a in (q, k, v))
    scores_HxTxS = masked_scores(q_h, k_h, scale=scale, softmax_dtype=softmax_dtype)
    probs_HxTxS = jax.nn.softmax(scores_HxTxS, axis=-1).astype(q.dtype)
    out_TxHxDh = jnp.einsum("hts,shd->thd", probs_HxTxS, v_h)
    row_max_HxTx1 = jnp.max(scores_HxTxS, axis=-1, initial=-jnp.inf, keepdims=True)
    row_sum_HxTx1 = jnp.sum(jnp.exp(scores_HxTxS - row_max_HxTx1), axis=-1, keepdims=True)
    lse_HxT = (row_max_HxTx1 + jnp.log(row_sum_HxTx1))[..., 0]
    return out_TxHxDh.reshape(t, -1), jax.lax.stop_gradient(lse_HxT)


def diagonal_terms(
    q: Float[Array, "T D"],
    k: Float[Array, "T D"],
    v: Float[Array, "T D"],
    out: Float[Array, "T D"],
    lse_HxT: Float[Array, "H T"],
    d_out: Float[Array, "T D"],
    *,
    n_heads: int,
    scale: float,
) -> tuple[Float[Array, "T D"], Float[Array, "T D"]]:
    """The s = t terms of the standard dk and dv, in O(T·D) (module docstring)."""
    acc = lse_HxT.dtype
    q_h, k_h, v_h, o_h, do_h = (split_heads(a, n_heads) for a in (q, k, v, out, d_out))

    def rowdot(a: Array, b: Array) -> Float[Array, "T H 1"]:  # elementwise: no batched dots
        return jnp.sum(a.astype(acc) * b.astype(acc), axis=-1, keepdims=True)

    score_TxHx1 = (jnp.sum(q_h * k_h, axis=-1, keepdims=True) * scale).astype(acc)
    p_diag_TxHx1 = jnp.exp(score_TxHx1 - lse_HxT.T[:, :, None])
    d_score_TxHx1 = p_diag_TxHx1 * (rowdot(do_h, v_h) - rowdot(do_h, o_h))
    dk_TxHxDh = (scale * d_score_TxHx1) * q_h.astype(acc)
    dv_TxHxDh = p_diag_TxHx1 * do_h.astype(acc)
    t = q.shape[0]
    return dk_TxHxDh.reshape(t, -1).astype(k.dtype), dv_TxHxDh.reshape(t, -1).astype(v.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def myopic_attention(
    q: Float[Array, "T D"],
    k_past: Float[Array, "T D"],
    v_past: Float[Array, "T D"],
    k_delta: Float[Array, "T D"],
    v_delta: Float[Array, "T D"],
    n_heads: int,
    scale: float,
    softmax_dtype: jnp.dtype,
) -> Float[Array, "T D"]:
    """``attention_core(q, k_past, v_past)``; the deltas (zero-valued) only receive gradient:
    the diagonal terms (module docstring). The past keys and values receive the full standard
    dk and dv."""
    return attention_core(
        q, k_past, v_past, n_heads=n_heads, scale=scale, softmax_dtype=softmax_dtype
    )[0]


def myopic_forward_rule(q, k_past, v_past, k_delta, v_delta, n_heads, scale, softmax_dtype):
    """``myopic_attention``'s forward: the core's output, the residuals of its ``jax.vjp`` and
    what the diagonal terms need (the log-sum-exp)."""
    core = functools.partial(
        attention_core, n_heads=n_heads, scale=scale, softmax_dtype=softmax_dtype
    )
    out, pullback, lse_HxT = jax.vjp(core, q, k_past, v_past, has_aux=True)
    return out, (pullback, q, k_past, v_past, out, lse_HxT)


def myopic_backward_rule(n_heads, scale, softmax_dtype, residuals, d_out):
    """``myopic_attention``'s backward: the standard attention backward for (q, k_past, v_past)
    and the diagonal terms for (k_delta, v_delta)."""
    pullback, q, k_past, v_past, out, lse_HxT = residuals
    dq, dk, dv = pullback(d_out)  # the standard attention backward
    dk_delta, dv_delta = diagonal_terms(
        q, k_past, v_past, out, lse_HxT, d_out, n_heads=n_heads, scale=scale
    )
    return dq, dk, dv, dk_delta, dv_delta


myopic_attention.defvjp(myopic_forward_rule, myopic_backward_rule)


def fast_attention(
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
    """``causal_attention``'s contract (``project_qkv``'s five outputs) on the fast path: the
    core alone when nothing is routed (standard, or a stopped diagonal), else the custom VJP.
    A missing delta is a zero input whose gradient is dropped."""
    opts = {"n_heads": n_heads, "scale": scale, "softmax_dtype": softmax_dtype}
    if k_delta is None and v_delta is None:
        return attention_core(q, k_past, v_past, **opts)[0]
    k_delta = jnp.zeros_like(k_past) if k_delta is None else k_delta
    v_delta = jnp.zeros_like(v_past) if v_delta is None else v_delta
    return myopic_attention(q, k_past, v_past, k_delta, v_delta, n_heads, scale, softmax_dtype)
