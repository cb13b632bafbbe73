"""proofs.position_dependency: known answers, the model's attention in every gradient mode,
refusals, and each verdict checked against the measured Jacobian pattern."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import proofs
from myojax.attention import GRADIENT_SPECS, GradientSpec, causal_attention, project_qkv
from myojax.attention_fast import fast_attention
from proofs.fuzz.custom_vjp import measure_backward
from proofs.fuzz.differential import finest, measure

T, D = 6, 4
rng = np.random.default_rng(0)
X = jnp.asarray(rng.normal(size=(T, D)), jnp.float32)
LABELS = {"none", "same-position", "same-or-past", "any"}


def measured(fn, x, *args, program: str = "jvp") -> proofs.Position:
    """The finest verdict containing the numeric Jacobian pattern (float64), measured on the
    program analysed: tangents by jax.jvp, or cotangents by jax.vjp."""
    columns = list(range(x.shape[0]))
    with jax.enable_x64(True):
        x64 = jnp.asarray(x, jnp.float64)
        args64 = tuple(jnp.asarray(a, jnp.float64) for a in args)
        if program == "vjp":  # [t, s] over every output and input position
            _, pattern, _ = measure_backward(fn, x64, args64, range(len(fn(x64, *args64))), 0)
        else:
            _, pattern, _ = measure(fn, x64, args64, columns, seed=0)
    return finest(pattern, columns)


def tril_sum(x):
    return jnp.tril(jnp.ones((x.shape[0], x.shape[0]))) @ x


KNOWN = {
    "zeros": (lambda x: jnp.zeros_like(x), "none"),
    "stop_gradient": (lambda x: jax.lax.stop_gradient(x) * 2.0, "none"),
    "floor": (lambda x: jnp.floor(x), "none"),
    "elementwise": (lambda x: jnp.tanh(x) * x + jnp.exp(-(x**2)), "same-position"),
    "feature_sum": (lambda x: jnp.sum(x**2, axis=1), "same-position"),
    "eye_mask": (lambda x: jnp.eye(x.shape[0]) @ x, "same-position"),
    "cumsum": (lambda x: jnp.cumsum(x, axis=0), "same-or-past"),
    "tril_matmul": (tril_sum, "same-or-past"),
    "shift_back": (lambda x: jnp.concatenate([jnp.zeros((1, D)), x[:-1]]), "same-or-past"),
    "reverse_cumsum": (lambda x: jax.lax.cumsum(x, axis=0, reverse=True), "any"),
    "position_sum": (lambda x: x + jnp.sum(x, axis=0), "any"),
    "shift_ahead": (lambda x: x[1:], "any"),
    "flatten": (lambda x: jnp.cumsum(x.reshape(-1)).reshape(x.shape), "any"),
}


# With a symbolic T the concatenate after x[:-1] sits at an offset the analysis does not
# resolve, so it forgets the position relation: coarser, still sound.
SYMBOLIC_COARSER = {"shift_back": "any"}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_answers(name):
    fn, expected = KNOWN[name]
    got = proofs.position_dependency(fn, X)
    assert str(got) == expected and str(got) in LABELS
    assert measured(fn, X) <= got  # a proof may be coarser than the measurement, never finer
    symbolic = SYMBOLIC_COARSER.get(name, expected)
    assert str(proofs.position_dependency(fn, X, symbolic=True)) == symbolic


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_backward_program_gives_the_same_known_answers(name):
    """program="vjp" analyses what jax.vjp runs; its verdict means the same (t, s) pattern."""
    fn, expected = KNOWN[name]
    got = proofs.position_dependency(fn, X, program="vjp")
    assert measured(fn, X, program="vjp") <= got
    assert str(got) == expected


def test_verdicts_are_ordered_and_formatted():
    v = proofs.position_dependency(jnp.tanh, X)
    assert v == proofs.Position.SAME and v < proofs.Position.PAST
    assert f"{v}" == "same-position" and repr(v) != str(v)


def test_args_are_held_constant_and_abstract():
    """An array passed in args is any array: a mask passed in cannot be exploited; the same
    mask built inside the function from iota can."""
    mask = np.tril(np.ones((T, T), bool))
    passed = lambda x, m: jnp.sum(jnp.where(m[:, :, None], x[None], 0.0), axis=1)
    built = lambda x: passed(x, jnp.tril(jnp.ones((x.shape[0], x.shape[0]), bool)))
    assert str(proofs.position_dependency(passed, X, mask)) == "any"
    assert str(proofs.position_dependency(built, X)) == "same-or-past"
    scaled = lambda x, w, k: jnp.cumsum(x @ w, axis=0) * k  # k: a static Python number
    assert str(proofs.position_dependency(scaled, X, np.eye(D, dtype=np.float32), 2.0)) == (
        "same-or-past"
    )
    assert str(proofs.position_dependency(lambda x, a: a * 2.0, X, X)) == "none"


# ---- the model's attention, per gradient mode --------------------------------------------------


def attention(spec: GradientSpec):
    def fn(h, w_qkv, b_qkv):
        q, k, v, dk, dv = project_qkv(h, w_qkv, b_qkv, spec)
        return causal_attention(q, k, v, dk, dv, n_heads=2, scale=0.5)

    return fn


W = jnp.asarray(rng.normal(size=(D, 3 * D)) / 2.0, jnp.float32)
B = jnp.asarray(rng.normal(size=(3 * D,)), jnp.float32)
ATTENTION = {
    "standard": "same-or-past",
    "myopic": "same-position",
    "myopic_kv": "same-position",
}


@pytest.mark.parametrize("mode", sorted(ATTENTION))
@pytest.mark.parametrize("symbolic", [False, True])
def test_model_attention_in_each_gradient_mode(mode, symbolic):
    fn = attention(GRADIENT_SPECS[mode])
    got = proofs.position_dependency(fn, X, W, B, symbolic=symbolic)
    assert str(got) == ATTENTION[mode]
    assert measured(fn, X, W, B) == got  # exact here: the measured pattern is as coarse


@pytest.mark.parametrize("mode", sorted(ATTENTION))
def test_fast_attention_backward_program_in_each_gradient_mode(mode):
    """The fast attention's myopic modes are a custom VJP: only the backward program exists,
    and it is proven for every T; standard is the same-or-past negative control."""

    def fn(h, w_qkv, b_qkv):
        return fast_attention(
            *project_qkv(h, w_qkv, b_qkv, GRADIENT_SPECS[mode]), n_heads=2, scale=0.5
        )

    got = proofs.position_dependency(fn, X, W, B, symbolic=True, program="vjp")
    assert str(got) == ATTENTION[mode]
    assert measured(fn, X, W, B, program="vjp") == got


def test_standard_attention_needs_the_no_overflow_assumption():
    fn = attention(GRADIENT_SPECS["standard"])
    assert str(proofs.position_dependency(fn, X, W, B, assume=())) == "any"
    myopic = attention(GRADIENT_SPECS["myopic"])  # the myopic result needs no assumption
    assert str(proofs.position_dependency(myopic, X, W, B, assume=())) == "same-position"


def test_broken_myopic_variants_are_not_same_position():
    """Negative control: stopping only the keys leaves the values' past gradient live."""
    for spec in (GradientSpec("input", "live"), GradientSpec("live", "value")):
        fn = attention(spec)
        got = proofs.position_dependency(fn, X, W, B)
        assert str(got) == "same-or-past"
        assert measured(fn, X, W, B) == got


# ---- refusals and usage errors ------------------------------------------------------------------


def test_cannot_analyse_names_the_primitive_and_line():
    with pytest.raises(proofs.CannotAnalyse) as err:
        proofs.position_dependency(lambda x: jnp.linalg.eigvals(x[:3, :3]).real, X)
    assert err.value.primitive == "eig"
    assert "test_proofs_api.py:" in err.value.location
    assert "cannot analyse eig at" in str(err.value)


def test_usage_errors():
    with pytest.raises(TypeError):
        proofs.position_dependency(lambda x: x, jnp.arange(3))
    with pytest.raises(TypeError):
        proofs.position_dependency(lambda x: x, jnp.float32(1.0))
    with pytest.raises(ValueError, match="unknown assumption"):
        proofs.position_dependency(jnp.tanh, X, assume=("no_such_thing",))
