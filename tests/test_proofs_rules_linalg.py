"""proofs.rules.linalg: a lower-triangular solve over positions is same-or-past (forward
substitution), an upper one reads the future; transposes and right-side solves flip it;
Cholesky reads the leading block."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import zones
from proofs.lattice import Position
from proofs.zones import U
from tests.proofs_rule_checks import T, X, check, rng

M = (np.tril(rng.normal(size=(T, T))) + 3 * np.eye(T)).astype(np.float32)
solve = jax.lax.linalg.triangular_solve


@pytest.mark.parametrize(
    "lower,transpose,expect",
    [(True, False, Position.PAST), (False, False, Position.ANY), (True, True, Position.ANY)],
)
def test_left_solve_follows_the_triangle(lower, transpose, expect):
    a = M if lower else M.T
    f = lambda x: solve(
        jnp.asarray(a, x.dtype), x, left_side=True, lower=lower, transpose_a=transpose
    )
    check(f, X, expect=expect)


def test_right_solve_runs_the_other_way():
    # x · M = b with M lower: x[:, i] reads b[:, j >= i]; positions on axis 1 here, so transpose
    f = lambda x: solve(jnp.asarray(M, x.dtype), x.T, left_side=False, lower=True).T
    check(f, X, expect=Position.ANY)
    g = lambda x: (
        solve(jnp.asarray(M.T, x.dtype), x.T, left_side=False, lower=False).T
    )  # upper: j <= i
    check(g, X, expect=Position.PAST)


def test_the_matrix_itself_is_read_up_to_the_row():
    # x[i] reads a[p, q] for p, q <= i: a matrix built from positions stays causal
    f = lambda x: solve(
        jnp.tril(x @ x.T) + 9.0 * jnp.eye(T), jnp.ones((T, 2)), left_side=True, lower=True
    )
    check(f, X, expect=Position.PAST)


def test_cholesky_reads_the_leading_block():
    f = lambda x: jnp.linalg.cholesky(x @ x.T + 4.0 * jnp.eye(T))
    # L[i, j] reads the block up to max(i, j); jnp.linalg.cholesky zeroes j > i (an exact tril)
    out = check(f, X, expect=Position.PAST)
    assert not zones.contains(out.dep, {0: 3, 1: 2, U: 4})  # L[3, 2] never reads x[4]
