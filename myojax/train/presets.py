"""Named single runs (``RUN_PRESETS``): a model shape of ``myojax.presets`` and how to train it;
``python -m myojax.train --preset NAME`` starts from one."""

from __future__ import annotations

from typing import NamedTuple

from myojax.config import ModelConfig
from myojax.model import param_counts
from myojax.presets import MODEL_PRESETS, unknown_preset
from myojax.train.config import TrainConfig


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


def run_preset(name: str) -> RunPreset:
    """The run preset ``name`` (``tiny``, ``small``)."""
    if name not in RUN_PRESETS:
        raise unknown_preset("run", name, RUN_PRESETS)
    return RUN_PRESETS[name]


def describe_presets() -> str:
    """One line per run preset: its size, shape and training settings (``--help``)."""
    lines = []
    for name, p in RUN_PRESETS.items():
        m, t = p.model, p.train
        lines.append(
            f"  {name}: {param_counts(m)[0] / 1e6:.2f}M params (d_model {m.d_model}, "
            f"{m.n_layers} layers, seq_len {m.seq_len}); {t.steps} steps, batch {t.batch_size}, "
            f"lr {t.lr}, out {t.out}"
        )
    return "presets:\n" + "\n".join(lines)
