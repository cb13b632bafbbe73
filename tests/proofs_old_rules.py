"""Copies of rules that were unsound (issue 25), kept only so tests can patch them back in and
show that a regression test, or the fuzzer's integer-edge generator, catches each defect.

Never registered: ``patch_old_rules(monkeypatch, name)`` swaps one in for a single test."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from jax._src import core

from proofs import rules, zones
from proofs.lattice import AVal, constant, unknown
from proofs.rules import dtypes
from proofs.rules.axes import binary_operands
from proofs.rules.base import Context


def old_add_sub(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Before issue 25: the masked-difference bound ``x - m <= fill - lb(m)`` for every dtype,
    integers included (where the difference wraps around)."""
    a, b, rank = binary_operands(eqn, ins)
    out = unknown(rank, zones.union(a.dep, b.dep)).with_(nz=zones.union(a.nz, b.nz))
    sub = eqn.primitive.name == "sub"
    aval = eqn.outvars[0].aval
    if a.const is not None and b.const is not None:
        value = dtypes.const_op(np.subtract if sub else np.add, a.const, b.const, aval.dtype)
        if value is not None:
            return [constant(rank, value).with_(dep=out.dep)]
    sign = -1 if sub else 1
    index = None
    if a.index is not None and _is_int(b.const):
        index = (a.index[0], a.index[1] + sign * int(b.const))
    elif b.index is not None and not sub and _is_int(a.const):
        index = (b.index[0], b.index[1] + int(a.const))
    if index is not None and dtypes.index_fits(index[1], aval.shape[index[0]], aval.dtype):
        out = out.with_(index=index)
    if sub and b.lb is not None and math.isfinite(b.lb):
        if a.fill is not None:
            out = out.with_(ub=(a.fill[0], a.fill[1] - b.lb))
        elif a.ub is not None:
            out = out.with_(ub=(a.ub[0], a.ub[1] - b.lb))
    return [out]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def old_div(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Before issue 25: 0/b = 0 for every dtype (XLA's integer 0/0 is -1)."""
    a, b, rank = binary_operands(eqn, ins)
    dep = zones.union(a.dep, zones.meet(b.dep, a.nz))
    return [unknown(rank, dep).with_(nz=a.nz)]


OLD_RULES = {"sub": old_add_sub, "div": old_div}


def patch_old_rule(monkeypatch, name: str) -> None:
    """Put the old (unsound) rule for primitive ``name`` back for the rest of one test."""
    monkeypatch.setitem(rules.RULES, name, OLD_RULES[name])
