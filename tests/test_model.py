import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.model import GPT, cast_model, count_params
from tests.strategies import configs


def _tokens(cfg, seed=0, length=None):
    return jax.random.randint(jax.random.key(seed), (length or cfg.seq_len,), 0, cfg.vocab_size)


@eqx.filter_jit
def _logits(model, tokens):
    return model(tokens)


@given(configs(), st.integers(0, 3))
def test_forward_bitwise_identical_across_modes(cfg, seed):
    tokens = _tokens(cfg, seed)
    outs = [
        np.asarray(_logits(GPT(cfg.replace(gradient_mode=m), key=jax.random.key(seed)), tokens))
        for m in GRADIENT_MODES
    ]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


@given(configs(mode="myopic"), st.data())
def test_causality_changing_a_future_token_leaves_earlier_logits_bitwise(cfg, data):
    model = GPT(cfg, key=jax.random.key(1))
    tokens = _tokens(cfg)
    k = data.draw(st.integers(0, cfg.seq_len - 1))
    changed = tokens.at[k].set((tokens[k] + 1) % cfg.vocab_size)
    a, b = np.asarray(_logits(model, tokens)), np.asarray(_logits(model, changed))
    np.testing.assert_array_equal(a[:k], b[:k])
    assert not np.array_equal(a[k:], b[k:])  # the change is visible from position k on


def test_shapes_probes_and_shorter_sequences():
    cfg = ModelConfig(vocab_size=50, seq_len=12, d_model=16, n_layers=3, n_heads=2)
    model = GPT(cfg, key=jax.random.key(0))
    assert model.blocks.w_qkv.shape == (3, 16, 48)  # stacked along the layer axis
    logits = model(_tokens(cfg, length=7))
    assert logits.shape == (7, 50)
    zeros = jnp.zeros((3, 7, 16))
    np.testing.assert_array_equal(model(_tokens(cfg, length=7), zeros), logits)
    bumped = model(_tokens(cfg, length=7), zeros.at[1, 3].set(1.0))
    np.testing.assert_array_equal(bumped[:3], logits[:3])
    assert not np.allclose(bumped[3:], logits[3:])
    with pytest.raises(ValueError, match="seq_len"):
        model(_tokens(cfg, length=13))


def test_layers_run_in_a_scan_so_the_program_does_not_grow_with_depth():
    def n_eqns(layers):
        cfg = ModelConfig(vocab_size=16, seq_len=4, d_model=8, n_layers=layers, n_heads=2)
        model = GPT(cfg, key=jax.random.key(0))
        jaxpr = jax.make_jaxpr(lambda m, t: m(t))(model, _tokens(cfg))
        assert any(e.primitive.name == "scan" for e in jaxpr.eqns)
        return len(jaxpr.eqns)

    assert n_eqns(1) == n_eqns(6)


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_changes_nothing_numerically(remat):
    cfg = ModelConfig(
        vocab_size=16, seq_len=6, d_model=8, n_layers=2, n_heads=2, gradient_mode="myopic"
    )
    tokens = _tokens(cfg)

    def grads(c):
        m = GPT(c, key=jax.random.key(0))
        return eqx.filter_grad(lambda m_: jnp.sum(m_(tokens) ** 2))(m)

    a, b = grads(cfg), grads(cfg.replace(remat=remat))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


GRADIENT_CASES = [  # (parametrization, remat, microbatches): SP and muP, remat, accumulation
    ("sp", "none", 1),
    ("mup", "full", 2),
    ("sp", "dots", 2),
]


@pytest.mark.parametrize("mode", GRADIENT_MODES)
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=str)
def test_fast_gradients_equal_the_reference_implementation(mode, case):
    """The train step's gradient (``accumulated_loss_and_grad``) of the fast attention equals
    the reference formulation's, float32, in every mode."""
    from myojax.loss import Batch
    from myojax.train.step import accumulated_loss_and_grad

    parametrization, remat, microbatches = case
    cfg = ModelConfig(
        vocab_size=32, seq_len=9, d_model=16, n_layers=2, n_heads=2, gradient_mode=mode,
        parametrization=parametrization, base_width=8, remat=remat,
    )  # fmt: skip
    batch = Batch.from_windows(jax.random.randint(jax.random.key(1), (4, 10), 0, 32))

    def grads(impl):
        model = GPT(cfg.replace(attention_impl=impl), key=jax.random.key(0))
        step = eqx.filter_jit(accumulated_loss_and_grad)
        return step(model, batch, microbatches)

    (loss_f, g_fast), (loss_r, g_ref) = grads("fast"), grads("reference")
    assert loss_f == loss_r  # the same forward
    leaves = zip(jax.tree.leaves(eqx.filter(g_fast, eqx.is_array)), jax.tree.leaves(
        eqx.filter(g_ref, eqx.is_array)), strict=True)  # fmt: skip
    for fast, ref in leaves:
        np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=2e-7)


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_float64_fast_gradients_agree_with_the_reference_to_rounding(mode):
    """In float64 the fast path's whole-model gradient is the reference's to rounding; the
    control (the reference's gradient on another batch) is far outside that tolerance."""
    from myojax.loss import Batch, loss_and_grad

    cfg = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=2, n_heads=2)
    cfg = cfg.replace(gradient_mode=mode)

    def batch(seed):
        return Batch.from_windows(jax.random.randint(jax.random.key(seed), (2, 9), 0, 32))

    with jax.enable_x64(True):

        def grads(impl, seed=1):
            model = cast_model(
                GPT(cfg.replace(attention_impl=impl), key=jax.random.key(0)), "float64"
            )
            return jax.tree.leaves(
                eqx.filter(jax.jit(loss_and_grad)(model, batch(seed))[1], eqx.is_array)
            )

        fast, ref, other = grads("fast"), grads("reference"), grads("reference", seed=2)
        for a, r in zip(fast, ref, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=1e-11, atol=1e-14)
        pairs = zip(fast, other, strict=True)
        assert any(not np.allclose(a, o, rtol=1e-11, atol=1e-14) for a, o in pairs)


def test_untied_head_param_counts_and_cast():
    cfg = ModelConfig(vocab_size=10, seq_len=4, d_model=8, n_layers=2, n_heads=2)
    tied = GPT(cfg, key=jax.random.key(0))
    untied = GPT(cfg.replace(tie_embeddings=False), key=jax.random.key(0))
    per_layer = 2 * 8 + 8 * 24 + 24 + 8 * 8 + 8 + 2 * 8 + 8 * 32 + 32 + 32 * 8 + 8
    assert count_params(tied, non_embedding=True) == 2 * per_layer + 2 * 8
    assert count_params(tied) == count_params(tied, non_embedding=True) + 10 * 8 + 4 * 8
    assert count_params(untied) == count_params(tied) + 8 * 10
    with jax.enable_x64(True):
        m64 = cast_model(tied, "float64")
        assert m64.config.compute_dtype == "float64"
        assert all(a.dtype == jnp.float64 for a in jax.tree.leaves(eqx.filter(m64, eqx.is_array)))
        np.testing.assert_allclose(m64(_tokens(cfg)), tied(_tokens(cfg)), rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_runs_and_stays_close():
    cfg = ModelConfig(vocab_size=16, seq_len=6, d_model=16, n_layers=2, n_heads=2)
    model = GPT(cfg, key=jax.random.key(0))
    low = GPT(cfg.replace(compute_dtype="bfloat16"), key=jax.random.key(0))
    out = low(_tokens(cfg))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, model(_tokens(cfg)), atol=0.05)


def test_the_layer_scan_unrolls_only_shallow_stacks_without_remat():
    """Stacks of at most MAX_UNROLLED_LAYERS are unrolled (what `bench --costs` lifts to count
    every layer); deeper ones, and any rematerialised stack, keep a rolled loop."""
    import myojax.model

    def unroll(layers, remat="none"):
        cfg = ModelConfig(vocab_size=16, seq_len=4, d_model=8, n_layers=layers, n_heads=2)
        model = GPT(cfg.replace(remat=remat), key=jax.random.key(0))
        jaxpr = jax.make_jaxpr(lambda m, t: m(t))(model, _tokens(cfg))
        (scan,) = [e for e in jaxpr.eqns if e.primitive.name == "scan"]
        return scan.params["unroll"]

    assert unroll(myojax.model.MAX_UNROLLED_LAYERS + 1) == 1
    assert unroll(2) == 2 and unroll(2, remat="full") == 1 and unroll(2, remat="dots") == 1
    with myojax.model.unrolled_up_to(3):
        assert unroll(3) == 3 and unroll(4) == 1
        with myojax.model.unrolled_up_to(0):
            assert unroll(1) == 1
        assert unroll(3) == 3  # the inner limit ends with its block
    assert unroll(2) == 2
