"""A plain-JAX peer of myojax's GPT and train step, for ``python -m experiments.bench``.

The same model written the way a JAX user would in a page of ``jax.numpy``: a dict of arrays,
the whole batch at once (no vmap), batched-einsum causal attention, tanh-GELU, tied readout, and
the benchmark's optax chain (global-norm clipping, then AdamW) in one jitted, donating step.
No gradient modes, no probes, no scan: what is left of myojax's standard step is its framework
(``tests/test_jax_peer.py`` checks the same loss and post-step loss from the same weights).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from myojax.config import ModelConfig
from myojax.model import GPT

Params = dict[str, jax.Array]
BLOCK_FIELDS = ("ln1_gain", "ln1_bias", "w_qkv", "b_qkv", "w_out", "b_out", "ln2_gain",
                "ln2_bias", "w_fc", "b_fc", "w_proj", "b_proj")  # fmt: skip


def from_myojax(model: GPT) -> Params:
    """The peer's parameters: copies of ``model``'s arrays (each block field stacked over
    layers; copies, since the step donates them). Tied embeddings and GELU only."""
    if not model.config.tie_embeddings or model.config.activation != "gelu_tanh":
        raise ValueError("the JAX peer implements tied embeddings and tanh-GELU only")
    blocks = {name: getattr(model.blocks, name) for name in BLOCK_FIELDS}
    params = {"wte": model.wte, "wpe": model.wpe, "lnf_gain": model.lnf_gain,
              "lnf_bias": model.lnf_bias, **blocks}  # fmt: skip
    return {name: jnp.array(a, copy=True) for name, a in params.items()}


def _ln(x: jax.Array, gain: jax.Array, bias: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * gain + bias


def _block(cfg: ModelConfig, x: jax.Array, p: Params) -> jax.Array:
    b, t, d = x.shape
    qkv = _ln(x, p["ln1_gain"], p["ln1_bias"]) @ p["w_qkv"] + p["b_qkv"]
    q, k, v = (a.reshape(b, t, cfg.n_heads, -1) for a in jnp.split(qkv, 3, axis=-1))
    scores = jnp.einsum("bthd,bshd->bhts", q, k) * cfg.attn_scale
    scores = jnp.where(jnp.tril(jnp.ones((t, t), bool)), scores, jnp.finfo(x.dtype).min)
    attn = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(scores, axis=-1), v).reshape(b, t, d)
    x = x + attn @ p["w_out"] + p["b_out"]
    hidden = jax.nn.gelu(_ln(x, p["ln2_gain"], p["ln2_bias"]) @ p["w_fc"] + p["b_fc"])
    return x + hidden @ p["w_proj"] + p["b_proj"]


def mean_loss(cfg: ModelConfig, params: Params, windows: jax.Array) -> jax.Array:
    """Next-token cross-entropy over a batch of windows of T+1 tokens."""
    inputs, targets = windows[:, :-1], windows[:, 1:]
    x = (params["wte"][inputs] + params["wpe"][: inputs.shape[1]]) * cfg.input_multiplier
    for layer in range(cfg.n_layers):
        x = _block(cfg, x, {name: params[name][layer] for name in BLOCK_FIELDS})
    logits = _ln(x, params["lnf_gain"], params["lnf_bias"]) @ params["wte"].T
    logp = jax.nn.log_softmax(logits * cfg.output_multiplier, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def make_train_step(
    cfg: ModelConfig, params: Params, *, lr: float, weight_decay: float, grad_clip: float
) -> Callable[[jax.Array], jax.Array]:
    """A stateful thunk: one clipped-AdamW step on ``windows`` per call, returning the loss."""
    optimizer = optax.chain(
        optax.clip_by_global_norm(grad_clip), optax.adamw(lr, weight_decay=weight_decay)
    )
    state = [params, optimizer.init(params)]

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params: Params, opt_state, windows: jax.Array):
        loss, grads = jax.value_and_grad(functools.partial(mean_loss, cfg))(params, windows)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def run(windows: jax.Array) -> jax.Array:
        state[0], state[1], loss = step(state[0], state[1], windows)
        return loss

    return run


def count_params(params: Params) -> int:
    return sum(int(a.size) for a in params.values())
