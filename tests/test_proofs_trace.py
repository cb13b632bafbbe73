"""proofs.trace: the analysed program is the JVP with a symbolic T, DCE'd, hashed stably."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax._src import core

from myojax.config import ModelConfig
from proofs.trace import dead_code_eliminated, model_forward, sequence_length, trace_jvp

CONFIG = ModelConfig(
    vocab_size=16, seq_len=32, d_model=8, n_layers=2, n_heads=2, gradient_mode="myopic"
)


def test_sequence_length_is_symbolic_and_never_materialised():
    traced = trace_jvp(model_forward, CONFIG)
    assert str(traced.position_size) == "T"
    assert "T <= 32" in traced.sequence
    tangent_in = traced.jaxpr.jaxpr.invars[-1].aval
    assert tuple(map(str, tangent_in.shape)) == ("2", "T", "8")
    assert [str(v.aval.shape[0]) for v in traced.jaxpr.jaxpr.outvars] == ["T", "T"]


def test_hash_is_stable_and_mode_sensitive():
    a = trace_jvp(model_forward, CONFIG).sha256
    assert a == trace_jvp(model_forward, CONFIG).sha256
    assert a != trace_jvp(model_forward, CONFIG.replace(gradient_mode="standard")).sha256


def _names(jaxpr) -> list[str]:
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn.primitive.name)
        for sub in core.jaxprs_in_params(eqn.params):
            out.extend(_names(sub))
    return out


def test_dead_tangents_are_removed():
    """jax.nn.softmax's JVP computes a tangent for its stopped row max (ties: eq, convert,
    sum) and throws it away; DCE removes it so no event is reported on dead code."""
    x = jnp.ones((4, 4))
    raw = jax.make_jaxpr(lambda x, dx: jax.jvp(jax.nn.softmax, (x,), (dx,)))(x, x)
    pruned = dead_code_eliminated(raw)
    assert _names(raw.jaxpr).count("eq") > _names(pruned.jaxpr).count("eq")
    assert len(pruned.jaxpr.invars) == len(raw.jaxpr.invars)  # inputs stay aligned
    traced = trace_jvp(model_forward, CONFIG)
    assert len(traced.jaxpr.jaxpr.invars) == traced.n_params + 4


def test_concrete_length_must_be_admissible():
    assert sequence_length(CONFIG, 7)[0] == 7
    with pytest.raises(ValueError, match="must be in"):
        sequence_length(CONFIG, 33)
