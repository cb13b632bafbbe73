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

The model is a ``GPT`` or a ``myojax.heads.Transformer`` whose heads this module knows
(``TokenEmbedding``/``LinearInput``, ``TiedLogits``/``LinearReadout``), each rewritten here per
position; any other head is refused with ``TypeError``. The activation follows
``ModelConfig.activation`` (written out independently), the per-position loss is a parameter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from myojax.heads import LinearInput, LinearReadout, TiedLogits, TokenEmbedding, Transformer
from myojax.loss import PositionLoss, cross_entropy
from myojax.model import GPT

_ACTIVATIONS = {
    "gelu_tanh": lambda x: 0.5 * x * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "gelu": lambda x: 0.5 * x * (1 + jax.scipy.special.erf(x / math.sqrt(2))),
    "relu": lambda x: jnp.where(x > 0, x, 0.0),
}


class PastConstants(NamedTuple):
    """Per-layer quantities of a plain forward pass, for all positions."""

    h_LxTxD: Float[Array, "L T D"]  # LayerNorm-1 outputs (attention inputs)
    k_LxTxD: Float[Array, "L T D"]
    v_LxTxD: Float[Array, "L T D"]


def _ln(x: Array, gain: Array, bias: Array) -> Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * gain + bias


def _layer(model: GPT | Transformer, i: int) -> dict[str, Array]:
    return {name: getattr(model.blocks, name)[i] for name in type(model.blocks).__annotations__}


def _mlp(model: GPT | Transformer, p: dict[str, Array], x: Array) -> Array:
    h = _ln(x, p["ln2_gain"], p["ln2_bias"])
    act = _ACTIVATIONS[model.config.activation]
    return act(h @ p["w_fc"] + p["b_fc"]) @ p["w_proj"] + p["b_proj"]


def _embed(model: GPT | Transformer, inputs: Array, positions: Array) -> Array:
    """Rows of the residual stream's input at ``positions`` (inputs already indexed)."""
    head = model if isinstance(model, GPT) else model.embed
    if isinstance(head, (GPT, TokenEmbedding)):
        x = head.wte[inputs] + head.wpe[positions]
    elif isinstance(head, LinearInput):
        x = inputs @ head.w_in + head.b_in + head.wpe[positions]
    else:
        raise TypeError(f"the reference has no rule for input head {type(head).__name__}")
    return x * model.config.input_multiplier


def _attend(
    model: GPT | Transformer, q: Array, keys: Array, values: Array, visible: Array
) -> Array:
    """One query row q [D] over keys/values [S, D]; ``visible`` [S] masks positions."""
    cfg = model.config
    split = (cfg.n_heads, cfg.head_dim)
    q_h, k_sh, v_sh = q.reshape(split), keys.reshape(-1, *split), values.reshape(-1, *split)
    logits_hs = jnp.einsum("hd,shd->hs", q_h, k_sh) * cfg.attn_scale
    logits_hs = jnp.where(visible[None, :], logits_hs, -jnp.inf)
    weights_hs = jnp.exp(logits_hs - jnp.max(logits_hs, axis=-1, keepdims=True))
    weights_hs = weights_hs / jnp.sum(weights_hs, axis=-1, keepdims=True)
    return jnp.einsum("hs,shd->hd", weights_hs, v_sh).reshape(-1)


def _logits(model: GPT | Transformer, x: Array) -> Array:
    h = _ln(x, model.lnf_gain, model.lnf_bias)
    mult = model.config.output_multiplier
    if isinstance(model, GPT):
        return (h @ (model.wte.T if model.lm_head is None else model.lm_head)) * mult
    if isinstance(model.readout, TiedLogits) and isinstance(model.embed, TokenEmbedding):
        return (h @ model.embed.wte.T) * mult
    if isinstance(model.readout, LinearReadout):
        return (h @ model.readout.w_readout) * mult + model.readout.b_readout
    raise TypeError(f"the reference has no rule for output head {type(model.readout).__name__}")


def _position_loss(loss_fn: PositionLoss, output: Array, target: Array) -> Array:
    """One position's loss; cross-entropy is written out, any other loss is applied per row."""
    if loss_fn is cross_entropy:
        return jax.nn.logsumexp(output) - output[target]
    return loss_fn(output[None], target[None])[0]


def full_forward_losses(
    model: GPT | Transformer,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    probes: Float[Array, "L T D"] | None = None,
    loss_fn: PositionLoss = cross_entropy,
) -> tuple[Float[Array, " T"], PastConstants]:
    """All per-position losses of a plain forward pass, and the constants a column needs."""
    cfg = model.config
    t = tokens.shape[0]
    x = _embed(model, tokens, jnp.arange(t))
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
        x = x + _mlp(model, p, x)
        hs.append(h)
        ks.append(k)
        vs.append(v)
    outputs = jax.vmap(lambda r: _logits(model, r))(x)
    losses = jax.vmap(lambda o, y: _position_loss(loss_fn, o, y))(outputs, targets)
    return losses, PastConstants(jnp.stack(hs), jnp.stack(ks), jnp.stack(vs))


def column_loss(
    model: GPT | Transformer,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    t: Int[Array, ""],
    probe_LxD: Float[Array, "L D"],
    past: PastConstants,
    loss_fn: PositionLoss = cross_entropy,
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
    x = _embed(model, tokens[t], t)
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
        x = x + _mlp(model, p, x[None])[0]
    return _position_loss(loss_fn, _logits(model, x), targets[t])
