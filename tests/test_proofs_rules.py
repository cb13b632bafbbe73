"""proofs.rules: every transfer rule on small hand-written functions.

Each case is checked two ways: the analysed dependency must *contain* the numerically measured
Jacobian pattern (soundness), and its verdict must be the expected one (precision) — including
functions that a rule must refuse to call local (data masks, shifts, merges, reverse scans).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import position_dependency, zones
from proofs.interpreter import Analysis, CannotAnalyse, eval_closed
from proofs.lattice import AVal, Position, classify, unknown
from proofs.rules import reshape_axis_map
from proofs.zones import U

T, D = 5, 3  # sequence length and a feature size that differs from it


def analyse(f, *args, allowed=frozenset(), position_size=T) -> tuple[AVal, Analysis]:
    """Abstract output 0 of f, where args[0] is the differentiated input (positions on axis 0)."""
    closed = jax.make_jaxpr(f)(*args)
    ins = [unknown(np.ndim(a)) for a in args]
    ins[0] = unknown(np.ndim(args[0]), zones.region(zones.eq(U, 0)))
    an = Analysis(position_size, frozenset(allowed))
    return eval_closed(closed, ins, an)[0], an


def measured_pattern(f, *args) -> np.ndarray:
    """Boolean [*out_shape, T]: |∂out/∂x[u, ...]| > 0 somewhere over x's other axes."""
    with jax.enable_x64(True):
        args64 = [
            jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a
            for a in args
        ]
        jac = np.asarray(jax.jacfwd(f)(*args64))
    out_ndim = jac.ndim - np.ndim(args[0])
    jac = np.abs(jac).reshape(*jac.shape[: out_ndim + 1], -1).sum(-1)
    return jac > 0


def assert_sound(out: AVal, pattern: np.ndarray) -> None:
    for idx in zip(*np.nonzero(pattern)):
        *where, u = (int(i) for i in idx)
        point = {U: u, **dict(enumerate(where))}
        assert zones.contains(out.dep, point), f"measured dependency {point} not in {out.dep}"


def check(f, *args, expect: Position, allowed=frozenset()) -> AVal:
    out, _ = analyse(f, *args, allowed=allowed)
    assert_sound(out, measured_pattern(f, *args))
    assert classify(out.dep) == expect, classify(out.dep)
    return out


rng = np.random.default_rng(0)
X = rng.normal(size=(T, D)).astype(np.float32)
A = rng.normal(size=(T, T)).astype(np.float32)


# ---- elementwise ---------------------------------------------------------------------------------


def test_elementwise_ops_stay_local():
    check(lambda x: jnp.tanh(x * 2.0 + 1.0) / (1.0 + jnp.exp(x)) - x**3, X, expect=Position.SAME)


def test_reductions_over_features_stay_local():
    check(lambda x: jnp.sum(x**2, axis=1) / jnp.max(x, axis=1), X, expect=Position.SAME)


def test_mul_by_zero_region_removes_dependency():
    # x_t * 0 for every t: no dependency at all
    out = check(lambda x: x * jnp.zeros_like(x), X, expect=Position.NONE)
    assert out.dep == zones.BOTTOM


# ---- masks: select_n with iota-built predicates --------------------------------------------------


def grid(x):
    return x[:, None, :] * jnp.ones((1, T, 1)) + 0.0 * x[None, :, :]  # depends on t and s


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


# ---- contractions --------------------------------------------------------------------------------


def test_dot_general_with_unknown_matrix_mixes_positions():
    check(lambda x: A @ x, X, expect=Position.ANY)


def test_dot_general_with_eye_times_matrix_stays_local():
    check(lambda x: (A * jnp.eye(T)) @ x, X, expect=Position.SAME)


def test_dot_general_batch_axes_keep_positions():
    check(lambda x: jnp.einsum("td,td->t", x, x), X, expect=Position.SAME)
    check(lambda x: jnp.einsum("td,sd->ts", x, x).sum(1), X, expect=Position.ANY)


def test_reduction_over_positions_loses_locality():
    out = check(lambda x: jnp.sum(x, axis=0), X, expect=Position.ANY)
    assert out.dep == zones.TOP


def test_cumsum_is_causal_and_reverse_cumsum_is_not():
    check(lambda x: jnp.cumsum(x, axis=0), X, expect=Position.PAST)
    out = check(lambda x: jax.lax.cumsum(x, axis=0, reverse=True), X, expect=Position.ANY)
    assert zones.contains(out.dep, {0: 1, U: 3}) and not zones.contains(out.dep, {0: 3, U: 1})
    check(lambda x: jax.lax.cummax(x, axis=0), X, expect=Position.PAST)


# ---- shape operations ----------------------------------------------------------------------------


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


def test_slice_shifts_positions():
    out = check(lambda x: x[1:], X, expect=Position.ANY)  # out[t] = x[t + 1]: the future
    assert out.dep == zones.region(zones.eq(U, 0, 1))


def test_concatenate_shifts_each_block():
    # out[o] = x[o] for o < T and 2·x[o - T] after: a dependency T steps back
    out = check(lambda x: jnp.concatenate([x, 2.0 * x]), X, expect=Position.PAST)
    assert zones.contains(out.dep, {0: T + 2, U: 2})
    assert not zones.contains(out.dep, {0: 2, U: 3})


def test_pad_shifts_positions_and_rev_forgets_them():
    out = check(lambda x: jnp.pad(x, ((2, 0), (0, 0)))[:T], X, expect=Position.PAST)
    assert out.dep == zones.region(zones.eq(U, 0, -2))  # out[t] = x[t - 2]
    check(lambda x: jnp.pad(x, ((0, 1), (1, 1)), constant_values=1.0)[1:], X, expect=Position.ANY)
    check(lambda x: jax.lax.pad(x, 0.0, ((0, 0, 1), (0, 0, 0))), X, expect=Position.ANY)
    check(lambda x: x[::-1], X, expect=Position.ANY)
    check(lambda x: x[:, ::-1] * 2.0, X, expect=Position.SAME)  # features reversed: still local


def test_squeeze():
    check(lambda x: jnp.squeeze(x[:, None, :], axis=1), X, expect=Position.SAME)


# ---- gathers -------------------------------------------------------------------------------------


def test_take_along_axis_keeps_rows():
    idx = jnp.asarray(rng.integers(0, D, size=(T, 1)))
    check(lambda x: jnp.take_along_axis(x, idx, axis=1)[:, 0], X, expect=Position.SAME)


def test_gather_with_data_indices_along_positions_mixes():
    idx = jnp.asarray([4, 0, 3, 1, 2])
    check(lambda x: x[idx], X, expect=Position.ANY)


# ---- the softmax underflow rule (standard attention's causality) ---------------------------------


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


# ---- refusals ------------------------------------------------------------------------------------


def test_unknown_primitive_is_refused_with_a_location():
    with pytest.raises(CannotAnalyse) as err:
        analyse(lambda x: jnp.sort(x, axis=0), X)
    assert err.value.primitive == "sort"
    assert "test_proofs_rules.py" in err.value.location
    with pytest.raises(CannotAnalyse, match="cannot analyse while at .*test_proofs_rules.py"):
        analyse(lambda x: jax.lax.while_loop(lambda c: c[0, 0] < 3.0, lambda c: c + 1.0, x), X)


# ---- regressions: the three unsound rule families (issue 12) -------------------------------------
# Each function really mixes positions, and before the fixes the analyser claimed a finer
# pattern than the numeric Jacobian shows; ``check`` asserts soundness before the verdict.


def _live_exp(s, x):
    """exp(s - max(0·x, 0)): the subtracted row max has lb = 0, so a -1e30 fill gets an ub."""
    return jnp.exp(s - jnp.maximum(x * 0.0, 0.0))


def _iotas(shape, dims=(0, 1), dtype=jnp.int32):
    return [jax.lax.broadcasted_iota(dtype, shape, d) for d in dims]


def test_must_fact_is_not_stretched_from_a_size_one_axis():
    # s[t, 0] is -1e30 for t > 0 only: stretching the size-1 axis must not make it "fill on
    # every row". Row 0 of the output reads x at every position.
    def f(x):
        i, j = _iotas((T, 1))
        s = jnp.where(i > j, -1e30, x[:, :1])
        return _live_exp(jnp.broadcast_to(s, (T, T)), x[:1, :1]) * x[:, 0][None, :]

    check(f, X, expect=Position.ANY)


def test_must_fact_is_dropped_by_a_reshape_merge():
    # fill on the strict upper triangle of each [2, 2] block is not fill on the merged [T, 4]
    x4 = rng.normal(size=(T, 4)).astype(np.float32)

    def f(x):
        i, j = _iotas((T, 2, 2), (1, 2))
        s = jnp.where(j > i, -1e30, x.reshape(T, 2, 2)).reshape(T, 4)
        return _live_exp(s, x[:, :1]) @ x.T  # out[t, s'] = Σ_k e[t, k] x[s', k]

    check(f, x4, expect=Position.ANY)


def test_must_fact_is_dropped_by_a_squeeze():
    def f(x):  # out[t] = e[t] · Σ_s x[s], e[0] = exp(x[0, 0]) and e[t > 0] = 0
        i, j = _iotas((1, T))
        s = jnp.where(j > i, -1e30, x[:, 0][None, :])  # [1, T]: only column 0 is live
        e = _live_exp(jnp.squeeze(s, 0), x[0, 0])
        return e[:, None] * jnp.sum(x, axis=0, keepdims=True)

    check(f, X, expect=Position.ANY)


def test_must_fact_is_not_taken_from_one_row_of_a_scans_xs():
    # xs = an upper-masked grid of data; each iteration sees one row, whose fill region depends
    # on the (unknown) iteration: it is not "the whole row is fill", so e · x keeps x.
    def f(x, a):
        i, j = _iotas((T, T))
        grid = jnp.where(j > i, -1e30, a)

        def body(c, row):
            return c, jnp.sum(_live_exp(row, c) * x[:, 0])

        return jax.lax.scan(body, jnp.float32(0.0), grid)[1]

    out, _ = analyse(f, X, A)
    assert classify(out.dep) == Position.ANY  # was NONE: every row of e claimed exactly 0
    assert_sound(out, measured_pattern(lambda x: f(x, A), X))


BIG = 300  # > 256: an int8 iota wraps, a bfloat16 iota rounds
XB = rng.normal(size=(BIG, 2)).astype(np.float32)


def _masked_sum(mask, x):
    return jnp.sum(jnp.where(mask, x[None, :, 0], 0.0), axis=1)  # out[t] = Σ_{mask[t, s]} x[s]


@pytest.mark.parametrize(
    "make_mask",
    [
        pytest.param(lambda: operator.ge(*_iotas((BIG, BIG), dtype=jnp.int8)), id="int8-iota"),
        pytest.param(
            lambda: operator.ge(*(i.astype(jnp.int8) for i in _iotas((BIG, BIG)))),
            id="int32-iota-cast-to-int8",
        ),
        pytest.param(
            lambda: operator.ge(*(i.astype(jnp.uint8) for i in _iotas((BIG, BIG)))),
            id="int32-iota-cast-to-uint8",
        ),
    ],
)
def test_index_facts_do_not_survive_wrap_around(make_mask):
    # "t >= s" computed after wrap-around: at t = 5, s = 260 (-> 4 or 260 - 256) it holds
    out, _ = analyse(lambda x: _masked_sum(make_mask(), x), XB, position_size=BIG)
    assert_sound(out, measured_pattern(lambda x: _masked_sum(make_mask(), x), XB))
    assert classify(out.dep) == Position.ANY


def test_index_plus_constant_that_wraps_is_not_an_index():
    t = 100  # int8 iota is exact here, but iota + 100 wraps above 127
    x = rng.normal(size=(t, 2)).astype(np.float32)
    mask = lambda: operator.ge(*(i + jnp.int8(100) for i in _iotas((t, t), dtype=jnp.int8)))
    f = lambda x: _masked_sum(mask(), x)
    out, _ = analyse(f, x, position_size=t)
    assert_sound(out, measured_pattern(f, x))
    assert classify(out.dep) == Position.ANY
    # negative control: without the wrap the same mask is exactly causal
    exact = lambda x: _masked_sum(operator.ge(*(i + 20 for i in _iotas((t, t), dtype=jnp.int8))), x)
    assert classify(analyse(exact, x, position_size=t)[0].dep) == Position.PAST


@pytest.mark.parametrize(
    "make_eye",
    [
        pytest.param(lambda: operator.eq(*_iotas((BIG, BIG), dtype=jnp.bfloat16)), id="bf16"),
        pytest.param(
            lambda: operator.eq(*(i.astype(jnp.bfloat16) for i in _iotas((BIG, BIG)))),
            id="int32-iota-cast-to-bf16",
        ),
        pytest.param(
            lambda: operator.eq(
                *(
                    jax.lax.reduce_precision(i, exponent_bits=8, mantissa_bits=7)
                    for i in _iotas((BIG, BIG), dtype=jnp.float32)
                )
            ),
            id="reduce-precision",
        ),
    ],
)
def test_index_facts_do_not_survive_rounding(make_eye):
    # 257 rounds to 256 in bfloat16: "t == s" also holds at (257, 256)
    f = lambda x: _masked_sum(make_eye(), x)
    out, _ = analyse(f, XB, position_size=BIG)
    assert_sound(out, measured_pattern(f, XB))
    assert classify(out.dep) == Position.ANY


def test_exact_float_iota_is_still_an_index():
    # negative control: float32 holds every index up to 2^24, so the eye mask stays exact
    f = lambda x: _masked_sum(operator.eq(*_iotas((BIG, BIG), dtype=jnp.float32)), x)
    check_big = analyse(f, XB, position_size=BIG)[0]
    assert classify(check_big.dep) == Position.SAME


def test_covering_needs_every_row_to_meet_the_line():
    # [T, S] eye mask with S < T: rows t >= S are entirely fill, their softmax is uniform over
    # s < S, so out[t] mixes positions even under the no-overflow assumption
    s_len = 3

    def f(x):
        i, j = _iotas((T, s_len))
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
