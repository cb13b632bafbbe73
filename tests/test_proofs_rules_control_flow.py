"""proofs.rules.control_flow: nested jaxprs (jit, closed_call, remat, custom_jvp/vjp, cond) are
entered, and the scan fixed point covers every number of iterations."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from proofs import zones
from proofs.lattice import Position, classify
from proofs.zones import U
from tests.proofs_rule_checks import (
    A,
    D,
    T,
    X,
    analyse,
    analyse_all,
    assert_sound,
    iotas,
    live_exp,
    measured_pattern,
    verdict,
)


def past_sum(x):
    return jnp.tril(jnp.ones((T, T))) @ x


def test_jit_and_closed_call_are_entered():
    assert verdict(jax.jit(past_sum), X) == Position.PAST
    assert verdict(jax.jit(lambda x: jnp.sin(x)), X) == Position.SAME


def test_remat_is_entered():
    assert verdict(jax.checkpoint(past_sum), X) == Position.PAST
    assert verdict(jax.checkpoint(jnp.tanh), X) == Position.SAME


def test_custom_jvp_and_vjp_calls_are_analysed_by_their_primal_jaxpr():
    @jax.custom_jvp
    def f(x):
        return past_sum(x)

    f.defjvp(lambda p, t: (f(p[0]), t[0]))  # a (wrong) jvp rule: not what is analysed

    @jax.custom_vjp
    def g(x):
        return x * 2.0

    g.defvjp(lambda x: (g(x), None), lambda _, ct: (ct,))
    assert verdict(f, X) == Position.PAST
    assert verdict(g, X) == Position.SAME


def test_cond_joins_branches():
    f = lambda x, p: jax.lax.cond(p, past_sum, jnp.tanh, x)
    assert verdict(f, X, True) == Position.PAST


def test_cond_with_a_dependent_index_taints_every_output():
    f = lambda x: jax.lax.cond(x[0, 0] > 0, jnp.tanh, jnp.sin, x)  # each branch is local
    assert verdict(f, X) == Position.ANY


def test_scan_fixed_point_covers_every_length():
    """A carry that moves one position per step reaches every past position — for any
    number of steps, so the fixed point must widen beyond 'same-or-one-back'."""

    def shift_down(c, _):
        return jnp.concatenate([jnp.zeros((1, D)), c[:-1]]) + c, None

    for length in (1, 3):
        f = lambda x, n=length: jax.lax.scan(shift_down, x, None, length=n)[0]
        (out, *_), _ = analyse_all(f, X)
        assert classify(out.dep) == Position.PAST
        assert zones.contains(out.dep, {0: 4, U: 0})  # 4 steps back: needs the fixed point


def test_scan_with_local_body_stays_local_and_ys_are_stacked():
    def body(c, x_l):
        return jnp.tanh(c) + x_l, c * 2.0

    f = lambda x: jax.lax.scan(body, x, jnp.broadcast_to(x, (2, T, D)))
    (carry, ys), _ = analyse_all(f, X)
    assert classify(carry.dep) == Position.SAME
    assert classify(ys.dep, axis=1) == Position.SAME  # [layers, T, D]: positions on axis 1


def test_must_fact_is_not_taken_from_one_row_of_a_scans_xs():
    # xs = an upper-masked grid of data; each iteration sees one row, whose fill region depends
    # on the iteration: it is not "the whole row is fill", so e · x keeps x. Since issue 25 the
    # iteration is a variable: row i's fill region is {s > i}, so ys[i] reads x[s <= i] exactly.
    def f(x, a):
        i, j = iotas((T, T))
        grid = jnp.where(j > i, -1e30, a)

        def body(c, row):
            return c, jnp.sum(live_exp(row, c) * x[:, 0])

        return jax.lax.scan(body, jnp.float32(0.0), grid)[1]

    out, _ = analyse(f, X, A)
    assert classify(out.dep) == Position.PAST  # was NONE: every row of e claimed exactly 0
    assert_sound(out, measured_pattern(lambda x: f(x, A), X))


def test_while_loop_is_a_fixed_point():
    double = lambda x: jax.lax.while_loop(
        lambda c: c[1] < 3, lambda c: (2.0 * c[0], c[1] + 1), (x, 0)
    )
    assert verdict(lambda x: double(x)[0], X) == Position.SAME
    cumulate = lambda c: (c[0] + jnp.cumsum(c[0], axis=0), c[1] + 1)
    f = lambda x: jax.lax.while_loop(lambda c: c[1] < 3, cumulate, (x, 0))[0]
    out, _ = analyse(f, X)
    assert_sound(out, measured_pattern(f, X))
    assert classify(out.dep) == Position.PAST


def test_while_loop_whose_trip_count_reads_data_depends_on_it():
    # the predicate reads x[0]: how often the rows are doubled depends on it
    f = lambda x: jax.lax.while_loop(lambda c: c[0, 0] < 3.0, lambda c: 2.0 * c, x + 4.0)
    out, _ = analyse(f, X)
    assert_sound(out, measured_pattern(f, X - 4.0))
    assert classify(out.dep) == Position.ANY and zones.contains(out.dep, {0: 3, U: 0})


def test_scan_over_positions_with_a_causal_carry_is_same_or_past():
    # a running state over positions: ys[i] reads xs[j <= i] through the carry (iteration i is
    # a variable, the carry into i is the carry out of i - 1)
    def running(x, reverse=False):
        body = lambda c, row: (jnp.tanh(c + row), jnp.tanh(c + row))
        return jax.lax.scan(body, jnp.zeros(x.shape[1:], x.dtype), x, reverse=reverse)[1]

    out = check_scan(running)
    assert classify(out.dep) == Position.PAST
    back = check_scan(lambda x: running(x, reverse=True))
    assert classify(back.dep) == Position.ANY and not zones.contains(back.dep, {0: 3, U: 1})
    # a carry that ignores its input: each row alone
    same = check_scan(lambda x: jax.lax.scan(lambda c, r: (c, 2.0 * r + c), jnp.zeros(D), x)[1])
    assert classify(same.dep) == Position.SAME


def test_scan_final_carry_and_shifted_rows():
    # the carry out of the loop has read every row; ys[i] = the carry into i reads rows < i
    f = lambda x: jax.lax.scan(lambda c, r: (c + r, c), jnp.zeros(D), x)
    last, _ = analyse(lambda x: f(x)[0], X)
    assert zones.contains(last.dep, {0: 0, U: T - 1})
    before = check_scan(lambda x: f(x)[1])
    assert not zones.contains(before.dep, {0: 2, U: 2}) and zones.contains(before.dep, {0: 2, U: 1})


def check_scan(f):
    out, _ = analyse(f, X)
    assert_sound(out, measured_pattern(f, X))
    return out


def test_cond_with_a_constant_predicate_runs_its_branch():
    f = lambda p: lambda x: jax.lax.cond(p, lambda y: 2.0 * y, lambda y: jnp.cumsum(y, 0), x)
    assert verdict(f(True), X) == Position.SAME
    assert verdict(f(False), X) == Position.PAST
    assert verdict(lambda x: f(x[0, 0] > 0)(x), X) == Position.ANY  # δ picks the branch
