"""Named model shapes: the GPT-2 family used by the scaling study.

Shapes are those of GPT-2 (Radford et al., 2019): vocabulary 50257 (GPT-2 BPE), context 1024,
tied embeddings, d_ff = 4 d_model. The names keep the paper's sizes; with a 1024-position table
and tied embeddings the exact counts are 124M, 355M, 774M and 1.56B parameters.
"""

from __future__ import annotations

from collections.abc import Callable

from myojax.config import ModelConfig

GPT2_VOCAB_SIZE: int = 50257
GPT2_CONTEXT: int = 1024

# name -> (n_layers, d_model, n_heads)
GPT2_SHAPES: dict[str, tuple[int, int, int]] = {
    "gpt2-117m": (12, 768, 12),
    "gpt2-345m": (24, 1024, 16),
    "gpt2-762m": (36, 1280, 20),
    "gpt2-1.5b": (48, 1600, 25),
}

# Families: a name that stands for several presets, smallest first (``--preset gpt2``).
FAMILIES: dict[str, tuple[str, ...]] = {"gpt2": tuple(GPT2_SHAPES)}


def _gpt2(name: str) -> Callable[..., ModelConfig]:
    n_layers, d_model, n_heads = GPT2_SHAPES[name]

    def factory(**overrides: object) -> ModelConfig:
        base = ModelConfig(
            vocab_size=GPT2_VOCAB_SIZE,
            seq_len=GPT2_CONTEXT,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            tie_embeddings=True,
        )
        return base.replace(**overrides)

    factory.__name__ = name.replace("-", "_").replace(".", "_")
    factory.__doc__ = f"{name}: {n_layers} layers x d_model {d_model}, {n_heads} heads."
    return factory


PRESETS: dict[str, Callable[..., ModelConfig]] = {name: _gpt2(name) for name in GPT2_SHAPES}


def preset(name: str, **overrides: object) -> ModelConfig:
    """The ``ModelConfig`` of preset ``name``, with any field overridden (e.g. ``gradient_mode``,
    ``remat``, ``seq_len``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name](**overrides)


def family(name: str) -> tuple[str, ...]:
    """Preset names of a family (``"gpt2"``) or the single preset ``name``."""
    if name in FAMILIES:
        return FAMILIES[name]
    if name in PRESETS:
        return (name,)
    raise ValueError(
        f"unknown preset or family {name!r}; families: {', '.join(FAMILIES)}; "
        f"presets: {', '.join(PRESETS)}"
    )
