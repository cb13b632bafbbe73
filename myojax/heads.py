"""Swappable input and output heads around the same stack of blocks (``Transformer``).

``GPT`` is the token model with its historical parameter layout (checkpoints depend on it);
``Transformer(embed=TokenEmbedding, readout=TiedLogits)`` computes the very same function
(tested bitwise). Other tasks swap the heads:

* input:  ``TokenEmbedding`` (wte[x] + wpe) or ``LinearInput`` (x·W + b + wpe, real-valued x);
* output: ``TiedLogits`` (h·wteᵀ, needs a ``TokenEmbedding``) or ``LinearReadout`` (h·W + b,
  any width).

A head holds arrays only; the ``ModelConfig`` (static, on the ``Transformer``) is passed at call
time, so heads, blocks and ``cast_model`` / ``param_labels`` / the verifier compose. Parameter
names say the muP/optimizer role (``myojax.mup.param_labels``): ``wte``, ``wpe``, ``w_in`` are
embeddings, ``w_readout`` is a readout, 1-D arrays are vectors, ``blocks`` are hidden.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax.attention import GRADIENT_SPECS, GradientSpec
from myojax.config import DTYPES, ModelConfig
from myojax.model import INIT_STD, Block, _accum_dtype, layer_norm, run_blocks


def _positions(wpe: Float[Array, "S D"], t: int, config: ModelConfig) -> Float[Array, "T D"]:
    if t > config.seq_len:
        raise ValueError(f"sequence length {t} exceeds ModelConfig.seq_len={config.seq_len}")
    return wpe[:t]


def _scaled(x: Array, config: ModelConfig) -> Array:
    x = x.astype(_accum_dtype(config))
    if config.input_multiplier != 1.0:  # skip the multiply so SP stays bitwise unchanged
        x = x * config.input_multiplier
    return x


class TokenEmbedding(eqx.Module):
    """Integer tokens -> wte[x] + wpe (GPT's embedding)."""

    wte: Float[Array, "V D"]
    wpe: Float[Array, "S D"]

    @classmethod
    def init(cls, config: ModelConfig, *, key: PRNGKeyArray) -> TokenEmbedding:
        vocab = config.require_vocab("TokenEmbedding")
        dtype, (k_wte, k_wpe) = DTYPES[config.param_dtype], jax.random.split(key)
        normal = jax.random.normal
        return cls(
            (INIT_STD * normal(k_wte, (vocab, config.d_model))).astype(dtype),
            (INIT_STD * normal(k_wpe, (config.seq_len, config.d_model))).astype(dtype),
        )

    def __call__(self, tokens: Int[Array, " T"], config: ModelConfig) -> Float[Array, "T D"]:
        return _scaled(self.wte[tokens] + _positions(self.wpe, tokens.shape[0], config), config)


class LinearInput(eqx.Module):
    """Real-valued inputs [T, I] -> x·W + b + wpe (a linear embedding plus learned positions)."""

    w_in: Float[Array, "I D"]
    b_in: Float[Array, " D"]
    wpe: Float[Array, "S D"]

    @classmethod
    def init(cls, config: ModelConfig, n_in: int, *, key: PRNGKeyArray) -> LinearInput:
        if not isinstance(n_in, int) or n_in <= 0:
            raise ValueError(f"LinearInput.n_in must be a positive integer, got {n_in!r}")
        dtype, (k_w, k_wpe) = DTYPES[config.param_dtype], jax.random.split(key)
        # Each input coordinate gets a row like a token embedding's (GPT-2's 0.02).
        return cls(
            (INIT_STD * jax.random.normal(k_w, (n_in, config.d_model))).astype(dtype),
            jnp.zeros((config.d_model,), dtype),
            (INIT_STD * jax.random.normal(k_wpe, (config.seq_len, config.d_model))).astype(dtype),
        )

    def __call__(self, inputs: Float[Array, "T I"], config: ModelConfig) -> Float[Array, "T D"]:
        if inputs.ndim != 2 or inputs.shape[1] != self.w_in.shape[0]:
            raise ValueError(
                f"LinearInput expects inputs [T, {self.w_in.shape[0]}], got {inputs.shape}"
            )
        cdt = DTYPES[config.compute_dtype]
        x = inputs.astype(cdt) @ self.w_in.astype(cdt) + self.b_in.astype(cdt)
        return _scaled(x + _positions(self.wpe, inputs.shape[0], config), config)


class TiedLogits(eqx.Module):
    """Logits h·wteᵀ·output_multiplier, tied to the ``TokenEmbedding`` (GPT's readout)."""

    def __call__(
        self, h: Float[Array, "T D"], embed: eqx.Module, config: ModelConfig
    ) -> Float[Array, "T V"]:
        if not isinstance(embed, TokenEmbedding):
            raise TypeError(f"TiedLogits needs a TokenEmbedding input head, got {type(embed)}")
        cdt = DTYPES[config.compute_dtype]
        logits = (h.astype(cdt) @ embed.wte.T.astype(cdt)).astype(h.dtype)
        return logits * config.output_multiplier


class LinearReadout(eqx.Module):
    """h·W·output_multiplier + b, any output width (a real-valued prediction per position)."""

    w_readout: Float[Array, "D O"]
    b_readout: Float[Array, " O"]

    @classmethod
    def init(cls, config: ModelConfig, n_out: int, *, key: PRNGKeyArray) -> LinearReadout:
        if not isinstance(n_out, int) or n_out <= 0:
            raise ValueError(f"LinearReadout.n_out must be a positive integer, got {n_out!r}")
        dtype = DTYPES[config.param_dtype]
        if config.zero_init_readout:
            w = jnp.zeros((config.d_model, n_out), dtype)
        else:
            w = (INIT_STD * jax.random.normal(key, (config.d_model, n_out))).astype(dtype)
        return cls(w, jnp.zeros((n_out,), dtype))

    def __call__(
        self, h: Float[Array, "T D"], embed: eqx.Module, config: ModelConfig
    ) -> Float[Array, "T O"]:
        cdt = DTYPES[config.compute_dtype]
        out = (h.astype(cdt) @ self.w_readout.astype(cdt)).astype(h.dtype)
        return out * config.output_multiplier + self.b_readout.astype(h.dtype)


class Transformer(eqx.Module):
    """``embed`` -> ``n_layers`` stacked blocks -> final LayerNorm -> ``readout``.

    Same call protocol as ``GPT``: ``model(inputs, probes)`` for one sequence, ``probes[l]``
    added to the residual stream entering layer l (the verifier's and prover's hook).
    """

    config: ModelConfig = eqx.field(static=True)
    embed: eqx.Module
    blocks: Block  # every leaf has a leading n_layers axis
    lnf_gain: Float[Array, " D"]
    lnf_bias: Float[Array, " D"]
    readout: eqx.Module

    @classmethod
    def init(
        cls, config: ModelConfig, embed: eqx.Module, readout: eqx.Module, *, key: PRNGKeyArray
    ) -> Transformer:
        """Fresh blocks (GPT's init) between the given heads."""
        dtype = DTYPES[config.param_dtype]
        blocks = eqx.filter_vmap(lambda k: Block(config, key=k))(
            jax.random.split(key, config.n_layers)
        )
        ones, zeros = jnp.ones((config.d_model,), dtype), jnp.zeros((config.d_model,), dtype)
        return cls(config, embed, blocks, ones, zeros, readout)

    @property
    def spec(self) -> GradientSpec:
        return GRADIENT_SPECS[self.config.gradient_mode]

    def layer(self, i: int) -> Block:
        return jax.tree.map(lambda a: a[i], self.blocks)

    def unembed(self, x: Float[Array, "T D"]) -> Array:
        acc = _accum_dtype(self.config)
        h = layer_norm(x, self.lnf_gain.astype(acc), self.lnf_bias.astype(acc))
        return self.readout(h, self.embed, self.config)

    def __call__(self, inputs: Array, probes: Float[Array, "L T D"] | None = None) -> Array:
        """Outputs for one sequence: logits [T, V] or readouts [T, O]."""
        x0 = self.embed(inputs, self.config)
        x, _ = run_blocks(self.blocks, x0, self.config, probes, collect=False)
        return self.unembed(x)

    def activations(self, inputs: Array) -> dict[str, Array]:
        """``embedding`` [T, D], per-layer ``attn_logits``/``attn_out``/``mlp_out``/``residual``
        (leading axis L) and ``outputs`` (as ``GPT.activations``)."""
        x0 = self.embed(inputs, self.config)
        x, acts = run_blocks(self.blocks, x0, self.config, None, collect=True)
        return {"embedding": x0, **acts, "outputs": self.unembed(x)}


def token_transformer(config: ModelConfig, *, key: PRNGKeyArray) -> Transformer:
    """GPT's architecture as a ``Transformer`` (token embedding, tied logits)."""
    k_embed, k_blocks = jax.random.split(key)
    return Transformer.init(
        config, TokenEmbedding.init(config, key=k_embed), TiedLogits(), key=k_blocks
    )


def from_gpt(gpt: eqx.Module) -> Transformer:
    """A ``GPT`` (tied) as a ``Transformer`` sharing its arrays: the same function."""
    if gpt.lm_head is not None:
        raise ValueError("from_gpt: only tied GPTs (tie_embeddings=True) map onto TiedLogits")
    embed = TokenEmbedding(gpt.wte, gpt.wpe)
    return Transformer(gpt.config, embed, gpt.blocks, gpt.lnf_gain, gpt.lnf_bias, TiedLogits())
