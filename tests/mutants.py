"""Deliberately broken gradient modes, and which checker catches each one.

A mutant is a forward function ``(model, tokens, probes) -> logits`` over an ordinary ``GPT``'s
parameters that runs each layer with its own ``GradientSpec`` and, for the backward-rule mutants,
its own attention: the fast path's custom VJP with a wrong backward rule (the forward is
unchanged, so only the gradients are wrong). ``Mutant.verifier`` is what ``myojax.verify``
reports (``None``: it passes, missing the bug); ``Mutant.prover`` whether ``proofs.myopia``
refuses it. Between them every mutant is caught.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from myojax.attention import GRADIENT_SPECS, GradientSpec
from myojax.attention_fast import attention_core, myopic_backward_rule, myopic_forward_rule
from myojax.model import GPT

Forward = Callable[[GPT, Int[Array, " T"], Float[Array, "L T D"] | None], Float[Array, "T V"]]
Attend = Callable[..., Array]
Grads = tuple[Array, Array, Array, Array, Array]  # dq, dk_past, dv_past, dk_delta, dv_delta

MYOPIC = GRADIENT_SPECS["myopic"]
# The verifier's fresh models have T <= 16, so a leak this far back is invisible to it.
FAR = 16


class Mutant(NamedTuple):
    forward: Forward
    verifier: str | None  # "past", "diagonal", or None: the verifier passes it
    prover: bool  # the prover refuses it


def layerwise_forward(
    specs: Callable[[int], tuple[GradientSpec, ...]], attend: Attend | None = None
) -> Forward:
    """A forward pass that unrolls the layers, layer l using ``specs(n_layers)[l]`` (and
    ``attend`` instead of the configured attention, if given)."""

    def forward(model: GPT, tokens: Int[Array, " T"], probes: Array | None = None) -> Array:
        layer_specs = specs(model.config.n_layers)
        x = model.embed(tokens)
        for i, spec in enumerate(layer_specs):
            if probes is not None:
                x = x + probes[i].astype(x.dtype)
            x = model.layer(i).apply(x, model.config, spec, collect=False, attend=attend)[0]
        return model.unembed(x)

    return forward


def _all(spec: GradientSpec) -> Callable[[int], tuple[GradientSpec, ...]]:
    return lambda n: (spec,) * n


def _last_layer_standard(n: int) -> tuple[GradientSpec, ...]:
    return (MYOPIC,) * (n - 1) + (GRADIENT_SPECS["standard"],)


def wrong_rule(change: Callable[[Grads], Grads]) -> Attend:
    """The fast myopic attention with its backward rule's outputs passed through ``change``."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
    def attention(q, k_past, v_past, k_delta, v_delta, n_heads, scale, softmax_dtype):
        return attention_core(
            q, k_past, v_past, n_heads=n_heads, scale=scale, softmax_dtype=softmax_dtype
        )[0]

    def backward(n_heads, scale, softmax_dtype, residuals, d_out):
        return change(myopic_backward_rule(n_heads, scale, softmax_dtype, residuals, d_out))

    attention.defvjp(myopic_forward_rule, backward)

    def attend(q, k_past, v_past, k_delta, v_delta, *, n_heads, scale, softmax_dtype):
        return attention(q, k_past, v_past, k_delta, v_delta, n_heads, scale, softmax_dtype)

    return attend


def _leak_full(g: Grads) -> Grads:  # the input path gets every key/value term, past included
    dq, dk, dv, _, _ = g
    return dq, dk, dv, dk, dv


def _drop_diagonal(g: Grads) -> Grads:  # the own-position key/value terms are lost
    dq, dk, dv, dk_delta, dv_delta = g
    return dq, dk, dv, jnp.zeros_like(dk_delta), jnp.zeros_like(dv_delta)


def _leak_far(g: Grads) -> Grads:  # position s also gets the diagonal term of s + FAR
    dq, dk, dv, dk_delta, dv_delta = g
    later = jnp.pad(dk_delta, ((0, FAR), (0, 0)))[FAR:]
    return dq, dk, dv, dk_delta + later, dv_delta


def _vjp(change: Callable[[Grads], Grads]) -> Forward:
    return layerwise_forward(_all(MYOPIC), wrong_rule(change))


MUTANTS: dict[str, Mutant] = {
    "stop_k_only": Mutant(layerwise_forward(_all(GradientSpec("input", "live"))), "past", True),
    "stop_v_only": Mutant(layerwise_forward(_all(GradientSpec("live", "input"))), "past", True),
    "stop_diagonal": Mutant(
        layerwise_forward(_all(GradientSpec("input", "input", live_diagonal=False))),
        "diagonal",
        True,
    ),
    "last_layer_standard": Mutant(layerwise_forward(_last_layer_standard), "past", True),
    # wrong custom backward rules of the fast path (no JVP program exists for them)
    "vjp_leak": Mutant(_vjp(_leak_full), "past", True),
    "vjp_no_diagonal": Mutant(_vjp(_drop_diagonal), "diagonal", False),
    "vjp_leak_far": Mutant(_vjp(_leak_far), None, True),
}
