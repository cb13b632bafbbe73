"""proofs.rules.axes: ``remap`` ∃-projects may-facts and drops every must-fact that mentions a
projected axis (the issue-12 family: a fact on one row must not become a fact on every row);
``shift`` and ``broadcast_operand``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from proofs import zones
from proofs.lattice import Position, unknown
from proofs.rules.axes import broadcast_operand, remap, shift
from proofs.rules.base import Unsupported
from proofs.zones import U
from tests.proofs_rule_checks import T, X, check, iotas, live_exp, rng


def test_remap_keeps_a_must_fact_only_if_it_never_mentions_a_dropped_axis():
    on_row_0 = zones.region(zones.eq(0, 1))  # x_0 = x_1: mentions axis 0
    av = unknown(2, zones.region(zones.eq(U, 0))).with_(fill=(on_row_0, -1.0))
    dropped = remap(av, {1: 0}, 1)  # axis 0 projected out
    assert dropped.fill is None and dropped.dep == zones.TOP  # may-fact: ∃-projection
    renamed = remap(av, {0: 1, 1: 0}, 2)  # a transpose keeps it, renamed
    assert renamed.fill == (zones.region(zones.eq(1, 0)), -1.0)
    assert renamed.dep == zones.region(zones.eq(U, 1))


def test_shift_moves_a_region_along_one_axis():
    assert shift(zones.region(zones.eq(U, 0)), 0, 2) == zones.region(zones.eq(U, 0, 2))


def test_broadcast_operand_lifts_rank_zero_only():
    assert broadcast_operand(unknown(0), 2).rank == 2
    with pytest.raises(Unsupported):
        broadcast_operand(unknown(1), 2)


# ---- regressions: the must-fact family of issue 12 ---------------------------------------------
# Each function really mixes positions, and before the fix the analyser claimed a finer pattern
# than the numeric Jacobian shows; ``check`` asserts soundness before the verdict.


def test_must_fact_is_not_stretched_from_a_size_one_axis():
    # s[t, 0] is -1e30 for t > 0 only: stretching the size-1 axis must not make it "fill on
    # every row". Row 0 of the output reads x at every position.
    def f(x):
        i, j = iotas((T, 1))
        s = jnp.where(i > j, -1e30, x[:, :1])
        return live_exp(jnp.broadcast_to(s, (T, T)), x[:1, :1]) * x[:, 0][None, :]

    check(f, X, expect=Position.ANY)


def test_must_fact_is_dropped_by_a_reshape_merge():
    # fill on the strict upper triangle of each [2, 2] block is not fill on the merged [T, 4]
    x4 = rng.normal(size=(T, 4)).astype(np.float32)

    def f(x):
        i, j = iotas((T, 2, 2), (1, 2))
        s = jnp.where(j > i, -1e30, x.reshape(T, 2, 2)).reshape(T, 4)
        return live_exp(s, x[:, :1]) @ x.T  # out[t, s'] = Σ_k e[t, k] x[s', k]

    check(f, x4, expect=Position.ANY)


def test_must_fact_is_dropped_by_a_squeeze():
    def f(x):  # out[t] = e[t] · Σ_s x[s], e[0] = exp(x[0, 0]) and e[t > 0] = 0
        i, j = iotas((1, T))
        s = jnp.where(j > i, -1e30, x[:, 0][None, :])  # [1, T]: only column 0 is live
        e = live_exp(jnp.squeeze(s, 0), x[0, 0])
        return e[:, None] * jnp.sum(x, axis=0, keepdims=True)

    check(f, X, expect=Position.ANY)
