"""Model configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax.numpy as jnp

GradientModeName = Literal["standard", "myopic", "myopic_kv"]
GRADIENT_MODES: tuple[str, ...] = ("standard", "myopic", "myopic_kv")
RematPolicy = Literal["none", "full", "dots"]
REMAT_POLICIES: tuple[str, ...] = ("none", "full", "dots")
Parametrization = Literal["sp", "mup"]
PARAMETRIZATIONS: tuple[str, ...] = ("sp", "mup")
# The MLP nonlinearity. "gelu_tanh" is GPT-2's tanh approximation (the default); "gelu" is exact.
ActivationName = Literal["gelu_tanh", "gelu", "relu"]
ACTIVATIONS: tuple[str, ...] = ("gelu_tanh", "gelu", "relu")
# How attention and its gradient modes are computed (README: Gradient modes). "fast": one
# attention for every mode, the myopic backward a custom VJP (myojax.attention_fast); "reference":
# the zero-valued diagonal routing through a T×T grid (myojax.attention.causal_attention).
AttentionImpl = Literal["fast", "reference"]
ATTENTION_IMPLS: tuple[str, ...] = ("fast", "reference")
# A saved config without the field was trained before it existed, by the reference formulation.
ATTENTION_IMPL_BEFORE_FIELD = "reference"
# muP attention scale is c/d_head; c = sqrt(64) makes d_head = 64 match SP's 1/sqrt(d_head).
MUP_ATTN_ANCHOR_HEAD_DIM = 64
DTYPES: dict[str, jnp.dtype] = {
    "float32": jnp.dtype(jnp.float32),
    "bfloat16": jnp.dtype(jnp.bfloat16),
    "float64": jnp.dtype(jnp.float64),
}


def _field(default: object, help: str) -> Any:
    """A field with its command-line help (``myojax.cli`` turns every field into a flag)."""
    return dataclasses.field(default=default, metadata={"help": help})


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A GPT-2-style decoder. `d_ff=None` means 4 * d_model.

    ``parametrization="mup"`` applies the maximal update parametrization (docs/mup.md) with
    width multiplier m = d_model / base_width (``base_width=None`` means m = 1). The
    ``*_mult`` fields are width-independent base multipliers (the alphas of Tensor Programs V);
    they apply under both parametrizations and default to 1, which leaves SP unchanged.

    ``vocab_size=None`` describes a model without token heads (``myojax.heads``: real-valued
    inputs, a linear readout); ``GPT`` and the token heads then refuse it by name.
    """

    vocab_size: int | None = _field(
        256, "vocabulary size (>= the data's); none: real-valued inputs (myojax.heads)"
    )
    seq_len: int = _field(128, "context length; training windows are seq_len + 1 tokens")
    d_model: int = _field(128, "residual width")
    n_layers: int = _field(2, "number of transformer blocks")
    n_heads: int = _field(4, "attention heads (must divide d_model)")
    d_ff: int | None = _field(None, "MLP width (none = 4 * d_model)")
    gradient_mode: GradientModeName = _field(
        "standard", "attention gradient mode (README: Gradient modes)"
    )
    tie_embeddings: bool = _field(True, "share the token embedding with the readout")
    param_dtype: str = _field("float32", "parameter dtype")
    compute_dtype: str = _field("float32", "matmul dtype")
    remat: RematPolicy = _field("none", "rematerialize blocks in the backward pass")
    parametrization: Parametrization = _field("sp", "'sp' or 'mup' (docs/mup.md)")
    base_width: int | None = _field(None, "muP base width (none = d_model)")
    input_mult: float = _field(1.0, "base multiplier on the embedding sum")
    output_mult: float = _field(
        1.0, "base multiplier on the logits (muP divides it by the width multiplier)"
    )
    attn_mult: float = _field(1.0, "base multiplier on the attention logits")
    zero_init_query: bool = _field(False, "initialise the query projection at zero (muP option)")
    zero_init_readout: bool = _field(False, "initialise an untied readout at zero (muP option)")
    activation: ActivationName = _field("gelu_tanh", "MLP nonlinearity")
    attention_impl: AttentionImpl = _field(
        "fast",
        "how attention and its gradient mode are computed: 'fast' (one attention, the myopic "
        "backward a custom VJP) or 'reference' (the T×T diagonal routing); same gradients",
    )

    def __post_init__(self) -> None:
        if self.vocab_size is not None:
            _positive("vocab_size", self.vocab_size)
        for name in ("seq_len", "d_model", "n_layers", "n_heads"):
            _positive(name, getattr(self, name))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"ModelConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}"
            )
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"ModelConfig.attention_impl must be one of {ATTENTION_IMPLS}, "
                f"got {self.attention_impl!r}"
            )
        if self.d_ff is not None:
            _positive("d_ff", self.d_ff)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                f"ModelConfig.n_heads ({self.n_heads})"
            )
        if self.gradient_mode not in GRADIENT_MODES:
            raise ValueError(
                f"ModelConfig.gradient_mode must be one of {GRADIENT_MODES}, "
                f"got {self.gradient_mode!r}"
            )
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(
                f"ModelConfig.tie_embeddings must be a bool, got {self.tie_embeddings!r}"
            )
        if self.remat not in REMAT_POLICIES:
            raise ValueError(
                f"ModelConfig.remat must be one of {REMAT_POLICIES}, got {self.remat!r}"
            )
        for name in ("param_dtype", "compute_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(
                    f"ModelConfig.{name} must be one of {tuple(DTYPES)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(
                f"ModelConfig.parametrization must be one of {PARAMETRIZATIONS}, "
                f"got {self.parametrization!r}"
            )
        if self.base_width is not None:
            _positive("base_width", self.base_width)
        for name in ("input_mult", "output_mult", "attn_mult"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"ModelConfig.{name} must be a finite number > 0, got {value!r}")
        for name in ("zero_init_query", "zero_init_readout"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.zero_init_readout and self.tie_embeddings:
            raise ValueError(
                "ModelConfig.zero_init_readout=True needs tie_embeddings=False "
                "(a tied readout is the token embedding, which must not start at zero)"
            )

    def require_vocab(self, what: str) -> int:
        """``vocab_size``, or a clear error naming ``what`` needs it (a token head)."""
        if self.vocab_size is None:
            raise ValueError(
                f"{what} needs ModelConfig.vocab_size (token inputs or logits), got None; "
                "for real-valued inputs/outputs use myojax.heads.LinearInput / LinearReadout"
            )
        return self.vocab_size

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def width_mult(self) -> float:
        """muP width multiplier m = d_model / base_width; 1 under SP (no width scaling)."""
        if self.parametrization == "sp" or self.base_width is None:
            return 1.0
        return self.d_model / self.base_width

    @property
    def attn_scale(self) -> float:
        """c in softmax(c·q·k): attn_mult/sqrt(d_head) under SP, attn_mult·8/d_head under muP.

        muP uses 1/d_head because q and k become correlated during training, so q·k grows like
        d_head rather than sqrt(d_head); the constant 8 = sqrt(64) makes d_head = 64 agree with SP.
        """
        if self.parametrization == "mup":
            return self.attn_mult * MUP_ATTN_ANCHOR_HEAD_DIM**0.5 / self.head_dim
        return self.attn_mult / self.head_dim**0.5

    @property
    def input_multiplier(self) -> float:
        """Scalar applied to the embedding sum wte[x] + wpe (width-independent under muP)."""
        return float(self.input_mult)

    @property
    def output_multiplier(self) -> float:
        """Scalar applied to the logits: output_mult under SP, output_mult / m under muP.

        The 1/m readout multiplier is what lets the tied embedding serve as a muP readout.
        """
        return self.output_mult / self.width_mult

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        """A saved config. One written before ``attention_impl`` existed reads as
        ``"reference"``, the implementation that trained it (docs/training.md)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ModelConfig has no field(s) {unknown}")
        data = {"attention_impl": ATTENTION_IMPL_BEFORE_FIELD, **data}
        return cls(**data)  # type: ignore[arg-type]
