"""proofs.rules.elementwise: unary functions and arithmetic stay local; a zero factor absorbs;
exp of a value far below its bound is exactly zero."""

from __future__ import annotations

import jax.numpy as jnp

from proofs import zones
from proofs.lattice import Position
from tests.proofs_rule_checks import A, T, X, check, iotas


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
