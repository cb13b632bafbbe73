"""Linear-algebra rules (triangular_solve, cholesky), whose triangular structure is a difference
constraint between the solved axis and the operand's.

Solving a lower-triangular system L x = b by forward substitution, x[i] reads b[j] and the
entries L[p, q] for j, p, q <= i (upper: >= i); the inverse of a triangular matrix is triangular
the same way, so x[i] is 0 where every b[j <= i] is. A right-side solve x·op(a) = b runs the other
way. Cholesky's L[i, j] reads the leading block a[p, q] with p, q <= max(i, j): the union of the
two zones p, q <= i and p, q <= j. Leading (batch) axes are carried.
"""

from __future__ import annotations

from collections.abc import Sequence

from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.axes import relate
from proofs.rules.base import FRESH, Context, Rule, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


def _before(i: int, others: Sequence[int], lower: bool) -> list[tuple[int, int, int]]:
    """Every variable in ``others`` <= x_i (lower) or >= x_i (upper)."""
    return [(o, i, 0) if lower else (i, o, 0) for o in others]


@rule("triangular_solve")
def triangular_solve(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """x = op(a)⁻¹ b (left side) or b op(a)⁻¹ (right side), op(a) triangular."""
    a, b = ins
    p = eqn.params
    rank = b.rank
    batch = {d: d for d in range(rank - 2)}
    lower = p["lower"] != p["transpose_a"]  # op(a) is lower triangular
    solved = rank - 2 if p["left_side"] else rank - 1
    forward = lower if p["left_side"] else not lower  # x[i] reads b[j <= i]
    j, row, col = FRESH, FRESH + 1, FRESH + 2
    b_map = {**batch, solved: j, (2 * rank - 3) - solved: (2 * rank - 3) - solved}
    from_b = [_before(solved, [j], forward)]
    a_map = {**batch, rank - 2: row, rank - 1: col}
    from_a = [_before(solved, [row, col], forward)]
    dep = zones.union(relate(b.dep, b_map, from_b), relate(a.dep, a_map, from_a))
    return [unknown(rank, dep).with_(nz=relate(b.nz, b_map, from_b))]


@rule("cholesky")
def cholesky(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    (a,) = ins
    rank = a.rank
    i, k = rank - 2, rank - 1
    row, col = FRESH, FRESH + 1
    mapping = {**{d: d for d in range(rank - 2)}, i: row, k: col}
    limits = [_before(i, [row, col], True), _before(k, [row, col], True)]
    return [unknown(rank, relate(a.dep, mapping, limits))]
