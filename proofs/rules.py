"""Transfer rules: one sound abstract semantics per first-order JAX primitive.

A rule maps the abstract values of an equation's inputs to those of its outputs. The only field
the verdict rests on is ``dep`` (may-dependence on δ); the value facts (``nz``, ``zr``,
``index``, ``const``, ``fill``, ``ub``, ``lb``) exist to make ``dep`` precise at masks. Every
rule is written so that dropping a fact (⊤) is always allowed; a primitive without a rule is
refused by the interpreter, never guessed. Higher-order primitives (jit, scan, remat, ...) are
in ``proofs.interpreter``.

Assumptions (see README): values are finite (so 0·x = 0 and 0/x = 0), and — only where the
interpreter's context allows it — entries that a ``reduce_max`` sees outside a mask's fill region
are > -finfo.max/2 (no overflow in live attention scores).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax.numpy as jnp
import numpy as np
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, constant, unknown
from proofs.zones import BOTTOM, TOP, Region, U


class Unsupported(Exception):
    """A pattern the analysis cannot handle soundly (it refuses instead of guessing)."""


class Context(Protocol):
    def assume(self, name: str) -> bool:
        """Whether a named assumption may be used (and record that it was)."""

    def is_position(self, size: Any) -> bool:
        """Whether an axis of this size is a sequence-position axis (size T)."""

    def contraction(self, eqn: core.JaxprEqn, sizes: Sequence[Any], routed: bool) -> None:
        """Called when an equation sums/maximises over axes of a δ-dependent operand;
        ``routed``: whether some of that dependency came through a diagonal route."""


Rule = Callable[[core.JaxprEqn, Sequence[AVal], Context], list[AVal]]
RULES: dict[str, Rule] = {}

FRESH = 10_000  # scratch variables (never an array axis)
# exp(x) is exactly 0.0 in float32/float64 (XLA flushes below log(min subnormal) ≈ -745).
EXP_UNDERFLOW = -1.0e4


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for name in names:
            RULES[name] = fn
        return fn

    return register


def out_rank(eqn: core.JaxprEqn, i: int = 0) -> int:
    return len(eqn.outvars[i].aval.shape)


def in_shape(eqn: core.JaxprEqn, i: int) -> tuple:
    return tuple(eqn.invars[i].aval.shape)


# ---- axis bookkeeping ------------------------------------------------------------------------


def remap(av: AVal, mapping: dict[int, int], rank: int) -> AVal:
    """Move ``av`` to new axes: operand axis a becomes output axis mapping[a]; axes missing from
    ``mapping`` are projected out, new axes are unconstrained.

    May-facts (``dep``, ``nz``, ``zr``, ``routed``) take the ∃-projection: an output element may
    be nonzero if the operand element it came from may be. Must-facts (``fill``, ``ub``: "equals
    / is at most c on R") would need the ∀-projection, and a region that mentions a dropped axis
    holds on only part of that axis (e.g. one row of a size-1 axis that is then stretched, one
    iteration of a scan's xs): such a fact is dropped. A fact whose region never mentions a
    dropped axis is the same statement after projection and survives."""
    full = {**mapping, U: U}

    def r(reg: Region) -> Region:
        return zones.rename(reg, full)

    dropped = set(range(av.rank)) - set(mapping)

    def must(fact: tuple[Region, float] | None) -> tuple[Region, float] | None:
        if fact is None or any(zones.variables(z) & dropped for z in fact[0]):
            return None
        return (r(fact[0]), fact[1])

    index = None
    if av.index is not None and av.index[0] in mapping:
        index = (mapping[av.index[0]], av.index[1])
    return AVal(
        rank, r(av.dep), r(av.nz), r(av.zr), index, av.const, must(av.fill), must(av.ub), av.lb,
        r(av.routed),
    )  # fmt: skip


def broadcast_operand(av: AVal, rank: int) -> AVal:
    """An elementwise operand as seen at output rank (rank-0 literals broadcast)."""
    if av.rank == rank:
        return av
    if av.rank == 0:
        return remap(av, {}, rank)
    raise Unsupported(f"elementwise operand of rank {av.rank} in a rank-{rank} equation")


def shift(reg: Region, axis: int, offset: int) -> Region:
    """Region of y where y[i] = x[i + offset] along ``axis`` (x's region given)."""
    tmp = FRESH
    moved = zones.substitute(reg, {axis: tmp})
    linked = zones.meet(moved, zones.region(zones.eq(tmp, axis, offset)))
    return zones.project(linked, [tmp])


# ---- dtypes: which values a cast or an iota keeps exactly ------------------------------------


def exact_integers(dtype: Any) -> tuple[int, int] | None:
    """[lo, hi]: every integer in it is held exactly by ``dtype`` (no wrap-around, no rounding).
    Integers: the dtype's range. Floats: |n| <= 2^(mantissa bits + 1) (bfloat16: 256)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return None
    if jnp.issubdtype(dt, jnp.integer):
        info = np.iinfo(dt)
        return int(info.min), int(info.max)
    if jnp.issubdtype(dt, jnp.floating):
        info = jnp.finfo(dt)
        hi = min(2 ** (int(info.nmant) + 1), int(float(info.max)))
        return -hi, hi
    return None


def index_fits(offset: int, size: Any, dtype: Any) -> bool:
    """The values offset, offset + 1, ..., offset + size - 1 are all exact in ``dtype`` (size may
    be symbolic: then its declared bound must decide it)."""
    held = exact_integers(dtype)
    if held is None:
        return False
    lo, hi = held
    return lo <= offset and _known_leq(size - 1 + offset, hi)


def value_preserving(src: Any, dst: Any) -> bool:
    """Every value of ``src`` converts to ``dst`` exactly, so value facts carry over."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst or src == np.bool_:
        return True
    if dst == np.bool_:
        return False
    if jnp.issubdtype(src, jnp.integer):
        info, held = np.iinfo(src), exact_integers(dst)
        return held is not None and held[0] <= int(info.min) and int(info.max) <= held[1]
    if jnp.issubdtype(src, jnp.floating) and jnp.issubdtype(dst, jnp.floating):
        a, b = jnp.finfo(src), jnp.finfo(dst)
        return b.nmant >= a.nmant and b.maxexp >= a.maxexp and b.minexp <= a.minexp
    return False


def const_op(op: Callable[[Any, Any], Any], a: Any, b: Any, dtype: Any) -> Any:
    """``op`` on two scalar constants in ``dtype`` itself (wrapping / rounding as XLA does), or
    None if a constant does not fit the dtype."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(op(np.asarray(a, dtype), np.asarray(b, dtype)), dtype)[()].item()
    except (OverflowError, ValueError, TypeError):
        return None


def _exact_cast(value: Any, src: Any, dst: Any) -> Any:
    """``value`` converted to ``dst`` if that is exact (it converts back unchanged), else None."""
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(value, src).astype(dst)
            return got[()].item() if got.astype(src) == np.asarray(value, src) else None
    except (OverflowError, ValueError, TypeError):
        return None


# ---- elementwise ------------------------------------------------------------------------------

# f(0) = 0, so the result is nonzero only where the operand is.
ZERO_PRESERVING_UNARY = (
    "neg",
    "square",
    "sqrt",
    "cbrt",
    "abs",
    "sign",
    "tanh",
    "sin",
    "tan",
    "asin",
    "atan",
    "sinh",
    "asinh",
    "atanh",
    "erf",
    "expm1",
    "log1p",
    "floor",
    "ceil",
    "round",
    "real",
    "copy",
    "copy_p",
    "reduce_precision",  # rounds values (0 stays 0): not an identity
    "stop_gradient",
    "optimization_barrier",
)
OTHER_UNARY = (
    "exp",
    "exp2",
    "log",
    "rsqrt",
    "logistic",
    "cos",
    "cosh",
    "acos",
    "acosh",
    "erf_inv",
    "erfc",
    "lgamma",
    "digamma",
    "is_finite",
    "imag",
    "conj",
    "population_count",
    "clz",
)


@rule(*ZERO_PRESERVING_UNARY, *OTHER_UNARY)
def unary(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Elementwise: output i depends on exactly what operand i depends on."""
    (x,) = ins
    name = eqn.primitive.name
    out = unknown(x.rank, x.dep)
    if name in ZERO_PRESERVING_UNARY:
        out = out.with_(nz=x.nz)
        if name in ("stop_gradient", "copy", "copy_p", "optimization_barrier"):
            out = x  # identity on values (stop_gradient is the identity on primals)
    if name == "exp" and x.ub is not None and x.ub[1] <= EXP_UNDERFLOW:
        out = out.with_(nz=zones.complement(x.ub[0]))  # exp underflows to exactly 0 there
    return [out]


@rule("integer_pow")
def integer_pow(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    (x,) = ins
    nz = x.nz if eqn.params["y"] > 0 else TOP
    return [unknown(x.rank, x.dep).with_(nz=nz)]


@rule("convert_element_type")
def convert_element_type(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """0 converts to 0 (or False) in every direction, so ``nz`` always survives. Value facts
    survive only a cast that keeps every value (no wrap-around, no rounding); an index fact only
    if every index value of this axis is exact in the new dtype."""
    (x,) = ins
    src, dst = np.dtype(eqn.invars[0].aval.dtype), np.dtype(eqn.params["new_dtype"])
    out = unknown(x.rank, x.dep).with_(nz=x.nz)
    exact = value_preserving(src, dst)
    if exact or dst == np.bool_:  # a cast to bool is x != 0: zero-ness is exact
        out = out.with_(zr=x.zr)
    if exact:
        out = out.with_(fill=x.fill, ub=x.ub, lb=x.lb, const=x.const)
    elif x.const is not None:
        out = out.with_(const=_exact_cast(x.const, src, dst))
    if x.index is not None and index_fits(x.index[1], in_shape(eqn, 0)[x.index[0]], dst):
        out = out.with_(index=x.index)
    return [out]


def _binary_operands(eqn: core.JaxprEqn, ins: Sequence[AVal]) -> tuple[AVal, AVal, int]:
    rank = out_rank(eqn)
    a, b = (broadcast_operand(x, rank) for x in ins)
    return a, b, rank


def _const_value(av: AVal) -> Any:
    return av.const


@rule("add", "sub", "add_any")
def add_sub(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    a, b, rank = _binary_operands(eqn, ins)
    out = unknown(rank, zones.union(a.dep, b.dep)).with_(nz=zones.union(a.nz, b.nz))
    sub = eqn.primitive.name == "sub"
    aval = eqn.outvars[0].aval
    if a.const is not None and b.const is not None:
        value = const_op(np.subtract if sub else np.add, a.const, b.const, aval.dtype)
        if value is not None:
            return [constant(rank, value).with_(dep=out.dep)]
    # iota + k is still an index value (jnp.tril / jnp.eye build their masks this way), as long
    # as no value of it wraps around or rounds in this dtype
    sign = -1 if sub else 1
    index = None
    if a.index is not None and _is_int(b.const):
        index = (a.index[0], a.index[1] + sign * int(b.const))
    elif b.index is not None and not sub and _is_int(a.const):
        index = (b.index[0], b.index[1] + int(a.const))
    if index is not None and index_fits(index[1], aval.shape[index[0]], aval.dtype):
        out = out.with_(index=index)
    if sub and b.lb is not None and math.isfinite(b.lb):
        # x - m <= ub(x) - lb(m): the masked scores minus their row max stay hugely negative
        if a.fill is not None:
            out = out.with_(ub=(a.fill[0], a.fill[1] - b.lb))
        elif a.ub is not None:
            out = out.with_(ub=(a.ub[0], a.ub[1] - b.lb))
    return [out]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@rule("mul")
def mul(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """d(a·b) only where the other factor may be nonzero: a zero factor absorbs (finite values)."""
    a, b, rank = _binary_operands(eqn, ins)
    dep = zones.union(zones.meet(a.dep, b.nz), zones.meet(b.dep, a.nz))
    dtype = np.dtype(eqn.outvars[0].aval.dtype)
    # a product of nonzero numbers can still be 0 (float underflow, integer wrap-around)
    zr = zones.union(a.zr, b.zr) if dtype == np.bool_ else TOP
    out = unknown(rank, dep).with_(nz=zones.meet(a.nz, b.nz), zr=zr)
    if a.const is not None and b.const is not None:
        out = out.with_(const=const_op(np.multiply, a.const, b.const, dtype))
    return [out]


@rule("div")
def div(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """a/b is 0 wherever a is 0 (finite values), so b matters only where a may be nonzero."""
    a, b, rank = _binary_operands(eqn, ins)
    dep = zones.union(a.dep, zones.meet(b.dep, a.nz))
    return [unknown(rank, dep).with_(nz=a.nz)]  # a/b may underflow to 0: zr unknown


@rule(
    "max",
    "min",
    "pow",
    "atan2",
    "rem",
    "nextafter",
    "and",
    "or",
    "xor",
    "not",
    "shift_left",
    "shift_right_logical",
    "shift_right_arithmetic",
    "clamp",
    "igamma",
    "random_gamma_grad",
    "polygamma",
    "zeta",
    "igammac",
    "igamma_grad_a",
    "bessel_i1e",
    "bessel_i0e",
    "complex",
)
def other_elementwise(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Generic elementwise: the union of the operands' dependencies, plus boolean logic."""
    rank = out_rank(eqn)
    args = [broadcast_operand(x, rank) for x in ins]
    out = unknown(rank, zones.union(*(x.dep for x in args)))
    name = eqn.primitive.name
    is_bool = np.dtype(eqn.outvars[0].aval.dtype) == np.bool_
    if is_bool and name == "not":
        (x,) = args
        out = out.with_(nz=x.zr, zr=x.nz)
    elif is_bool and name == "and":
        a, b = args
        out = out.with_(nz=zones.meet(a.nz, b.nz), zr=zones.union(a.zr, b.zr))
    elif is_bool and name == "or":
        a, b = args
        out = out.with_(nz=zones.union(a.nz, b.nz), zr=zones.meet(a.zr, b.zr))
    elif name == "max":
        lbs = [x.lb if x.lb is not None else x.const for x in args]
        known = [float(v) for v in lbs if v is not None]
        if known:  # max(a, b) >= each operand's lower bound
            out = out.with_(lb=max(known))
    return [out]


def _index_or_const(av: AVal) -> tuple[int | None, int] | None:
    """(axis, offset) for index values, (None, c) for integer constants."""
    if av.index is not None:
        return av.index
    if isinstance(av.const, (int, np.integer)) and not isinstance(av.const, bool):
        return (None, int(av.const))
    return None


def _compare_regions(op: str, a: tuple, b: tuple) -> tuple[Region, Region] | None:
    """Exact (true, false) regions of ``x_i + p  OP  x_j + q`` over index variables."""
    (i, p), (j, q) = a, b
    if i is None or j is None:
        return None  # comparisons with a constant need absolute bounds, which are not tracked
    # x_i - x_j  OP  q - p
    k = q - p
    true_false = {
        "eq": ([zones.eq(i, j, k)], [zones.le(i, j, k - 1), zones.le(j, i, -k - 1)]),
        "ne": ([zones.le(i, j, k - 1), zones.le(j, i, -k - 1)], [zones.eq(i, j, k)]),
        "lt": ([zones.le(i, j, k - 1)], [zones.le(j, i, -k)]),
        "le": ([zones.le(i, j, k)], [zones.le(j, i, -k - 1)]),
        "gt": ([zones.le(j, i, -k - 1)], [zones.le(i, j, k)]),
        "ge": ([zones.le(j, i, -k)], [zones.le(i, j, k - 1)]),
    }[op]
    t, f = true_false
    if i == j:  # same variable: the comparison is a constant
        holds = {"eq": k == 0, "ne": k != 0, "lt": k > 0, "le": k >= 0, "gt": k < 0, "ge": k <= 0}[
            op
        ]
        return (TOP, BOTTOM) if holds else (BOTTOM, TOP)
    return zones.region(*t), zones.region(*f)


@rule("eq", "ne", "lt", "le", "gt", "ge")
def compare(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    a, b, rank = _binary_operands(eqn, ins)
    out = unknown(rank, zones.union(a.dep, b.dep))
    ia, ib = _index_or_const(a), _index_or_const(b)
    if ia is not None and ib is not None:
        regions = _compare_regions(eqn.primitive.name, ia, ib)
        if regions is not None:
            out = out.with_(nz=regions[0], zr=regions[1])
    return [out]


@rule("select_n")
def select_n(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """select_n(p, on_false, on_true): each case matters only where p may select it."""
    rank = out_rank(eqn)
    pred, *cases = (broadcast_operand(x, rank) for x in ins)
    is_bool = np.dtype(eqn.invars[0].aval.dtype) == np.bool_
    if not is_bool or len(cases) != 2:
        dep = zones.union(pred.dep, *(c.dep for c in cases))
        return [unknown(rank, dep).with_(nz=zones.union(*(c.nz for c in cases)))]
    on_false, on_true = cases
    where = (pred.zr, pred.nz)
    dep = zones.union(pred.dep, *(zones.meet(c.dep, w) for c, w in zip(cases, where)))
    nz = zones.union(*(zones.meet(c.nz, w) for c, w in zip(cases, where)))
    zr = zones.union(*(zones.meet(c.zr, w) for c, w in zip(cases, where)))
    out = unknown(rank, dep).with_(nz=nz, zr=zr)
    exact = not zones.meet(pred.nz, pred.zr)  # may-true and may-false partition the indices
    if exact and pred.nz and _diagonal(pred.nz, eqn.outvars[0].aval.shape, ctx):
        out = out.with_(routed=zones.meet(on_true.dep, pred.nz))
    if exact and on_false.const is not None and on_true.const is None and on_false.const != 0:
        out = out.with_(fill=(pred.zr, float(on_false.const)))  # jnp.where(mask, x, fill)
    elif exact and on_true.const is not None and on_false.const is None and on_true.const != 0:
        out = out.with_(fill=(pred.nz, float(on_true.const)))
    return [out]


def _diagonal(reg: Region, shape: Sequence[Any], ctx: Context) -> bool:
    """Every zone forces x_i = x_j for two distinct position axes i, j."""
    positions = [a for a, size in enumerate(shape) if ctx.is_position(size)]
    return all(
        any(zones.pinned_offset(z, i, j) == 0 for i in positions for j in positions if i < j)
        for z in reg
    )


# ---- shape operations -------------------------------------------------------------------------


@rule("broadcast_in_dim")
def broadcast_in_dim(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    x = ins[0]
    if len(ins) > 1:
        raise Unsupported("broadcast_in_dim with dynamic shape operands")
    src = in_shape(eqn, 0)
    dst = tuple(eqn.params["shape"])
    mapping = {
        a: d
        for a, d in enumerate(eqn.params["broadcast_dimensions"])
        if core.definitely_equal(src[a], dst[d])  # a size-1 axis stretched: index is lost
    }
    return [remap(x, mapping, len(dst))]


@rule("transpose")
def transpose(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    perm = eqn.params["permutation"]
    return [remap(ins[0], {old: new for new, old in enumerate(perm)}, len(perm))]


@rule("squeeze")
def squeeze(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    dims = {d % ins[0].rank for d in eqn.params["dimensions"]}
    kept = [a for a in range(ins[0].rank) if a not in dims]
    return [remap(ins[0], {a: n for n, a in enumerate(kept)}, len(kept))]


def reshape_axis_map(src: Sequence[Any], dst: Sequence[Any]) -> dict[int, int]:
    """Axes that a row-major reshape carries over unchanged (same size, same block)."""
    mapping: dict[int, int] = {}
    i = j = 0
    while i < len(src) and j < len(dst):
        if core.definitely_equal(src[i], 1):  # size-1 axes carry no index: skip them
            i += 1
            continue
        if core.definitely_equal(dst[j], 1):
            j += 1
            continue
        gi, gj = [i], [j]
        pi, pj = src[i], dst[j]
        while not core.definitely_equal(pi, pj):
            # grow the side with the smaller product; symbolic sizes only match exactly
            if _known_leq(pi, pj) and i + len(gi) < len(src):
                pi = pi * src[i + len(gi)]
                gi.append(i + len(gi))
            elif j + len(gj) < len(dst):
                pj = pj * dst[j + len(gj)]
                gj.append(j + len(gj))
            else:
                return mapping  # cannot align the rest: nothing more is carried over
        if len(gi) == 1 and len(gj) == 1:
            mapping[i] = j
        i, j = i + len(gi), j + len(gj)
    return mapping


def _known_leq(a: Any, b: Any) -> bool:
    try:
        return bool(a <= b)
    except core.InconclusiveDimensionOperation:
        return False


@rule("reshape")
def reshape(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """A row-major reshape, after transposing by ``dimensions`` if given (reduce_prod's JVP)."""
    if len(ins) > 1:
        raise Unsupported("reshape with dynamic shapes")
    x, src = ins[0], in_shape(eqn, 0)
    dims = eqn.params.get("dimensions")
    if dims is not None:
        x = remap(x, {old: new for new, old in enumerate(dims)}, x.rank)
        src = tuple(src[d] for d in dims)
    dst = tuple(eqn.params["new_sizes"])
    return [remap(x, reshape_axis_map(src, dst), len(dst))]


@rule("slice")
def slice_(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[start + i]: a shift of every region along each sliced axis (stride 1)."""
    x = ins[0]
    starts, strides = eqn.params["start_indices"], eqn.params["strides"]
    out = remap(x, {a: a for a in range(x.rank)}, x.rank).with_(index=None, fill=None, ub=None)
    for axis, start in enumerate(starts):
        stride = 1 if strides is None else strides[axis]
        if start == 0 and stride == 1:
            continue
        if not isinstance(start, (int, np.integer)) or stride != 1:
            keep = {a: a for a in range(x.rank) if a != axis}
            out = remap(out, keep, x.rank)  # forget this axis's index relations
            continue
        out = out.with_(
            dep=shift(out.dep, axis, int(start)),
            nz=shift(out.nz, axis, int(start)),
            zr=shift(out.zr, axis, int(start)),
        )
    if x.index is not None and x.index[0] < x.rank:
        a = x.index[0]
        st = starts[a]
        if isinstance(st, (int, np.integer)) and (strides is None or strides[a] == 1):
            out = out.with_(index=(a, x.index[1] + int(st)))
    return [out]


@rule("concatenate")
def concatenate(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    axis = eqn.params["dimension"]
    rank = out_rank(eqn)
    offset: Any = 0
    deps, nzs = [], []
    for k, x in enumerate(ins):
        if isinstance(offset, (int, np.integer)):
            deps.append(shift(x.dep, axis, -int(offset)))
            nzs.append(shift(x.nz, axis, -int(offset)))
        else:  # symbolic offset: forget relations along the axis
            keep = {a: a for a in range(rank) if a != axis}
            moved = remap(x, keep, rank)
            deps.append(moved.dep)
            nzs.append(moved.nz)
        offset = offset + in_shape(eqn, k)[axis]
    return [unknown(rank, zones.union(*deps)).with_(nz=zones.union(*nzs))]


@rule("pad")
def pad(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[i - lo] along each axis (a shift; negative lo crops), the padding value
    elsewhere. Interior padding or a symbolic lo forgets the axis's relations."""
    x, value = ins
    rank = x.rank
    moved = remap(x, {a: a for a in range(rank)}, rank)
    dep, nz = moved.dep, moved.nz
    for axis, (lo, _, interior) in enumerate(eqn.params["padding_config"]):
        if interior == 0 and isinstance(lo, (int, np.integer)):
            dep, nz = shift(dep, axis, -int(lo)), shift(nz, axis, -int(lo))
        else:
            keep = {a: a for a in range(rank) if a != axis}
            forgot = remap(unknown(rank, dep).with_(nz=nz), keep, rank)
            dep, nz = forgot.dep, forgot.nz
    fill = broadcast_operand(value, rank)
    return [unknown(rank, zones.union(dep, fill.dep)).with_(nz=zones.union(nz, fill.nz))]


@rule("rev")
def rev(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[n - 1 - i] along the reversed axes: without absolute bounds that relation is not
    a zone, so those axes are forgotten (∃, and must-facts on them dropped)."""
    (x,) = ins
    dims = set(eqn.params["dimensions"])
    return [remap(x, {a: a for a in range(x.rank) if a not in dims}, x.rank)]


@rule("iota")
def iota(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """An index value, unless the axis is longer than the dtype holds exactly (an int8 iota
    wraps at 128, a bfloat16 iota rounds above 256): then nothing is known."""
    shape, dim = eqn.params["shape"], eqn.params["dimension"]
    out = unknown(len(shape))
    if index_fits(0, shape[dim], eqn.params["dtype"]):
        out = out.with_(index=(dim, 0))
    return [out]


@rule("dim_as_value")
def dim_as_value(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """A (symbolic) array size used as a value: the same for every δ."""
    return [unknown(out_rank(eqn))]


# ---- reductions and contractions ---------------------------------------------------------------


def _report_contractions(
    eqn: core.JaxprEqn, ctx: Context, dep: Region, routed: bool, sizes: Sequence[Any]
) -> None:
    if dep:
        ctx.contraction(eqn, sizes, routed)


@rule(
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_and",
    "reduce_or",
    "reduce_xor",
    "argmax",
    "argmin",
)
def reduce(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Output i depends on every input along the reduced axes: ∃ over them."""
    (x,) = ins
    axes = set(eqn.params["axes"])
    shape = in_shape(eqn, 0)
    _report_contractions(eqn, ctx, x.dep, bool(x.routed), [shape[a] for a in axes])
    kept = [a for a in range(x.rank) if a not in axes]
    mapping = {a: n for n, a in enumerate(kept)}
    moved = remap(x, mapping, len(kept))
    out = unknown(len(kept), moved.dep)
    name = eqn.primitive.name
    if name == "reduce_sum":
        out = out.with_(nz=moved.nz)  # a sum of zeros is zero
    dtype = eqn.invars[0].aval.dtype
    covered = name == "reduce_max" and x.fill is not None and _covers(x.fill[0], axes, shape)
    covered = covered and jnp.issubdtype(dtype, jnp.floating)
    # Each reduced row has an entry outside the fill region (e.g. the diagonal of a causal
    # mask); under the no-overflow assumption that entry is > -max/2.
    if covered and ctx.assume("no_overflow"):
        out = out.with_(lb=-float(jnp.finfo(dtype).max) / 2)
    return [out]


def _covers(fill_region: Region, axes: set[int], shape: Sequence[Any]) -> bool:
    """Every reduced row meets the complement of ``fill_region``: for one reduced axis r and
    some kept axis k, the line x_r = x_k avoids the fill region, and every row has a point on
    that line — the grid is at least as long along r as along k (a [T, S] mask with S < T has
    rows t >= S with no diagonal entry, which may be entirely fill)."""
    if len(axes) != 1:
        return False
    (r,) = axes
    return any(
        _known_leq(shape[k], shape[r]) and not zones.meet(fill_region, zones.region(zones.eq(r, k)))
        for k in range(len(shape))
        if k != r
    )


@rule("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] combines x[j] for j <= i (j >= i when reversed)."""
    (x,) = ins
    axis, reverse = eqn.params["axis"], eqn.params["reverse"]
    tmp = FRESH

    def scan_region(reg: Region) -> Region:
        moved = zones.substitute(reg, {axis: tmp})
        order = zones.le(axis, tmp) if reverse else zones.le(tmp, axis)
        return zones.project(zones.meet(moved, zones.region(order)), [tmp])

    out = unknown(x.rank, scan_region(x.dep))
    if eqn.primitive.name == "cumsum":
        out = out.with_(nz=scan_region(x.nz))
    return [out]


@rule("dot_general")
def dot_general(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """out[b, i, j] = Σ_k lhs[b, i, k] · rhs[b, k, j]: product rule per term, then ∃ k."""
    lhs, rhs = ins
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lshape = in_shape(eqn, 0)
    tmp = FRESH  # variables for contracted axes (shared by the two operands)
    lmap: dict[int, int] = {}
    rmap: dict[int, int] = {}
    out_axis = 0
    for a, b in zip(lb, rb):
        lmap[a], rmap[b] = out_axis, out_axis
        out_axis += 1
    for a in range(lhs.rank):
        if a not in lb and a not in lc:
            lmap[a] = out_axis
            out_axis += 1
    for b in range(rhs.rank):
        if b not in rb and b not in rc:
            rmap[b] = out_axis
            out_axis += 1
    contracted = []
    for n, (a, b) in enumerate(zip(lc, rc)):
        lmap[a] = rmap[b] = tmp + n
        contracted.append(tmp + n)

    def on(av: AVal, mapping: dict[int, int]) -> tuple[Region, Region]:
        full = {**mapping, U: U}
        return zones.rename(av.dep, full), zones.rename(av.nz, full)

    ldep, lnz = on(lhs, lmap)
    rdep, rnz = on(rhs, rmap)
    terms = zones.union(zones.meet(ldep, rnz), zones.meet(rdep, lnz))
    _report_contractions(eqn, ctx, terms, bool(lhs.routed or rhs.routed), [lshape[a] for a in lc])
    dep = zones.project(terms, contracted)
    nz = zones.project(zones.meet(lnz, rnz), contracted)
    return [unknown(out_axis, dep).with_(nz=nz)]


# ---- gathers ------------------------------------------------------------------------------------


@rule("gather")
def gather(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Output axes that copy an operand axis unchanged keep their relations; axes that are
    indexed by data are projected out (the element may come from anywhere along them)."""
    operand, indices = ins
    dn = eqn.params["dimension_numbers"]
    slice_sizes = eqn.params["slice_sizes"]
    oshape = in_shape(eqn, 0)
    rank = out_rank(eqn)
    ishape = in_shape(eqn, 1)
    batch_out = [d for d in range(rank) if d not in dn.offset_dims]
    index_batch_dims = list(range(len(ishape) - 1))  # JAX puts the index vector last
    mapping: dict[int, int] = {}
    for od, idd in zip(dn.operand_batching_dims, dn.start_indices_batching_dims):
        mapping[od] = batch_out[index_batch_dims.index(idd)]
    window = [
        a
        for a in range(len(oshape))
        if a not in dn.collapsed_slice_dims and a not in dn.operand_batching_dims
    ]
    for a, out_d in zip(window, dn.offset_dims):
        full = core.definitely_equal(slice_sizes[a], oshape[a])
        if a not in dn.start_index_map and full:
            mapping[a] = out_d  # the whole axis is copied at offset 0
    moved = remap(operand, mapping, rank)
    dep = moved.dep
    if indices.dep:  # data-dependent positions: the result may depend on it anywhere
        dep = zones.union(dep, zones.project(indices.dep, range(indices.rank)))
    return [unknown(rank, dep)]


# ---- sanity -------------------------------------------------------------------------------------


def literal_aval(value: Any, rank: int) -> AVal:
    return constant(rank, np.asarray(value).item())


def const_aval(value: Any) -> AVal:
    """A closed-over concrete array: independent of δ; a constant if all elements agree."""
    arr = np.asarray(value)
    if arr.size and arr.size <= 1 << 20 and np.all(arr == arr.flat[0]):
        return constant(arr.ndim, arr.flat[0].item())
    return unknown(arr.ndim)
