"""Indexing rules (slice, concatenate, pad, gather), where an output element is read from another
position of the operand.

A static stride-1 offset is a shift of every may-region (y[i] = x[i + k]); a symbolic offset,
a stride, interior padding or a data-dependent index forgets the axis's relations. A
δ-dependent index makes every output element depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.axes import band_aval, broadcast_operand, relate, remap, shift
from proofs.rules.base import (
    FRESH,
    Context,
    Rule,
    Unsupported,
    in_shape,
    known_leq,
    out_rank,
    registrar,
)
from proofs.zones import Region

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


def _static(v: Any) -> bool:
    return isinstance(v, (int, np.integer))


@rule("slice")
def slice_(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[start + stride·i] along each axis: a shift for stride 1; for a larger stride
    the operand index is still >= i + start (indices are >= 0), a band open above."""
    x = ins[0]
    starts, strides = eqn.params["start_indices"], eqn.params["strides"]
    out = x.with_(fill=None, ub=None, lb=None)
    for axis, start in enumerate(starts):
        stride = 1 if strides is None else strides[axis]
        if not _static(start):
            out = band_aval(out, axis, 0, None)
        elif stride == 1:
            out = band_aval(out, axis, int(start), int(start))
        else:
            out = band_aval(out, axis, int(start), None)
    return [out]


@rule("split")
def split(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Consecutive slices along ``axis``: output k is x shifted by the sizes before it."""
    (x,) = ins
    axis = eqn.params["axis"]
    outs, offset = [], 0
    for size in eqn.params["sizes"]:
        exact = _static(offset)
        lo, hi = (int(offset), int(offset)) if exact else (0, None)
        outs.append(band_aval(x.with_(fill=None, ub=None, lb=None), axis, lo, hi))
        offset = offset + size
    return outs


def _window_start(n: Any, m: Any, start: AVal) -> tuple[int | None, int | None]:
    """(lo, hi) bounds of XLA's clamped start, clamp(start, 0, n − m), of a window of m in n."""
    if core.definitely_equal(n, m):
        return 0, 0
    if not (_static(n) and _static(m)):
        return 0, None
    room = int(n) - int(m)
    if _is_int(start.const):
        c = min(max(int(start.const), 0), room)
        return c, c
    return 0, room


def _is_int(v: Any) -> bool:
    return _static(v) and not isinstance(v, bool)


def _taint(dep: Region, starts: Sequence[AVal]) -> Region:
    """A δ-dependent start moves the window: every element may depend on it."""
    return zones.union(dep, *(zones.project(s.dep, range(s.rank)) for s in starts))


@rule("dynamic_slice")
def dynamic_slice(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[i + c] with c = clamp(start, 0, n − m) per axis: exact for a constant start or a
    full-length window, otherwise the band 0 <= c <= n − m (open above for a symbolic n)."""
    x, *starts = ins
    sizes = eqn.params["slice_sizes"]
    if len(starts) != x.rank:
        raise Unsupported("dynamic_slice with dynamic slice sizes")
    out = x.with_(fill=None, ub=None, lb=None)
    shape = in_shape(eqn, 0)
    for axis, start in enumerate(starts):
        lo, hi = _window_start(shape[axis], sizes[axis], start)
        out = band_aval(out, axis, lo, hi)
    return [out.with_(dep=_taint(out.dep, starts))]


@rule("dynamic_update_slice")
def dynamic_update_slice(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = update[i − c] inside the window (c the clamped start), operand[i] outside it."""
    x, update, *starts = ins
    moved = update
    shape, ushape = in_shape(eqn, 0), in_shape(eqn, 1)
    for axis, start in enumerate(starts):
        lo, hi = _window_start(shape[axis], ushape[axis], start)
        moved = band_aval(moved, axis, None if hi is None else -hi, -lo)
    dep = _taint(zones.union(x.dep, moved.dep), starts)
    return [unknown(x.rank, dep).with_(nz=zones.union(x.nz, moved.nz))]


SCATTER_NZ = {"scatter": True, "scatter-add": True, "scatter-sub": True, "scatter-mul": False}


@rule("scatter", "scatter-add", "scatter-sub", "scatter-mul", "scatter-min", "scatter-max")
def scatter(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y = operand with ``updates`` combined in at data-dependent places: operand[i] stays at i;
    an update's window axis that covers a whole operand axis (not indexed) is carried to it,
    every other update axis may land anywhere (∃); δ-dependent indices taint everything."""
    if len(ins) != 3:
        raise Unsupported("scatter of several operands")
    operand, indices, updates = ins
    dn = eqn.params["dimension_numbers"]
    oshape, ushape = in_shape(eqn, 0), in_shape(eqn, 2)
    window = [
        a
        for a in range(operand.rank)
        if a not in dn.inserted_window_dims and a not in dn.operand_batching_dims
    ]
    mapping = {
        ud: a
        for a, ud in zip(window, dn.update_window_dims)
        if a not in dn.scatter_dims_to_operand_dims and core.definitely_equal(ushape[ud], oshape[a])
    }
    # Batching axes (the backward of take_along_axis, e.g. a cross-entropy's target lookup):
    # update scatter axis k pairs with the indices' k-th batch axis (the index vector is last)
    # and lands at the same position along the operand's batching axis.
    scatter_axes = [u for u in range(updates.rank) if u not in dn.update_window_dims]
    index_batch_axes = list(range(indices.rank - 1))
    for od, idd in zip(dn.operand_batching_dims, dn.scatter_indices_batching_dims):
        mapping[scatter_axes[index_batch_axes.index(idd)]] = od
    moved = remap(updates, mapping, operand.rank)
    dep = _taint(zones.union(operand.dep, moved.dep), [indices])
    out = unknown(operand.rank, dep)
    name = eqn.primitive.name
    if name in SCATTER_NZ:  # a sum / a choice of zeros is zero; a product keeps operand zeros
        nz = zones.union(operand.nz, moved.nz) if SCATTER_NZ[name] else operand.nz
        out = out.with_(nz=nz)
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
    out = unknown(rank, zones.union(*deps)).with_(nz=zones.union(*nzs))
    index = ins[0].index
    if index is not None and index[0] != axis and all(x.index == index for x in ins):
        out = out.with_(index=index)  # every block equals x_k + c along another axis
    return [out]


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


@rule("gather")
def gather(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Output axes that copy an operand axis unchanged keep their relations; an indexed axis
    whose start index is an exact index value x_k + c (an iota gather: ``x[jnp.arange(T)]``,
    ``jnp.diag``) reads operand position x_k + c when that start is in bounds (no clamping);
    other indexed axes are projected out (the element may come from anywhere along them). An
    index that depends on δ makes the element depend on it (on the index's own batch axes)."""
    operand, indices = ins
    dn = eqn.params["dimension_numbers"]
    oshape, ishape = in_shape(eqn, 0), in_shape(eqn, 1)
    rank = out_rank(eqn)
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
        full = core.definitely_equal(eqn.params["slice_sizes"][a], oshape[a])
        if a not in dn.start_index_map and full:
            mapping[a] = out_d  # the whole axis is copied at offset 0
    limits = _iota_starts(eqn, indices, batch_out, mapping)
    dep = relate(operand.dep, mapping, [limits])
    routed = relate(operand.routed, mapping, [limits])
    if indices.dep:  # data-dependent positions: the result may depend on it
        carried = {k: batch_out[k] for k in index_batch_dims}
        dep = zones.union(dep, remap(indices, carried, rank).dep)
    return [unknown(rank, dep).with_(routed=routed)]


def _iota_starts(
    eqn: core.JaxprEqn, indices: AVal, batch_out: list[int], mapping: dict[int, int]
) -> list[tuple[int, int, int]]:
    """For each collapsed operand axis a whose start is the exact index x_k + c of an index
    batch axis k: map a to a scratch variable (added to ``mapping``) equal to output axis
    batch_out[k] + c, if that start cannot be clamped (FILL_OR_DROP never clamps: an
    out-of-bounds window reads nothing)."""
    if indices.index is None or indices.index[0] >= indices.rank - 1:
        return []
    k, c = indices.index
    dn, sizes = eqn.params["dimension_numbers"], eqn.params["slice_sizes"]
    oshape, ishape = in_shape(eqn, 0), in_shape(eqn, 1)
    drops = getattr(eqn.params["mode"], "name", "") == "FILL_OR_DROP"
    limits = []
    for a in dn.start_index_map:
        in_bounds = drops or (c >= 0 and known_leq(ishape[k] - 1 + c + sizes[a], oshape[a]))
        if a in dn.collapsed_slice_dims and in_bounds:
            mapping[a] = FRESH + a
            limits += [(FRESH + a, batch_out[k], c), (batch_out[k], FRESH + a, -c)]
    return limits
