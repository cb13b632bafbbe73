"""Fuzz step kinds that reach the rest of jax.numpy / lax, so every primitive with a rule is
exercised: every elementwise function, windows (convolutions, pooling, max pooling's JVP and
VJP), sorting, splitting / stacking / tiling, dynamic slicing and scatters, while loops,
triangular solves and Cholesky, the opaque primitives (fft, decompositions, random bits), and
the call-like primitives (remat, custom_vjp, custom linear solves).

Domains are kept finite where a function needs it (log of 1 + u², acos of tanh u), so most
programs stay inside the "finite" assumption; a program that leaves it is skipped by the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from hypothesis import strategies as st
from jax.extend import random as jrandom
from jaxtyping import Array

from proofs.fuzz.steps import D, Kind

lax = jax.lax


def pos(u: Array) -> Array:
    return 1.0 + u * u  # > 0


def unit(u: Array) -> Array:
    return 0.9 * jnp.tanh(u)  # in (-1, 1)


def ints(u: Array) -> Array:
    return jnp.round(u * 8.0).astype(jnp.int32)


def same_int(u: Array) -> Any:
    return jnp.dtype(f"int{u.dtype.itemsize * 8}")  # the integer of the same width


def one(k: int) -> Array:
    return jnp.int32(k)  # an int32 shift amount, also under x64


UNARY: dict[str, Callable[[Array], Array]] = {
    "exp2": lambda u: jnp.exp2(unit(u)),
    "cbrt": lax.cbrt,
    "asin": lambda u: lax.asin(unit(u)),
    "acos": lambda u: lax.acos(unit(u)),
    "atan": lax.atan,
    "acosh": lambda u: lax.acosh(pos(u)),
    "asinh": lax.asinh,
    "atanh": lambda u: lax.atanh(unit(u)),
    "sinh": lambda u: lax.sinh(unit(u)),
    "cosh": lambda u: lax.cosh(unit(u)),
    "tan": lambda u: lax.tan(unit(u)),
    "erf": lax.erf,
    "erfc": lax.erfc,
    "erf_inv": lambda u: lax.erf_inv(unit(u)),
    "lgamma": lambda u: lax.lgamma(pos(u)),
    "digamma": lambda u: lax.digamma(pos(u)),
    "expm1": lambda u: lax.expm1(unit(u)),
    "log1p": lambda u: lax.log1p(u * u),
    "rsqrt": lambda u: lax.rsqrt(pos(u)),
    "ceil": lambda u: u + lax.ceil(u),
    "round": lambda u: u * lax.round(u),
    "sign": lambda u: u * lax.sign(u),
    "is_finite": lambda u: jnp.where(lax.is_finite(u), u, 0.0),
    "bessel_i0e": lax.bessel_i0e,
    "bessel_i1e": lax.bessel_i1e,
    "complex": lambda u: lax.real(lax.complex(u, 2.0 * u)) + lax.imag(lax.conj(lax.complex(u, u))),
    "copy": lambda u: jnp.array(u, copy=True),
    "optimization_barrier": lax.optimization_barrier,
    "population_count": lambda u: u * lax.population_count(ints(u)).astype(u.dtype),
    "clz": lambda u: u * lax.clz(ints(u)).astype(u.dtype),
    "bitcast": lambda u: lax.bitcast_convert_type(
        lax.bitcast_convert_type(u, same_int(u)), u.dtype
    ),
    "bool_logic": lambda u: u * (~(u > 0) | ((u > 1) ^ (u < -1))).astype(u.dtype),
    "int_shifts": lambda u: (
        u
        * (lax.shift_left(ints(u), one(2)) + lax.shift_right_logical(ints(u), one(1))).astype(
            u.dtype
        )
        + lax.shift_right_arithmetic(ints(u), one(1)).astype(u.dtype)
    ),
}
BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "pow": lambda u, v: lax.pow(pos(u), unit(v)),
    "atan2": lax.atan2,
    "rem": lambda u, v: lax.rem(u, pos(v)),
    "igamma": lambda u, v: lax.igamma(pos(u), pos(v)),
    "igammac": lambda u, v: lax.igammac(pos(u), pos(v)),
    "polygamma": lambda u, v: lax.polygamma(jnp.ones_like(u), pos(v)) * u,
    "clamp": lambda u, v: lax.clamp(-1.0, u, 1.0) * v,
}


def _window(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """A convolution or pooling along positions, padded causally, centred or ahead."""
    op, pad, stride = p
    t = u.shape[0]
    lo, hi = {"causal": (2, 0), "centred": (1, 1), "ahead": (0, 2)}[pad]
    if op == "conv":
        out = lax.conv_general_dilated(
            u.T[None], jnp.ones((D, D, 3), u.dtype) * w[0, 0], (stride,), [(lo, hi)],
            dimension_numbers=("NCH", "OIH", "NCH"),
        )[0].T  # fmt: skip
        return jnp.pad(out, ((0, t - out.shape[0]), (0, 0)))
    init, fn = {
        "sum": (0.0, lax.add),
        "max": (-jnp.inf, lax.max),
        "min": (jnp.inf, lax.min),
        "prod": (1.0, lax.mul),  # no named monoid: the generic reduce_window
    }[op]
    window = lambda v, s=1: lax.reduce_window(v, init, fn, (3, 1), (s, 1), [(lo, hi), (0, 0)])
    if op == "max" and stride == 2:  # max pooling's VJP (select_and_scatter_add) applied to u
        return jax.vjp(window, a)[1](u)[0]
    out = window(u, stride if op == "sum" else 1)
    return jnp.pad(out, ((0, t - out.shape[0]), (0, 0)))


def _sort(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    how, axis = p
    if how == "sort":
        return jnp.sort(u, axis=axis)
    if how == "argsort":
        return jnp.take_along_axis(u, jnp.argsort(a, axis=axis), axis=axis)
    if how == "searchsorted":  # le_to / lt_to compare against a sorted table
        return u * jnp.searchsorted(jnp.sort(a[:, 0]), a, side="left" if axis else "right")
    if how == "eq_to":  # the total-order equality sorting uses (-0 == 0, NaN == NaN)
        return jnp.where(lax.eq_to_p.bind(u, a), u, a)
    if axis:  # the two largest features of each position
        return jnp.broadcast_to(lax.top_k(u, 2)[0].sum(-1, keepdims=True), u.shape)
    return jnp.broadcast_to(lax.top_k(u.T, 2)[0].sum(-1), u.shape)  # over positions


def _pieces(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    how, axis = p
    t = u.shape[0]
    if how == "split":
        parts = jnp.split(u, [1], axis=axis)
        return jnp.concatenate(parts[::-1], axis=axis)
    if how == "stack":
        return jnp.stack([u, rest[0]], axis=axis + 1).sum(axis + 1)
    return jnp.tile(u, (2, 1) if axis == 0 else (1, 2))[:t, :D]


def _dynamic(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """dynamic_slice / dynamic_update_slice with a data start, or inside fori_loop."""
    how, axis = p
    start = jnp.argmax(a[:, 0]) if axis == 0 else jnp.argmax(a[0])
    if how == "slice":
        piece = lax.dynamic_slice_in_dim(u, start, 1, axis)
        return jnp.broadcast_to(piece, u.shape)
    if how == "update":
        return lax.dynamic_update_slice_in_dim(u, rest[0][:1] if axis == 0 else rest[0][:, :1],
                                               start, axis)  # fmt: skip
    total = lax.fori_loop(
        0, u.shape[0], lambda i, c: c + lax.dynamic_slice_in_dim(u, i, 1, 0), u[:1]
    )
    return jnp.broadcast_to(total, u.shape)


def _scatter(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    how, axis = p
    idx = jnp.argmax(a, axis=1)  # data indices in [0, D)
    if axis == 0:  # into positions: segment sums
        return jax.ops.segment_sum(u, jnp.minimum(idx, u.shape[0] - 1), num_segments=u.shape[0])
    return AT[how](u.at[:, idx[0] if how == "add" else 1], rest[0][:, 2])


AT: dict[str, Callable[[Any, Array], Array]] = {
    "add": lambda at, v: at.add(v),
    "set": lambda at, v: at.set(v),
    "mul": lambda at, v: at.multiply(v),
    "min": lambda at, v: at.min(v),
    "max": lambda at, v: at.max(v),
    "sub": lambda at, v: at.subtract(v),
}


def _linalg(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    (how,) = p
    t = u.shape[0]
    eye = jnp.eye(t, dtype=u.dtype)
    if how in ("lower", "upper"):
        m = jnp.tril(a @ a.T) / (D * t) + 2.0 * eye  # small off the diagonal: no blow-up
        m = m if how == "lower" else m.T
        return jax.scipy.linalg.solve_triangular(m, u, lower=how == "lower")
    if how == "cholesky":
        return jnp.linalg.cholesky(u @ u.T + 4.0 * eye) @ a
    if how == "diag":  # jnp.diag picks its lowering by platform_index
        return jnp.diag(u @ rest[0].T)[:, None] * a
    small = u.T @ u + 4.0 * jnp.eye(D, dtype=u.dtype)  # [D, D]: opaque decompositions
    return u @ SQUARE[how](small, w)


SQUARE: dict[str, Callable[[Array, Array], Array]] = {
    "qr": lambda m, w: jnp.linalg.qr(m)[0],
    "eigh": lambda m, w: jnp.linalg.eigh(m)[1],
    "svd": lambda m, w: jnp.linalg.svd(m)[0],
    "solve": lambda m, w: jnp.linalg.solve(m, w),
    "fft": lambda m, w: jnp.fft.fft(m, axis=0).real,
    "cg": lambda m, w: jax.scipy.sparse.linalg.cg(lambda v: m @ v, w)[0],
}


@jax.custom_vjp
def _scaled(u: Array) -> Array:
    return 2.0 * u


_scaled.defvjp(lambda u: (2.0 * u, None), lambda _, g: (2.0 * g,))


def _calls(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    (how,) = p
    if how == "remat":
        return jax.checkpoint(lambda v: jnp.cumsum(jnp.sin(v), axis=0))(u)
    if how == "random":
        key = jax.random.fold_in(jax.random.split(jax.random.key(0))[0], 3)
        return u * jax.random.normal(key, u.shape, u.dtype)
    if how == "raw_key":  # random_wrap / random_unwrap
        bits = jax.random.key_data(jax.random.key(1)).sum().astype(u.dtype)
        return u * jax.random.normal(jax.random.PRNGKey(0), u.shape, u.dtype) * bits
    cumulate = lambda c: (c[0] + jnp.tanh(jnp.cumsum(c[0], axis=0)), c[1] + 1)
    return lax.while_loop(lambda c: c[1] < 2, cumulate, (u, 0))[0]


def _reduce_bool(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    (how,) = p
    if how == "argmin":
        return jnp.take_along_axis(u, jnp.argmin(a, axis=1, keepdims=True), axis=1) * jnp.ones(D)
    r = {"all": jnp.all, "any": jnp.any}.get(how)
    if r is not None:
        return jnp.where(r(u > 0, axis=1, keepdims=True), u, 0.0)
    return jnp.where(lax.reduce_xor(u > 0, (1,))[:, None], u, 1.0)


PAD = [(2, 0), (0, 0)]  # a causal window of 3 positions
# Primitives JAX cannot differentiate forward (or that a JVP inlines), used on the constants:
# they stay in the analysed program as primal computations that weigh the stream.
CONSTANT_SIDE: dict[str, Callable[[Array, Array], Array]] = {
    "nextafter": lambda a, w: lax.nextafter(a, a + w[0, 0]),
    "zeta": lambda a, w: lax.zeta(2.0 + a * a, 1.0 + jnp.abs(a)),
    "householder": lambda a, w: a @ lax.linalg.householder_product(w, 0.1 * w[0]),
    "custom_vjp": lambda a, w: _scaled(a),
    "custom_jvp": lambda a, w: jax.nn.relu(a),
    "threefry": lambda a, w: (
        a
        * jrandom.threefry_2x32(jnp.arange(2, dtype=jnp.uint32), jnp.arange(4, dtype=jnp.uint32))
        .astype(a.dtype)
        .sum()
    ),
}

KINDS: dict[str, Kind] = {
    "lax_unary": Kind(
        st.tuples(st.sampled_from(sorted(UNARY))), 1, lambda p, u, *_: UNARY[p[0]](u)
    ),
    "lax_binary": Kind(
        st.tuples(st.sampled_from(sorted(BINARY))), 2, lambda p, u, r, *_: BINARY[p[0]](u, r[0])
    ),
    "window": Kind(
        st.tuples(
            st.sampled_from(("conv", "sum", "max", "min", "prod")),
            st.sampled_from(("causal", "centred", "ahead")),
            st.sampled_from((1, 2)),
        ),
        1,
        _window,
    ),
    "sort": Kind(
        st.tuples(
            st.sampled_from(("sort", "argsort", "searchsorted", "eq_to", "top_k")),
            st.sampled_from((0, 1)),
        ),
        1,
        _sort,
    ),
    "pieces": Kind(
        st.tuples(st.sampled_from(("split", "stack", "tile")), st.sampled_from((0, 1))), 2, _pieces
    ),
    "dynamic": Kind(
        st.tuples(st.sampled_from(("slice", "update", "fori")), st.sampled_from((0, 1))),
        2,
        _dynamic,
    ),
    "scatter": Kind(
        st.tuples(
            st.sampled_from(("add", "set", "mul", "min", "max", "sub")), st.sampled_from((0, 1))
        ),
        2,
        _scatter,
    ),
    "linalg": Kind(
        st.tuples(st.sampled_from(("lower", "upper", "cholesky", "diag", *SQUARE))),
        2,
        _linalg,
    ),
    "calls": Kind(st.tuples(st.sampled_from(("remat", "random", "raw_key", "while"))), 1, _calls),
    "constant_side": Kind(
        st.tuples(st.sampled_from(sorted(CONSTANT_SIDE))),
        1,
        lambda p, u, r, a, w: u * CONSTANT_SIDE[p[0]](a, w),
    ),
    "reduce_bool": Kind(
        st.tuples(st.sampled_from(("all", "any", "xor", "argmin"))), 1, _reduce_bool
    ),
}
