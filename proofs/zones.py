"""Zones (conjunctions of difference constraints over integer index variables) and regions
(finite unions of zones), the relational part of the abstract domain.

A variable is an array axis (0, 1, ...) standing for the element's index along that axis, or
``U`` (-1), the position index of the differentiated input δ. A constraint ``(a, b, c)`` means
``x_a - x_b <= c``. Zones are kept *closed* (every implied pairwise bound is explicit, found by
Floyd–Warshall), which makes projection (∃) exact: drop the variable's constraints. No absolute
bounds (``0 <= x < T``) are tracked, so nothing here depends on the sequence length T.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

U = -1  # the differentiated input's position variable
# Variables below U are loop iterations (proofs.rules.control_flow's scan): global like U, they
# never escape the loop that introduced them.


def fresh_global(regions: Iterable[Region]) -> int:
    """A global variable (< U) that none of ``regions`` mentions."""
    used = [v for r in regions for z in r for v in variables(z)]
    return min([U, *used]) - 1


Constraint = tuple[int, int, int]  # x_a - x_b <= c
Zone = frozenset  # frozenset[Constraint], closed and satisfiable
Region = frozenset  # frozenset[Zone]: the union of its zones

MAX_ZONES = 24  # beyond this a region is over-approximated by its hull (sound, terminates)


def close(constraints: Iterable[Constraint]) -> Zone | None:
    """The closed zone of ``constraints``, or None if they are unsatisfiable over the integers."""
    bound: dict[tuple[int, int], int] = {}
    for a, b, c in constraints:
        if a == b:
            if c < 0:
                return None
            continue
        if (a, b) not in bound or c < bound[(a, b)]:
            bound[(a, b)] = c
    names = sorted({v for ab in bound for v in ab})
    for k in names:
        for i in names:
            if (i, k) not in bound:
                continue
            for j in names:
                if (k, j) not in bound:
                    continue
                through = bound[(i, k)] + bound[(k, j)]
                if i == j:
                    if through < 0:
                        return None
                    continue
                if (i, j) not in bound or through < bound[(i, j)]:
                    bound[(i, j)] = through
    return frozenset((a, b, c) for (a, b), c in bound.items())


TOP_ZONE: Zone = frozenset()
TOP: Region = frozenset({TOP_ZONE})
BOTTOM: Region = frozenset()


def eq(a: int, b: int, offset: int = 0) -> Zone:
    """x_a - x_b == offset."""
    z = close([(a, b, offset), (b, a, -offset)])
    assert z is not None
    return z


def le(a: int, b: int, c: int = 0) -> Zone:
    """x_a - x_b <= c."""
    z = close([(a, b, c)])
    assert z is not None
    return z


def bound(z: Zone, a: int, b: int) -> int | None:
    """The tightest c with x_a - x_b <= c implied by ``z`` (None: unbounded)."""
    if a == b:
        return 0
    found = [c for (x, y, c) in z if x == a and y == b]
    return found[0] if found else None


def implies(z: Zone, constraint: Constraint) -> bool:
    a, b, c = constraint
    got = bound(z, a, b)
    return got is not None and got <= c


def meet_zones(z1: Zone, z2: Zone) -> Zone | None:
    return close(itertools.chain(z1, z2))


def includes(big: Zone, small: Zone) -> bool:
    """small ⊆ big (as sets of integer points)."""
    return all(implies(small, c) for c in big)


def variables(z: Zone) -> set[int]:
    return {v for a, b, _ in z for v in (a, b)}


def project_zone(z: Zone, drop: Iterable[int]) -> Zone:
    """∃ drop. z — exact on closed zones."""
    gone = set(drop)
    return frozenset(c for c in z if c[0] not in gone and c[1] not in gone)


def rename_zone(z: Zone, mapping: Mapping[int, int]) -> Zone:
    """Rename variables; axis variables (>= 0) absent from ``mapping`` are projected out first,
    global ones (< 0: U and loop iterations) absent from it are kept as they are."""
    mapping = {**{v: v for v in variables(z) if v < 0}, **mapping}
    kept = project_zone(z, variables(z) - set(mapping))
    renamed = close((mapping[a], mapping[b], c) for a, b, c in kept)
    assert renamed is not None  # renaming an injective map preserves satisfiability
    return renamed


def pinned_offset(z: Zone, a: int, b: int) -> int | None:
    """The offset o with x_a - x_b == o forced by ``z``, if any."""
    hi, lo = bound(z, a, b), bound(z, b, a)
    if hi is not None and lo is not None and hi == -lo:
        return hi
    return None


def satisfies(z: Zone, point: Mapping[int, int]) -> bool:
    """Whether the integer point (values for at least the zone's variables) lies in ``z``."""
    return all(point[a] - point[b] <= c for a, b, c in z)


# ---- regions ---------------------------------------------------------------------------------


def region(*zones: Zone | None) -> Region:
    return normalize(z for z in zones if z is not None)


def normalize(zones: Iterable[Zone]) -> Region:
    """Drop zones included in another; cap the size by taking the hull."""
    unique = list(dict.fromkeys(zones))
    kept = [
        z
        for i, z in enumerate(unique)
        # closed integer zones are canonical, so mutual inclusion means identity
        if not any(j != i and includes(o, z) for j, o in enumerate(unique))
    ]
    if len(kept) > MAX_ZONES:
        return frozenset({hull(kept)})
    return frozenset(kept)


def hull(zones: Iterable[Zone]) -> Zone:
    """The smallest zone containing all ``zones`` (entrywise weakest bound). Sound for unions."""
    zones = list(zones)
    if not zones:
        raise ValueError("hull of no zones")
    common = set.intersection(*({(a, b) for a, b, _ in z} for z in zones))
    out = []
    for a, b in common:
        out.append((a, b, max(bound(z, a, b) for z in zones)))  # type: ignore[type-var]
    closed = close(out)
    assert closed is not None
    return closed


def union(*regions: Region) -> Region:
    return normalize(itertools.chain.from_iterable(regions))


def meet(r1: Region, r2: Region) -> Region:
    return normalize(m for z1 in r1 for z2 in r2 if (m := meet_zones(z1, z2)) is not None)


def project(r: Region, drop: Iterable[int]) -> Region:
    drop = tuple(drop)
    return normalize(project_zone(z, drop) for z in r)


def rename(r: Region, mapping: Mapping[int, int]) -> Region:
    return normalize(rename_zone(z, mapping) for z in r)


def substitute(r: Region, mapping: Mapping[int, int]) -> Region:
    """Rename the variables in ``mapping`` and keep every other variable as it is."""

    def one(z: Zone) -> Zone:
        full = {v: mapping.get(v, v) for v in variables(z)}
        return rename_zone(z, full)

    return normalize(one(z) for z in r)


def complement_zone(z: Zone) -> Region:
    """The integer points outside ``z``: some constraint is violated."""
    return normalize(c for (a, b, k) in z if (c := close([(b, a, -k - 1)])) is not None)


def complement(r: Region) -> Region:
    out: Region = TOP
    for z in r:
        out = meet(out, complement_zone(z))
    return out


def contains(r: Region, point: Mapping[int, int]) -> bool:
    return any(satisfies(z, point) for z in r)


def region_includes(big: Region, small: Region) -> bool:
    """A sufficient check for small ⊆ big: every zone of small inside one zone of big."""
    return all(any(includes(b, s) for b in big) for s in small)


def describe_zone(z: Zone, names: Mapping[int, str]) -> str:
    """Human-readable constraints, e.g. ``u = t, s <= t``."""
    if not z:
        return "true"
    parts = []
    seen: set[frozenset[int]] = set()
    for a, b, _ in sorted(z):
        pair = frozenset((a, b))
        if pair in seen:
            continue
        seen.add(pair)
        pin = pinned_offset(z, a, b)
        na, nb = names.get(a, f"x{a}"), names.get(b, f"x{b}")
        if pin is not None:
            parts.append(f"{na} = {nb}" + (f" {'+' if pin > 0 else '-'} {abs(pin)}" if pin else ""))
            continue
        for x, y, k in ((a, b, bound(z, a, b)), (b, a, bound(z, b, a))):
            if k is not None:
                nx, ny = names.get(x, f"x{x}"), names.get(y, f"x{y}")
                parts.append(f"{nx} <= {ny}" + (f" {'+' if k > 0 else '-'} {abs(k)}" if k else ""))
    return ", ".join(parts)
