"""proofs.rules.reductions: sums over positions mix, over features stay local; cumulative ops
are causal one way; a masked reduce_max bounds a softmax (only under no_overflow, only with an
exact mask that leaves a live entry in every row)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from proofs import zones
from proofs.lattice import Position, classify
from proofs.zones import U
from tests.proofs_rule_checks import (
    T,
    X,
    analyse,
    assert_sound,
    check,
    iotas,
    measured_pattern,
)


def test_reductions_over_features_stay_local():
    check(lambda x: jnp.sum(x**2, axis=1) / jnp.max(x, axis=1), X, expect=Position.SAME)


def test_reduction_over_positions_loses_locality():
    out = check(lambda x: jnp.sum(x, axis=0), X, expect=Position.ANY)
    assert out.dep == zones.TOP


def test_cumsum_is_causal_and_reverse_cumsum_is_not():
    check(lambda x: jnp.cumsum(x, axis=0), X, expect=Position.PAST)
    out = check(lambda x: jax.lax.cumsum(x, axis=0, reverse=True), X, expect=Position.ANY)
    assert zones.contains(out.dep, {0: 1, U: 3}) and not zones.contains(out.dep, {0: 3, U: 1})
    check(lambda x: jax.lax.cummax(x, axis=0), X, expect=Position.PAST)


def masked_softmax_mix(x):
    scores = x @ x.T  # [t, s]
    masked = jnp.where(jnp.tril(jnp.ones((T, T), bool)), scores, jnp.finfo(scores.dtype).min)
    return jax.nn.softmax(masked, axis=-1) @ x


def test_masked_softmax_is_causal_only_under_the_no_overflow_assumption():
    out, an = analyse(masked_softmax_mix, X)
    assert classify(out.dep) == Position.ANY and not an.used  # no assumption: exp(min - m) > 0
    check(masked_softmax_mix, X, expect=Position.PAST, allowed={"no_overflow"})


def test_underflow_rule_needs_an_exact_mask():
    mask = np.tril(np.ones((T, T), bool))

    def data_mask(x, m):
        masked = jnp.where(m, x @ x.T, jnp.finfo(jnp.float32).min)
        return jax.nn.softmax(masked, axis=-1) @ x

    out, _ = analyse(data_mask, X, mask, allowed={"no_overflow"})
    assert classify(out.dep) == Position.ANY


def test_covering_needs_every_row_to_meet_the_line():
    # [T, S] eye mask with S < T: rows t >= S are entirely fill, their softmax is uniform over
    # s < S, so out[t] mixes positions even under the no-overflow assumption
    s_len = 3

    def f(x):
        i, j = iotas((T, s_len))
        scores = x[:, :1] * x[:s_len, 0][None, :]
        masked = jnp.where(i == j, scores, jnp.finfo(jnp.float32).min)
        return jax.nn.softmax(masked, axis=1) @ x[:s_len]

    out, an = analyse(f, X, allowed={"no_overflow"})
    assert_sound(out, measured_pattern(f, X))
    assert classify(out.dep) == Position.ANY and "no_overflow" not in an.used
    # negative control: the square eye mask covers every row and is proven same-position
    square = lambda x: (
        jax.nn.softmax(
            jnp.where(
                jnp.eye(T, dtype=bool), x[:, :1] * x[:, 0][None, :], jnp.finfo(jnp.float32).min
            ),
            axis=1,
        )
        @ x
    )
    check(square, X, expect=Position.SAME, allowed={"no_overflow"})
