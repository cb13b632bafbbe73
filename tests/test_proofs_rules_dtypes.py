"""proofs.rules.dtypes: an index fact survives only where every index is exact in the dtype (no
wrap-around, no rounding), value facts only casts that keep every value; constants fold as XLA
computes them. The regressions are the issue-12 families (int8 iotas wrap, bfloat16 ones round)."""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs.lattice import Position, classify
from proofs.rules.dtypes import const_op, exact_integers, index_fits, value_preserving
from tests.proofs_rule_checks import analyse, assert_sound, iotas, measured_pattern, rng


def test_exact_integers_and_index_fits():
    assert exact_integers(jnp.int8) == (-128, 127)
    assert exact_integers(jnp.bfloat16) == (-256, 256)
    assert exact_integers(jnp.float32) == (-(2**24), 2**24)
    assert exact_integers(jnp.bool_) is None
    assert index_fits(0, 128, jnp.int8) and not index_fits(0, 129, jnp.int8)
    assert not index_fits(-1, 4, jnp.uint8)  # -1 is not a uint8


def test_value_preserving_casts():
    assert value_preserving(jnp.int8, jnp.float32) and value_preserving(jnp.bool_, jnp.int8)
    assert not value_preserving(jnp.int32, jnp.float32)  # 2^24 + 1 rounds
    assert not value_preserving(jnp.float32, jnp.bfloat16)
    assert not value_preserving(jnp.float32, jnp.bool_)


def test_constants_fold_in_the_equations_dtype():
    assert const_op(operator.add, 100, 100, jnp.int8) == -56  # wraps as XLA does
    assert const_op(operator.add, 1.5, 2, jnp.float32) == 3.5


BIG = 300  # > 256: an int8 iota wraps, a bfloat16 iota rounds
XB = rng.normal(size=(BIG, 2)).astype(np.float32)


def _masked_sum(mask, x):
    return jnp.sum(jnp.where(mask, x[None, :, 0], 0.0), axis=1)  # out[t] = Σ_{mask[t, s]} x[s]


@pytest.mark.parametrize(
    "make_mask",
    [
        pytest.param(lambda: operator.ge(*iotas((BIG, BIG), dtype=jnp.int8)), id="int8-iota"),
        pytest.param(
            lambda: operator.ge(*(i.astype(jnp.int8) for i in iotas((BIG, BIG)))),
            id="int32-iota-cast-to-int8",
        ),
        pytest.param(
            lambda: operator.ge(*(i.astype(jnp.uint8) for i in iotas((BIG, BIG)))),
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
    mask = lambda: operator.ge(*(i + jnp.int8(100) for i in iotas((t, t), dtype=jnp.int8)))
    f = lambda x: _masked_sum(mask(), x)
    out, _ = analyse(f, x, position_size=t)
    assert_sound(out, measured_pattern(f, x))
    assert classify(out.dep) == Position.ANY
    # negative control: without the wrap the same mask is exactly causal
    exact = lambda x: _masked_sum(operator.ge(*(i + 20 for i in iotas((t, t), dtype=jnp.int8))), x)
    assert classify(analyse(exact, x, position_size=t)[0].dep) == Position.PAST


@pytest.mark.parametrize(
    "make_eye",
    [
        pytest.param(lambda: operator.eq(*iotas((BIG, BIG), dtype=jnp.bfloat16)), id="bf16"),
        pytest.param(
            lambda: operator.eq(*(i.astype(jnp.bfloat16) for i in iotas((BIG, BIG)))),
            id="int32-iota-cast-to-bf16",
        ),
        pytest.param(
            lambda: operator.eq(
                *(
                    jax.lax.reduce_precision(i, exponent_bits=8, mantissa_bits=7)
                    for i in iotas((BIG, BIG), dtype=jnp.float32)
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
    f = lambda x: _masked_sum(operator.eq(*iotas((BIG, BIG), dtype=jnp.float32)), x)
    check_big = analyse(f, XB, position_size=BIG)[0]
    assert classify(check_big.dep) == Position.SAME
