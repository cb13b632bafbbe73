"""proofs.rules: one registry made of every family's rules, each primitive in exactly one
family; a primitive without a rule is refused with its source line. The rules themselves are
tested per family (tests/test_proofs_rules_<family>.py): the analysed dependency must contain the
numerically measured Jacobian pattern, and the verdict must be the expected one."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from proofs import rules
from proofs.interpreter import CannotAnalyse
from proofs.rules import control_flow
from proofs.rules.base import merge
from tests.proofs_rule_checks import X, analyse


def test_the_registry_is_the_union_of_the_families():
    assert sum(len(f.RULES) for f in rules.FAMILIES) == len(rules.RULES)
    for family in rules.FAMILIES:
        assert all(rules.RULES[name] is fn for name, fn in family.RULES.items())
    assert set(control_flow.RULES) == rules.HIGHER_ORDER and "scan" in rules.HIGHER_ORDER
    core = {"add", "mul", "exp", "select_n", "iota", "reshape", "slice", "reduce_max"}
    assert core | {"cumsum", "dot_general", "gather", "convert_element_type"} <= set(rules.RULES)


def test_a_primitive_with_rules_in_two_families_is_an_error():
    def one(eqn, ins, ctx):
        return []

    assert set(merge([{"a": one}, {"b": one}])) == {"a", "b"}
    with pytest.raises(ValueError, match=r"two families: \['a'\]"):
        merge([{"a": one}, {"a": one, "b": one}])


def test_unknown_primitive_is_refused_with_a_location():
    with pytest.raises(CannotAnalyse) as err:
        analyse(lambda x: jnp.linalg.eigvals(x[:3, :3]).real, X)
    assert err.value.primitive == "eig"
    assert "test_proofs_rules.py" in err.value.location


def test_a_primitive_whose_rule_is_removed_is_refused(monkeypatch):
    monkeypatch.delitem(rules.RULES, "cumsum")
    with pytest.raises(CannotAnalyse, match="cannot analyse cumsum .*no transfer rule"):
        analyse(lambda x: jnp.cumsum(x, axis=0), X)
