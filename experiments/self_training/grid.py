"""The study's models: the generations grid and the fed condition, each model measured.

Generations: generation 0 trains on the seed's human pool; generation k+1 (per mix) trains
on that pool with ``round(mix * pool_windows)`` of its slots holding windows sampled from
generation k of the same mode, seed and mix. Fed: models trained on generation 0's pool with
the fed objective (``train``), blind and aware. Every model of a seed starts from the same
weights and reads its pool in the same order (``data``), so each comparison is paired.

A sampled window is one human byte (the first byte of the human window in the slot it
replaces) followed by ``seq_len`` bytes sampled at ``temperature`` with ``myojax.generate``;
sampling keys depend on the seed and generation only, so the modes and mixes share them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.self_training.config import OBJECTIVES, GridConfig
from experiments.self_training.data import PROMPT_LEN, SAMPLE, SeedData, human_windows, seed_key
from experiments.self_training.records import Drift, ModelRecord, Study
from experiments.self_training.train import fed_eval, seed_model, train_seeds
from myojax import evaluation
from myojax.analysis import text_stats
from myojax.analysis.sampling import generate
from myojax.data import corpus
from myojax.files import write_json
from myojax.model import GPT, count_params
from myojax.progress import Progress

FED_EVAL_KEY = 7  # the held-out fed masks, the same for every model


@dataclasses.dataclass(frozen=True)
class Fixed:
    """What the whole study shares: held-out windows for the losses, the drift reference and
    the seeds' data."""

    eval_windows: list[np.ndarray]
    reference: np.ndarray
    seeds: list[SeedData]


def fixed_data(cfg: GridConfig) -> tuple[Fixed, Drift]:
    """The held-out sets (two disjoint human samples shaped like the metric rows: the drift
    reference and the human floor of every drift metric) and every seed's data."""
    data = corpus.load()
    T, half = cfg.seq_len, len(data.val) // 2
    (eval_all,) = evaluation.heldout_windows(
        [data.val[:half]], seq_len=T, batch_size=cfg.eval_windows, num_batches=1, seed=1
    )
    reference = human_windows(data.val[half:], cfg.metric_rows, T, seed=2)[:, PROMPT_LEN:]
    floor_rows = human_windows(data.val[:half], cfg.metric_rows, T, seed=3)[:, PROMPT_LEN:]
    seeds = [
        SeedData.build(s, data.train, cfg.pool_windows, T, cfg.steps, cfg.batch_size)
        for s in range(cfg.seeds)
    ]
    fixed = Fixed(evaluation.in_batches(eval_all, cfg.batch_size), reference, seeds)
    return fixed, Drift(**text_stats.drift(floor_rows, reference))


def sample_windows(
    model: GPT, prompts: np.ndarray, key: jax.Array, cfg: GridConfig
) -> np.ndarray:
    """Prompt byte + ``seq_len`` sampled bytes per prompt (uint8 ``[n, T+1]``), in chunks of
    ``metric_rows`` rows (one compiled shape); chunk c uses ``fold_in(key, c)``, so row i's
    randomness does not depend on how many rows are sampled."""
    out, chunk = [], cfg.metric_rows
    for c, start in enumerate(range(0, len(prompts), chunk)):
        p = prompts[start : start + chunk]
        pad = chunk - len(p)
        p_full = np.concatenate([p, np.repeat(p[:1], pad, axis=0)]) if pad else p
        gen = generate(
            model,
            p_full.astype(np.int32),
            cfg.seq_len,
            key=jax.random.fold_in(key, c),
            temperature=cfg.temperature,
        )
        out.append(np.concatenate([p, np.asarray(gen.tokens)[: len(p)]], axis=1))
    return np.concatenate(out).astype(np.uint8)


def measure(
    model: GPT, fixed: Fixed, cfg: GridConfig, samples: np.ndarray | None
) -> dict[str, Any]:
    """Held-out human loss, held-out fed loss, and (with samples) the loss on the model's own
    samples and their drift from human text (prompt byte excluded)."""
    out: dict[str, Any] = {
        "val_loss": evaluation.evaluate(model, fixed.eval_windows)["val_loss"],
        "fed_loss": fed_eval(
            model, fixed.eval_windows, jax.random.key(FED_EVAL_KEY), cfg.fed_fraction
        )
        if cfg.fed_fraction > 0
        else None,
    }
    if samples is not None:
        rows = samples[: cfg.metric_rows]
        out["self_loss"] = evaluation.evaluate(model, [rows.astype(np.int32)])["val_loss"]
        out["drift"] = Drift(**text_stats.drift(rows[:, PROMPT_LEN:], fixed.reference))
    return out


@dataclasses.dataclass
class Cell:
    """One cell of the study: every seed's model of one (condition, mode, generation, mix,
    objective)."""

    condition: str
    mode: str
    generation: int = 0
    mix: float | None = None
    objective: str | None = None

    def folder(self, out: Path, seed: int) -> Path:
        where = out / self.mode / f"seed{seed}"
        if self.condition == "fed":
            return where / f"fed_{self.objective}"
        return where / ("gen0" if self.generation == 0 else f"mix{self.mix:g}/gen{self.generation}")


def run_cell(
    cell: Cell,
    cfg: GridConfig,
    fixed: Fixed,
    parents: list[np.ndarray] | None,
    n_samples: int,
    out: Path,
) -> tuple[list[ModelRecord], list[np.ndarray]]:
    """Train the cell's model for every seed (on the seed's pool with ``parents[s]`` in its
    first replace slots), measure each, and sample ``n_samples`` rows from each (none: 0)."""
    pools = [sd.pool(parents[i] if parents else sd.human[:0]) for i, sd in enumerate(fixed.seeds)]
    t0 = time.perf_counter()
    models, losses = train_seeds(
        cfg,
        cell.mode,
        [p for p, _ in pools],
        [sd.order for sd in fixed.seeds],
        [sd.seed for sd in fixed.seeds],
        cell.objective,
    )
    train_wall = (time.perf_counter() - t0) / len(fixed.seeds)
    records, samples = [], []
    for i, sd in enumerate(fixed.seeds):
        model, (pool, is_sampled) = seed_model(models, i), pools[i]
        key = jax.random.fold_in(seed_key(sd.seed, SAMPLE), cell.generation)
        rows = sample_windows(model, sd.prompts(n_samples), key, cfg) if n_samples else None
        folder = cell.folder(out, sd.seed)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "pool.npy", pool)
        np.save(folder / "pool_is_sampled.npy", is_sampled)
        if rows is not None:
            np.save(folder / "samples.npy", rows)
        rec = ModelRecord(
            **dataclasses.asdict(cell),
            seed=sd.seed,
            dir=str(folder),
            pool_sampled=int(is_sampled.sum()),
            windows_seen_sampled=sd.seen_sampled(is_sampled),
            train_loss_first=float(losses[i, 0]),
            train_loss_last=float(losses[i, -max(1, cfg.steps // 10) :].mean()),
            train_wall_s=train_wall,
            examples=[] if rows is None else [bytes(r).decode("utf-8", "replace") for r in rows[:2]],
            **measure(model, fixed, cfg, rows),
        )
        write_json(folder / "record.json", dataclasses.asdict(rec))
        records.append(rec)
        samples.append(rows)
    return records, samples


def cells(cfg: GridConfig) -> list[Cell]:
    """Every cell in the order it runs (a generation after the one whose samples it reads)."""
    out: list[Cell] = []
    for mode in cfg.modes:
        out.append(Cell("generations", mode))
        for g in range(1, cfg.generations):
            out += [Cell("generations", mode, g, mix) for mix in cfg.mixes]
        if cfg.fed_fraction > 0:
            out += [Cell("fed", mode, objective=o) for o in OBJECTIVES]
    return out


def run_grid(
    cfg: GridConfig,
    out: Path,
    *,
    progress: bool | None = None,
    meta: Callable[[], dict[str, Any]] | None = None,
) -> Study:
    """Every cell; each model's pool, samples and record under ``out/<mode>/seed<s>/…``.
    After each cell ``out/results.partial.json`` holds the records so far."""
    fixed, floor = fixed_data(cfg)
    params = count_params(GPT(cfg.model_config("standard"), key=jax.random.key(0)))
    todo = cells(cfg)
    bar = Progress(len(todo), enabled=progress, unit="cell", desc="self-training")
    records: list[ModelRecord] = []
    samples: dict[float, list[np.ndarray]] = {}  # the previous generation's rows per mix
    biggest = max(cfg.n_sampled(m) for m in cfg.mixes)
    for done, cell in enumerate(todo, 1):
        last = cell.generation == cfg.generations - 1
        if cell.condition == "fed":
            parents, n = None, 0
        elif cell.generation == 0:
            parents, n = None, max(biggest, cfg.metric_rows)
        else:
            k = cfg.n_sampled(cell.mix)
            parents = [rows[:k] for rows in samples[cell.mix]]
            n = cfg.metric_rows if last else max(k, cfg.metric_rows)
        recs, rows = run_cell(cell, cfg, fixed, parents, n, out)
        if cell.condition == "generations":
            for mix in cfg.mixes if cell.generation == 0 else [cell.mix]:
                samples[mix] = rows
        records += recs
        study = Study(cfg.to_dict(), params, floor, records)
        partial = study.to_json() | ({"meta": meta()} if meta else {})
        write_json(out / "results.partial.json", partial)
        val = np.mean([r.val_loss for r in recs])
        bar.update(done, line=f"[{done}/{len(todo)}] {cell} mean val_loss {val:.3f}")
    bar.close()
    return Study(cfg.to_dict(), params, floor, records)
