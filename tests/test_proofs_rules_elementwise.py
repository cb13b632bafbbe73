"""proofs.rules.elementwise: unary functions and arithmetic stay local; a zero factor absorbs;
exp of a value far below its bound is exactly zero; integer wrap-around and integer division by
zero make no claim (issue 25), each checked against the old rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import zones
from proofs.lattice import Position, classify
from tests.proofs_old_rules import patch_old_rule
from tests.proofs_rule_checks import (
    A,
    T,
    X,
    analyse,
    assert_sound,
    check,
    iotas,
    measured_pattern,
    rng,
    verdict,
)


def test_elementwise_ops_stay_local():
    check(lambda x: jnp.tanh(x * 2.0 + 1.0) / (1.0 + jnp.exp(x)) - x**3, X, expect=Position.SAME)


def test_mul_by_zero_region_removes_dependency():
    # x_t * 0 for every t: no dependency at all
    out = check(lambda x: x * jnp.zeros_like(x), X, expect=Position.NONE)
    assert out.dep == zones.BOTTOM


def test_exp_underflows_to_exactly_zero_below_the_bound():
    # s - max(A, 0) <= fill off the diagonal; with fill = -1e30 exp is exactly 0 there, so the
    # product with x[s] keeps only the diagonal
    def f(x, fill=-1e30):
        i, j = iotas((T, T))
        s = jnp.where(i == j, x[:, :1], fill)
        return jnp.sum(jnp.exp(s - jnp.maximum(A, 0.0)) * x[None, :, 0], axis=1)

    check(f, X, expect=Position.SAME)
    # negative control: exp(-1 - max(A, 0)) > 0, so every x[s] reaches every row
    check(lambda x: f(x, fill=-1.0), X, expect=Position.ANY)


# ---- integer edge cases (issue 25): each program fails on the old rule (test_..._old_rules) ----

T_INT = 5


def wrapped_masked_difference(x, a, dtype=jnp.int16):
    """exp((where(s <= t, 0, INT_MIN) - max(a, 0)).astype(float)) · x: with a = INT_MAX the
    masked entries wrap around to INT_MIN - INT_MAX = 1, so exp is 1 there, not 0: out[t] reads
    x[s > t]."""
    i, j = iotas((T_INT, T_INT))
    live = (a * 0.0).astype(dtype)
    s = jnp.where(i >= j, live, jnp.iinfo(dtype).min)
    m = jnp.maximum(a.astype(dtype), jnp.asarray(0, dtype))
    return jnp.exp((s - m).astype(x.dtype)) @ x


def mix_over_zero_count(x, a):
    """eye // count with a data-dependent count that is 0: XLA's integer 0/0 is -1, so every
    weight off the diagonal is -1 and out[t] reads every x[s]."""
    i, j = iotas((T_INT, T_INT))
    count = jnp.sum(a > 1e6).astype(jnp.int32)
    return jax.lax.div((i == j).astype(jnp.int32), count).astype(x.dtype) @ x


INT_EDGE_PROGRAMS = {
    "int16-wrap": (wrapped_masked_difference, np.full((T_INT, T_INT), 32767.0, np.float32)),
    "int32-wrap": (
        lambda x, a: wrapped_masked_difference(x, a, jnp.int32),
        np.full((T_INT, T_INT), 2.0**31 - 1, np.float64),
    ),
    "int-div-by-zero": (mix_over_zero_count, np.zeros((T_INT, T_INT), np.float32)),
}
X_INT = rng.normal(size=(T_INT, 2)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(INT_EDGE_PROGRAMS))
def test_integer_edge_cases_are_not_claimed_local(name):
    f, a = INT_EDGE_PROGRAMS[name]
    with jax.enable_x64(True):  # int32 -> float64 keeps every value: the bound would survive
        out, _ = analyse(f, X_INT.astype(np.float64), a, allowed={"no_overflow"})
        assert_sound(out, measured_pattern(f, X_INT, a))
    assert classify(out.dep) == Position.ANY


@pytest.mark.parametrize("name", sorted(INT_EDGE_PROGRAMS))
def test_integer_edge_programs_catch_the_old_rules(name, monkeypatch):
    """Negative control: with the old sub / div rules the same programs get an unsound verdict
    (the measured Jacobian has an entry outside the analysed dependency)."""
    f, a = INT_EDGE_PROGRAMS[name]
    patch_old_rule(monkeypatch, "div" if "div" in name else "sub")
    with jax.enable_x64(True), pytest.raises(AssertionError, match="not in"):
        out, _ = analyse(f, X_INT.astype(np.float64), a, allowed={"no_overflow"})
        assert_sound(out, measured_pattern(f, X_INT, a))


def test_division_keeps_its_zero_claim_where_the_divisor_is_nonzero():
    # negative control for precision: an integer divisor that is a nonzero constant cannot make
    # 0/b nonzero, and float division keeps 0/b = 0 (finite values)
    def f(x, a, divisor):
        i, j = iotas((T_INT, T_INT))
        return jax.lax.div((i == j).astype(a.dtype), divisor(a)).astype(x.dtype) @ x

    ints = np.ones((T_INT, T_INT), np.int32)
    assert verdict(lambda x, a: f(x, a, lambda a: jnp.int32(3)), X_INT, ints) == Position.SAME
    floats = np.ones((T_INT, T_INT), np.float32)
    assert verdict(lambda x, a: f(x, a, lambda a: a), X_INT, floats) == Position.SAME
    assert verdict(lambda x, a: f(x, a, lambda a: a), X_INT, ints) == Position.ANY


def test_index_survives_multiplication_by_one_and_whole_number_offsets():
    # jnp.arange(T) with a symbolic T lowers to iota · 1 (+ 0): the mask stays exact
    def f(x, one=1, offset=0.0):
        i, j = iotas((T, T), dtype=jnp.float32)
        return jnp.where(i * one + offset >= j + offset, 1.0, 0.0) @ x

    check(f, X, expect=Position.PAST)
    check(lambda x: f(x, offset=3.0), X, expect=Position.PAST)
    check(lambda x: f(x, one=2), X, expect=Position.ANY)  # 2i >= j is not a zone: no claim
