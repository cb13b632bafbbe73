import jax
import jax.numpy as jnp
import numpy as np
import pytest

from myojax.attention import GRADIENT_SPECS, GradientSpec, causal_attention, project_qkv


def _attend(h, w, b, spec, n_heads=2):
    q, kp, vp, kd, vd = project_qkv(h, w, b, spec)
    return causal_attention(q, kp, vp, kd, vd, n_heads=n_heads, scale=0.5)


def _inputs(t=5, d=8, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return (
        jax.random.normal(k1, (t, d)),
        0.3 * jax.random.normal(k2, (d, 3 * d)),
        0.1 * jax.random.normal(k3, (3 * d,)),
    )


def test_forward_bitwise_identical_across_specs():
    h, w, b = _inputs()
    ref = np.asarray(_attend(h, w, b, GRADIENT_SPECS["standard"]))
    for spec in [
        *GRADIENT_SPECS.values(),
        GradientSpec("input", "live"),
        GradientSpec("input", "input", False),
    ]:
        np.testing.assert_array_equal(np.asarray(_attend(h, w, b, spec)), ref)


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_attention_input_jacobian_is_block_diagonal_in_myopic_modes(mode):
    h, w, b = _inputs()
    jac = jax.jacrev(lambda x: _attend(x, w, b, GRADIENT_SPECS[mode]))(h)  # [T D T D]
    norms = np.abs(np.asarray(jac)).max(axis=(1, 3))  # [t, s]
    assert np.all(norms[~np.eye(5, dtype=bool)] == 0.0)
    assert np.all(np.diag(norms) > 0.0)
    standard = jax.jacrev(lambda x: _attend(x, w, b, GRADIENT_SPECS["standard"]))(h)
    std_norms = np.abs(np.asarray(standard)).max(axis=(1, 3))
    assert np.all(std_norms[np.tril(np.ones((5, 5), bool), -1)] > 0.0)  # negative control


def test_weight_gradients_follow_the_mode_definitions():
    h, w, b = _inputs()

    def grad_w(spec):
        return jax.grad(lambda w_: jnp.sum(_attend(h, w_, b, spec)[-1] ** 2))(w)

    g_std, g_my, g_kv = (
        np.asarray(grad_w(GRADIENT_SPECS[m])) for m in ("standard", "myopic", "myopic_kv")
    )
    # myopic keeps W_K/W_V live at past positions; past h is constant, so the last row's
    # weight gradient equals standard's (h does not depend on W here).
    np.testing.assert_allclose(g_my, g_std, rtol=1e-5, atol=1e-6)
    # myopic_kv stops past keys/values themselves: W_K/W_V see only the diagonal term.
    assert not np.allclose(g_kv[:, 8:], g_std[:, 8:])
    np.testing.assert_allclose(g_kv[:, :8], g_std[:, :8], rtol=1e-5, atol=1e-6)


def test_invalid_spec_is_rejected():
    with pytest.raises(ValueError, match="past_k"):
        GradientSpec("stop", "live")  # type: ignore[arg-type]
