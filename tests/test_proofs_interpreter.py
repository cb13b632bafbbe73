"""proofs.interpreter: events (where positions first mix, sums that no diagonal route reaches),
refusals, routed dependencies, and the abstract values of literals and constants. The nested
jaxprs' rules are tested in test_proofs_rules_control_flow.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs.interpreter import Analysis, CannotAnalyse, const_aval, literal_aval
from tests.proofs_rule_checks import T, X, analyse


def test_mix_event_names_the_first_mixing_equation():
    def f(x):
        y = jnp.tanh(x)  # local
        z = jnp.cumsum(y, axis=0)  # positions mix here
        return jnp.sum(z, axis=0)  # (mixes further, but is not the first)

    _, an = analyse(f, X)
    first = an.first("mix")
    assert first is not None and first.primitive == "cumsum"
    assert "test_proofs_interpreter.py" in first.location


def test_a_primitive_without_a_rule_is_refused():
    f = lambda x: jnp.linalg.eigvals(x[:3, :3]).real
    with pytest.raises(CannotAnalyse, match="cannot analyse eig .*no transfer rule"):
        analyse(f, X)


def test_routed_dependency_follows_only_diagonal_routes():
    eye = lambda x: jnp.sum(
        jnp.where(jnp.eye(T, dtype=bool)[:, :, None], x[None] * x[:, None], 0.0), 1
    )
    causal = lambda x: jnp.sum(
        jnp.where(jnp.tril(jnp.ones((T, T), bool))[:, :, None], x[None] * x[:, None], 0.0), 1
    )
    routed, _ = analyse(eye, X)
    plain, an = analyse(causal, X)
    assert routed.routed and not plain.routed
    blind = an.first("blind", final_only=True)
    assert blind is not None and blind.primitive == "reduce_sum"


def test_events_inside_an_iteration_are_not_final():
    an = Analysis(T)
    causal = jax.make_jaxpr(lambda x: jnp.cumsum(x, axis=0))(X).eqns[0]
    with an.iterating():
        an.contraction(causal, [T], routed=False)
    an.contraction(causal, [T], routed=False)
    assert [e.final for e in an.events] == [False, True]
    assert an.first("blind", final_only=True) is an.events[1]


def test_constants_are_constant_only_when_every_element_agrees():
    assert const_aval(np.full((3, 2), 2.0)).const == 2.0
    assert const_aval(np.arange(3.0)).const is None
    assert literal_aval(np.float32(1.5), 0).const == 1.5
