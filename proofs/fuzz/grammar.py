"""The fuzzer's grammar of random JAX programs over a position axis, as data (``Op``) and as
functions (``build``).

A program is a tuple of steps, each reading earlier streams of shape [T, D]; it is a function
``(x, a, w) -> [T, D]`` of a differentiated ``x [T, D]`` and constants ``a [T, D]``,
``w [D, D]``. ``KINDS`` lists every kind of step with the hypothesis strategy of its static
parameters, its number of stream arguments and how it computes: elementwise arithmetic,
exp/log/max, comparisons, ``where`` with iota masks (triangular, banded, eye, rectangular) in
several index dtypes and integer casts, reshape splits and merges, broadcasts, transposes,
reductions, cumulative ops both ways, ``dot_general``, masked softmax, ``scan``, ``cond``,
``stop_gradient``, slices, concatenates, pads, reversals and gathers; ``proofs.fuzz.edges``
adds integer grids at dtype extremes and float edges (infinities, underflow),
``proofs.fuzz.library`` the rest of jax.numpy / lax (every elementwise function, windows,
sorting, scatters, dynamic slicing, while, linear algebra, opaque primitives). A new kind is one
entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from hypothesis import strategies as st
from jaxtyping import Array

from proofs.fuzz import edges, library
from proofs.fuzz.steps import COMPARE, D, Kind, iota_grid


@dataclasses.dataclass(frozen=True)
class Op:
    """One step: ``kind`` with static parameters, reading streams ``args``: k is the k-th most
    recent stream (modulo their number); the streams start as [a, x], so 0 is x at first."""

    kind: str
    params: tuple
    args: tuple[int, ...]

    def __repr__(self) -> str:
        return f"Op({self.kind!r}, {self.params!r}, {self.args!r})"


Program = tuple[Op, ...]

UNARY: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "neg": jnp.negative,
    "square": jnp.square,
    "cube": lambda h: jax.lax.integer_pow(h, 3),
    "sqrt": lambda h: jnp.sqrt(1.0 + h * h),
    "log": lambda h: jnp.log(1.0 + h * h),
    "exp": lambda h: jnp.exp(jnp.tanh(h)),
    "logistic": jax.nn.sigmoid,
    "abs": jnp.abs,
    "floor": jnp.floor,  # zero derivative
    "stop_gradient": jax.lax.stop_gradient,
    "bf16": lambda h: h.astype(jnp.bfloat16).astype(h.dtype),
    "f32": lambda h: h.astype(jnp.float32).astype(h.dtype),
    "reduce_precision": lambda h: jax.lax.reduce_precision(h, exponent_bits=8, mantissa_bits=7),
}
BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": lambda u, v: u / (1.0 + v * v),
    "max": jnp.maximum,
    "min": jnp.minimum,
    "where_data": lambda u, v: jnp.where(u > v, u, v * 2.0),
    "int_gate": lambda u, v: (u > 0).astype(jnp.int8).astype(v.dtype) * v,
}
CUMULATIVE = ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
RELATIONS = ("ge", "gt", "le", "lt", "eq", "ne", "band")
INDEX_DTYPES = ("int32", "int16", "int8", "uint8", "float32", "float16", "bfloat16")
FILLS = (0.0, 1.0, -1e30, "min")

# A mask over a [T, S] grid of query and key positions.
MASK = st.tuples(
    st.sampled_from(RELATIONS),
    st.sampled_from(INDEX_DTYPES),
    st.booleans(),  # iota in the dtype (True) or int32 iota cast to it
    st.sampled_from((0, 1, 100)),  # added to both indices
    st.sampled_from((-1, 0, 1, 2)),  # added to the position index only
    st.booleans(),  # rectangular: S = T // 2 + 1 key positions
)


def _mask(spec: tuple, t: Any, s: Any) -> Array:
    relation, dtype_name, native, both, ahead, _ = spec
    dtype = jnp.dtype(dtype_name)
    shape = (t, s)
    if native:
        it, js = iota_grid(shape, dtype)
    else:
        it, js = (i.astype(dtype) for i in iota_grid(shape))
    if both:
        it, js = it + jnp.asarray(both, dtype), js + jnp.asarray(both, dtype)
    if ahead:
        it = it + jnp.asarray(ahead, dtype) if ahead > 0 else it - jnp.asarray(-ahead, dtype)
    if relation == "band":
        return (it >= js) & (it <= js + jnp.asarray(2, dtype))
    return COMPARE[relation](it, js)


def _fill(fill: Any, dtype: Any) -> Any:
    return jnp.finfo(dtype).min if fill == "min" else fill


def _keys(h: Array, spec: tuple) -> Array:
    """The key positions: all T, or the first T // 2 + 1 (a rectangular grid)."""
    return h[: h.shape[0] // 2 + 1] if spec[5] else h


# ---- the kinds of step: (params, u = the first stream read, rest = the others, a, w) -> [T, D]


def _feature_reduce(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    r = getattr(jnp, p[0])(jnp.tanh(u), axis=1, keepdims=True)
    return jnp.broadcast_to(r, u.shape)  # a size-1 axis stretched


def _cumulative(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    name, axis, reverse = p
    v = jnp.tanh(u) if name in ("cumprod", "cumlogsumexp") else u
    return getattr(jax.lax, name)(v, axis=axis, reverse=reverse)


def _masked_sum(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    spec, fill = p
    keys = _keys(rest[0], spec)
    m = _mask(spec, u.shape[0], keys.shape[0])
    grid = u[:, None, :] * keys[None, :, :]
    return jnp.sum(jnp.where(m[:, :, None], grid, fill), axis=1)


def _masked_max(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    spec, fill = p
    keys = _keys(rest[0], spec)
    m = _mask(spec, u.shape[0], keys.shape[0])
    grid = u[:, None, :] + keys[None, :, :]
    return jnp.tanh(jnp.max(jnp.where(m[:, :, None], grid, _fill(fill, u.dtype)), axis=1))


def _masked_softmax(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    spec, fill = p
    keys, values = _keys(rest[0], spec), _keys(rest[1], spec)
    m = _mask(spec, u.shape[0], keys.shape[0])
    scores = jnp.where(m, u @ keys.T / 2.0, _fill(fill, u.dtype))
    return jax.nn.softmax(scores, axis=1) @ values


def _reshape(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    t = u.shape[0]
    if p[0] == "split_features":
        return jnp.transpose(u.reshape(t, 2, D // 2), (0, 2, 1)).reshape(t, D)
    return jnp.cumsum(u.reshape(-1)).reshape(t, D)  # merges the position axis


def _scan(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    reverse, use_w = p

    def body(c: Array, row: Array) -> tuple[Array, Array]:
        c = jnp.tanh((c @ w if use_w else c * 0.5) + row)
        return c, c

    return jax.lax.scan(body, jnp.zeros((D,), u.dtype), u, reverse=reverse)[1]


def _cond(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    return jax.lax.cond(
        a[0, 0] > 0, lambda x, y: x * y, lambda x, y: x + jnp.cumsum(y, axis=0), u, rest[0]
    )


def _shift(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    (k,) = p
    t = u.shape[0]
    zeros = jnp.zeros((abs(k), D), u.dtype)
    if k > 0:  # out[t] = u[t - k]: the past
        return jnp.concatenate([zeros, u[: t - k]])
    return jnp.concatenate([u[-k:], zeros])  # out[t] = u[t + |k|]: the future


def _take(p: tuple, u: Array, rest: list[Array], a: Array, w: Array) -> Array:
    idx = jnp.argmax(a, axis=1)[:, None]
    return jnp.broadcast_to(jnp.take_along_axis(u, idx, axis=1), u.shape)


# The order is the order hypothesis draws from (st.one_of): it fixes which programs a seed gives.
KINDS: dict[str, Kind] = {
    "unary": Kind(st.tuples(st.sampled_from(sorted(UNARY))), 1, lambda p, u, *_: UNARY[p[0]](u)),
    "binary": Kind(
        st.tuples(st.sampled_from(sorted(BINARY))), 2, lambda p, u, r, *_: BINARY[p[0]](u, r[0])
    ),
    "matmul_w": Kind(st.tuples(), 1, lambda p, u, r, a, w: u @ w),
    "feature_reduce": Kind(
        st.tuples(st.sampled_from(("sum", "max", "min", "prod"))), 1, _feature_reduce
    ),
    "position_reduce": Kind(
        st.tuples(st.sampled_from(("sum", "max"))),
        1,
        lambda p, u, *_: jnp.broadcast_to(getattr(jnp, p[0])(u, axis=0, keepdims=True), u.shape),
    ),
    "cumulative": Kind(
        st.tuples(st.sampled_from(CUMULATIVE), st.sampled_from((0, 1)), st.booleans()),
        1,
        _cumulative,
    ),
    "masked_sum": Kind(st.tuples(MASK, st.sampled_from((0.0, 1.0))), 2, _masked_sum),
    "masked_max": Kind(st.tuples(MASK, st.sampled_from(FILLS)), 2, _masked_max),
    "masked_softmax": Kind(st.tuples(MASK, st.sampled_from(FILLS)), 3, _masked_softmax),
    "attention": Kind(
        st.tuples(), 3, lambda p, u, r, *_: jax.nn.softmax(u @ r[0].T / 2.0, axis=1) @ r[1]
    ),
    "reshape": Kind(st.tuples(st.sampled_from(("split_features", "merge_positions"))), 1, _reshape),
    "transpose_cumsum": Kind(
        st.tuples(st.booleans()), 1, lambda p, u, *_: jax.lax.cumsum(u.T, axis=1, reverse=p[0]).T
    ),
    "broadcast": Kind(
        st.tuples(),
        2,
        lambda p, u, r, *_: jnp.sum(u[:, None, :] * jnp.tanh(r[0])[:, :, None], axis=1),
    ),
    "scan": Kind(st.tuples(st.booleans(), st.booleans()), 1, _scan),
    "cond": Kind(st.tuples(), 2, _cond),
    "shift": Kind(st.tuples(st.sampled_from((-2, -1, 1, 2))), 1, _shift),
    "take": Kind(st.tuples(), 1, _take),
    "pad": Kind(  # out[t] = u[t - k]
        st.tuples(st.sampled_from((1, 2))),
        1,
        lambda p, u, *_: jnp.pad(u, ((p[0], 0), (0, 0)))[: u.shape[0]],
    ),
    "reverse": Kind(st.tuples(st.sampled_from((0, 1))), 1, lambda p, u, *_: jnp.flip(u, p[0])),
}


KINDS |= edges.INT_KINDS | edges.FLOAT_KINDS | library.KINDS


def _ops(kinds: Sequence[str]) -> st.SearchStrategy[Op]:
    arg = st.sampled_from((0, 0, 0, 1, 2, 3))  # mostly the latest stream
    return st.one_of(
        *(
            st.builds(Op, st.just(name), KINDS[name].params, st.tuples(*[arg] * KINDS[name].n_args))
            for name in kinds
        )
    )


def programs(max_ops: int = 5, kinds: Sequence[str] | None = None) -> st.SearchStrategy[Program]:
    """Random programs of 1 to ``max_ops`` steps of the given kinds (default: every kind); the
    output is the last stream."""
    return st.lists(
        _ops(list(KINDS) if kinds is None else kinds), min_size=1, max_size=max_ops
    ).map(tuple)


def apply(op: Op, streams: Sequence[Array], a: Array, w: Array) -> Array:
    """The [T, D] result of one step."""
    if op.kind not in KINDS:
        raise ValueError(f"unknown op {op.kind}")
    u, *rest = (streams[-1 - i % len(streams)] for i in op.args)
    return KINDS[op.kind].apply(op.params, u, rest, a, w)


def build(program: Program) -> Callable[[Array, Array, Array], Array]:
    def fn(x: Array, a: Array, w: Array) -> Array:
        streams = [a, x]
        for op in program:
            streams.append(apply(op, streams, a, w))
        return streams[-1]

    return fn
