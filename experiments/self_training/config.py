"""The self-training study's configuration: one frozen dataclass, one flag per field."""

from __future__ import annotations

import dataclasses
from typing import Any

from myojax.config import ModelConfig
from myojax.train.config import TrainConfig

OBJECTIVES = ("blind", "aware")  # the fed condition: stop-gradient or live through own outputs


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """The whole study. The defaults are the published run (results/self_training.md); the
    number of seeds was chosen by a power calculation from a pilot (``--pilot``)."""

    seeds: int = _field(12, "seeds (every comparison is paired within a seed)")
    generations: int = _field(
        3, "generations including generation 0 (human text only), at least 2"
    )
    mixes: tuple[float, ...] = _field(
        (0.5, 1.0), "fractions of the pool replaced by the previous generation's samples"
    )
    modes: tuple[str, ...] = _field(("standard", "myopic"), "gradient modes")
    fed_fraction: float = _field(
        0.5,
        "fed condition: fraction of input positions (after the first) that receive the "
        "model's own predicted distribution instead of the true byte; 0 skips the condition",
    )
    d_model: int = _field(32, "residual width")
    n_layers: int = _field(2, "transformer blocks")
    n_heads: int = _field(4, "attention heads")
    seq_len: int = _field(64, "context length (a window is seq_len + 1 bytes)")
    steps: int = _field(240, "training steps per model")
    batch_size: int = _field(32, "windows per step")
    lr: float = _field(1e-2, "peak learning rate (warmup and cosine decay)")
    pool_windows: int = _field(
        1536, "windows in each pool (steps * batch_size / pool_windows epochs)"
    )
    metric_rows: int = _field(256, "sampled rows the drift metrics and self-loss use")
    eval_windows: int = _field(256, "held-out human windows for the held-out losses")
    temperature: float = _field(1.0, "sampling temperature")
    target_effect: float = _field(
        0.05, "nats: the effect the power calculation sizes the seeds for (with --pilot)"
    )

    def __post_init__(self) -> None:
        if self.seeds < 2 or self.generations < 2:
            raise ValueError("need --seeds >= 2 (intervals over seeds) and --generations >= 2")
        if not self.mixes or any(not 0.0 < m <= 1.0 for m in self.mixes):
            raise ValueError(f"mix fractions must lie in (0, 1], got {self.mixes}")
        if len(set(self.mixes)) != len(self.mixes) or len(set(self.modes)) != len(self.modes):
            raise ValueError("mixes and modes must not repeat")
        if not 0.0 <= self.fed_fraction <= 1.0:
            raise ValueError(f"--fed-fraction must lie in [0, 1], got {self.fed_fraction}")
        if self.eval_windows % self.batch_size or self.metric_rows % 8:
            raise ValueError("eval_windows must be a multiple of batch_size, metric_rows of 8")
        if self.metric_rows > self.pool_windows:
            raise ValueError("metric_rows must not exceed pool_windows")
        if self.target_effect <= 0:
            raise ValueError("--target-effect must be positive")
        for mode in self.modes:
            self.model_config(mode)  # validate the shape now
        self.train_config()

    def model_config(self, mode: str) -> ModelConfig:
        return ModelConfig(
            vocab_size=256,
            seq_len=self.seq_len,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            gradient_mode=mode,
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=max(1, self.steps // 10),
            eval_batches=self.eval_windows // self.batch_size,
        )

    def n_sampled(self, mix: float) -> int:
        return round(mix * self.pool_windows)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
