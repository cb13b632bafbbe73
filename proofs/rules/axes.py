"""Moving an abstract value between axes (``remap``), rank-0 operands, shifts along an axis.

``remap`` is the projection every shape rule, reduction and scan uses; ``broadcast_operand``
sees a rank-0 operand at an equation's rank; ``shift`` moves a region along one axis."""

from __future__ import annotations

from collections.abc import Sequence

from jax._src import core

from proofs import zones
from proofs.lattice import AVal
from proofs.rules.base import FRESH, Unsupported, out_rank
from proofs.zones import Region, U


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


def binary_operands(eqn: core.JaxprEqn, ins: Sequence[AVal]) -> tuple[AVal, AVal, int]:
    """The two operands of a binary elementwise equation at its output rank, and that rank."""
    rank = out_rank(eqn)
    a, b = (broadcast_operand(x, rank) for x in ins)
    return a, b, rank


def shift(reg: Region, axis: int, offset: int) -> Region:
    """Region of y where y[i] = x[i + offset] along ``axis`` (x's region given)."""
    return band(reg, axis, offset, offset)


def band(reg: Region, axis: int, lo: int | None, hi: int | None) -> Region:
    """Region of y where y[i] may combine x[i + o] for lo <= o <= hi along ``axis`` (None: no
    bound on that side; both None forgets the axis's relations)."""
    tmp = FRESH
    moved = zones.substitute(reg, {axis: tmp})
    limits = []
    if hi is not None:
        limits.append((tmp, axis, hi))
    if lo is not None:
        limits.append((axis, tmp, -lo))
    linked = zones.meet(moved, zones.region(zones.close(limits)))
    return zones.project(linked, [tmp])


def band_aval(av: AVal, axis: int, lo: int | None, hi: int | None) -> AVal:
    """``av`` read through ``band`` along ``axis``: may-facts banded, must-facts dropped (an
    element no longer equals its operand element); an index along ``axis`` survives only an
    exact shift (the values read are a subset of the operand's, so they stay exact)."""
    index = av.index
    if index is not None and index[0] == axis:  # the value x_axis + k read at i + o
        index = (axis, index[1] + lo) if lo is not None and lo == hi else None
    return AVal(
        av.rank,
        band(av.dep, axis, lo, hi),
        band(av.nz, axis, lo, hi),
        band(av.zr, axis, lo, hi),
        index,
        av.const,
        routed=band(av.routed, axis, lo, hi),
    )


def relate(
    reg: Region, mapping: dict[int, int], limits: Sequence[Sequence[tuple[int, int, int]]]
) -> Region:
    """``reg`` with its axes renamed by ``mapping`` (others ∃; scratch variables >= FRESH
    allowed), met with the union of the zones ``limits`` (each a list of constraints linking the
    scratch variables to output axes), the scratch variables then ∃."""
    renamed = zones.rename(reg, {**mapping, U: U})
    allowed = zones.region(*(zones.close(z) for z in limits))
    scratch = [v for v in mapping.values() if v >= FRESH]
    return zones.project(zones.meet(renamed, allowed), scratch)
