"""Fuzz step kinds at the edges of number types: integer grids at dtype extremes and float grids
with infinities and underflow.

An integer grid is built over [T, T] positions from an iota mask, a fill at an edge value (the
minimum, the maximum, ±1, 0, ...), data bucketed into edge values, and integer arithmetic that
wraps around (add, sub, mul, neg, abs, casts between widths and signedness) or divides by a value
that may be 0; it becomes weights (cast to float, or exp of the cast) on a stream. These are the
shapes where an integer value fact can be wrong: a masked difference that wraps (int16 -32768 -
32767 = 1, so exp of it is not 0) and an integer 0/0, which XLA makes -1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from jaxtyping import Array

from proofs.fuzz.steps import COMPARE, Kind, iota_grid

INT_DTYPES = ("int8", "int16", "int32", "uint8", "uint16", "uint32")
# weighted towards the extremes: hypothesis draws uniformly from the tuple
EXTREMES = ("min", "max", "min", "max", "min+1", "max-1", "-1", "0", "1")
DIVISORS = ("0", "0", "1", "-1", "max", "min")
WRAPPING = ("add", "sub", "mul", "neg", "abs", "cast")


def edge(name: str, dtype: str) -> int:
    """The edge value ``name`` of an integer dtype (-1 of an unsigned one is its maximum)."""
    info = np.iinfo(dtype)
    values = {"min": info.min, "max": info.max, "min+1": info.min + 1, "max-1": info.max - 1}
    value = values.get(name)
    return int(value) if value is not None else int(np.asarray(int(name)).astype(dtype))


def edge_data(a: Array, names: tuple[str, str, str], dtype: str) -> Array:
    """A data-dependent [T, T] grid whose entries are the three edge values (bucketed by a)."""
    v = a[:, :1] - a[:, 1][None, :]
    e1, e2, e3 = (jnp.asarray(edge(n, dtype), dtype) for n in names)
    return jnp.where(v > 0.5, e1, jnp.where(v > -0.5, e2, e3))


def _masked(p: tuple, a: Array, dtype: str) -> tuple[Array, Array]:
    """(where(mask, live, fill), data): the masked integer grid and its data."""
    relation, fill, live, data_edges = p
    t = a.shape[0]
    i, j = iota_grid((t, t))
    data = edge_data(a, data_edges, dtype)
    value = data if live == "data" else jnp.asarray(edge(live, dtype), dtype)
    return jnp.where(COMPARE[relation](i, j), value, jnp.asarray(edge(fill, dtype), dtype)), data


def masked(fills: tuple[str, ...], lives: tuple[str, ...]) -> st.SearchStrategy[tuple]:
    """(relation, fill, live, data edges) of a masked integer grid."""
    return st.tuples(
        st.sampled_from(tuple(COMPARE)),
        st.sampled_from(fills),
        st.sampled_from(lives),  # "data", or an edge constant
        st.tuples(*[st.sampled_from(EXTREMES)] * 3),  # the data's edge values
    )


def _masked_difference(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """exp(where(mask, live, fill) - max(data, e)) · u: the bound fill - e holds only for
    floats; for integers the difference wraps around."""
    dtype, masked, floor = p
    g, data = _masked(masked, a, dtype)
    g = g - jnp.maximum(data, jnp.asarray(edge(floor, dtype), dtype))
    return jnp.exp(g.astype(u.dtype)) @ u


def _ratio(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """(where(mask, live, fill) div-or-rem d) · u with a divisor d that may be 0."""
    dtype, masked, op, divisor = p
    g, data = _masked(masked, a, dtype)
    d = data if divisor == "data" else jnp.asarray(edge(divisor, dtype), dtype)
    g = jax.lax.div(g, d) if op == "div" else jax.lax.rem(g, d)
    return g.astype(u.dtype) @ u


def _wrap_step(g: Array, op: str, k: int, cast_to: str) -> Array:
    dtype = g.dtype
    c = jnp.asarray(np.asarray(k).astype(dtype), dtype)
    if op == "cast":
        return g.astype(cast_to)
    return {
        "add": lambda: g + c,
        "sub": lambda: g - c,
        "mul": lambda: g * c,
        "neg": lambda: -g,
        "abs": lambda: jnp.abs(g),
    }[op]()


def _wrapping(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """A chain of wrapping integer ops (and casts between widths and signedness) on the masked
    grid, then its float weights or their exp."""
    dtype, masked, chain, use_exp = p
    g, _ = _masked(masked, a, dtype)
    for op, constant, cast_to in chain:
        g = _wrap_step(g, op, edge(constant, str(g.dtype)), cast_to)
    weights = g.astype(u.dtype)
    return (jnp.exp(weights) if use_exp else weights) @ u


INT_KINDS: dict[str, Kind] = {
    "int_masked_difference": Kind(  # a fill at an extreme minus a data floor, as in softmax
        st.tuples(
            st.sampled_from(("int16", "int32", "int8", "uint16")),
            masked(("min", "min", "min+1", "max", "0"), ("data",)),
            st.sampled_from(EXTREMES),
        ),
        1,
        _masked_difference,
    ),
    "int_ratio": Kind(
        st.tuples(
            st.sampled_from(INT_DTYPES),
            masked(("0", "0", *EXTREMES), ("data", "1", "max", "min")),
            st.sampled_from(("div", "div", "rem")),
            st.sampled_from(("data", *DIVISORS)),
        ),
        1,
        _ratio,
    ),
    "int_wrapping": Kind(
        st.tuples(
            st.sampled_from(INT_DTYPES),
            masked(EXTREMES, ("data", "1", "max", "min")),
            st.lists(
                st.tuples(
                    st.sampled_from(WRAPPING),
                    st.sampled_from(EXTREMES),
                    st.sampled_from(INT_DTYPES),
                ),
                min_size=1,
                max_size=3,
            ).map(tuple),
            st.booleans(),
        ),
        1,
        _wrapping,
    ),
}


# ---- float edges: infinities, underflow, overflow ------------------------------------------


def _inf_softmax(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    """softmax(where(mask, scores, -inf)) · values: exp(-inf) is exactly 0."""
    (relation,) = p
    t = u.shape[0]
    i, j = iota_grid((t, t))
    scores = jnp.where(COMPARE[relation](i, j), u @ rest[0].T / 2.0, -jnp.inf)
    return jax.nn.softmax(scores, axis=1) @ rest[1]


FLOAT_EDGES = {
    "underflow_product": lambda u: (u * 1e-200) * 1e-200,  # 0 in float64: no dependency left
    "exp_underflow": lambda u: jnp.exp(u * 0.0 - 800.0) * u,  # exp(-800) is exactly 0
    "overflow_clipped": lambda u: jnp.minimum(u * 1e300 * 1e10, 1.0),  # ±inf, then clipped
    "inf_masked": lambda u: jnp.where(jnp.isinf(u * 1e308 * 10.0), 0.0, u),
    "huge_cancel": lambda u: (u + 1e30) - 1e30,  # absorbed: u's value is lost
    "tiny_ratio": lambda u: u / (1e-300 + u * u),
}

FLOAT_KINDS: dict[str, Kind] = {
    "float_edge": Kind(
        st.tuples(st.sampled_from(sorted(FLOAT_EDGES))), 1, lambda p, u, *_: FLOAT_EDGES[p[0]](u)
    ),
    "inf_softmax": Kind(st.tuples(st.sampled_from(tuple(COMPARE))), 3, _inf_softmax),
}

# How the inputs x and a are drawn: N(0, 1) mostly, then far from it.
INPUTS = ("normal", "normal", "normal", "normal", "wide", "tiny", "extreme")
EXTREME_VALUES = np.asarray([0.0, 1e-300, 1e-30, 1.0, 1e4, 1e30])


def draw_inputs(rng: np.random.Generator, shape: tuple[int, ...], inputs: str) -> np.ndarray:
    """An input of ``shape`` drawn as ``inputs`` says."""
    normal = rng.normal(size=shape)
    if inputs == "wide":
        return normal * 1e4
    if inputs == "tiny":
        return normal * 1e-30
    if inputs == "extreme":
        return rng.choice(EXTREME_VALUES, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return normal
