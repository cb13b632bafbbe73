"""proofs.rules.indexing: static slices, concatenations and pads shift positions; interior
padding forgets them; gathers keep the axes they copy whole."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from proofs import zones
from proofs.lattice import Position
from proofs.zones import U
from tests.proofs_rule_checks import D, T, X, check, rng


def test_slice_shifts_positions():
    out = check(lambda x: x[1:], X, expect=Position.ANY)  # out[t] = x[t + 1]: the future
    assert out.dep == zones.region(zones.eq(U, 0, 1))


def test_concatenate_shifts_each_block():
    # out[o] = x[o] for o < T and 2·x[o - T] after: a dependency T steps back
    out = check(lambda x: jnp.concatenate([x, 2.0 * x]), X, expect=Position.PAST)
    assert zones.contains(out.dep, {0: T + 2, U: 2})
    assert not zones.contains(out.dep, {0: 2, U: 3})


def test_pad_shifts_positions():
    out = check(lambda x: jnp.pad(x, ((2, 0), (0, 0)))[:T], X, expect=Position.PAST)
    assert out.dep == zones.region(zones.eq(U, 0, -2))  # out[t] = x[t - 2]
    check(lambda x: jnp.pad(x, ((0, 1), (1, 1)), constant_values=1.0)[1:], X, expect=Position.ANY)
    check(lambda x: jax.lax.pad(x, 0.0, ((0, 0, 1), (0, 0, 0))), X, expect=Position.ANY)


def test_take_along_axis_keeps_rows():
    idx = jnp.asarray(rng.integers(0, D, size=(T, 1)))
    check(lambda x: jnp.take_along_axis(x, idx, axis=1)[:, 0], X, expect=Position.SAME)


def test_gather_with_data_indices_along_positions_mixes():
    idx = jnp.asarray([4, 0, 3, 1, 2])
    check(lambda x: x[idx], X, expect=Position.ANY)


def test_scatter_add_keeps_batching_and_unmoved_window_axes():
    """The backward of a per-row lookup (a cross-entropy's target, take_along_axis) adds each
    row's update into the same row; a window along positions that no index moves stays put."""
    idx = jnp.asarray(rng.integers(0, D, size=(T, 1)))
    lookup = lambda y: jnp.take_along_axis(y, idx, axis=1)

    def lookup_backward(ct):  # scatter-add with operand_batching_dims=(0,)
        return jax.vjp(lookup, jnp.zeros((T, D)))[1](ct)[0]

    check(lookup_backward, X[:, :1], expect=Position.SAME)
    check(lambda x: jnp.zeros((T, D)).at[:, 1].add(x[:, 0]), X, expect=Position.SAME)


def test_scatter_add_along_positions_by_data_mixes():
    idx = jnp.asarray([4, 0, 3, 1, 2])
    check(lambda ct: jax.vjp(lambda y: y[idx], jnp.zeros((T, D)))[1](ct)[0], X, expect=Position.ANY)
    # a δ-dependent index: every element may depend on it
    check(
        lambda x: jnp.zeros((T, D)).at[(x[:, 0] > 0).astype(int)].add(1.0), X, expect=Position.ANY
    )


def test_split_of_a_concatenate_backward_shifts_each_piece():
    """The backward of a concatenate: piece k is a shift by the sizes before it."""
    second = lambda x: jax.lax.split(x, (2, T - 2), axis=0)[1]  # out[t] = x[t + 2]
    out = check(second, X, expect=Position.ANY)
    assert out.dep == zones.region(zones.eq(U, 0, 2))
    check(lambda x: jax.lax.split(x, (1, 2), axis=1)[1], X, expect=Position.SAME)


def test_strided_slice_reads_at_or_after_the_shifted_index():
    out = check(lambda x: x[1::2], X, expect=Position.ANY)  # out[t] = x[2t + 1]
    assert not zones.contains(out.dep, {0: 2, U: 2}) and zones.contains(out.dep, {0: 2, U: 5})


def test_split_shifts_each_piece():
    check(lambda x: jnp.split(x, [2], axis=1)[1] * 2.0, X, expect=Position.SAME)
    out = check(lambda x: jnp.split(x, [2, 3], axis=0)[2], X, expect=Position.ANY)
    assert out.dep == zones.region(zones.eq(U, 0, 3))  # out[t] = x[t + 3]


def test_dynamic_slice_is_exact_for_a_full_or_constant_window():
    start = jnp.argmax(X[:, 0])  # data: the window may start anywhere
    check(lambda x: jax.lax.dynamic_slice_in_dim(x, 0, T, 0), X, expect=Position.SAME)
    out = check(lambda x: jax.lax.dynamic_slice_in_dim(x, start, 2, 0), X, expect=Position.ANY)
    assert not zones.contains(out.dep, {0: 1, U: 0})  # the clamped start is >= 0
    check(lambda x: jax.lax.dynamic_slice_in_dim(x, start, 2, 1), X, expect=Position.SAME)
    # a δ-dependent start moves every element
    check(lambda x: jax.lax.dynamic_slice_in_dim(x, jnp.argmax(x[:, 0]), 2, 1), X,
          expect=Position.ANY)  # fmt: skip


def test_dynamic_slice_inside_fori_loop():
    f = lambda x: jax.lax.fori_loop(
        0, T, lambda i, c: c + jax.lax.dynamic_slice_in_dim(x, i, 1, 0), jnp.zeros((1, D))
    )
    check(lambda x: jnp.broadcast_to(f(x), x.shape), X, expect=Position.ANY)


def test_dynamic_update_slice_writes_a_window():
    f = lambda x: jax.lax.dynamic_update_slice_in_dim(x, 2.0 * x[:2], 3, 0)  # rows 3, 4 = x[0, 1]
    out = check(f, X, expect=Position.PAST)
    assert out.dep == zones.region(zones.eq(U, 0), zones.eq(U, 0, -3))
    start = jnp.argmax(X[:, 0])
    check(lambda x: jax.lax.dynamic_update_slice_in_dim(x, x[:, :1], start, 1), X,
          expect=Position.SAME)  # fmt: skip


def test_scatter_carries_whole_windows_and_mixes_indexed_axes():
    segments = jnp.asarray([0, 0, 1, 1, 2])
    check(lambda x: jax.ops.segment_sum(x, segments, num_segments=T), X, expect=Position.ANY)
    check(lambda x: x.at[:, jnp.asarray([0, 0, 2])].add(x[:, :3]), X, expect=Position.SAME)
    check(lambda x: x.at[1].set(x[2]), X, expect=Position.ANY)
    check(lambda x: x.at[:, 1].set(x[:, 2]), X, expect=Position.SAME)
    check(lambda x: x.at[:, 1].mul(x[:, 2]), X, expect=Position.SAME)
