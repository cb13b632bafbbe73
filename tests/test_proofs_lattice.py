"""proofs.lattice: reading regions into the verdict lattice, joins and widening."""

from __future__ import annotations

from proofs import zones
from proofs.lattice import AVal, Position, classify, constant, describe, is_local, join, widen
from proofs.zones import BOTTOM, TOP, U


def test_lattice_order():
    assert Position.NONE < Position.SAME < Position.PAST < Position.ANY
    assert [p.label for p in Position] == ["none", "same-position", "same-or-past", "any"]


def test_classify():
    assert classify(BOTTOM) == Position.NONE
    assert classify(zones.region(zones.eq(U, 0))) == Position.SAME
    assert classify(zones.region(zones.le(U, 0, -1))) == Position.PAST
    assert classify(zones.region(zones.eq(U, 0), zones.le(U, 0))) == Position.PAST
    assert classify(zones.region(zones.le(0, U, -1))) == Position.ANY  # the future
    assert classify(zones.region(zones.eq(U, 0, 1))) == Position.ANY  # one step ahead
    assert classify(TOP) == Position.ANY
    # relative to another axis: u = x1 is "same" for axis 1, not for axis 0
    assert classify(zones.region(zones.eq(U, 1)), axis=1) == Position.SAME
    assert classify(zones.region(zones.eq(U, 1)), axis=0) == Position.ANY


def test_is_local_means_pinned_to_some_own_axis():
    assert is_local(zones.eq(U, 1), rank=2)
    assert not is_local(zones.eq(U, 1), rank=1)
    assert not is_local(zones.le(U, 0), rank=1)


def test_join_keeps_only_common_facts():
    a = constant(1, 0.0)
    b = constant(1, 1.0)
    j = join(a, b)
    assert j.const is None and j.nz == TOP
    same = join(a, a)
    assert same == a
    dep = join(AVal(1, zones.region(zones.eq(U, 0))), AVal(1, zones.region(zones.le(U, 0))))
    assert classify(dep.dep) == Position.PAST


def test_widen_gives_up_on_what_changes():
    old = AVal(1, zones.region(zones.eq(U, 0)), lb=-1.0)
    new = AVal(1, zones.region(zones.eq(U, 0), zones.eq(U, 0, -1)), lb=-1.0)
    w = widen(old, new)  # u = t, then u in {t-1, t}: the lower bound on u is dropped
    assert w.dep == zones.region(zones.le(U, 0)) and w.lb == -1.0
    assert widen(AVal(1), AVal(1, zones.region(zones.eq(U, 0)))).dep == zones.region(zones.eq(U, 0))
    assert widen(old, old) == old


def test_describe():
    assert describe(zones.region(zones.le(U, 0)), {0: "t"}) == ["s <= t"]
