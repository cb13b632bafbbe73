"""Window rules (conv_general_dilated, reduce_window_*, select_and_gather_add and its transpose),
where an output element combines a window of the operand along each spatial axis.

Along an axis with stride 1 and no base (lhs) dilation, out[y] reads the operand at
i = y + k·dilation − pad_lo for k in [0, K): the band  −pad_lo <= i − y <= (K − 1)·dilation −
pad_lo, a difference constraint whatever the length — a causal convolution (pad_lo = K − 1) reads
i <= y. With a stride s >= 1, i = s·y + ... >= y − pad_lo still holds (indices are >= 0), so only
the lower side is kept; a base dilation forgets the axis. A symbolic kernel size forgets it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.axes import band_aval, relate
from proofs.rules.base import FRESH, Context, Rule, in_shape, out_rank, registrar
from proofs.zones import U

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


def window_offsets(
    size: Any, stride: int, pad_lo: Any, base_dilation: int, window_dilation: int
) -> tuple[int | None, int | None] | None:
    """(lo, hi) with lo <= i − y <= hi for every operand index i that out[y] reads along one
    axis (None on a side: unbounded there); None when nothing is known (the axis is forgotten)."""
    static = all(isinstance(v, (int, np.integer)) for v in (size, stride, pad_lo))
    if not static or base_dilation != 1 or stride < 1:
        return None
    lo = -int(pad_lo)
    if stride != 1:
        return (lo, None)
    return (lo, (int(size) - 1) * int(window_dilation) - int(pad_lo))


def windowed(av: AVal, offsets: Sequence[tuple[int | None, int | None] | None]) -> AVal:
    """``av`` read through a window along every axis (``offsets`` per axis, None: forgotten)."""
    out = av.with_(fill=None, ub=None, lb=None)
    for axis, off in enumerate(offsets):
        lo, hi = off if off is not None else (None, None)
        if (lo, hi) != (0, 0):
            out = band_aval(out, axis, lo, hi)
    return out


def _window_params(eqn: core.JaxprEqn) -> list[tuple[int | None, int | None] | None]:
    p = eqn.params
    n = len(p["window_dimensions"])
    return [
        window_offsets(size, stride, pad[0], base, dil)
        for size, stride, pad, base, dil in zip(
            p["window_dimensions"],
            p["window_strides"],
            p["padding"],
            p.get("base_dilation", (1,) * n),  # select_and_scatter_add has no dilations
            p.get("window_dilation", (1,) * n),
        )
    ]


@rule("reduce_window_sum")
def reduce_window_sum(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Sum over each window (average pooling): a sum of zeros is zero, so ``nz`` is banded too."""
    (x,) = ins
    out = windowed(x, _window_params(eqn))
    return [unknown(x.rank, out.dep).with_(nz=out.nz)]


@rule("reduce_window_max", "reduce_window_min")
def reduce_window_extremum(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    (x,) = ins
    return [unknown(x.rank, windowed(x, _window_params(eqn)).dep)]


@rule("reduce_window")
def reduce_window(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """A window reduction with its own computation: each output reads the windows of every
    operand and the initial values (which may enter anywhere)."""
    n = len(ins) // 2
    offsets = _window_params(eqn)
    inits = zones.union(*(zones.project(v.dep, range(v.rank)) for v in ins[n:]))
    dep = zones.union(inits, *(windowed(x, offsets).dep for x in ins[:n]))
    return [unknown(out_rank(eqn, k), dep) for k in range(len(eqn.outvars))]


@rule("select_and_gather_add")
def select_and_gather_add(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """The tangent at the selected (max/min) entry of each window of ``operand`` (max pooling's
    JVP): it reads the window of ``tangents``, and which entry is chosen reads ``operand``."""
    tangents, operand = ins
    offsets = _window_params(eqn)
    picked = windowed(tangents, offsets)
    dep = zones.union(picked.dep, windowed(operand, offsets).dep)
    return [unknown(tangents.rank, dep).with_(nz=picked.nz)]


@rule("select_and_scatter_add")
def select_and_scatter_add(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """The transpose of select_and_gather_add (max pooling's VJP): out[i] sums source[y] over the
    windows y that selected i: the mirrored band of ``source``; the selection reads ``operand``
    anywhere near, so its axes are forgotten."""
    source, operand = ins
    mirrored = []
    for off in _window_params(eqn):
        lo, hi = off if off is not None else (None, None)
        mirrored.append((None if hi is None else -hi, None if lo is None else -lo))
    spread = windowed(source, mirrored)
    anywhere = zones.project(operand.dep, range(operand.rank))
    return [unknown(operand.rank, zones.union(spread.dep, anywhere))]


@rule("conv_general_dilated")
def conv_general_dilated(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """out[n, o, y] = Σ_{c, k} lhs[n, c, y + k·d − pad_lo] · rhs[o, c, k] per spatial axis:
    the batch axis carried from lhs, the output feature axis from rhs, each spatial axis read
    through its window band (the kernel's extent along positions); features and the kernel's
    axes are summed (∃)."""
    lhs, rhs = ins
    p = eqn.params
    dn = p["dimension_numbers"]
    rank = out_rank(eqn)
    rhs_shape = in_shape(eqn, 1)
    lhs_map: dict[int, int] = {}
    if p["batch_group_count"] == 1:  # batch groups split the batch: then it is forgotten
        lhs_map[dn.lhs_spec[0]] = dn.out_spec[0]
    limits = []
    for k, (l_ax, o_ax) in enumerate(zip(dn.lhs_spec[2:], dn.out_spec[2:])):
        size = rhs_shape[dn.rhs_spec[2 + k]]
        pad_lo = p["padding"][k][0]
        off = window_offsets(
            size, p["window_strides"][k], pad_lo, p["lhs_dilation"][k], p["rhs_dilation"][k]
        )
        if off is None:
            continue
        lhs_map[l_ax] = FRESH + k
        lo, hi = off
        if hi is not None:
            limits.append((FRESH + k, o_ax, hi))
        limits.append((o_ax, FRESH + k, -lo))
    read = relate(lhs.dep, lhs_map, [limits])
    weights = zones.rename(rhs.dep, {dn.rhs_spec[0]: dn.out_spec[1], U: U})
    return [unknown(rank, zones.union(read, weights))]
