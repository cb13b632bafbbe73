"""Running the isoFLOP design: the lr sweep per mode (validation loss), then every (budget,
size, mode, seed) at its mode's lr, each on D = C/(6N) non-overlapping training windows; per
run the most times any training token was read, computed by replaying the run's own training
stream over token positions. Every run is cached in its directory, so rerunning the same
command resumes; the analysis (``isoflop_analysis``) reads only test losses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from experiments.scaling import execute, isoflop, isoflop_analysis, records
from experiments.scaling.protocol import RunSpec, model_config
from myojax.data import pipeline
from myojax.train.setup import data_seeds


@dataclasses.dataclass(frozen=True)
class IsoflopRun:
    """One finished run of the design and the most times it read any training token."""

    record: records.RunRecord
    budget: float
    max_token_reads: int
    role: str  # "sweep" or "size" in the design (a cached record keeps the role it ran as)


def _spec(d: isoflop.Design, r: isoflop.IsoflopRun, mode: str, lr: float, seed: int, role: str):
    cfg = model_config(d.preset.base, r.size, mode)
    return RunSpec(mode, role, r.size, lr, r.steps, r.tokens, cfg, seed, float(f"{r.budget:.4g}"))


def token_reads(d: isoflop.Design, spec: RunSpec, data: pipeline.TokenData) -> int:
    """Replays the run's training stream (same seed derivation as the trainer) over positions."""
    train_seed, _ = data_seeds(jax.random.split(jax.random.key(spec.seed))[1])
    ds = pipeline.window_dataset(
        pipeline.position_ids(data.train),
        seq_len=d.preset.base.seq_len,
        batch_size=d.preset.base.batch_size,
        num_batches=spec.steps,
        seed=train_seed,
        rows=np.arange(d.preset.base.batch_size),
        disjoint=d.preset.base.disjoint_windows,
    )
    return pipeline.max_token_reads(ds)


def run(d: isoflop.Design, out: Path, data: str, progress: bool | None = None):
    """Sweep, then the design; returns (lr per mode, finished runs) or None if stopped."""
    base, windows = d.preset.base, execute.heldout_windows(d.preset.base, data)
    tokens = pipeline.load_data(data)
    done: list[IsoflopRun] = []

    def go(spec: RunSpec, budget: float) -> records.RunRecord | None:
        record, _ = execute.execute(base, spec, out, data, windows, write=True, progress=progress)
        if record.status == "interrupted":
            return None
        done.append(IsoflopRun(record, budget, token_reads(d, spec, tokens), spec.role))
        return record

    lrs: dict[str, float] = {}
    for mode in isoflop.MODES:
        sweep = [
            go(_spec(d, d.sweep, mode, lr, base.seeds[0], "sweep"), d.sweep.budget)
            for lr in base.lrs
        ]
        if any(r is None for r in sweep):
            return None
        ok = [r for r in sweep if r.status == "ok"]
        lrs[mode] = min(ok, key=lambda r: r.val_loss).lr
    for r in d.runs:
        for mode in isoflop.MODES:
            for seed in base.seeds:
                if go(_spec(d, r, mode, lrs[mode], seed, "size"), r.budget) is None:
                    return None
    return lrs, done


def losses(d: isoflop.Design, done: list[IsoflopRun]) -> isoflop_analysis.IsoflopLosses:
    """The design's test losses as the analysis's array (every run must have finished ok)."""
    by_key = {
        (x.budget, x.record.size, x.record.mode, x.record.seed): x.record
        for x in done
        if x.role == "size"
    }
    budgets = d.budgets
    names = [[r.size.name for r in d.runs if r.budget == c] for c in budgets]
    sizes = np.array([[r.non_embedding for r in d.runs if r.budget == c] for c in budgets], float)
    loss = np.array(
        [
            [
                [
                    [by_key[(c, n, mode, s)].test_loss_per_sequence for s in d.preset.base.seeds]
                    for n in row
                ]
                for c, row in zip(budgets, names, strict=True)
            ]
            for mode in isoflop_analysis.MODES
        ],
        float,
    )
    return isoflop_analysis.IsoflopLosses(np.array(budgets), sizes, loss)
