"""AdamW with linear warmup + cosine decay, global-norm clipping and a weight-decay rule.

Every parameter leaf of a GPT gets one label (``myojax.mup.param_labels``):

- ``"embedding"``: token and position embeddings (``wte``, ``wpe``), also the tied readout;
- ``"hidden"``: 2-D weight matrices inside the blocks (QKV, attention out, MLP in/out);
- ``"readout"``: the untied unembedding ``lm_head``;
- ``"vector"``: biases and LayerNorm gains/biases.

Weight decay (decoupled, AdamW) applies to ``"hidden"`` and ``"readout"`` only: decaying
LayerNorm gains pulls them towards 0 instead of their identity value 1, biases and embeddings
have no scale that decay would usefully control (and rare tokens' rows would just shrink).
Per-label learning-rate multipliers (muP's hook) scale the whole schedule of that label.
"""

from __future__ import annotations

from collections.abc import Mapping

import optax
from jaxtyping import PyTree

from myojax.mup import LABELS, check_multipliers, param_labels
from myojax.train.config import TrainConfig

DECAYED: frozenset[str] = frozenset({"hidden", "readout"})


def learning_rate_schedule(cfg: TrainConfig) -> optax.Schedule:
    """0 -> ``lr`` linearly over ``warmup_steps``, then cosine to ``lr * min_lr_ratio`` at
    ``steps``."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        decay_steps=cfg.steps,
        end_value=cfg.lr * cfg.min_lr_ratio,
    )


def make_optimizer(
    cfg: TrainConfig, model: PyTree, lr_multipliers: Mapping[str, float] | None = None
) -> optax.GradientTransformation:
    """Clip the global gradient norm, then AdamW per label with its learning-rate multiplier."""
    check_multipliers(lr_multipliers)
    multipliers = {label: 1.0 for label in LABELS} | dict(lr_multipliers or {})
    param_labels(model)  # fail now, not inside jit, on a parameter without a rule
    schedule = learning_rate_schedule(cfg)

    def for_label(label: str) -> optax.GradientTransformation:
        lr = lambda count, m=multipliers[label]: m * schedule(count)
        if label in DECAYED:
            return optax.adamw(
                lr, b1=cfg.beta1, b2=cfg.beta2, eps=cfg.eps, weight_decay=cfg.weight_decay
            )
        return optax.adam(lr, b1=cfg.beta1, b2=cfg.beta2, eps=cfg.eps)

    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip) if cfg.grad_clip > 0 else optax.identity(),
        # A callable (not a tree of labels): GPT modules are callable, which optax would
        # otherwise mistake for a label function.
        optax.multi_transform({label: for_label(label) for label in LABELS}, param_labels),
    )
