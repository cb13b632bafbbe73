"""proofs.fuzz.library (with the rest of the grammar): the drawn programs reach every primitive
that has a rule, except the ones JAX 0.10 emits only internally (listed, with the reason)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from hypothesis import given, settings

from proofs.fuzz.differential import primitives_of
from proofs.fuzz.grammar import KINDS, Op, build
from proofs.fuzz.steps import D
from proofs.rules import RULES

# primitives with a rule that no public jax.numpy / lax call emits in a forward-mode program
ASSOCIATIVE_JVP = "its JVP rule is the JVP of an associative scan: only adds, muls, pads, slices"
NOT_REACHABLE = {
    "closed_call": "bound only by JAX's internals (jit and calls are 'jit')",
    **dict.fromkeys(("cumprod", "cummax", "cummin", "cumlogsumexp"), ASSOCIATIVE_JVP),
    "reduce_prod": "its JVP rule is written with mul, pad and slice",
    "dim_as_value": "only under a symbolic shape (this test traces T = 5)",
}


def _primitives(program) -> set[str]:
    fn = build(program)
    x = jax.ShapeDtypeStruct((5, D), jnp.float32)
    jvp = lambda x, a, w: jax.jvp(lambda y: fn(y, a, w), (x,), (x,))
    return primitives_of(jax.make_jaxpr(jvp)(x, x, jax.ShapeDtypeStruct((D, D), jnp.float32)).jaxpr)


def _reached(name: str) -> set[str]:
    """The primitives of 60 one-step programs of kind ``name``."""
    kind, seen = KINDS[name], set()

    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(kind.params)
    def collect(params):
        seen.update(_primitives((Op(name, params, (0,) * kind.n_args),)))

    collect()
    return seen


def test_programs_reach_every_primitive_with_a_rule():
    seen = set().union(*(_reached(name) for name in KINDS))
    missing = set(RULES) - seen - set(NOT_REACHABLE)
    assert not missing, sorted(missing)
    assert seen <= set(RULES), sorted(seen - set(RULES))  # nothing the analyser would refuse
