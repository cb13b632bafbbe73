"""proofs.rules.masks: iota-built masks (tril, eye, offsets) restrict a dependency exactly; a
data mask never does; an eye mask is a diagonal route."""

from __future__ import annotations

import jax.numpy as jnp

from proofs import zones
from proofs.lattice import Position, classify
from proofs.zones import U
from tests.proofs_rule_checks import A, T, X, analyse, assert_sound, check, measured_pattern


def test_select_with_causal_iota_mask_restricts_to_the_past():
    f = lambda x: jnp.sum(
        jnp.where(jnp.tril(jnp.ones((T, T), bool))[:, :, None], x[None, :, :] * A[:, :, None], 0.0),
        axis=1,
    )
    check(f, X, expect=Position.PAST)


def test_select_with_eye_mask_keeps_the_diagonal_and_routes_it():
    f = lambda x: jnp.sum(
        jnp.where(jnp.eye(T, dtype=bool)[:, :, None], x[None, :, :] * A[:, :, None], 0.0), axis=1
    )
    out = check(f, X, expect=Position.SAME)
    assert out.routed  # the dependency passed the grid diagonal


def test_select_with_data_mask_must_not_restrict():
    """A mask computed from data is unknown: the rule must keep every case's dependency."""
    mask = A > 0
    f = lambda x, m: jnp.sum(jnp.where(m[:, :, None], x[None, :, :] * A[:, :, None], 0.0), axis=1)
    out, _ = analyse(f, X, mask)
    assert classify(out.dep) == Position.ANY
    assert_sound(out, measured_pattern(lambda x: f(x, mask), X))


def test_mask_offsets_are_tracked():
    # jnp.tril(k=-1): strictly past, and a shifted mask s <= t + 1 reaches one step ahead
    strict = lambda x: jnp.tril(jnp.ones((T, T)), k=-1) @ x
    out = check(strict, X, expect=Position.PAST)
    assert not zones.contains(out.dep, {0: 2, U: 2})
    ahead = lambda x: jnp.tril(jnp.ones((T, T)), k=1) @ x
    check(ahead, X, expect=Position.ANY)


def test_an_index_against_a_constant_is_decided_by_indices_being_non_negative():
    # jnp's index normalisation where(i < 0, i + n, i) keeps the iota, so x[arange] is exact
    check(lambda x: x[jnp.arange(T)], X, expect=Position.SAME)
    check(lambda x: jnp.diag(x @ x.T)[:, None] * x, X, expect=Position.SAME)
    # i >= 1 is not decided (false at i = 0): the data-free mask is unknown, not a region
    i = lambda: jnp.arange(T)[:, None]
    check(lambda x: jnp.where(i() >= 1, x, 0.0) + x, X, expect=Position.SAME)
    check(lambda x: jnp.where(i() >= 1, x[::-1], 0.0), X, expect=Position.ANY)
