"""proofs.rules.shapes: transposes, broadcasts, squeezes and row-major reshapes carry positions;
a reshape that merges the position axis and a reversal forget them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from proofs import position_dependency
from proofs.lattice import Position
from proofs.rules.shapes import reshape_axis_map
from tests.proofs_rule_checks import D, T, X, check, rng


def test_transpose_broadcast_and_split_reshape_keep_positions():
    check(
        lambda x: jnp.transpose(x.reshape(T, D, 1), (2, 1, 0)).sum((0, 1)), X, expect=Position.SAME
    )
    check(lambda x: jnp.broadcast_to(x[:, None, :], (T, 2, D)).sum((1, 2)), X, expect=Position.SAME)
    x4 = rng.normal(size=(T, 4)).astype(np.float32)
    check(lambda x: x.reshape(T, 2, 2).sum((1, 2)), x4, expect=Position.SAME)


def test_reshape_that_merges_the_position_axis_must_not_stay_local():
    check(lambda x: x.reshape(-1).reshape(D, T).sum(0), X, expect=Position.ANY)


def test_reshape_with_dimensions_transposes_first():
    f = lambda x: jax.lax.reshape(x, (D, T), dimensions=(1, 0)).T * 2.0  # the transpose of x.T
    check(f, X, expect=Position.SAME)
    prod = lambda x: jnp.prod(jnp.tanh(x), axis=1)  # its JVP reshapes with dimensions
    assert str(position_dependency(prod, X)) == "same-position"


def test_reshape_axis_map():
    assert reshape_axis_map((5, 6), (5, 2, 3)) == {0: 0}
    assert reshape_axis_map((5, 2, 3), (5, 6)) == {0: 0}
    assert reshape_axis_map((5, 6), (30,)) == {}
    assert reshape_axis_map((1, 5), (5,)) == {1: 0}


def test_squeeze():
    check(lambda x: jnp.squeeze(x[:, None, :], axis=1), X, expect=Position.SAME)


def test_rev_forgets_the_reversed_axis_only():
    check(lambda x: x[::-1], X, expect=Position.ANY)
    check(lambda x: x[:, ::-1] * 2.0, X, expect=Position.SAME)  # features reversed: still local


def test_stack_carries_every_other_axis():
    check(lambda x: jnp.stack([x, 2.0 * x], axis=1).sum(1), X, expect=Position.SAME)
    check(lambda x: jnp.stack([x, x[::-1]], axis=0)[0], X, expect=Position.ANY)


def test_tile_forgets_only_repeated_axes():
    check(lambda x: jnp.tile(x, (1, 2)), X, expect=Position.SAME)
    check(lambda x: jnp.tile(x, (2, 1))[: x.shape[0]], X, expect=Position.ANY)


def test_diag_through_platform_index():
    # jnp.diag of a matrix picks its lowering by platform_index (a cond over platforms)
    check(lambda x: jnp.diag(x @ x.T)[:, None] * x, X, expect=Position.SAME)
