"""The backward program: the VJP that training runs, traced for the analysis.

Training differentiates with ``jax.vjp``/``grad``, so a ``jax.custom_vjp`` (the fast myopic
attention, ``myojax.attention_fast``) runs its own backward rule, which the JVP program never
sees (a custom VJP has no forward-mode rule). Here the analysed program is the cotangent map of
``jax.vjp``: the cotangents of the outputs (one per position, the δ of the analysis) to the
cotangent of the differentiated input, with every custom backward rule inlined as the ordinary
primitives it runs.

    model level:    (params, tokens, targets, probes, L̄ [T])  ->  (L, ∂L/∂probes^T · L̄)
    function level: (x, *args, ȳ)                              ->  ∂fn/∂x^T · ȳ

The cotangent at input position s depends on L̄_t exactly where ∂L_t/∂x_s may be nonzero, so
``forward_orientation`` reads its dependency region into the JVP program's orientation (output
position t on axis 0, input position s on ``U``) and the verdict lattice applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax._src import core
from jaxtyping import Array

from myojax.config import ModelConfig
from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.trace import (
    Forward,
    ModelInputs,
    Traced,
    abstract_call,
    dead_code_eliminated,
    trace_model,
)
from proofs.zones import Region, U


def trace_vjp(
    forward: Forward, config: ModelConfig, concrete_t: int | None = None, **options: Any
) -> Traced:
    """The model's backward program (module docstring), DCE'd; inputs: *params, tokens,
    targets, probes, L̄. The options are ``proofs.trace.trace_model``'s."""

    def vjp(losses: Callable[[Array], Array], probes: Array, d_losses: Array) -> Any:
        values, pullback = jax.vjp(losses, probes)
        return values, pullback(d_losses)[0]

    def d_losses(ins: ModelInputs) -> jax.ShapeDtypeStruct:
        dtype = jnp.float64 if config.compute_dtype == "float64" else jnp.float32
        return jax.ShapeDtypeStruct((ins.length,), dtype)  # the losses' dtype

    return trace_model(vjp, d_losses, forward, config, concrete_t, **options)


def trace_cotangent(
    fn: Callable[..., Any], x: Any, args: tuple, length: Any
) -> tuple[core.ClosedJaxpr, int]:
    """The DCE'd jaxpr of (x, *array leaves of args, *ȳ leaves) ↦ ∂fn/∂x^T · ȳ, with the length
    of axis 0 of ``x`` (and of every args axis of that length) replaced by ``length``, and the
    number of ȳ leaves (the last inputs)."""
    call, xs, leaves = abstract_call(fn, x, args, length)
    out_leaves, out_tree = jax.tree.flatten(jax.eval_shape(call, xs, leaves))
    if any(not o.shape for o in out_leaves):
        raise TypeError("every output of fn must have rank >= 1 (axis 0 = positions)")

    def cotangent(x: Any, leaves: list, d_out: list) -> Any:
        _, pullback = jax.vjp(lambda x: call(x, leaves), x)
        return pullback(jax.tree.unflatten(out_tree, d_out))[0]

    closed = jax.make_jaxpr(cotangent)(xs, leaves, out_leaves)
    return dead_code_eliminated(closed), len(out_leaves)


def forward_orientation(av: AVal, position_axis: int) -> AVal:
    """A cotangent output's dependency read as the JVP's: element (…, s on ``position_axis``, …)
    depending on ȳ at position u = t becomes the pair (t on axis 0, s on ``U``); other axes are
    projected out. The result has rank 1."""
    mapping = {position_axis: U, U: 0}

    def turn(reg: Region) -> Region:
        return zones.rename(reg, mapping)

    return unknown(1, turn(av.dep)).with_(routed=turn(av.routed))


__all__ = ["forward_orientation", "trace_cotangent", "trace_vjp"]
