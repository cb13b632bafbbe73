"""Model configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax.numpy as jnp

GradientModeName = Literal["standard", "myopic", "myopic_kv"]
GRADIENT_MODES: tuple[str, ...] = ("standard", "myopic", "myopic_kv")
RematPolicy = Literal["none", "full", "dots"]
REMAT_POLICIES: tuple[str, ...] = ("none", "full", "dots")
DTYPES: dict[str, jnp.dtype] = {
    "float32": jnp.dtype(jnp.float32),
    "bfloat16": jnp.dtype(jnp.bfloat16),
    "float64": jnp.dtype(jnp.float64),
}


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A GPT-2-style decoder. `d_ff=None` means 4 * d_model."""

    vocab_size: int = 256
    seq_len: int = 128
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None
    gradient_mode: GradientModeName = "standard"
    tie_embeddings: bool = True
    param_dtype: str = "float32"
    compute_dtype: str = "float32"
    remat: RematPolicy = "none"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads"):
            _positive(name, getattr(self, name))
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
            raise ValueError(f"ModelConfig.remat must be one of {REMAT_POLICIES}, got {self.remat!r}")
        for name in ("param_dtype", "compute_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(
                    f"ModelConfig.{name} must be one of {tuple(DTYPES)}, "
                    f"got {getattr(self, name)!r}"
                )

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def attn_scale(self) -> float:
        """c in softmax(c·q·k): 1/sqrt(d_head) under standard parametrization."""
        return 1.0 / self.head_dim**0.5

    @property
    def output_multiplier(self) -> float:
        """Scalar applied to the logits (1 under standard parametrization)."""
        return 1.0

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ModelConfig has no field(s) {unknown}")
        return cls(**data)  # type: ignore[arg-type]
