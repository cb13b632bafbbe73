"""An independent, column-local reference for per-token losses (README: gradient modes, verifier).

Written separately from ``myojax.attention``: no stop-gradients, no zero-valued corrections.
Column t is recomputed from its own token with every *past* quantity that the gradient mode
holds constant passed in as a constant, read off a plain forward pass:

* ``myopic``    — past layer inputs h_s are constants; past keys/values are W·h_s + b with
  live weights;
* ``myopic_kv`` — past keys and values themselves are constants;
* ``standard``  — nothing is constant, so the reference is a full forward pass of all
  positions and L_t is read off it.

The gradient of these functions with respect to the parameters and the column's own layer
probes is, by construction, what the mode's definition says ∇L_t must be.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from myojax.model import GPT


class PastConstants(NamedTuple):
    """Per-layer quantities of a plain forward pass, for all positions."""

    h_LxTxD: Float[Array, "L T D"]  # LayerNorm-1 outputs (attention inputs)
    k_LxTxD: Float[Array, "L T D"]
    v_LxTxD: Float[Array, "L T D"]


def _ln(x: Array, gain: Array, bias: Array) -> Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * gain + bias


def _layer(model: GPT, i: int) -> dict[str, Array]:
    return {name: getattr(model.blocks, name)[i] for name in type(model.blocks).__annotations__}


def _mlp(p: dict[str, Array], x: Array) -> Array:
    h = _ln(x, p["ln2_gain"], p["ln2_bias"])
    return jax.nn.gelu(h @ p["w_fc"] + p["b_fc"], approximate=True) @ p["w_proj"] + p["b_proj"]


def _attend(model: GPT, q: Array, keys: Array, values: Array, visible: Array) -> Array:
    """One query row q [D] over keys/values [S, D]; ``visible`` [S] masks positions."""
    cfg = model.config
    split = (cfg.n_heads, cfg.head_dim)
    q_h, k_sh, v_sh = q.reshape(split), keys.reshape(-1, *split), values.reshape(-1, *split)
    logits_hs = jnp.einsum("hd,shd->hs", q_h, k_sh) * cfg.attn_scale
    logits_hs = jnp.where(visible[None, :], logits_hs, -jnp.inf)
    weights_hs = jnp.exp(logits_hs - jnp.max(logits_hs, axis=-1, keepdims=True))
    weights_hs = weights_hs / jnp.sum(weights_hs, axis=-1, keepdims=True)
    return jnp.einsum("hs,shd->hd", weights_hs, v_sh).reshape(-1)


def _logits(model: GPT, x: Array) -> Array:
    h = _ln(x, model.lnf_gain, model.lnf_bias)
    head = model.wte.T if model.lm_head is None else model.lm_head
    return (h @ head) * model.config.output_multiplier


def _xent(logits: Array, target: Array) -> Array:
    return jax.nn.logsumexp(logits) - logits[target]


def full_forward_losses(
    model: GPT,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    probes: Float[Array, "L T D"] | None = None,
) -> tuple[Float[Array, " T"], PastConstants]:
    """All per-position losses of a plain forward pass, and the constants a column needs."""
    cfg = model.config
    t = tokens.shape[0]
    x = (model.wte[tokens] + model.wpe[:t]) * cfg.input_multiplier
    hs, ks, vs = [], [], []
    d = cfg.d_model
    for i in range(cfg.n_layers):
        p = _layer(model, i)
        if probes is not None:
            x = x + probes[i]
        h = _ln(x, p["ln1_gain"], p["ln1_bias"])
        qkv = h @ p["w_qkv"] + p["b_qkv"]
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        pos = jnp.arange(t)
        rows = jax.vmap(lambda qr, tr, k=k, v=v, pos=pos: _attend(model, qr, k, v, pos <= tr))(
            q, pos
        )
        x = x + rows @ p["w_out"] + p["b_out"]
        x = x + _mlp(p, x)
        hs.append(h)
        ks.append(k)
        vs.append(v)
    losses = jax.vmap(_xent)(jax.vmap(lambda r: _logits(model, r))(x), targets)
    return losses, PastConstants(jnp.stack(hs), jnp.stack(ks), jnp.stack(vs))


def column_loss(
    model: GPT,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    t: Int[Array, ""],
    probe_LxD: Float[Array, "L D"],
    past: PastConstants,
) -> Float[Array, ""]:
    """L_t recomputed for column t alone, with the mode's past quantities held constant.

    Only for the myopic modes; ``probe_LxD`` are column t's layer probes.
    """
    cfg = model.config
    if cfg.gradient_mode not in ("myopic", "myopic_kv"):
        raise ValueError(f"column_loss is defined for myopic modes, not {cfg.gradient_mode!r}")
    d = cfg.d_model
    seq = tokens.shape[0]
    pos = jnp.arange(seq)
    own = pos == t
    x = (model.wte[tokens[t]] + model.wpe[t]) * cfg.input_multiplier
    for i in range(cfg.n_layers):
        p = _layer(model, i)
        x = x + probe_LxD[i]
        h = _ln(x, p["ln1_gain"], p["ln1_bias"])
        qkv = h @ p["w_qkv"] + p["b_qkv"]
        q, k_t, v_t = qkv[:d], qkv[d : 2 * d], qkv[2 * d :]
        if cfg.gradient_mode == "myopic":
            past_kv = past.h_LxTxD[i] @ p["w_qkv"][:, d:] + p["b_qkv"][d:]
            past_k, past_v = past_kv[:, :d], past_kv[:, d:]
        else:
            past_k, past_v = past.k_LxTxD[i], past.v_LxTxD[i]
        keys = jnp.where(own[:, None], k_t, past_k)
        values = jnp.where(own[:, None], v_t, past_v)
        x = x + _attend(model, q, keys, values, pos <= t) @ p["w_out"] + p["b_out"]
        x = x + _mlp(p, x[None])[0]
    return _xent(_logits(model, x), targets[t])
