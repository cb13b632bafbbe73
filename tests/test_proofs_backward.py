"""proofs.backward: the backward program (jax.vjp, custom VJP rules inlined) with a symbolic T,
and its dependency read in the JVP's orientation."""

from __future__ import annotations

import jax.numpy as jnp

from myojax.config import ModelConfig
from proofs import zones
from proofs.backward import forward_orientation, trace_cotangent, trace_vjp
from proofs.lattice import Position, classify, unknown
from proofs.myopia.programs import primitive_counts
from proofs.trace import model_forward, trace_jvp
from proofs.zones import U

CONFIG = ModelConfig(
    vocab_size=16, seq_len=32, d_model=8, n_layers=2, n_heads=2, gradient_mode="myopic"
)


def test_model_backward_program_maps_loss_cotangents_to_probe_cotangents():
    traced = trace_vjp(model_forward, CONFIG)
    assert str(traced.position_size) == "T" and "T <= 32" in traced.sequence
    assert tuple(map(str, traced.jaxpr.jaxpr.invars[-1].aval.shape)) == ("T",)  # L̄
    shapes = [tuple(map(str, v.aval.shape)) for v in traced.jaxpr.jaxpr.outvars]
    assert shapes == [("T",), ("2", "T", "8")]  # the losses, the probes' cotangent
    assert traced.sha256 == trace_vjp(model_forward, CONFIG).sha256  # stable


def test_the_custom_vjp_rule_is_inlined_as_what_it_runs():
    """The JVP of the fast myopic model holds custom_lin (forward mode cannot run it); the
    backward program holds the rule's own primitives instead."""
    backward = primitive_counts(trace_vjp(model_forward, CONFIG).jaxpr.jaxpr)
    assert "custom_lin" not in backward and "custom_vjp_call" not in backward
    assert (
        backward["exp"]
        > primitive_counts(
            trace_vjp(model_forward, CONFIG.replace(gradient_mode="standard")).jaxpr.jaxpr
        )["exp"]
    )  # the diagonal terms' exp(c·q·k - lse)
    assert "custom_lin" in primitive_counts(trace_jvp(model_forward, CONFIG).jaxpr.jaxpr)


def test_cotangent_program_of_a_function():
    closed, n_cotangents = trace_cotangent(
        lambda x, w: (jnp.cumsum(x @ w, axis=0), x), jnp.ones((5, 3)), (jnp.ones((3, 3)),), 5
    )
    assert n_cotangents == 2  # one per output leaf, the last inputs
    assert [v.aval.shape for v in closed.jaxpr.invars] == [(5, 3), (3, 3), (5, 3), (5, 3)]
    assert [v.aval.shape for v in closed.jaxpr.outvars] == [(5, 3)]


def test_forward_orientation_turns_s_and_t():
    """x̄[l, s, d] depending on ȳ at u = t (here t >= s, a causal backward) reads as the pair
    (t on axis 0, s on U) with s <= t: same-or-past, as the JVP would say."""
    causal = zones.region(zones.le(1, U))  # s = x_1 <= u = t
    turned = forward_orientation(unknown(3, causal), position_axis=1)
    assert turned.rank == 1 and classify(turned.dep) == Position.PAST
    assert zones.contains(turned.dep, {0: 4, U: 2}) and not zones.contains(turned.dep, {0: 2, U: 4})
    same = forward_orientation(unknown(3, zones.region(zones.eq(U, 1))), position_axis=1)
    assert classify(same.dep) == Position.SAME
    assert forward_orientation(unknown(3), position_axis=1).dep == zones.BOTTOM


def test_backward_and_jvp_programs_agree_on_the_reference_model():
    """Where both programs exist they answer the same question the same way."""
    from proofs.myopia.programs import PROGRAMS, analyse

    config = CONFIG.replace(attention_impl="reference", seq_len=8)
    for mode, expected in (("myopic", Position.SAME), ("standard", Position.PAST)):
        cfg = config.replace(gradient_mode=mode)
        verdicts = {
            name: classify(
                analyse(p.trace(model_forward, cfg), frozenset({"no_overflow"}), p).outputs[1].dep
            )
            for name, p in PROGRAMS.items()
        }
        assert verdicts == {"backward": expected, "jvp": expected}
