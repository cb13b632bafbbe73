"""myojax: GPT-2-style transformers with myopic gradient modes, in functional JAX."""

from myojax.analysis.sampling import generate
from myojax.attention import GRADIENT_SPECS, GradientSpec, causal_attention, project_qkv
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.heads import LinearInput, LinearReadout, TiedLogits, TokenEmbedding, Transformer
from myojax.loss import (
    Batch,
    PositionLoss,
    cross_entropy,
    huber,
    loss_and_grad,
    mean_loss,
    per_position_loss,
    squared_error,
)
from myojax.model import GPT, Block, cast_model, count_params, layer_norm, run_blocks

__all__ = [
    "GPT",
    "GRADIENT_MODES",
    "GRADIENT_SPECS",
    "Batch",
    "Block",
    "GradientSpec",
    "LinearInput",
    "LinearReadout",
    "ModelConfig",
    "PositionLoss",
    "TiedLogits",
    "TokenEmbedding",
    "Transformer",
    "cast_model",
    "causal_attention",
    "count_params",
    "cross_entropy",
    "generate",
    "huber",
    "layer_norm",
    "loss_and_grad",
    "mean_loss",
    "per_position_loss",
    "project_qkv",
    "run_blocks",
    "squared_error",
]
