"""myojax.attention_fast: one forward for every mode, the myopic backward as a custom VJP."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import export

from myojax.attention import GRADIENT_SPECS, GradientSpec, causal_attention, project_qkv
from myojax.attention_fast import attention_core, diagonal_terms, fast_attention
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import Batch
from myojax.model import GPT
from myojax.train import init_state
from myojax.train.step import train_step

T, D, HEADS = 7, 8, 2  # T differs from every other axis, so a T×T array is recognisable
SPECS = [
    *GRADIENT_SPECS.values(),
    GradientSpec("input", "live"),
    GradientSpec("live", "value"),
    GradientSpec("input", "input", live_diagonal=False),
]


def _inputs(dtype=jnp.float64, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return (
        jax.random.normal(k1, (T, D), dtype),
        (0.5 * jax.random.normal(k2, (D, 3 * D))).astype(dtype),
        (0.1 * jax.random.normal(k3, (3 * D,))).astype(dtype),
    )


def _attend(attention, h, w, b, spec):
    sdt = jnp.promote_types(h.dtype, jnp.float32)  # the model's accumulation dtype
    return attention(*project_qkv(h, w, b, spec), n_heads=HEADS, scale=0.5, softmax_dtype=sdt)


def test_forward_is_bitwise_the_same_in_every_mode_and_equals_the_reference_standard():
    h, w, b = _inputs(jnp.float32)
    reference = np.asarray(_attend(causal_attention, h, w, b, GRADIENT_SPECS["standard"]))
    for spec in SPECS:
        np.testing.assert_array_equal(np.asarray(_attend(fast_attention, h, w, b, spec)), reference)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_gradients_equal_the_reference_formulation(spec):
    """Input, weight and bias gradients of a random projection of the output, float64."""
    with jax.enable_x64(True):
        h, w, b = _inputs()
        probe = jax.random.normal(jax.random.key(3), (T, D), jnp.float64)

        def grads(attention):
            loss = lambda *a: jnp.sum(_attend(attention, *a, spec) * probe)
            return jax.grad(loss, argnums=(0, 1, 2))(h, w, b)

        for fast, ref in zip(grads(fast_attention), grads(causal_attention), strict=True):
            np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_input_jacobian_is_block_diagonal_and_its_diagonal_is_live(mode):
    with jax.enable_x64(True):
        h, w, b = _inputs()
        fn = lambda x, spec: _attend(fast_attention, x, w, b, spec)
        norms = np.abs(np.asarray(jax.jacrev(fn)(h, GRADIENT_SPECS[mode]))).max(axis=(1, 3))
        assert np.all(norms[~np.eye(T, dtype=bool)] == 0.0)
        stopped = GradientSpec(*[GRADIENT_SPECS[mode].past_k] * 2, live_diagonal=False)
        query_only = np.abs(np.asarray(jax.jacrev(fn)(h, stopped))).max(axis=(1, 3))
        assert not np.allclose(np.diag(norms), np.diag(query_only))  # key/value terms count
        standard = np.abs(np.asarray(jax.jacrev(fn)(h, GRADIENT_SPECS["standard"])))
        assert np.all(standard.max(axis=(1, 3))[np.tril(np.ones((T, T), bool), -1)] > 0)


def test_diagonal_terms_are_the_diagonal_of_the_standard_key_value_gradients():
    """dk_delta_t, dv_delta_t: the s = t terms of the full dk, dv (checked against the full
    gradient of attention to a single key/value row), computed with no T×T array."""
    with jax.enable_x64(True):
        h, w, _ = _inputs()
        q, k, v = h @ w[:, :D], h @ w[:, D : 2 * D], h @ w[:, 2 * D :]
        d_out = jax.random.normal(jax.random.key(5), (T, D), jnp.float64)
        out, lse = attention_core(q, k, v, n_heads=HEADS, scale=0.5, softmax_dtype=jnp.float64)
        dk_diag, dv_diag = diagonal_terms(q, k, v, out, lse, d_out, n_heads=HEADS, scale=0.5)
        for t in range(T):  # the query row t alone, differentiated in its own key/value row t
            row = lambda kv, t=t: jnp.sum(
                attention_core(q, *kv, n_heads=HEADS, scale=0.5, softmax_dtype=jnp.float64)[0][t]
                * d_out[t]
            )
            dk_full, dv_full = jax.grad(row)((k, v))
            np.testing.assert_allclose(dk_diag[t], dk_full[t], atol=1e-12)
            np.testing.assert_allclose(dv_diag[t], dv_full[t], atol=1e-12)
        jaxpr = jax.make_jaxpr(functools.partial(diagonal_terms, n_heads=HEADS, scale=0.5))(
            q, k, v, out, lse, d_out
        )
        shapes = [v.aval.shape for e in jaxpr.eqns for v in e.outvars]
        assert all(shape.count(T) <= 1 for shape in shapes), shapes


def test_myopic_kv_backward_drops_the_full_key_value_matmuls():
    """Past keys/values are sg(k) in myopic_kv: XLA removes the dk = dS^T q and dv = P^T do
    matmuls (two fewer dots than myopic, whose weights take the full dk, dv)."""
    h, w, b = _inputs(jnp.float32)

    def dots(mode):
        loss = lambda x, w_: jnp.sum(_attend(fast_attention, x, w_, b, GRADIENT_SPECS[mode]) ** 2)
        text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(h, w).compile().as_text()
        return text.count(" dot(") + text.count("dot_general")

    assert dots("myopic_kv") < dots("myopic")


def test_bfloat16_forward_is_bitwise_the_same_in_every_mode():
    cfg = ModelConfig(vocab_size=32, seq_len=9, d_model=16, n_layers=2, n_heads=2)
    cfg = cfg.replace(compute_dtype="bfloat16")
    tokens = jax.random.randint(jax.random.key(0), (9,), 0, 32)
    logits = jax.jit(lambda m, x: m(x))
    outs = [
        np.asarray(logits(GPT(cfg.replace(gradient_mode=m), key=jax.random.key(0)), tokens))
        for m in GRADIENT_MODES
    ]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


@pytest.mark.parametrize("mode", GRADIENT_MODES)
def test_train_step_lowers_for_tpu_and_cuda_without_custom_calls(mode):
    cfg = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=2, n_heads=2)
    optimizer = optax.adamw(1e-3)
    state = init_state(cfg.replace(gradient_mode=mode), optimizer, jax.random.key(0))
    batch = Batch.from_windows(jax.random.randint(jax.random.key(1), (2, 9), 0, 32))
    step = jax.jit(functools.partial(train_step, optimizer=optimizer))
    exported = export.export(step, platforms=("tpu", "cuda"))(state, batch)
    assert exported.platforms == ("tpu", "cuda")
    assert "stablehlo.custom_call" not in exported.mlir_module()
