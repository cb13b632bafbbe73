"""proofs.zones: closed difference-constraint zones and their unions, checked against points."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import zones
from proofs.zones import U

VARS = (U, 0, 1)
BOX = range(-6, 7)  # integer points checked (constants are small, so this box is enough)


def points(vars_=VARS):
    for values in itertools.product(BOX, repeat=len(vars_)):
        yield dict(zip(vars_, values))


constraint = st.tuples(st.sampled_from(VARS), st.sampled_from(VARS), st.integers(-2, 2))
zone_or_none = st.lists(constraint, max_size=3).map(zones.close)


def test_close_detects_unsatisfiable_integer_constraints():
    assert zones.close([(0, 1, -1), (1, 0, 0)]) is None  # x0 < x1 and x1 <= x0
    assert zones.close([(0, 0, -1)]) is None
    assert zones.close([(0, 1, 0), (1, 0, 0)]) == zones.eq(0, 1)


def test_closure_makes_implied_bounds_explicit():
    z = zones.close([(U, 0, 0), (0, 1, 0)])  # u <= x0 <= x1
    assert zones.implies(z, (U, 1, 0))
    assert not zones.implies(z, (1, U, 0))


@settings(max_examples=60, deadline=None)
@given(zone_or_none, zone_or_none)
def test_meet_is_intersection(z1, z2):
    if z1 is None or z2 is None:
        return
    m = zones.meet_zones(z1, z2)
    for p in points():
        inside = zones.satisfies(z1, p) and zones.satisfies(z2, p)
        assert inside == (m is not None and zones.satisfies(m, p))


@settings(max_examples=60, deadline=None)
@given(zone_or_none)
def test_projection_is_existential(z):
    if z is None:
        return
    proj = zones.project_zone(z, [1])
    for p in points((U, 0)):
        exists = any(zones.satisfies(z, {**p, 1: v}) for v in range(-20, 21))
        assert zones.satisfies(proj, {**p, 1: 0}) == exists


@settings(max_examples=60, deadline=None)
@given(st.lists(zone_or_none, max_size=3))
def test_complement_partitions_the_points(zs):
    r = zones.region(*zs)
    c = zones.complement(r)
    for p in points():
        assert zones.contains(r, p) != zones.contains(c, p)


@settings(max_examples=40, deadline=None)
@given(st.lists(zone_or_none, min_size=1, max_size=4))
def test_hull_contains_every_zone(zs):
    zs = [z for z in zs if z is not None]
    if not zs:
        return
    h = zones.hull(zs)
    for p in points():
        if any(zones.satisfies(z, p) for z in zs):
            assert zones.satisfies(h, p)


def test_normalize_drops_included_zones_and_caps_size():
    small, big = zones.close([(U, 0, 0), (0, U, 0), (1, 0, 0)]), zones.eq(U, 0)
    assert zones.region(small, big) == frozenset({big})
    many = [zones.eq(U, 0, k) for k in range(zones.MAX_ZONES + 5)]
    capped = zones.region(*many)
    assert len(capped) == 1
    assert all(zones.contains(capped, {U: k, 0: 0}) for k in range(zones.MAX_ZONES + 5))


def test_rename_and_substitute():
    z = zones.region(zones.eq(U, 0))
    assert zones.rename(z, {U: U, 0: 2}) == zones.region(zones.eq(U, 2))
    assert zones.rename(z, {U: U}) == zones.TOP  # dropping x0 forgets the relation
    assert zones.substitute(zones.region(zones.le(U, 0), zones.eq(1, 0)), {0: 3}) == zones.region(
        zones.le(U, 3), zones.eq(1, 3)
    )


def test_describe_is_readable():
    z = zones.close([(U, 0, 0), (0, U, 0), (1, 0, 0)])
    assert zones.describe_zone(z, {U: "s", 0: "t", 1: "k"}) == "s = t, k <= s, k <= t"
    assert zones.describe_zone(zones.le(U, 0, -1), {U: "s", 0: "t"}) == "s <= t - 1"
    assert zones.describe_zone(zones.TOP_ZONE, {}) == "true"
