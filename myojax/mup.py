"""Maximal update parametrization (muP, Tensor Programs V) for Adam: the width rules.

Width multiplier m = d_model / base_width (``ModelConfig.width_mult``). Head dimension and MLP
ratio stay fixed as width grows (``with_width``), so every hidden matrix has fan_in ∝ m.
The rules, anchored so that m = 1 reproduces the standard (GPT-2) parametrization:

=============  ===================  ========================  ============================
parameter      label                init                      Adam learning rate
=============  ===================  ========================  ============================
wte, wpe       ``embedding``        std 0.02                  lr
hidden W       ``hidden``           std 0.02/sqrt(m)          lr / m
lm_head        ``readout``          std 0.02 (or zero)        lr   (forward multiplier 1/m)
biases, LN     ``vector``           0 / 1                     lr
=============  ===================  ========================  ============================

Forward multipliers live on ``ModelConfig`` (``input_multiplier``, ``output_multiplier`` =
output_mult/m, ``attn_scale`` = attn_mult·8/d_head) so every forward reads the same numbers.

Why the readout can be tied to the embedding: with logits = (1/m)·h·wteᵀ, the effective readout
matrix wte/m has init variance ∝ 1/m² and an Adam update ∝ lr/m, which are exactly muP's readout
rules, while wte itself keeps the embedding rules (constant init, constant lr). Both uses
contribute gradients of the same order (Θ(1/m) per entry), so Adam's normalisation serves both.
See docs/mup.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
from jaxtyping import PyTree

from myojax.config import ModelConfig

# The role of every parameter: what muP scales and what the optimizer decays.
LABELS: tuple[str, ...] = ("embedding", "hidden", "readout", "vector")


# Parameter names outside the blocks that carry a matrix role (myojax.model, myojax.heads).
EMBEDDING_NAMES: frozenset[str] = frozenset({"wte", "wpe", "w_in"})
READOUT_NAMES: frozenset[str] = frozenset({"lm_head", "w_readout"})


def param_labels(model: PyTree) -> PyTree[str]:
    """A tree like ``model`` (a ``GPT``, a ``myojax.heads.Transformer`` or their abstract shapes)
    with one label from ``LABELS`` per parameter leaf: ``embedding`` (wte, wpe, a linear input's
    w_in; also the tied readout), ``hidden`` (2-D matrices inside the blocks), ``readout`` (an
    untied ``lm_head``, a linear readout's ``w_readout``), ``vector`` (biases, LayerNorm: every
    1-D parameter). Any other parameter raises, naming it."""

    def label(path: tuple, leaf: jax.Array) -> str:
        names = [k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)]
        ndim = getattr(leaf, "ndim", None)
        if "blocks" in names:  # leading axis stacks the layers
            per_layer_ndim = ndim - 1 if ndim is not None else None
            if per_layer_ndim in (1, 2):
                return "hidden" if per_layer_ndim == 2 else "vector"
        elif names and names[-1] in EMBEDDING_NAMES and ndim == 2:
            return "embedding"
        elif names and names[-1] in READOUT_NAMES and ndim == 2:
            return "readout"
        elif ndim == 1:
            return "vector"
        raise ValueError(
            f"param_labels has no rule for parameter {jax.tree_util.keystr(path)} "
            f"with shape {getattr(leaf, 'shape', None)}"
        )

    return jax.tree_util.tree_map_with_path(label, model)


def lr_multipliers(config: ModelConfig) -> dict[str, float] | None:
    """Per-label Adam learning-rate multipliers; ``None`` under SP (one global learning rate)."""
    if config.parametrization == "sp":
        return None
    m = config.width_mult
    # Only hidden matrices have both dimensions ∝ width: an Adam step moves every entry by ~lr,
    # and a fan_in ∝ m sum of correlated entries turns that into a Θ(lr·m) change of the output.
    return {"embedding": 1.0, "hidden": 1.0 / m, "readout": 1.0, "vector": 1.0}


def hidden_init_std(config: ModelConfig, base_std: float) -> float:
    """Init std of a hidden matrix: base_std at the base width, variance ∝ 1/fan_in beyond it."""
    return base_std / config.width_mult**0.5


def with_width(config: ModelConfig, d_model: int, *, head_dim: int | None = None) -> ModelConfig:
    """``config`` at another width with head dimension and MLP ratio held fixed (muP's family).

    ``head_dim`` defaults to ``config.head_dim``; ``d_ff`` (if set) keeps its ratio to d_model.
    """
    head_dim = config.head_dim if head_dim is None else head_dim
    if d_model % head_dim:
        raise ValueError(f"d_model={d_model} is not a multiple of head_dim={head_dim}")
    d_ff = None
    if config.d_ff is not None:
        ratio = config.d_ff / config.d_model
        d_ff = round(ratio * d_model)
        if d_ff != ratio * d_model:
            raise ValueError(f"d_ff ratio {ratio} gives a non-integer d_ff at d_model={d_model}")
    return config.replace(d_model=d_model, n_heads=d_model // head_dim, d_ff=d_ff)


def check_multipliers(multipliers: Mapping[str, float] | None) -> None:
    """Reject a multiplier mapping with unknown labels (a typo would silently train at lr·1)."""
    if multipliers is None:
        return
    unknown = sorted(set(multipliers) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown lr multiplier label(s) {unknown}; expected a subset of {LABELS}")
    for label, m in multipliers.items():
        if not m > 0:
            raise ValueError(f"lr multiplier for {label!r} must be positive, got {m!r}")
