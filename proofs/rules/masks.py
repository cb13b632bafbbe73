"""Mask rules (iota, comparisons, select_n), which turn iota-built masks into exact regions.

``jnp.tril`` / ``jnp.eye`` masks become exact regions and restrict a dependency where they
select.

A comparison of two exact index values ``x_i + p OP x_j + q`` has exact true/false regions;
anything else (a data mask) is unknown and never restricts. ``select_n`` keeps each case only
where the predicate may select it, records a mask's constant fill (for the softmax underflow
rule) and the diagonal route (a tangent selected on x_i = x_j of two position axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules import dtypes
from proofs.rules.axes import binary_operands, broadcast_operand
from proofs.rules.base import Context, Rule, out_rank, registrar
from proofs.zones import BOTTOM, TOP, Region

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


@rule("iota")
def iota(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """An index value, unless the axis is longer than the dtype holds exactly (an int8 iota
    wraps at 128, a bfloat16 iota rounds above 256): then nothing is known."""
    shape, dim = eqn.params["shape"], eqn.params["dimension"]
    out = unknown(len(shape))
    if dtypes.index_fits(0, shape[dim], eqn.params["dtype"]):
        out = out.with_(index=(dim, 0))
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
    if i is None and j is None:
        return None
    if i is None or j is None:
        return _against_constant(op, a, b)
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


# total-order comparisons (sort comparators, searchsorted): the same on integers
TOTAL_ORDER = {"eq_to": "eq", "le_to": "le", "lt_to": "lt"}


SWAPPED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


def _against_constant(op: str, a: tuple, b: tuple) -> tuple[Region, Region] | None:
    """``x_i + p  OP  q`` decided by the one absolute bound known, x_i >= 0: decided only when
    it holds (or fails) for every index (``i < 0`` is always false for an iota); else None."""
    if a[0] is None:
        a, b, op = b, a, SWAPPED[op]
    p, q = a[1], b[1]  # x_i + p >= p
    always = {"gt": p > q, "ge": p >= q, "ne": p > q}.get(op, False)
    never = {"lt": p >= q, "le": p > q, "eq": p > q}.get(op, False)
    if always:
        return TOP, BOTTOM
    if never:
        return BOTTOM, TOP
    return None


@rule("eq", "ne", "lt", "le", "gt", "ge", *TOTAL_ORDER)
def compare(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    a, b, rank = binary_operands(eqn, ins)
    out = unknown(rank, zones.union(a.dep, b.dep))
    ia, ib = _index_or_const(a), _index_or_const(b)
    name = eqn.primitive.name
    if name in TOTAL_ORDER:  # floats order -0.0 before 0.0 there: exact regions for ints only
        is_int = np.issubdtype(np.dtype(eqn.invars[0].aval.dtype), np.integer)
        ia, name = (ia if is_int else None), TOTAL_ORDER[name]
    if ia is not None and ib is not None:
        regions = _compare_regions(name, ia, ib)
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
    if not pred.nz or not pred.zr:  # the predicate is decided: one case, with all its facts
        chosen = on_true if not pred.zr else on_false
        return [chosen.with_(dep=zones.union(chosen.dep, pred.dep))]
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
