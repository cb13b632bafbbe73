"""Sampling from a trained GPT with a key/value cache: one prefill, then one token per step.

``generate(model, prompts, max_new_tokens, key=...)`` runs as one jitted program: the prompts are
**right-padded** to a common length P and run through the model once (prefill), which fills a
per-layer cache of keys and values; then a ``lax.scan`` feeds back one token per step. Each
sequence keeps its own position (its prompt length plus the tokens generated so far), so a
sequence sits at positions 0, 1, 2, … exactly as in training, whatever the other prompts'
lengths: the new token's key and value are written at its own position, over the pad token that
was there, and attention is masked to positions ≤ its own. Padding never changes a sequence's
samples.

Context limit: a model has ``config.seq_len`` learned positions. ``generate`` refuses (a
``ValueError`` naming the numbers) a request whose longest prompt plus ``max_new_tokens`` - 1
exceeds ``seq_len``; there is no sliding window, because a window that drops the first tokens
moves every later token to a position it was not trained at. Shorten the prompt or the request.

Greedy decoding (``temperature=0``) with the cache gives the tokens of recomputing the full
forward at every step (tests/test_analysis_sampling.py, every gradient mode, SP and muP: the
myopic modes change gradients only, never the forward). The cached path below mirrors
``myojax.model.Block.apply`` (pre-LN block, tanh GELU, the same accumulation dtypes); the
equality test is what keeps them in step.

Randomness: sequence ``b`` draws step ``i``'s token with ``fold_in(keys[b], i)``, so a sequence's
samples depend only on its own prompt and key, never on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from myojax.attention import GRADIENT_SPECS, project_qkv
from myojax.config import DTYPES
from myojax.model import ACTIVATION_FNS, GPT, Block, layer_norm

# Sampling never differentiates, so the plain projection serves every gradient mode.
_FORWARD_SPEC = GRADIENT_SPECS["standard"]


class Generation(NamedTuple):
    """``tokens[b, i]``: the i-th new token of sequence b; ``logprobs[b, i]``: its log-probability
    under the model's own distribution (temperature 1, before top-k/top-p), e.g. for
    self-training or likelihood filtering."""

    tokens: Int[Array, "B N"]
    logprobs: Float[Array, "B N"]


class Cache(NamedTuple):
    """Keys and values of every layer at every cached position, for one sequence."""

    k: Float[Array, "L C D"]
    v: Float[Array, "L C D"]


def _accum(model: GPT) -> jnp.dtype:
    return jnp.dtype(jnp.float64) if model.config.compute_dtype == "float64" else jnp.float32


def _embed_at(
    model: GPT, tokens: Int[Array, " T"], positions: Int[Array, " T"]
) -> Float[Array, "T D"]:
    """``model.embed`` at explicit positions (the cached step embeds one token at position p)."""
    x = (model.wte[tokens] + model.wpe[positions]).astype(_accum(model))
    if model.config.input_multiplier != 1.0:
        x = x * model.config.input_multiplier
    return x


def _attend(
    q: Float[Array, "T D"],
    k: Float[Array, "C D"],
    v: Float[Array, "C D"],
    allowed: Bool[Array, "T C"],
    model: GPT,
) -> Float[Array, "T D"]:
    """softmax(c·q·k) v over the allowed cache slots (``causal_attention`` on a cache)."""
    config, acc = model.config, _accum(model)
    h = config.n_heads
    q_h, k_h, v_h = (a.reshape(a.shape[0], h, -1) for a in (q, k, v))
    scores = (jnp.einsum("thd,shd->hts", q_h, k_h) * config.attn_scale).astype(acc)
    scores = jnp.where(allowed[None], scores, jnp.finfo(acc).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
    return jnp.einsum("hts,shd->thd", probs, v_h).reshape(q.shape[0], -1)


def _block_cached(
    block: Block,
    x: Float[Array, "T D"],
    cache_k: Float[Array, "C D"],
    cache_v: Float[Array, "C D"],
    positions: Int[Array, " T"],
    model: GPT,
) -> tuple[Float[Array, "T D"], Float[Array, "C D"], Float[Array, "C D"]]:
    """One block on tokens at consecutive ``positions``, reading and extending the cache."""
    cdt, acc = DTYPES[model.config.compute_dtype], _accum(model)

    def w(a: Array) -> Array:
        return a.astype(cdt)

    h = layer_norm(x.astype(acc), block.ln1_gain.astype(acc), block.ln1_bias.astype(acc))
    q, k, v, _, _ = project_qkv(h.astype(cdt), w(block.w_qkv), w(block.b_qkv), _FORWARD_SPEC)
    start = positions[0]
    cache_k = jax.lax.dynamic_update_slice(cache_k, k.astype(cache_k.dtype), (start, 0))
    cache_v = jax.lax.dynamic_update_slice(cache_v, v.astype(cache_v.dtype), (start, 0))
    allowed = jnp.arange(cache_k.shape[0])[None, :] <= positions[:, None]
    attn = _attend(q, cache_k, cache_v, allowed, model)
    x = x + (attn @ w(block.w_out) + w(block.b_out)).astype(x.dtype)
    h = layer_norm(x.astype(acc), block.ln2_gain.astype(acc), block.ln2_bias.astype(acc))
    activation = ACTIVATION_FNS[model.config.activation]
    hidden = activation(h.astype(cdt) @ w(block.w_fc) + w(block.b_fc))
    x = x + (hidden @ w(block.w_proj) + w(block.b_proj)).astype(x.dtype)
    return x, cache_k, cache_v


def forward_cached(
    model: GPT, tokens: Int[Array, " T"], start: Int[Array, ""], cache: Cache
) -> tuple[Float[Array, "T V"], Cache]:
    """Logits of ``tokens`` placed at positions ``start, start+1, …`` of one sequence, attending
    to the cache (positions < start) and to themselves; returns the extended cache."""
    positions = start + jnp.arange(tokens.shape[0])
    dynamic, static = eqx.partition(model.blocks, eqx.is_array)

    def layer(x: Array, xs: tuple) -> tuple[Array, tuple[Array, Array]]:
        params, ck, cv = xs
        x, ck, cv = _block_cached(eqx.combine(params, static), x, ck, cv, positions, model)
        return x, (ck, cv)

    x, (k, v) = jax.lax.scan(layer, _embed_at(model, tokens, positions), (dynamic, *cache))
    return model.unembed(x), Cache(k, v)


def empty_cache(model: GPT, length: int) -> Cache:
    c = model.config
    shape = (c.n_layers, length, c.d_model)
    return Cache(*(jnp.zeros(shape, DTYPES[c.compute_dtype]) for _ in range(2)))


def sample_logits(
    logits: Float[Array, " V"],
    key: PRNGKeyArray,
    *,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> Int[Array, ""]:
    """One token from ``logits``: argmax when ``temperature == 0``; otherwise softmax of
    logits/temperature restricted to the ``top_k`` most likely tokens and to the smallest set
    whose probability reaches ``top_p`` (nucleus), whichever are given."""
    if temperature == 0:
        return jnp.argmax(logits).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / temperature
    neg = jnp.finfo(jnp.float32).min
    if top_k is not None and top_k < logits.shape[0]:
        kth = jax.lax.top_k(logits, top_k)[0][-1]
        logits = jnp.where(logits < kth, neg, logits)
    if top_p is not None and top_p < 1.0:
        order = jnp.argsort(-logits)
        probs = jax.nn.softmax(logits[order])
        # Keep a token if the mass strictly before it is < top_p (the top token always stays).
        keep_sorted = (jnp.cumsum(probs) - probs) < top_p
        keep = jnp.zeros_like(keep_sorted).at[order].set(keep_sorted)
        logits = jnp.where(keep, logits, neg)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def _generate_one(
    model: GPT,
    prompt: Int[Array, " P"],
    length: Int[Array, ""],
    key: PRNGKeyArray,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> tuple[Int[Array, " N"], Float[Array, " N"]]:
    """Prefill one right-padded prompt (true length ``length``), then scan N - 1 cached steps."""
    cache = empty_cache(model, prompt.shape[0] + max_new_tokens - 1)
    logits, cache = forward_cached(model, prompt, jnp.int32(0), cache)
    last = jax.lax.dynamic_index_in_dim(logits, length - 1, keepdims=False)

    def choose(logits: Array, i: Array) -> tuple[Array, Array]:
        token = sample_logits(
            logits, jax.random.fold_in(key, i), temperature=temperature, top_k=top_k, top_p=top_p
        )
        return token, jax.nn.log_softmax(logits.astype(jnp.float32))[token]

    def step(carry: tuple, i: Array) -> tuple[tuple, tuple[Array, Array]]:
        token, cache = carry
        logits, cache = forward_cached(model, token[None], length + i - 1, cache)
        new, logp = choose(logits[0], i)
        return (new, cache), (new, logp)

    first, first_logp = choose(last, jnp.int32(0))
    _, (rest, rest_logp) = jax.lax.scan(step, (first, cache), jnp.arange(1, max_new_tokens))
    return (
        jnp.concatenate([first[None], rest]),
        jnp.concatenate([first_logp[None], rest_logp]),
    )


@eqx.filter_jit
def _generate_batch(
    model: GPT,
    prompts: Int[Array, "B P"],
    lengths: Int[Array, " B"],
    keys: PRNGKeyArray,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> tuple[Int[Array, "B N"], Float[Array, "B N"]]:
    one = lambda p, n, k: _generate_one(
        model,
        p,
        n,
        k,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
    )
    return jax.vmap(one)(prompts, lengths, keys)


def pad_prompts(
    prompts: Sequence[Sequence[int] | np.ndarray] | np.ndarray | Array,
) -> tuple[np.ndarray, np.ndarray]:
    """``(right-padded [B, P] int32, lengths [B])`` from a list of 1-D token arrays of any
    lengths, or from a 2-D array whose rows are all full prompts."""
    if isinstance(prompts, (np.ndarray, jax.Array)) and np.ndim(prompts) == 2:
        arr = np.asarray(prompts, dtype=np.int32)
        return arr, np.full((arr.shape[0],), arr.shape[1], np.int32)
    rows = [np.asarray(p, dtype=np.int32).reshape(-1) for p in prompts]
    if not rows:
        raise ValueError("generate needs at least one prompt")
    lengths = np.array([r.size for r in rows], np.int32)
    if lengths.min() == 0:
        raise ValueError("every prompt needs at least one token")
    padded = np.zeros((len(rows), int(lengths.max())), np.int32)
    for i, r in enumerate(rows):
        padded[i, : r.size] = r
    return padded, lengths


def generate(
    model: GPT,
    prompts: Sequence[Sequence[int] | np.ndarray] | np.ndarray | Array,
    max_new_tokens: int,
    *,
    key: PRNGKeyArray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prompt_lengths: Sequence[int] | np.ndarray | None = None,
) -> Generation:
    """Sample ``max_new_tokens`` tokens after each prompt, batched and jitted, with a KV cache.

    ``prompts``: a list of 1-D token arrays of any lengths (≥ 1), or a 2-D ``[B, P]`` array of
    full-length prompts, or a right-padded 2-D array with ``prompt_lengths`` giving each row's
    true length. ``key``: one PRNG key (split into one per prompt) or ``B`` keys, one per prompt
    (a prompt's samples then depend only on its own key). ``temperature=0`` is greedy;
    ``top_k``/``top_p`` restrict sampling to the k most likely tokens / the nucleus of mass p.
    Recompiles per (B, P, max_new_tokens, temperature, top_k, top_p).

    Raises ``ValueError`` if a prompt plus the new tokens would need a position past
    ``model.config.seq_len`` (see the module docstring).
    """
    padded, lengths = pad_prompts(prompts)
    if prompt_lengths is not None:
        lengths = np.asarray(prompt_lengths, np.int32).reshape(-1)
        if (
            lengths.shape[0] != padded.shape[0]
            or lengths.min() < 1
            or lengths.max() > padded.shape[1]
        ):
            raise ValueError(
                f"prompt_lengths must hold one length in [1, {padded.shape[1]}] per prompt"
            )
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if (
        temperature < 0
        or (top_k is not None and top_k < 1)
        or (top_p is not None and not 0 < top_p <= 1)
    ):
        raise ValueError(
            f"need temperature >= 0, top_k >= 1, 0 < top_p <= 1 "
            f"(got {temperature}, {top_k}, {top_p})"
        )
    seq_len, vocab = model.config.seq_len, model.config.vocab_size
    needed = int(lengths.max()) + max_new_tokens - 1
    if needed > seq_len:
        raise ValueError(
            f"prompt of {int(lengths.max())} tokens + {max_new_tokens} new tokens needs "
            f"{needed} positions but the model has seq_len={seq_len}; shorten the prompt to "
            f"<= {seq_len - max_new_tokens + 1} tokens or ask for fewer tokens"
        )
    if padded.min() < 0 or padded.max() >= vocab:
        raise ValueError(f"prompt token ids must lie in [0, {vocab})")
    keys = jnp.asarray(key)
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):  # raw jax.random.PRNGKey data
        keys = jax.random.wrap_key_data(keys)
    if keys.ndim == 0:
        keys = jax.random.split(keys, padded.shape[0])
    elif keys.shape[0] != padded.shape[0]:
        raise ValueError(f"key holds {keys.shape[0]} keys for {padded.shape[0]} prompts")
    tokens, logprobs = _generate_batch(
        model,
        jnp.asarray(padded),
        jnp.asarray(lengths),
        keys,
        max_new_tokens,
        float(temperature),
        top_k,
        None if top_p is None else float(top_p),
    )
    return Generation(tokens, logprobs)
