"""proofs.rules.base: a family's registrar, decided size comparisons, and contraction reports
only for δ-dependent operands."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax import export

from proofs import zones
from proofs.rules.base import known_leq, registrar, report_contraction
from tests.proofs_rule_checks import X


def test_registrar_enters_each_name_and_refuses_a_second_rule():
    table = {}
    rule = registrar(table)

    @rule("a", "b")
    def first(eqn, ins, ctx):
        return []

    assert table == {"a": first, "b": first}
    with pytest.raises(ValueError, match="two rules for the primitive 'b'"):
        rule("b")(first)


def test_known_leq_decides_symbolic_sizes_by_their_bound():
    (t,) = export.symbolic_shape("T", constraints=("T <= 16",))
    assert known_leq(t, 16) and known_leq(3, 4)
    assert not known_leq(t, 8)  # undecidable: not known
    assert not known_leq(5, 4)


class _Recorder:
    def __init__(self):
        self.calls = []

    def contraction(self, eqn, sizes, routed):
        self.calls.append((list(sizes), routed))


def test_contractions_are_reported_only_for_dependent_operands():
    eqn = jax.make_jaxpr(lambda x: jnp.sum(x, axis=0))(X).eqns[0]
    ctx = _Recorder()
    report_contraction(eqn, ctx, zones.BOTTOM, False, [5])
    assert ctx.calls == []
    report_contraction(eqn, ctx, zones.TOP, True, [5])
    assert ctx.calls == [([5], True)]
