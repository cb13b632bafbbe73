"""myojax: GPT-2-style transformers with myopic gradient modes, in functional JAX."""

from myojax.analysis.sampling import generate
from myojax.attention import GRADIENT_SPECS, GradientSpec
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import Batch, loss_and_grad, mean_loss, per_position_loss
from myojax.model import GPT, Block, cast_model, count_params

__all__ = [
    "GPT",
    "GRADIENT_MODES",
    "GRADIENT_SPECS",
    "Batch",
    "Block",
    "GradientSpec",
    "ModelConfig",
    "cast_model",
    "count_params",
    "generate",
    "loss_and_grad",
    "mean_loss",
    "per_position_loss",
]
