"""Shape rules (broadcast_in_dim, transpose, squeeze, reshape, rev, stack, tile, and the static
values dim_as_value and platform_index).

Each carries an operand axis to an output axis unchanged (``remap``) or forgets it: a size-1
axis stretched by a broadcast, axes merged or split by a reshape, reversed axes (y[i] =
x[n - 1 - i] is not a difference constraint). May-facts are ∃-projected, must-facts that mention
a forgotten axis are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jax._src import core

from proofs.lattice import AVal, unknown
from proofs.rules.axes import remap
from proofs.rules.base import Context, Rule, Unsupported, in_shape, known_leq, out_rank, registrar
from proofs.zones import union

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


@rule("broadcast_in_dim")
def broadcast_in_dim(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    x = ins[0]
    if len(ins) > 1:
        raise Unsupported("broadcast_in_dim with dynamic shape operands")
    src = in_shape(eqn, 0)
    dst = tuple(eqn.params["shape"])
    mapping = {
        a: d
        for a, d in enumerate(eqn.params["broadcast_dimensions"])
        if core.definitely_equal(src[a], dst[d])  # a size-1 axis stretched: index is lost
    }
    return [remap(x, mapping, len(dst))]


@rule("transpose")
def transpose(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    perm = eqn.params["permutation"]
    return [remap(ins[0], {old: new for new, old in enumerate(perm)}, len(perm))]


@rule("squeeze")
def squeeze(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    dims = {d % ins[0].rank for d in eqn.params["dimensions"]}
    kept = [a for a in range(ins[0].rank) if a not in dims]
    return [remap(ins[0], {a: n for n, a in enumerate(kept)}, len(kept))]


def reshape_axis_map(src: Sequence[Any], dst: Sequence[Any]) -> dict[int, int]:
    """Axes that a row-major reshape carries over unchanged (same size, same block)."""
    mapping: dict[int, int] = {}
    i = j = 0
    while i < len(src) and j < len(dst):
        if core.definitely_equal(src[i], 1):  # size-1 axes carry no index: skip them
            i += 1
            continue
        if core.definitely_equal(dst[j], 1):
            j += 1
            continue
        gi, gj = [i], [j]
        pi, pj = src[i], dst[j]
        while not core.definitely_equal(pi, pj):
            # grow the side with the smaller product; symbolic sizes only match exactly
            if known_leq(pi, pj) and i + len(gi) < len(src):
                pi = pi * src[i + len(gi)]
                gi.append(i + len(gi))
            elif j + len(gj) < len(dst):
                pj = pj * dst[j + len(gj)]
                gj.append(j + len(gj))
            else:
                return mapping  # cannot align the rest: nothing more is carried over
        if len(gi) == 1 and len(gj) == 1:
            mapping[i] = j
        i, j = i + len(gi), j + len(gj)
    return mapping


@rule("reshape")
def reshape(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """A row-major reshape, after transposing by ``dimensions`` if given (reduce_prod's JVP)."""
    if len(ins) > 1:
        raise Unsupported("reshape with dynamic shapes")
    x, src = ins[0], in_shape(eqn, 0)
    dims = eqn.params.get("dimensions")
    if dims is not None:
        x = remap(x, {old: new for new, old in enumerate(dims)}, x.rank)
        src = tuple(src[d] for d in dims)
    dst = tuple(eqn.params["new_sizes"])
    return [remap(x, reshape_axis_map(src, dst), len(dst))]


@rule("rev")
def rev(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[n - 1 - i] along the reversed axes: without absolute bounds that relation is not
    a zone, so those axes are forgotten (∃, and must-facts on them dropped)."""
    (x,) = ins
    dims = set(eqn.params["dimensions"])
    return [remap(x, {a: a for a in range(x.rank) if a not in dims}, x.rank)]


@rule("stack")
def stack(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Operands side by side along a new axis: element (..., k, ...) is operand k's, so every
    other axis is carried and the new one is unconstrained (no absolute index is tracked)."""
    axis = eqn.params["axis"]
    rank = out_rank(eqn)
    moved = [remap(x, {a: a + (a >= axis) for a in range(x.rank)}, rank) for x in ins]
    return [unknown(rank, union(*(m.dep for m in moved))).with_(nz=union(*(m.nz for m in moved)))]


@rule("tile")
def tile(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] = x[i mod n] along each repeated axis: not a difference constraint, so a repeated
    axis is forgotten; an axis repeated once is carried."""
    (x,) = ins
    reps = eqn.params["reps"]
    return [remap(x, {a: a for a in range(x.rank) if reps[a] == 1}, x.rank)]


@rule("dim_as_value", "platform_index")
def static_value(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """A (symbolic) array size, or which platform runs (``jnp.diag``'s lowering picks a branch
    of a ``cond`` by it): the same for every δ."""
    return [unknown(out_rank(eqn))]
