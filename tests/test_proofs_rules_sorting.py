"""proofs.rules.sorting: a sort or top_k mixes positions only along the axis it sorts."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from proofs import position_dependency
from proofs.lattice import Position
from tests.proofs_rule_checks import X, check


def test_sort_mixes_only_along_the_sorted_axis():
    check(lambda x: jnp.sort(x, axis=1), X, expect=Position.SAME)
    check(lambda x: jnp.sort(x, axis=0), X, expect=Position.ANY)


def test_argsort_gather_mixes_only_along_the_sorted_axis():
    # the indices depend on x row by row: the gather keeps that (index batch axes carried)
    f = lambda x: jnp.take_along_axis(x, jnp.argsort(x, axis=1), axis=1)
    check(f, X, expect=Position.SAME)
    assert position_dependency(f, X) == Position.SAME  # the JVP: indices from the primal
    g = lambda x: jnp.take_along_axis(x, jnp.argsort(x, axis=0), axis=0)
    check(g, X, expect=Position.ANY)


def test_keys_decide_where_every_operand_lands():
    # sorting the features of a by keys from x: a's rows depend on x's rows (same position)
    f = lambda x: jax.lax.sort((x, jnp.ones_like(x) * 2.0), dimension=1, num_keys=1)[1] * x
    check(f, X, expect=Position.SAME)


def test_top_k_mixes_only_along_its_axis():
    check(lambda x: jax.lax.top_k(x, 2)[0], X, expect=Position.SAME)
    check(lambda x: jax.lax.top_k(x.T, 2)[0].T, X, expect=Position.ANY)
