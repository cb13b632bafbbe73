"""Every named configuration: model shapes (``MODEL_PRESETS``) and single-run training presets
(``RUN_PRESETS``), one type each.

Model shapes:

- ``tiny`` / ``small``: byte-level GPTs for the embedded corpus (tests, CPU runs);
- ``gpt2-117m`` … ``gpt2-1.5b``: the GPT-2 family (Radford et al., 2019) used by the scaling
  study — vocabulary 50257 (GPT-2 BPE), context 1024, tied embeddings, d_ff = 4·d_model. The
  names keep the paper's sizes; with a 1024-position table and tied embeddings the exact counts
  are 124M, 355M, 774M and 1.56B parameters.

A run preset pairs a model shape with a ``TrainConfig`` (``python -m myojax.train --preset``).
The scaling study's ladders are protocols, not presets of one run: they live with the study in
``experiments/scaling/protocol.py``.
"""

from __future__ import annotations

from typing import NamedTuple

from myojax.config import ModelConfig
from myojax.train.config import TrainConfig

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


class RunPreset(NamedTuple):
    """A named single run: a model shape and how to train it (unpacks as ``model, train``)."""

    model: ModelConfig
    train: TrainConfig


RUN_PRESETS: dict[str, RunPreset] = {
    "tiny": RunPreset(
        MODEL_PRESETS["tiny"],
        TrainConfig(
            steps=300,
            batch_size=32,
            lr=3e-3,
            warmup_steps=30,
            eval_interval=100,
            checkpoint_interval=100,
            out="runs/tiny",
        ),
    ),
    "small": RunPreset(
        MODEL_PRESETS["small"],
        TrainConfig(
            steps=2000,
            batch_size=32,
            lr=2e-3,
            warmup_steps=100,
            eval_interval=250,
            checkpoint_interval=250,
            out="runs/small",
        ),
    ),
}


def _unknown(kind: str, name: str, known: dict) -> ValueError:
    return ValueError(f"unknown {kind} preset {name!r}; known: {', '.join(known)}")


def model_preset(name: str, **overrides: object) -> ModelConfig:
    """The ``ModelConfig`` of preset ``name``, with any field overridden (e.g. ``gradient_mode``,
    ``remat``, ``seq_len``)."""
    if name not in MODEL_PRESETS:
        raise _unknown("model", name, MODEL_PRESETS)
    return MODEL_PRESETS[name].replace(**overrides)


def run_preset(name: str) -> RunPreset:
    """The run preset ``name`` (``tiny``, ``small``)."""
    if name not in RUN_PRESETS:
        raise _unknown("run", name, RUN_PRESETS)
    return RUN_PRESETS[name]
