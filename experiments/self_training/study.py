"""The whole study: a pilot that measures the seed-to-seed sd and sizes the seeds, then every
condition of every seed, paired, and the held-out loss of each model.

Conditions per gradient mode (``standard`` is consequence-aware, ``myopic`` blind), all from
the seed's initial weights and batch order: generation 0 on human text; generation g ≥ 1 on
the pool whose mix fraction holds generation g − 1's samples (same mode and mix; the sample
key depends only on seed and generation, so both modes and all mixes draw the same random
numbers); ``own`` (the model's own samples, drawn during its training, in every batch) and
``control`` (the same, sampled from the frozen generation-0 model of the same mode).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.self_training import train
from experiments.self_training.config import MODES, GridConfig
from experiments.self_training.data import SAMPLE, SeedData, seed_key, windows
from experiments.self_training.stats import seeds_needed
from myojax.data import corpus

PILOT_SEED0 = 10_000  # pilot seeds are disjoint from the main run's 0, 1, ...


def condition(mode: str, generation: int = 0, mix: float = 0.0, feed: str = "") -> str:
    """The name of a condition's losses in the results."""
    if feed:
        return f"{mode}/{feed}"
    return f"{mode}/gen{generation}" + (f"/mix{mix:g}" if generation else "")


@dataclasses.dataclass(frozen=True)
class Pilot:
    """Generation 0 of both modes on separate seeds: the sds the seeds were sized from."""

    seeds: int
    sd_fresh: float  # seed sd of a fresh model's held-out loss (mean over modes)
    sd_paired: float  # seed sd of the paired myopic − standard difference
    needed: int  # seeds for target_effect at 80% power, alpha 0.05, from sd_paired
    chosen: int  # needed, clipped to [min_seeds, max_seeds]


def _data(cfg: GridConfig, tokens: np.ndarray, seeds: range) -> list[SeedData]:
    W = cfg.seq_len + 1
    return [
        SeedData.build(s, tokens, cfg.pool_windows, W, cfg.steps, cfg.batch_size) for s in seeds
    ]


def run_pilot(cfg: GridConfig, tokens: np.ndarray, heldout: np.ndarray) -> Pilot:
    data = _data(cfg, tokens, range(PILOT_SEED0, PILOT_SEED0 + cfg.pilot_seeds))
    loss = {
        m: train.heldout_losses(train.train_plain(cfg, m, data, [d.human for d in data]), heldout)
        for m in MODES
    }
    sd_fresh = float(np.mean([loss[m].std(ddof=1) for m in MODES]))
    sd_paired = float((loss["myopic"] - loss["standard"]).std(ddof=1))
    needed = seeds_needed(sd_paired, cfg.target_effect)
    chosen = int(np.clip(needed, cfg.min_seeds, cfg.max_seeds))
    return Pilot(cfg.pilot_seeds, sd_fresh, sd_paired, needed, chosen)


def _generations(
    cfg: GridConfig, mode: str, data: list[SeedData], gen0: Any, heldout: np.ndarray
) -> dict[str, list[float]]:
    """Generations 1.. of every mix; nested pools share samples (``train.sample``)."""
    out: dict[str, list[float]] = {}
    W = cfg.seq_len + 1
    parents = dict.fromkeys(cfg.mixes, gen0)
    for g in range(1, cfg.generations):
        keys = jnp.stack([jax.random.fold_in(seed_key(d.seed, SAMPLE), g) for d in data])
        drawn: dict[int, np.ndarray] = {}
        for mix in sorted(cfg.mixes, reverse=True):
            n = cfg.n_sampled(mix)
            if g == 1 and drawn:  # generation 1's parent is gen0 for every mix: reuse
                samples = next(iter(drawn.values()))[:, :n]
            else:
                prompts = np.stack([d.prompts(n) for d in data])
                samples = drawn[n] = train.sample_seeds(parents[mix], prompts, keys, W)
            pools = [d.pool(s) for d, s in zip(data, samples, strict=True)]
            parents[mix] = train.train_plain(cfg, mode, data, pools)
            out[condition(mode, g, mix)] = train.heldout_losses(parents[mix], heldout).tolist()
    return out


def run_study(
    cfg: GridConfig, log: Callable[[str], None] = print
) -> tuple[Pilot, dict[str, list[float]]]:
    """The pilot, then every condition's held-out loss per seed (index = seed)."""
    data_all = corpus.load()
    tokens = np.asarray(data_all.train)
    heldout = windows(np.asarray(data_all.val), cfg.eval_windows, cfg.seq_len + 1, seed=1)
    pilot = run_pilot(cfg, tokens, heldout)
    log(f"pilot: paired sd {pilot.sd_paired:.4f} -> {pilot.needed} seeds, running {pilot.chosen}")
    data = _data(cfg, tokens, range(pilot.chosen))
    losses: dict[str, list[float]] = {}
    for mode in MODES:
        gen0 = train.train_plain(cfg, mode, data, [d.human for d in data])
        losses[condition(mode)] = train.heldout_losses(gen0, heldout).tolist()
        losses |= _generations(cfg, mode, data, gen0, heldout)
        log(f"{mode}: generations done")
        for feed, own in (("own", True), ("control", False)):
            model, _ = train.train_fed(cfg, mode, data, gen0, own)
            losses[condition(mode, feed=feed)] = train.heldout_losses(model, heldout).tolist()
        log(f"{mode}: own-consequence done")
    return pilot, losses
