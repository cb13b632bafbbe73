"""Reduction and cumulative rules (reduce_sum / max / min / prod / argmax / ..., and cumsum /
cummax / ... along an axis).

A reduction's output depends on every input along the reduced axes (∃ over them); a sum of
zeros is zero. A ``reduce_max`` of a masked array whose every reduced row has an entry outside
the fill region gets a lower bound — only under the ``no_overflow`` assumption — which is what
lets exp underflow to exactly 0 at masked softmax entries. A cumulative op at i combines the
entries j <= i (j >= i reversed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.axes import remap
from proofs.rules.base import (
    FRESH,
    Context,
    Rule,
    in_shape,
    known_leq,
    registrar,
    report_contraction,
)
from proofs.zones import Region

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


@rule(
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_and",
    "reduce_or",
    "reduce_xor",
    "argmax",
    "argmin",
)
def reduce(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Output i depends on every input along the reduced axes: ∃ over them."""
    (x,) = ins
    axes = set(eqn.params["axes"])
    shape = in_shape(eqn, 0)
    report_contraction(eqn, ctx, x.dep, bool(x.routed), [shape[a] for a in axes])
    kept = [a for a in range(x.rank) if a not in axes]
    mapping = {a: n for n, a in enumerate(kept)}
    moved = remap(x, mapping, len(kept))
    out = unknown(len(kept), moved.dep)
    name = eqn.primitive.name
    if name == "reduce_sum":
        out = out.with_(nz=moved.nz)  # a sum of zeros is zero
    dtype = eqn.invars[0].aval.dtype
    covered = name == "reduce_max" and x.fill is not None and _covers(x.fill[0], axes, shape)
    covered = covered and jnp.issubdtype(dtype, jnp.floating)
    # Each reduced row has an entry outside the fill region (e.g. the diagonal of a causal
    # mask); under the no-overflow assumption that entry is > -max/2.
    if covered and ctx.assume("no_overflow"):
        out = out.with_(lb=-float(jnp.finfo(dtype).max) / 2)
    return [out]


def _covers(fill_region: Region, axes: set[int], shape: Sequence[Any]) -> bool:
    """Every reduced row meets the complement of ``fill_region``: for one reduced axis r and
    some kept axis k, the line x_r = x_k avoids the fill region, and every row has a point on
    that line — the grid is at least as long along r as along k (a [T, S] mask with S < T has
    rows t >= S with no diagonal entry, which may be entirely fill)."""
    if len(axes) != 1:
        return False
    (r,) = axes
    return any(
        known_leq(shape[k], shape[r]) and not zones.meet(fill_region, zones.region(zones.eq(r, k)))
        for k in range(len(shape))
        if k != r
    )


@rule("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """y[i] combines x[j] for j <= i (j >= i when reversed)."""
    (x,) = ins
    axis, reverse = eqn.params["axis"], eqn.params["reverse"]
    tmp = FRESH

    def scan_region(reg: Region) -> Region:
        moved = zones.substitute(reg, {axis: tmp})
        order = zones.le(axis, tmp) if reverse else zones.le(tmp, axis)
        return zones.project(zones.meet(moved, zones.region(order)), [tmp])

    out = unknown(x.rank, scan_region(x.dep))
    if eqn.primitive.name == "cumsum":
        out = out.with_(nz=scan_region(x.nz))
    return [out]
