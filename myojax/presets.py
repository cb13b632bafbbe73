"""Named model shapes (``MODEL_PRESETS``): one ``ModelConfig`` each.

- ``tiny`` / ``small``: byte-level GPTs for the embedded corpus (tests, CPU runs);
- ``gpt2-117m`` … ``gpt2-1.5b``: the GPT-2 family (Radford et al., 2019) used by the scaling
  study — vocabulary 50257 (GPT-2 BPE), context 1024, tied embeddings, d_ff = 4·d_model. The
  names keep the paper's sizes; with a 1024-position table and tied embeddings the exact counts
  are 124M, 355M, 774M and 1.56B parameters.

A single run's preset (a shape and how to train it) belongs to the trainer:
``myojax.train.presets``. The scaling study's ladders are protocols, not presets of one run:
they live with the study in ``experiments/scaling/protocol.py``.
"""

from __future__ import annotations

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

MODEL_PRESETS: dict[str, ModelConfig] = {
    # ~0.22M parameters: a few ms per step on a laptop CPU; the test workhorse.
    "tiny": ModelConfig(vocab_size=256, seq_len=64, d_model=64, n_layers=4, n_heads=4),
    # ~1.2M parameters.
    "small": ModelConfig(vocab_size=256, seq_len=128, d_model=128, n_layers=6, n_heads=4),
    **{
        name: ModelConfig(
            vocab_size=GPT2_VOCAB_SIZE,
            seq_len=GPT2_CONTEXT,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            tie_embeddings=True,
        )
        for name, (n_layers, d_model, n_heads) in GPT2_SHAPES.items()
    },
}


def unknown_preset(kind: str, name: str, known: dict) -> ValueError:
    return ValueError(f"unknown {kind} preset {name!r}; known: {', '.join(known)}")


def model_preset(name: str, **overrides: object) -> ModelConfig:
    """The ``ModelConfig`` of preset ``name``, with any field overridden (e.g. ``gradient_mode``,
    ``remat``, ``seq_len``)."""
    if name not in MODEL_PRESETS:
        raise unknown_preset("model", name, MODEL_PRESETS)
    return MODEL_PRESETS[name].replace(**overrides)
