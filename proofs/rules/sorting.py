"""Sorting rules (sort, top_k), which permute values along one axis by data.

Where an element lands along the sorted axis depends on every key along that axis, so each
output depends on its operand and on the keys anywhere along the axis (∃ over it), and on
nothing across the other axes, which are carried unchanged. ``argsort`` is a sort of the keys
with an iota; ``take_along_axis`` of its result is a gather (indexing).
"""

from __future__ import annotations

from collections.abc import Sequence

from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.axes import remap
from proofs.rules.base import Context, Rule, out_rank, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


def along(av: AVal, axis: int) -> AVal:
    """``av`` mixed along ``axis``: the axis forgotten (∃), the others carried."""
    return remap(av, {a: a for a in range(av.rank) if a != axis}, av.rank)


@rule("sort")
def sort(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Operands sorted together by the first ``num_keys`` of them along ``dimension``."""
    axis, n_keys = eqn.params["dimension"], eqn.params["num_keys"]
    keys = zones.union(*(along(k, axis).dep for k in ins[:n_keys]))
    outs = []
    for x in ins:
        moved = along(x, axis)
        outs.append(unknown(x.rank, zones.union(moved.dep, keys)).with_(nz=moved.nz))
    return outs


@rule("top_k")
def top_k(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """The k largest entries along ``axis`` (the last one by default) and their indices."""
    (x,) = ins
    axis = eqn.params.get("axis", x.rank - 1) % x.rank
    keep = {a: a for a in range(x.rank) if a != axis}
    moved = remap(x, keep, out_rank(eqn))
    return [unknown(out_rank(eqn, k), moved.dep) for k in range(len(eqn.outvars))]
