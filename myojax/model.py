"""A GPT-2-style decoder as pure Equinox modules.

One sequence per call (``vmap`` over the batch); the layers are stacked along a leading axis
(built with ``eqx.filter_vmap``) and run with a rolled ``jax.lax.scan`` (compile time flat in
depth). Stacks of at most ``MAX_UNROLLED_LAYERS`` layers without remat are unrolled instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax.attention import GRADIENT_SPECS, GradientSpec, causal_attention, project_qkv
from myojax.attention_fast import fast_attention
from myojax.config import DTYPES, ModelConfig
from myojax.mup import hidden_init_std

INIT_STD = 0.02  # GPT-2's initializer range
T = TypeVar("T")
# Stacks this shallow are unrolled when nothing is rematerialised. A rolled scan zero-fills and
# dynamic-slices the activations it saves for the backward pass: at d_model 256, 4 layers on a
# 2-core CPU that plumbing and its layout copies were a third of the step's op time, and the
# unrolled step ran ~1.2x faster (results/core.md: `bench --rolled` against the default).
# Remat configurations stay rolled (unrolling changes XLA's memory schedule under remat), and so
# do the GPT-2 shapes (12+ layers), whose memory the planner is checked against
# (results/memory_plan.md), and any deep stack, so compile time stays flat in depth.
MAX_UNROLLED_LAYERS = 8
_unroll_limit = MAX_UNROLLED_LAYERS  # what tracing reads; `unrolled_up_to` changes it


@contextlib.contextmanager
def unrolled_up_to(layers: int) -> Iterator[None]:
    """Trace inside the block with stacks of at most ``layers`` layers unrolled, instead of
    ``MAX_UNROLLED_LAYERS``. The benchmarks use 0 (every scan rolled: the before side of the
    unroll) and a huge limit (every layer unrolled, so XLA's cost analysis counts each layer).
    It changes tracing only: a function jitted before keeps its compiled program."""
    global _unroll_limit
    previous, _unroll_limit = _unroll_limit, layers
    try:
        yield
    finally:
        _unroll_limit = previous


# ModelConfig.attention_impl -> the attention over project_qkv's outputs (same contract).
ATTENTION_IMPLS: dict[str, Callable[..., Array]] = {
    "fast": fast_attention,
    "reference": causal_attention,
}

# ModelConfig.activation -> the MLP nonlinearity ("gelu_tanh" is GPT-2's, the default).
ACTIVATION_FNS: dict[str, Callable[[Array], Array]] = {
    "gelu_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "relu": jax.nn.relu,
}


def layer_norm(
    x: Float[Array, "T D"], gain: Float[Array, " D"], bias: Float[Array, " D"], eps: float = 1e-5
) -> Float[Array, "T D"]:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * gain + bias


def gathered(tree: T) -> T:
    """``tree`` replicated on every device when traced under a mesh (``jax.set_mesh`` /
    ``use_abstract_mesh``: the sharded train and eval steps); unchanged otherwise.

    This is FSDP's all-gather at the point of use: applied to one layer's weights inside the
    layer scan (and to the embeddings), each device gathers one layer at a time and the batch
    stays split. Without it XLA's partitioner follows the weights' feature-axis sharding,
    splits attention heads across devices and replicates the batch (gpt2-117m on 32 devices, 2
    sequences each: 25.6 GiB per device instead of 2.0; the control row of
    results/memory_plan.md).
    """
    if jax.sharding.get_abstract_mesh().empty:
        return tree
    return jax.lax.with_sharding_constraint(tree, PartitionSpec())


def _accum_dtype(config: ModelConfig) -> jnp.dtype:
    return jnp.dtype(jnp.float64) if config.compute_dtype == "float64" else jnp.dtype(jnp.float32)


class Block(eqx.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + mlp(LN(x)).

    The block keeps raw weight arrays rather than ``eqx.nn.Linear`` layers: the myopic
    projection needs ``sg(h) @ W`` (weight gradient) and ``h @ sg(W)`` (input gradient) as two
    separate products (``myojax.attention.project_qkv``), which a packaged layer would hide.
    """

    ln1_gain: Float[Array, " D"]
    ln1_bias: Float[Array, " D"]
    w_qkv: Float[Array, "D 3D"]
    b_qkv: Float[Array, " 3D"]
    w_out: Float[Array, "D D"]
    b_out: Float[Array, " D"]
    ln2_gain: Float[Array, " D"]
    ln2_bias: Float[Array, " D"]
    w_fc: Float[Array, "D F"]
    b_fc: Float[Array, " F"]
    w_proj: Float[Array, "F D"]
    b_proj: Float[Array, " D"]

    def __init__(self, config: ModelConfig, *, key: PRNGKeyArray):
        d, f = config.d_model, config.ff_dim
        dtype = DTYPES[config.param_dtype]
        k_qkv, k_out, k_fc, k_proj = jax.random.split(key, 4)
        # muP: hidden (width x width) matrices get variance ∝ 1/fan_in, anchored so that the
        # base width reproduces GPT-2's init: std = 0.02 / sqrt(m). SP: m = 1.
        std = hidden_init_std(config, INIT_STD)
        resid_std = std / math.sqrt(2 * config.n_layers)  # GPT-2's residual scaling
        normal = jax.random.normal
        w_qkv = std * normal(k_qkv, (d, 3 * d))
        if config.zero_init_query:
            w_qkv = w_qkv.at[:, :d].set(0.0)  # uniform attention at init (muP option)
        self.ln1_gain = jnp.ones((d,), dtype)
        self.ln1_bias = jnp.zeros((d,), dtype)
        self.w_qkv = w_qkv.astype(dtype)
        self.b_qkv = jnp.zeros((3 * d,), dtype)
        self.w_out = (resid_std * normal(k_out, (d, d))).astype(dtype)
        self.b_out = jnp.zeros((d,), dtype)
        self.ln2_gain = jnp.ones((d,), dtype)
        self.ln2_bias = jnp.zeros((d,), dtype)
        self.w_fc = (std * normal(k_fc, (d, f))).astype(dtype)
        self.b_fc = jnp.zeros((f,), dtype)
        self.w_proj = (resid_std * normal(k_proj, (f, d))).astype(dtype)
        self.b_proj = jnp.zeros((d,), dtype)

    def __call__(
        self, x: Float[Array, "T D"], config: ModelConfig, spec: GradientSpec
    ) -> Float[Array, "T D"]:
        return self.apply(x, config, spec, collect=False)[0]

    def apply(
        self,
        x: Float[Array, "T D"],
        config: ModelConfig,
        spec: GradientSpec,
        *,
        collect: bool,
        attend: Callable[..., Array] | None = None,
    ) -> tuple[Float[Array, "T D"], dict[str, Array] | None]:
        """The block, and with ``collect`` the output of each sub-module (coordinate check).

        ``collect`` is a Python flag, so the ordinary forward traces no extra operations.
        ``attend`` replaces ``ATTENTION_IMPLS[config.attention_impl]`` (the same contract; the
        deliberately wrong backward rules of ``tests/mutants.py``).
        """
        cdt = DTYPES[config.compute_dtype]
        acc = _accum_dtype(config)

        def w(a: Array) -> Array:
            return a.astype(cdt)

        h = layer_norm(x.astype(acc), self.ln1_gain.astype(acc), self.ln1_bias.astype(acc))
        q, k_past, v_past, k_delta, v_delta = project_qkv(
            h.astype(cdt), w(self.w_qkv), w(self.b_qkv), spec
        )
        attend = attend or ATTENTION_IMPLS[config.attention_impl]
        attn = attend(
            q,
            k_past,
            v_past,
            k_delta,
            v_delta,
            n_heads=config.n_heads,
            scale=config.attn_scale,
            softmax_dtype=acc,
        )
        attn_out = (attn @ w(self.w_out) + w(self.b_out)).astype(x.dtype)
        x = x + attn_out
        h = layer_norm(x.astype(acc), self.ln2_gain.astype(acc), self.ln2_bias.astype(acc))
        hidden = ACTIVATION_FNS[config.activation](h.astype(cdt) @ w(self.w_fc) + w(self.b_fc))
        mlp_out = (hidden @ w(self.w_proj) + w(self.b_proj)).astype(x.dtype)
        out = x + mlp_out
        if not collect:
            return out, None
        acts = {
            "attn_logits": _causal_attn_logits(q, k_past, config),
            "attn_out": attn_out,
            "mlp_out": mlp_out,
            "residual": out,
        }
        return out, acts


def _causal_attn_logits(
    q: Float[Array, "T D"], k: Float[Array, "T D"], config: ModelConfig
) -> Float[Array, "H P"]:
    """c·q_t·k_s for the P = T(T+1)/2 causal pairs s ≤ t (forward values are mode-independent)."""
    t, h = q.shape[0], config.n_heads
    q_h, k_h = (a.reshape(t, h, -1) for a in (q, k))
    scores_HxTxS = jnp.einsum("thd,shd->hts", q_h, k_h) * config.attn_scale
    rows, cols = jnp.tril_indices(t)
    return scores_HxTxS[:, rows, cols]


class GPT(eqx.Module):
    """Token + position embeddings, ``n_layers`` stacked blocks, final LayerNorm, unembedding."""

    config: ModelConfig = eqx.field(static=True)
    wte: Float[Array, "V D"]
    wpe: Float[Array, "S D"]
    blocks: Block  # every leaf has a leading n_layers axis
    lnf_gain: Float[Array, " D"]
    lnf_bias: Float[Array, " D"]
    lm_head: Float[Array, "D V"] | None

    def __init__(self, config: ModelConfig, *, key: PRNGKeyArray):
        dtype = DTYPES[config.param_dtype]
        k_wte, k_wpe, k_blocks, k_head = jax.random.split(key, 4)
        normal = jax.random.normal
        self.config = config
        vocab = config.require_vocab("GPT")
        self.wte = (INIT_STD * normal(k_wte, (vocab, config.d_model))).astype(dtype)
        self.wpe = (INIT_STD * normal(k_wpe, (config.seq_len, config.d_model))).astype(dtype)
        block_keys = jax.random.split(k_blocks, config.n_layers)
        self.blocks = eqx.filter_vmap(lambda k: Block(config, key=k))(block_keys)
        self.lnf_gain = jnp.ones((config.d_model,), dtype)
        self.lnf_bias = jnp.zeros((config.d_model,), dtype)
        # Embeddings (and an untied readout) keep a width-independent init under muP; the
        # readout's 1/m lives in ``config.output_multiplier`` instead (docs/mup.md).
        if config.tie_embeddings:
            self.lm_head = None
        elif config.zero_init_readout:
            self.lm_head = jnp.zeros((config.d_model, config.vocab_size), dtype)
        else:
            self.lm_head = (INIT_STD * normal(k_head, (config.d_model, config.vocab_size))).astype(
                dtype
            )

    @property
    def spec(self) -> GradientSpec:
        return GRADIENT_SPECS[self.config.gradient_mode]

    def embed(self, tokens: Int[Array, " T"]) -> Float[Array, "T D"]:
        t = tokens.shape[0]
        if t > self.config.seq_len:
            raise ValueError(
                f"sequence length {t} exceeds ModelConfig.seq_len={self.config.seq_len}"
            )
        x = (gathered(self.wte)[tokens] + gathered(self.wpe)[:t]).astype(_accum_dtype(self.config))
        if self.config.input_multiplier != 1.0:  # skip the multiply so SP stays bitwise unchanged
            x = x * self.config.input_multiplier
        return x

    def unembed(self, x: Float[Array, "T D"]) -> Float[Array, "T V"]:
        acc = _accum_dtype(self.config)
        h = layer_norm(x, self.lnf_gain.astype(acc), self.lnf_bias.astype(acc))
        cdt = DTYPES[self.config.compute_dtype]
        head = gathered(self.wte.T if self.lm_head is None else self.lm_head)
        logits = (h.astype(cdt) @ head.astype(cdt)).astype(acc)
        return logits * self.config.output_multiplier

    def layer(self, i: int) -> Block:
        """Block ``i`` as a standalone module (for analysis and per-layer variants)."""
        return jax.tree.map(lambda a: a[i], self.blocks)

    def __call__(
        self,
        tokens: Int[Array, " T"],
        probes: Float[Array, "L T D"] | None = None,
    ) -> Float[Array, "T V"]:
        """Logits for one sequence. ``probes[l]`` is added to the residual stream entering
        layer l."""
        return self._run(tokens, probes, collect=False)[0]

    def activations(self, tokens: Int[Array, " T"]) -> dict[str, Array]:
        """Every module output for one sequence (the muP coordinate check).

        ``embedding`` [T, D] (after the input multiplier) and ``logits`` [T, V]; per layer
        (leading axis L): ``attn_logits`` [L, H, P] over the causal pairs, ``attn_out`` and
        ``mlp_out`` (the residual branches) and ``residual`` (the stream after the block),
        [L, T, D].
        """
        logits, acts = self._run(tokens, None, collect=True)
        return {**acts, "logits": logits}

    def _run(
        self, tokens: Int[Array, " T"], probes: Float[Array, "L T D"] | None, *, collect: bool
    ) -> tuple[Float[Array, "T V"], dict[str, Array] | None]:
        x0 = self.embed(tokens)
        x, layer_stats = run_blocks(self.blocks, x0, self.config, probes, collect=collect)
        if not collect:
            return self.unembed(x), None
        return self.unembed(x), {"embedding": x0, **layer_stats}


def run_blocks(
    blocks: Block,
    x0: Float[Array, "T D"],
    config: ModelConfig,
    probes: Float[Array, "L T D"] | None,
    *,
    collect: bool,
) -> tuple[Float[Array, "T D"], dict[str, Array] | None]:
    """The stack of blocks (leading layer axis) over one residual stream, with ``probes[l]``
    added to the stream entering layer l; shared by ``GPT`` and ``myojax.heads.Transformer``."""
    spec = GRADIENT_SPECS[config.gradient_mode]
    dynamic, static = eqx.partition(blocks, eqx.is_array)

    def step(x: Array, xs: tuple) -> tuple[Array, dict[str, Array] | None]:
        block_params, probe = xs
        block_params = gathered(block_params)
        if probe is not None:
            x = x + probe.astype(x.dtype)
        return eqx.combine(block_params, static).apply(x, config, spec, collect=collect)

    if config.remat != "none":
        # Recompute each block in the backward pass instead of storing its activations.
        policy = {
            "full": jax.checkpoint_policies.nothing_saveable,
            "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
        }[config.remat]
        step = jax.checkpoint(step, policy=policy)
    # A rolled loop zero-fills and dynamic-slices the stacked activations it saves for the
    # backward pass (`experiments.bench --profile`); unrolling removes that, at compile cost.
    unroll = config.remat == "none" and config.n_layers <= _unroll_limit
    return jax.lax.scan(step, x0, (dynamic, probes), unroll=unroll)


def cast_model(model: eqx.Module, dtype: str) -> eqx.Module:
    """The same model with parameters and compute in ``dtype`` (e.g. float64 for verification).

    ``model`` is a ``GPT`` or any module with a ``config`` field and a field-wise constructor
    (``myojax.heads.Transformer``)."""
    config = model.config.replace(param_dtype=dtype, compute_dtype=dtype)
    if not isinstance(model, GPT):
        cast = lambda a: a.astype(DTYPES[dtype]) if eqx.is_inexact_array(a) else a
        return dataclasses.replace(jax.tree.map(cast, model), config=config)
    # The config is static (part of the tree structure), so rebuild the structure from it.
    skeleton = eqx.filter_eval_shape(lambda: GPT(config, key=jax.random.key(0)))
    leaves = [a.astype(DTYPES[dtype]) for a in jax.tree.leaves(model)]
    return jax.tree.unflatten(jax.tree.structure(skeleton), leaves)


def count_params(model: GPT, *, non_embedding: bool = False) -> int:
    """Parameter count; ``non_embedding`` excludes token and position embeddings (Kaplan et al.)."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    total = sum(int(a.size) for a in leaves)
    if non_embedding:
        total -= int(model.wte.size) + int(model.wpe.size)
    return total


def param_counts(config: ModelConfig) -> tuple[int, int]:
    """``(total, non_embedding)`` parameters of ``GPT(config)`` in closed form (no allocation);
    non-embedding excludes wte and wpe, like ``count_params(non_embedding=True)``."""
    d, f, layers = config.d_model, config.ff_dim, config.n_layers
    vocab = config.require_vocab("param_counts")
    block = 4 * d * d + 2 * d * f + 9 * d + f  # qkv+out+fc+proj matrices; 2 LNs, 4 biases
    readout = 0 if config.tie_embeddings else d * vocab
    non_embedding = layers * block + 2 * d + readout
    return non_embedding + (vocab + config.seq_len) * d, non_embedding


def train_flops_per_token(config: ModelConfig) -> float:
    """Training FLOPs per token: 3 x forward, forward = 2N (matmuls of the non-embedding
    parameters) + 2·D·V (readout) + 4·L·T·D (attention scores and mixing over the full window;
    the causal mask is not discounted)."""
    _, n = param_counts(config)
    d, v = config.d_model, config.require_vocab("train_flops_per_token")
    return 3 * (2 * n + 2 * d * v + 4 * config.n_layers * config.seq_len * d)
