"""The abstract value of one jaxpr variable, and the verdict lattice it is read out into.

Verdict lattice (per output position t, over input positions s):

    none  ⊑  same-position (s = t)  ⊑  same-or-past (s <= t)  ⊑  any

The analysis itself works one level finer: ``AVal.dep`` is a region over the array's own axes
and the input position ``U`` that contains every (index, u) at which the element may depend on
δ at position u. "Depend" is functional dependence — if (i, u) is outside ``dep`` then element i
is the same for every value of δ[..., u, ...] — which is stronger than (implies) a zero Jacobian
entry. The other fields are value facts about primal arrays that make masks and underflowed
softmax entries visible; each one is an over-approximation of what the value may be.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from proofs import zones
from proofs.zones import BOTTOM, TOP, Region, U


class Position(enum.IntEnum):
    """How an output element at position t may depend on input positions s."""

    NONE = 0
    SAME = 1  # s = t
    PAST = 2  # s <= t
    ANY = 3

    @property
    def label(self) -> str:
        return {0: "none", 1: "same-position", 2: "same-or-past", 3: "any"}[int(self)]

    def __str__(self) -> str:  # the public verdict: exactly one of the four labels
        return self.label

    def __format__(self, spec: str) -> str:
        return format(self.label, spec)


@dataclasses.dataclass(frozen=True)
class AVal:
    """Abstract value of an array variable (every field is sound on its own).

    dep:   may-depend region over axes and U (BOTTOM: independent of δ).
    nz:    region where the value may be nonzero (for booleans: may be True).
    zr:    region where the value may be zero (for booleans: may be False).
    index: (axis, offset): the integer value equals x_axis + offset at every index.
    const: the whole array equals this scalar.
    fill:  (region, c): the value equals c on region (a mask's fill value).
    ub:    (region, b): the value is <= b on region.
    lb:    the value is >= lb everywhere (only produced under the no-overflow assumption).
    routed: the part of ``dep`` that may flow through a *diagonal route*: the selected case of
           an exact iota mask confined to x_i = x_j of two position axes (the attention grid's
           diagonal, where the live key/value correction sits). Used only to refute.
    """

    rank: int
    dep: Region = BOTTOM
    nz: Region = TOP
    zr: Region = TOP
    index: tuple[int, int] | None = None
    const: Any = None
    fill: tuple[Region, float] | None = None
    ub: tuple[Region, float] | None = None
    lb: float | None = None
    routed: Region = BOTTOM

    def with_(self, **changes: Any) -> AVal:
        return dataclasses.replace(self, **changes)


def unknown(rank: int, dep: Region = BOTTOM) -> AVal:
    """Nothing known about the value (only its dependency)."""
    return AVal(rank, dep)


def constant(rank: int, value: Any) -> AVal:
    """An array every element of which equals the scalar ``value``."""
    is_zero = bool(value == 0)
    return AVal(
        rank, BOTTOM, nz=BOTTOM if is_zero else TOP, zr=TOP if is_zero else BOTTOM, const=value
    )


def _join_opt(a: Any, b: Any) -> Any:
    return a if a == b else None


def join(a: AVal, b: AVal) -> AVal:
    """Least upper bound (used for scan carries): every fact must hold in both."""
    assert a.rank == b.rank
    lb = None if a.lb is None or b.lb is None else min(a.lb, b.lb)
    return AVal(
        a.rank,
        zones.union(a.dep, b.dep),
        zones.union(a.nz, b.nz),
        zones.union(a.zr, b.zr),
        _join_opt(a.index, b.index),
        _join_opt(a.const, b.const),
        _join_opt(a.fill, b.fill),
        _join_opt(a.ub, b.ub),
        lb,
        zones.union(a.routed, b.routed),
    )


def widen_region(old: Region, new: Region) -> Region:
    """Zone widening: keep the constraints of old's hull that new still satisfies, drop the
    ones still moving. Each step only drops constraints, so chains are finite."""
    if new == old or not new:
        return old
    if not old:
        return frozenset({zones.hull(new)})
    before, after = zones.hull(old), zones.hull(new)
    stable = [(a, b, c) for a, b, c in before if zones.implies(after, (a, b, c))]
    closed = zones.close(stable)
    assert closed is not None
    return frozenset({closed})


def widen(old: AVal, new: AVal) -> AVal:
    """Jump towards a fixed point: keep what is stable, widen or give up on what changes."""
    return AVal(
        new.rank,
        widen_region(old.dep, new.dep),
        new.nz if new.nz == old.nz else TOP,
        new.zr if new.zr == old.zr else TOP,
        new.index if new.index == old.index else None,
        new.const if new.const == old.const else None,
        new.fill if new.fill == old.fill else None,
        new.ub if new.ub == old.ub else None,
        new.lb if new.lb == old.lb else None,
        widen_region(old.routed, new.routed),
    )


# ---- reading a dependency region out into the verdict lattice ---------------------------------


def classify_zone(z: zones.Zone, axis: int) -> Position:
    if zones.pinned_offset(z, U, axis) == 0:
        return Position.SAME
    if zones.implies(z, (U, axis, 0)):
        return Position.PAST
    return Position.ANY


def classify(dep: Region, axis: int = 0) -> Position:
    """The lattice element of a dependency region, relative to position axis ``axis``."""
    return max((classify_zone(z, axis) for z in dep), default=Position.NONE)


def is_local(z: zones.Zone, rank: int) -> bool:
    """The dependency is on the element's own position along some axis (u = x_k)."""
    return any(zones.pinned_offset(z, U, k) == 0 for k in range(rank))


def describe(dep: Region, names: dict[int, str]) -> list[str]:
    """Each zone of a dependency region as text (``U`` is printed as ``s``)."""
    names = {U: "s", **names}
    return sorted(zones.describe_zone(z, names) for z in dep)
