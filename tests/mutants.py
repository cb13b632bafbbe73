"""Deliberately broken gradient modes: each one must be caught by the verifier and the prover.

A mutant is a forward function ``(model, tokens, probes) -> logits`` over an ordinary
``GPT``'s parameters that runs each layer with its own ``GradientSpec``.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import Array, Float, Int

from myojax.attention import GRADIENT_SPECS, GradientSpec
from myojax.model import GPT

Forward = Callable[[GPT, Int[Array, " T"], Float[Array, "L T D"] | None], Float[Array, "T V"]]

MYOPIC = GRADIENT_SPECS["myopic"]


def layerwise_forward(specs: Callable[[int], tuple[GradientSpec, ...]]) -> Forward:
    """A forward pass that unrolls the layers, layer l using ``specs(n_layers)[l]``."""

    def forward(model: GPT, tokens: Int[Array, " T"], probes: Array | None = None) -> Array:
        layer_specs = specs(model.config.n_layers)
        x = model.embed(tokens)
        for i, spec in enumerate(layer_specs):
            if probes is not None:
                x = x + probes[i].astype(x.dtype)
            x = model.layer(i)(x, model.config, spec)
        return model.unembed(x)

    return forward


def _all(spec: GradientSpec) -> Callable[[int], tuple[GradientSpec, ...]]:
    return lambda n: (spec,) * n


def _last_layer_standard(n: int) -> tuple[GradientSpec, ...]:
    return (MYOPIC,) * (n - 1) + (GRADIENT_SPECS["standard"],)


# name -> (forward, what the verifier must say is wrong)
MUTANTS: dict[str, tuple[Forward, str]] = {
    "stop_k_only": (layerwise_forward(_all(GradientSpec("input", "live"))), "past"),
    "stop_v_only": (layerwise_forward(_all(GradientSpec("live", "input"))), "past"),
    "stop_diagonal": (
        layerwise_forward(_all(GradientSpec("input", "input", live_diagonal=False))),
        "diagonal",
    ),
    "last_layer_standard": (layerwise_forward(_last_layer_standard), "past"),
}
