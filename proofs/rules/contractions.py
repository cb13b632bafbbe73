"""Contraction rules (dot_general: matrix products, einsums, attention's q·k and p·v).

out[b, i, j] = Σ_k lhs[b, i, k] · rhs[b, k, j]: batch axes are shared, free axes renamed into
the output, each contracted pair shares a fresh variable k; the product rule term by term (a
factor that is 0 absorbs the other's dependency), then ∃k.
"""

from __future__ import annotations

from collections.abc import Sequence

from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.base import FRESH, Context, Rule, in_shape, registrar, report_contraction
from proofs.zones import Region, U

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


@rule("dot_general")
def dot_general(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """out[b, i, j] = Σ_k lhs[b, i, k] · rhs[b, k, j]: product rule per term, then ∃ k."""
    lhs, rhs = ins
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lshape = in_shape(eqn, 0)
    tmp = FRESH  # variables for contracted axes (shared by the two operands)
    lmap: dict[int, int] = {}
    rmap: dict[int, int] = {}
    out_axis = 0
    for a, b in zip(lb, rb):
        lmap[a], rmap[b] = out_axis, out_axis
        out_axis += 1
    for a in range(lhs.rank):
        if a not in lb and a not in lc:
            lmap[a] = out_axis
            out_axis += 1
    for b in range(rhs.rank):
        if b not in rb and b not in rc:
            rmap[b] = out_axis
            out_axis += 1
    contracted = []
    for n, (a, b) in enumerate(zip(lc, rc)):
        lmap[a] = rmap[b] = tmp + n
        contracted.append(tmp + n)

    def on(av: AVal, mapping: dict[int, int]) -> tuple[Region, Region]:
        full = {**mapping, U: U}
        return zones.rename(av.dep, full), zones.rename(av.nz, full)

    ldep, lnz = on(lhs, lmap)
    rdep, rnz = on(rhs, rmap)
    terms = zones.union(zones.meet(ldep, rnz), zones.meet(rdep, lnz))
    report_contraction(eqn, ctx, terms, bool(lhs.routed or rhs.routed), [lshape[a] for a in lc])
    dep = zones.project(terms, contracted)
    nz = zones.project(zones.meet(lnz, rnz), contracted)
    return [unknown(out_axis, dep).with_(nz=nz)]
