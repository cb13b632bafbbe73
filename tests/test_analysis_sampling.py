"""KV-cache sampling: greedy decoding with the cache gives the tokens (and logits) of
recomputing the full forward at every step, in every gradient mode, SP and muP."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from myojax.analysis.sampling import Cache, empty_cache, forward_cached, generate, sample_logits
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.model import GPT

SP = ModelConfig(vocab_size=32, seq_len=16, d_model=16, n_layers=2, n_heads=2)
MUP = SP.replace(
    parametrization="mup", base_width=8, input_mult=2.0, output_mult=0.5, attn_mult=1.5
)


def trained_like(config: ModelConfig, seed: int = 0) -> GPT:
    """A model with every parameter (biases and LayerNorms too) drawn at scale 0.3 around its
    init (gains around 1), so its logits are far from uniform and greedy choices are not
    near-ties. NumPy draws it: no per-config JAX compile."""
    skeleton = eqx.filter_eval_shape(GPT, config, key=jax.random.key(0))
    rng = np.random.default_rng(seed)
    paths, treedef = jax.tree.flatten_with_path(skeleton)
    leaves = [
        jnp.asarray(
            0.3 * rng.standard_normal(s.shape) + ("gain" in jax.tree_util.keystr(path)), s.dtype
        )
        for path, s in paths
    ]
    return jax.tree.unflatten(treedef, leaves)


@eqx.filter_jit
def _last_logits(model: GPT, buf: jax.Array, pos: jax.Array) -> jax.Array:
    return model(buf)[pos]  # causal: the tail of the buffer past pos is unused


def greedy_by_recompute(model: GPT, prompt: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: run the whole sequence through ``model`` for every new token."""
    width = model.config.seq_len
    buf = np.zeros(width, np.int32)
    buf[: prompt.size] = prompt
    tokens, logits = [], []
    for i in range(n):
        row = _last_logits(model, jnp.asarray(buf), jnp.int32(prompt.size + i - 1))
        tokens.append(int(jnp.argmax(row)))
        logits.append(np.asarray(row))
        if prompt.size + i < width:
            buf[prompt.size + i] = tokens[-1]
    return np.array(tokens), np.stack(logits)


@pytest.mark.parametrize("mode", GRADIENT_MODES)
@pytest.mark.parametrize("base", [SP, MUP], ids=["sp", "mup"])
def test_greedy_cache_equals_recompute(base, mode):
    model = trained_like(base.replace(gradient_mode=mode))
    prompts = [np.array([3, 1, 4, 1, 5]), np.array([9, 2]), np.array([6, 5, 3, 5, 8, 9, 7])]
    n = 8
    out = generate(model, prompts, n, key=jax.random.key(0), temperature=0)
    for b, prompt in enumerate(prompts):
        ref_tokens, ref_logits = greedy_by_recompute(model, prompt, n)
        np.testing.assert_array_equal(np.asarray(out.tokens[b]), ref_tokens)
        expect = jax.nn.log_softmax(ref_logits)[np.arange(n), ref_tokens]
        np.testing.assert_allclose(np.asarray(out.logprobs[b]), expect, atol=1e-5)


def test_cached_logits_equal_full_forward_position_by_position():
    model = trained_like(MUP)
    seq = jnp.arange(12, dtype=jnp.int32) % 32
    full = model(seq)
    cached = eqx.filter_jit(forward_cached)
    logits, cache = cached(model, seq[:5], jnp.int32(0), empty_cache(model, 12))
    rows = [logits]
    for p in range(5, 12):
        step, cache = cached(model, seq[p : p + 1], jnp.int32(p), cache)
        rows.append(step)
    np.testing.assert_allclose(np.concatenate(rows), full, atol=1e-5, rtol=1e-5)
    assert isinstance(cache, Cache)


def test_a_corrupted_cache_changes_the_logits():
    """Negative control: the cached step really reads the cache."""
    model, cached = trained_like(SP), eqx.filter_jit(forward_cached)
    seq = jnp.array([1, 2, 3, 4, 5, 6], jnp.int32)
    _, cache = cached(model, seq[:5], jnp.int32(0), empty_cache(model, 6))
    good, _ = cached(model, seq[5:], jnp.int32(5), cache)
    bad_cache = Cache(cache.k.at[:, 2].add(1.0), cache.v)
    bad, _ = cached(model, seq[5:], jnp.int32(5), bad_cache)
    assert not np.allclose(good, bad, atol=1e-3)


def test_samples_depend_only_on_own_prompt_and_key():
    model = trained_like(SP)
    keys = jax.random.split(jax.random.key(7), 2)
    prompts = [np.array([1, 2, 3, 4, 5, 6]), np.array([7])]
    both = generate(model, prompts, 6, key=keys, temperature=1.0, top_k=10, top_p=0.9)
    # The same prompts and keys in the other order (one compile: same shapes).
    swapped = generate(
        model, prompts[::-1], 6, key=keys[::-1], temperature=1.0, top_k=10, top_p=0.9
    )
    np.testing.assert_array_equal(both.tokens[::-1], swapped.tokens)
    assert not np.array_equal(both.tokens[0], both.tokens[1])
    assert both.tokens.shape == (2, 6) and both.tokens.dtype == jnp.int32


def test_top_k_and_top_p_restrict_the_support():
    logits = jnp.array([0.0, 5.0, 4.9, -1.0, 3.0])
    keys = jax.random.split(jax.random.key(0), 400)
    draw = lambda **kw: set(
        np.asarray(jax.vmap(lambda k: sample_logits(logits, k, temperature=1.0, **kw))(keys))
    )
    assert draw(top_k=2, top_p=None) == {1, 2}
    assert draw(top_k=1, top_p=None) == {1}
    # p(1) ≈ 0.47, p(2) ≈ 0.43: the nucleus of 0.5 needs both, of 0.4 only the top token.
    assert draw(top_k=None, top_p=0.5) == {1, 2}
    assert draw(top_k=None, top_p=0.4) == {1}
    assert len(draw(top_k=None, top_p=None)) >= 4  # control: unrestricted sampling varies


def test_refuses_past_the_context_limit():
    model = trained_like(SP)
    generate(model, [np.arange(10)], 7, key=jax.random.key(0), temperature=0)  # 10 + 7 - 1 = 16
    with pytest.raises(ValueError, match="seq_len=16"):
        generate(model, [np.arange(10)], 8, key=jax.random.key(0))
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [np.arange(3), np.arange(0)], 2, key=jax.random.key(0))
