"""The self-training study's configuration: one frozen dataclass, one flag per field."""

from __future__ import annotations

import dataclasses
from typing import Any

from myojax.config import ModelConfig
from myojax.train.config import TrainConfig

MODES = ("standard", "myopic")  # consequence-aware, consequence-blind


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """The whole study. The defaults are the published run (results/self_training.md); the
    number of seeds comes from the pilot's power calculation, between min and max seeds."""

    pilot_seeds: int = _field(8, "seeds of the pilot that measures the seed-to-seed sd")
    target_effect: float = _field(0.01, "nats: the effect the power calculation sizes seeds for")
    min_seeds: int = _field(8, "fewest seeds of the main run")
    max_seeds: int = _field(20, "most seeds of the main run (the compute cap)")
    generations: int = _field(3, "generations including generation 0 (human text only)")
    mixes: tuple[float, ...] = _field(
        (0.5, 1.0), "fractions of the pool replaced by the previous generation's samples"
    )
    feed_every: int = _field(10, "own-consequence: steps between refreshes of the fed samples")
    feed_windows: int = _field(8, "own-consequence: sampled windows in every batch")
    d_model: int = _field(32, "residual width")
    n_layers: int = _field(1, "transformer blocks")
    n_heads: int = _field(2, "attention heads")
    seq_len: int = _field(32, "context length (a window is seq_len + 1 bytes)")
    steps: int = _field(300, "training steps per model")
    batch_size: int = _field(16, "windows per step")
    lr: float = _field(1e-2, "peak learning rate (warmup and cosine decay)")
    pool_windows: int = _field(768, "windows in each pool")
    eval_windows: int = _field(256, "held-out human windows for the held-out loss")

    def __post_init__(self) -> None:
        if min(self.pilot_seeds, self.min_seeds) < 2 or self.generations < 2:
            raise ValueError("need at least 2 pilot and main seeds and 2 generations")
        if self.max_seeds < self.min_seeds:
            raise ValueError("--max-seeds must be at least --min-seeds")
        if not self.mixes or any(not 0.0 < m <= 1.0 for m in self.mixes):
            raise ValueError(f"mix fractions must lie in (0, 1], got {self.mixes}")
        if not 0 < self.feed_windows < self.batch_size:
            raise ValueError("--feed-windows must lie between 1 and --batch-size - 1")
        if not 0 < self.feed_every <= self.steps:
            raise ValueError("--feed-every must lie between 1 and --steps")
        if self.target_effect <= 0:
            raise ValueError("--target-effect must be positive")
        for mode in MODES:
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
        )

    def n_sampled(self, mix: float) -> int:
        return round(mix * self.pool_windows)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
