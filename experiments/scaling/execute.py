"""Executing the study: train (or resume) each run, restore its checkpoint, evaluate it on the
study's fixed held-out windows, and record the result in its run directory.

Each run directory gets ``study_result.json`` once evaluated, so a rerun skips it; an
interrupted run resumes from its checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from experiments.scaling.analysis import best_lr
from experiments.scaling.protocol import (
    EVAL_SEED,
    RunSpec,
    StudyPreset,
    model_config,
    same_run,
    size_specs,
    sweep_specs,
    train_config,
)
from myojax import checkpoint, train
from myojax.data import pipeline
from myojax.loss import Batch, batch_losses
from myojax.model import GPT, param_counts
from myojax.train.monitor import StopFlag
from myojax.train.rundir import read_json, write_json

RESULT_FILE = "study_result.json"  # per run directory: written once the run is evaluated


@jax.jit
def _sequence_losses(model: GPT, windows: Int[Array, "B T1"]) -> Float[Array, "B T"]:
    return batch_losses(model, Batch.from_windows(windows))


def heldout_windows(p: StudyPreset, data: str) -> list[np.ndarray]:
    """The study's held-out windows: a fixed seed, independent of the runs' training seeds."""
    tokens = pipeline.load_data(data)
    ds = pipeline.window_dataset(
        tokens.val,
        seq_len=p.seq_len,
        batch_size=p.batch_size,
        num_batches=p.eval_batches,
        seed=EVAL_SEED,
    )
    return [ds[i] for i in range(len(ds))]


def evaluate_heldout(model: GPT, windows: Sequence[np.ndarray]) -> dict[str, Any]:
    """Mean loss, per-position mean loss and per-sequence mean loss over ``windows``."""
    losses_MxT = np.concatenate(
        [np.asarray(_sequence_losses(model, jnp.asarray(w))) for w in windows]
    )
    return {
        "val_loss": float(losses_MxT.mean()),
        "val_loss_per_position": losses_MxT.mean(axis=0).tolist(),
        "val_loss_per_sequence": losses_MxT.mean(axis=1).tolist(),
    }


def load_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a half-written file: the run is redone from its checkpoints
    return result if isinstance(result, dict) and "status" in result else None


def execute(
    p: StudyPreset,
    spec: RunSpec,
    out: Path,
    data: str,
    windows: Sequence[np.ndarray],
    *,
    write: bool,
    progress: bool | None = None,
    mesh: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run, restore its final checkpoint, evaluate it; cached on disk.

    Returns the run's result with ``status`` "ok", "diverged" (non-finite loss: recorded, not
    raised) or "interrupted" (a signal stopped training; rerunning resumes it).
    """
    run_dir = spec.run_dir(out)
    cached = load_result(run_dir)
    if cached is not None:
        return {**cached, "skipped": True}
    t0 = time.perf_counter()
    total, non_emb = param_counts(spec.model)
    row: dict[str, Any] = {
        "mode": spec.mode,
        "role": spec.role,
        "size": spec.size.name,
        "d_model": spec.size.d_model,
        "n_layers": spec.size.n_layers,
        "params": total,
        "non_embedding_params": non_emb,
        "tokens": spec.tokens,
        "steps": spec.steps,
        "lr": spec.lr,
        "run_dir": str(run_dir.relative_to(out)),
    }
    prior_wall = float(read_json(run_dir / "study_wall.json", {}).get("wall_s", 0.0))
    try:
        final = train.run(train_config(p, spec, run_dir, data, mesh), spec.model, progress=progress)
    except train.NonFiniteLoss as e:
        row.update(status="diverged", error=str(e), wall_s=prior_wall + time.perf_counter() - t0)
        if write:
            write_json(run_dir / RESULT_FILE, row)
        return row
    if final["preempted"]:
        if write:
            write_json(
                run_dir / "study_wall.json", {"wall_s": prior_wall + time.perf_counter() - t0}
            )
        return {**row, "status": "interrupted"}
    cfg, model = checkpoint.restore(run_dir)
    if cfg != spec.model:
        raise RuntimeError(f"{run_dir}: restored config differs from the planned one")
    ev = evaluate_heldout(model, windows)
    status = "ok" if math.isfinite(ev["val_loss"]) else "diverged"
    row.update(
        status=status,
        final_step=final["step"],
        train_loss=final["loss"],
        **ev,
        wall_s=prior_wall + time.perf_counter() - t0,
    )
    if write:
        write_json(run_dir / RESULT_FILE, row)
    return row


def run_study(
    p: StudyPreset,
    modes: Sequence[str],
    out: Path,
    *,
    data: str,
    write: bool,
    stop: StopFlag,
    say: Callable[[str], None],
    bar: Any = None,
    progress: bool | None = None,
    mesh: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """All runs of the study, in protocol order; returns (run rows, finished).

    ``finished`` is False when a signal stopped it: everything done so far is on disk and
    rerunning resumes. ``bar`` (optional) gets ``update(1, trained=...)`` per run.
    """
    windows = heldout_windows(p, data)
    rows: list[dict[str, Any]] = []

    def do(spec: RunSpec) -> dict[str, Any] | None:
        if stop.signum is not None:
            return None
        row = execute(p, spec, out, data, windows, write=write, progress=progress, mesh=mesh)
        if row["status"] == "interrupted":
            stop.signum = stop.signum or 15
            return None
        msg = "done before" if row.get("skipped") else f"{row['wall_s']:.0f}s"
        loss = f"{row['val_loss']:.4f}" if row["status"] == "ok" else row["status"].upper()
        say(f"[{spec.mode}] {spec.role} {spec.name}: held-out loss {loss} ({msg})")
        skipped = bool(row.pop("skipped", False))
        if bar is not None:
            bar.update(1, trained=not skipped)
        return row

    for mode in modes:
        sweep = [r for s in sweep_specs(p, [mode]) if (r := do(s)) is not None]
        if stop.signum is not None:
            return rows + sweep, False
        rows += sweep
        lr, edge = best_lr(sweep)
        say(f"[{mode}] best lr {lr:g}" + (" (at the edge of the grid)" if edge else ""))
        for spec in size_specs(p, mode, lr):
            reused = next((r for r in sweep if same_run(spec, _spec_of(p, r))), None)
            if reused is not None:
                rows.append(
                    {**reused, "role": "size", "size": spec.size.name, "same_run_as_sweep": True}
                )
                continue
            row = do(spec)
            if row is None:
                return rows, False
            rows.append(row)
    return rows, True


def _spec_of(p: StudyPreset, row: dict[str, Any]) -> RunSpec:
    size = p.proxy if row["role"] == "sweep" else next(s for s in p.sizes if s.name == row["size"])
    cfg = model_config(p, size, row["mode"])
    return RunSpec(row["mode"], row["role"], size, row["lr"], row["steps"], row["tokens"], cfg)
