"""proofs.rules.contractions: dot_general keeps batch axes, and a zero factor (an eye mask)
absorbs the other operand's dependency."""

from __future__ import annotations

import jax.numpy as jnp

from proofs.lattice import Position
from tests.proofs_rule_checks import A, T, X, check


def test_dot_general_with_unknown_matrix_mixes_positions():
    check(lambda x: A @ x, X, expect=Position.ANY)


def test_dot_general_with_eye_times_matrix_stays_local():
    check(lambda x: (A * jnp.eye(T)) @ x, X, expect=Position.SAME)


def test_dot_general_batch_axes_keep_positions():
    check(lambda x: jnp.einsum("td,td->t", x, x), X, expect=Position.SAME)
    check(lambda x: jnp.einsum("td,sd->ts", x, x).sum(1), X, expect=Position.ANY)
