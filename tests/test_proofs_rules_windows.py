"""proofs.rules.windows: a convolution or window reduction along positions reads the band its
kernel covers — causal (padded on the left) stays same-or-past, padded on the right reads the
future; strides keep only the lower side; max pooling's JVP and VJP read their windows."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import zones
from proofs.lattice import Position, classify
from proofs.rules.windows import window_offsets
from proofs.zones import U
from tests.proofs_rule_checks import (
    D,
    X,
    analyse,
    assert_sound,
    check,
    measured_pattern,
    rng,
    verdict,
)

KERNEL = rng.normal(size=(D, D, 3)).astype(np.float32)


def conv(x, pad, stride=1, dilation=1):
    """A 1-D convolution over positions: [T, D] -> [T', D]."""
    out = jax.lax.conv_general_dilated(
        x.T[None], KERNEL.astype(x.dtype), (stride,), [pad], rhs_dilation=(dilation,),
        dimension_numbers=("NCH", "OIH", "NCH"),
    )  # fmt: skip
    return out[0].T


def test_window_offsets_is_the_band_of_operand_minus_output_index():
    assert window_offsets(3, 1, 2, 1, 1) == (-2, 0)  # causal: i in [y - 2, y]
    assert window_offsets(3, 1, 0, 1, 2) == (0, 4)  # dilated, padded on the right
    assert window_offsets(3, 2, 1, 1, 1) == (-1, None)  # strided: only i >= y - 1
    assert window_offsets(3, 1, 0, 2, 1) is None  # base dilation: forgotten


def test_causal_convolution_is_same_or_past():
    out = check(lambda x: conv(x, (2, 0)), X, expect=Position.PAST)
    assert out.dep == zones.region(zones.close([(U, 0, 0), (0, U, 2)]))  # t - 2 <= s <= t
    check(lambda x: conv(x, (4, 0), dilation=2), X, expect=Position.PAST)


def test_convolution_padded_on_the_right_reads_the_future():
    check(lambda x: conv(x, (0, 2)), X, expect=Position.ANY)
    check(lambda x: conv(x, (1, 1)), X, expect=Position.ANY)
    check(lambda x: conv(x, (2, 0), stride=2), X, expect=Position.ANY)  # out[t] reads x[2t]


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_causal_pooling_is_same_or_past(op):
    init, fn = {"sum": (0.0, jax.lax.add), "max": (-jnp.inf, jax.lax.max),
                "min": (jnp.inf, jax.lax.min)}[op]  # fmt: skip
    pool = lambda x: jax.lax.reduce_window(x, init, fn, (3, 1), (1, 1), [(2, 0), (0, 0)])
    check(pool, X, expect=Position.PAST)
    ahead = lambda x: jax.lax.reduce_window(x, init, fn, (3, 1), (1, 1), [(0, 2), (0, 0)])
    check(ahead, X, expect=Position.ANY)


def test_a_window_reduction_with_its_own_computation_reads_its_window():
    # a product window is the generic reduce_window (no JVP rule in JAX: verdicts only)
    prod = lambda pad: lambda x: jax.lax.reduce_window(x, 1.0, jax.lax.mul, (3, 1), (1, 1), pad)
    assert verdict(prod([(2, 0), (0, 0)]), X) == Position.PAST
    assert verdict(prod([(0, 2), (0, 0)]), X) == Position.ANY


def max_pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (3, 1), (1, 1), [(2, 0), (0, 0)])


def test_max_pooling_jvp_reads_its_window():
    # the JVP is select_and_gather_add: the tangent at each window's max
    f = lambda x: jax.jvp(max_pool, (jnp.asarray(X, x.dtype),), (x,))[1]
    out, _ = analyse(f, X)
    assert_sound(out, measured_pattern(f, X))
    assert classify(out.dep) == Position.PAST


def test_max_pooling_vjp_spreads_back_over_the_window():
    # the VJP is select_and_scatter_add: x[s] receives the cotangents of the windows t >= s
    f = lambda ct: jax.vjp(max_pool, jnp.asarray(X, ct.dtype))[1](ct)[0]
    out, _ = analyse(f, X)
    assert_sound(out, measured_pattern(f, X))
    assert classify(out.dep) == Position.ANY
    assert not zones.contains(out.dep, {0: 3, U: 1})  # no cotangent from before the window
