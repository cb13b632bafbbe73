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
from proofs.rules.axes import broadcast_operand, remap, shift
from proofs.rules.base import Context, Rule, in_shape, out_rank, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


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


@rule("scatter-add")
def scatter_add(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """out = operand with updates added at data-given indices (the backward of a gather, e.g.
    a cross-entropy's target lookup or an embedding). out[i] depends on operand[i]; an update
    element keeps its relations only along the axes where its output index is its own index
    (batching axes, and window axes that no index moves); along the others it may land
    anywhere. A δ-dependent index makes every output element depend on it."""
    operand, indices, updates = ins
    dn = eqn.params["dimension_numbers"]
    rank = out_rank(eqn)
    window_operand_axes = [
        a
        for a in range(rank)
        if a not in dn.inserted_window_dims and a not in dn.operand_batching_dims
    ]
    mapping: dict[int, int] = {}
    for u, a in zip(dn.update_window_dims, window_operand_axes):
        if a not in dn.scatter_dims_to_operand_dims:
            mapping[u] = a  # the window starts at 0 along a: out index = update index
    scatter_axes = [u for u in range(updates.rank) if u not in dn.update_window_dims]
    index_batch_axes = list(range(indices.rank - 1))  # JAX puts the index vector last
    for od, idd in zip(dn.operand_batching_dims, dn.scatter_indices_batching_dims):
        mapping[scatter_axes[index_batch_axes.index(idd)]] = od
    dep = zones.union(operand.dep, remap(updates, mapping, rank).dep)
    if indices.dep:
        dep = zones.union(dep, zones.project(indices.dep, range(indices.rank)))
    return [unknown(rank, dep)]


@rule("split")
def split(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Consecutive pieces along ``axis`` (the backward of a concatenate): piece k is
    y[i] = x[offset_k + i], a shift like ``slice``; a symbolic offset forgets the axis."""
    (x,) = ins
    axis = eqn.params["axis"]
    moved = remap(x, {a: a for a in range(x.rank)}, x.rank)
    outs, offset = [], 0
    for size in eqn.params["sizes"]:
        if isinstance(offset, (int, np.integer)):
            dep, nz = shift(moved.dep, axis, int(offset)), shift(moved.nz, axis, int(offset))
        else:
            forgot = remap(moved, {a: a for a in range(x.rank) if a != axis}, x.rank)
            dep, nz = forgot.dep, forgot.nz
        outs.append(unknown(x.rank, dep).with_(nz=nz))
        offset = offset + size
    return outs
