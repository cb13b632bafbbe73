"""Power pilot for the own-consequence condition: measure the seed-to-seed sd of its paired
contrasts with the study's own tiny models, then size the seeds from it.

Per seed and gradient mode: a *source* model trained on human text alone (its own init key),
the *own* run (its own samples refresh its pool every ``every`` steps) and the *control* run
(the same pool slots refreshed from the frozen source instead). All runs of a seed share the
initial weights, human pool, batch order and sampling keys (``data.SeedData``), so
own − control is a paired difference, and (myopic − standard) × (own − control) is the mode ×
condition interaction, with the gap already present between the modes cancelling per seed.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from experiments.self_training.data import INIT, SAMPLE, SeedData, seed_key
from experiments.self_training.own_consequence import train_with_feedback
from experiments.self_training.stats import Contrast, interaction, seeds_needed
from myojax import evaluation
from myojax.config import ModelConfig
from myojax.data import corpus
from myojax.train.config import TrainConfig

SOURCE_INIT = 6  # stream of the source model's own init key (after data.py's streams)


@dataclasses.dataclass(frozen=True)
class PilotConfig:
    seeds: int = 4
    d_model: int = 32
    seq_len: int = 32
    steps: int = 150
    batch_size: int = 16
    pool: int = 256
    fed_slots: int = 128
    every: int = 25
    lr: float = 1e-2
    eval_windows: int = 256
    target_effect: float = 0.02  # nats

    def model(self, mode: str) -> ModelConfig:
        return ModelConfig(
            vocab_size=256, seq_len=self.seq_len, d_model=self.d_model, n_layers=1,
            n_heads=4, gradient_mode=mode,
        )  # fmt: skip

    def train(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr,
            warmup_steps=max(1, self.steps // 10),
        )  # fmt: skip


def seed_losses(cfg: PilotConfig, seed: int, mode: str, train, evals) -> tuple[float, float]:
    """Held-out loss of the own and control runs of one seed and mode."""
    data = SeedData.build(seed, train, cfg.pool, cfg.seq_len, cfg.steps, cfg.batch_size)
    keys = (seed_key(seed, INIT), seed_key(seed, SAMPLE))
    m, t = cfg.model(mode), cfg.train()
    src_keys = (seed_key(seed, SOURCE_INIT), keys[1])
    source, _, _ = train_with_feedback(m, t, data.human, data.order, src_keys, cfg.every, 0)
    out = []
    for src in (None, source):
        model, _, _ = train_with_feedback(
            m, t, data.human, data.order, keys, cfg.every, cfg.fed_slots, src
        )
        out.append(evaluation.evaluate(model, evals)["val_loss"])
    return out[0], out[1]


def run(cfg: PilotConfig) -> list[Contrast]:
    data = corpus.load()
    (ev,) = evaluation.heldout_windows(
        [data.val], seq_len=cfg.seq_len, batch_size=cfg.eval_windows, num_batches=1, seed=1
    )
    evals = evaluation.in_batches(ev, cfg.batch_size)
    loss = {
        mode: np.array([seed_losses(cfg, s, mode, data.train, evals) for s in range(cfg.seeds)])
        for mode in ("standard", "myopic")
    }
    std, myo = loss["standard"], loss["myopic"]
    return [
        Contrast.of("standard: own − control", std[:, 0] - std[:, 1]),
        Contrast.of("myopic: own − control", myo[:, 0] - myo[:, 1]),
        interaction(std[:, 1], std[:, 0], myo[:, 1], myo[:, 0], "(myopic − standard) × own"),
    ]


if __name__ == "__main__":
    cfg = PilotConfig(seeds=int(sys.argv[1]) if len(sys.argv) > 1 else 4)
    for c in run(cfg):
        n = seeds_needed(c.sd, cfg.target_effect)
        print(f"{c.name}: mean {c.mean:+.4f} [{c.lo:+.4f}, {c.hi:+.4f}] sd {c.sd:.4f} "
              f"MDE {c.mde:.4f} seeds for {cfg.target_effect} nats: {n}")  # fmt: skip
