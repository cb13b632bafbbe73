"""Executing the study: train (or resume) each run, evaluate its final model (in the trainer,
on the run's mesh) on the study's fixed validation and test windows, and record the result in
its run directory.

Each run directory gets ``study_result.json`` once evaluated, so a rerun skips it; an
interrupted run resumes from its checkpoint. Every result records the run's wall time, the
process CPU time it used and the load average at its start and end.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.scaling.analysis import choose_lr
from experiments.scaling.protocol import (
    EVAL_SEED,
    RunSpec,
    StudyPreset,
    size_specs,
    sweep_specs,
    train_config,
    transfer_specs,
    undertrain_specs,
)
from myojax import evaluation, train
from myojax.data import pipeline
from myojax.files import read_json, write_json
from myojax.model import GPT, param_counts
from myojax.train.monitor import StopFlag

RESULT_FILE = "study_result.json"  # per run directory: written once the run is evaluated
SPLITS = ("validation", "test")  # validation: every choice; test: every reported loss

Windows = dict[str, list[np.ndarray]]


def heldout_windows(p: StudyPreset, data: str) -> Windows:
    """The study's validation and test windows: a fixed seed, independent of the runs' seeds."""
    tokens = pipeline.load_data(data)
    out: Windows = {}
    for split in SPLITS:
        arrays = getattr(tokens, split)
        if not arrays:
            raise pipeline.DataError(
                f"{data} has no {split} split (token shards need test_*.bin beside val_*.bin; "
                "the study never reports on the data it tunes on)"
            )
        out[split] = evaluation.heldout_windows(
            arrays,
            seq_len=p.seq_len,
            batch_size=p.batch_size,
            num_batches=p.eval_batches,
            seed=EVAL_SEED,
        )
    return out


def heldout_fields(losses: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Per split's per-token losses: mean loss and per-sequence mean losses; per-position
    means on test."""
    result: dict[str, Any] = {}
    for split, losses_NxT in losses.items():
        summary = evaluation.LossSummary.of(losses_NxT)
        key = "val" if split == "validation" else split
        result[f"{key}_loss"] = summary.mean
        result[f"{key}_loss_per_sequence"] = summary.per_sequence
        if split == "test":
            result["test_loss_per_position"] = summary.per_position
    return result


def evaluate_heldout(model: GPT, windows: Windows) -> dict[str, Any]:
    """``heldout_fields`` of a model outside its run (a restored checkpoint)."""
    return heldout_fields({s: evaluation.token_losses(model, ws) for s, ws in windows.items()})


def load_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a half-written file: the run is redone from its checkpoints
    return result if isinstance(result, dict) and "status" in result else None


def _load() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def execute(
    p: StudyPreset,
    spec: RunSpec,
    out: Path,
    data: str,
    windows: Windows,
    *,
    write: bool,
    progress: bool | None = None,
    mesh: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run and evaluate its final model; cached on disk.

    Returns the run's result with ``status`` "ok", "diverged" (non-finite loss: recorded, not
    raised) or "interrupted" (a signal stopped training; rerunning resumes it). ``wall_s`` and
    ``cpu_s`` (process CPU time: all threads) add up over resumed invocations.
    """
    run_dir = spec.run_dir(out)
    cached = load_result(run_dir)
    if cached is not None:
        return {**cached, "skipped": True}
    t0, c0, load_start = time.perf_counter(), time.process_time(), _load()
    total, non_emb = param_counts(spec.model)
    row: dict[str, Any] = {
        "mode": spec.mode,
        "role": spec.role,
        "size": spec.size.name,
        "seed": spec.seed,
        "budget": spec.budget,
        "d_model": spec.size.d_model,
        "n_layers": spec.size.n_layers,
        "params": total,
        "non_embedding_params": non_emb,
        "tokens": spec.tokens,
        "steps": spec.steps,
        "lr": spec.lr,
        "run_dir": str(run_dir.relative_to(out)),
    }
    prior = read_json(run_dir / "study_wall.json", {})

    def costs() -> dict[str, Any]:
        return {
            "wall_s": float(prior.get("wall_s", 0.0)) + time.perf_counter() - t0,
            "cpu_s": float(prior.get("cpu_s", 0.0)) + time.process_time() - c0,
            "load_start": prior.get("load_start", load_start),
            "load_end": _load(),
        }

    try:
        final = train.run(
            train_config(p, spec, run_dir, data, mesh),
            spec.model,
            progress=progress,
            heldout=windows,  # evaluated once, on the final model, in the run's mesh
        )
    except train.NonFiniteLoss as e:
        row.update(status="diverged", error=str(e), **costs())
        if write:
            write_json(run_dir / RESULT_FILE, row)
        return row
    if final["preempted"]:
        if write:
            write_json(run_dir / "study_wall.json", costs())
        return {**row, "status": "interrupted"}
    ev = heldout_fields(final["heldout_losses"])
    finite = all(math.isfinite(ev[f"{k}_loss"]) for k in ("val", "test") if f"{k}_loss" in ev)
    row.update(
        status="ok" if finite else "diverged",
        final_step=final["step"],
        train_loss=final["loss"],
        **ev,
        **costs(),
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
    train: bool = True,
) -> tuple[list[dict[str, Any]], bool]:
    """All runs of the study, in protocol order; returns (run rows, finished).

    With ``train=False`` nothing is trained: the rows are the runs finished so far (a partial
    study for ``--report-only``) and ``finished`` says whether that is all of them.

    Order: the lr sweeps of every mode; then size by size (every mode and seed of a size before
    the next size, so a partial study holds complete, paired sizes); then the undertraining and
    transfer checks. ``finished`` is False when a signal stopped it: everything done so far is
    on disk and rerunning resumes. ``bar`` (optional) gets ``update(1, trained=...)`` per run.
    """
    windows = heldout_windows(p, data) if train else {}
    rows: list[dict[str, Any]] = []
    missing: list[str] = []

    def do(spec: RunSpec) -> dict[str, Any] | None:
        if stop.signum is not None:
            return None
        if not train:
            row = load_result(spec.run_dir(out))
            if row is None:
                missing.append(spec.name)
                return None
            return row
        row = execute(p, spec, out, data, windows, write=write, progress=progress, mesh=mesh)
        if row["status"] == "interrupted":
            stop.signum = stop.signum or 15
            return None
        msg = "done before" if row.get("skipped") else f"{row['wall_s']:.0f}s"
        loss = (
            f"val {row['val_loss']:.4f} test {row['test_loss']:.4f}"
            if row["status"] == "ok"
            else row["status"].upper()
        )
        say(f"[{spec.mode}] {spec.role} {spec.name}: {loss} ({msg})")
        skipped = bool(row.pop("skipped", False))
        if bar is not None:
            bar.update(1, trained=not skipped)
        return row

    def do_all(specs: Sequence[RunSpec]) -> bool:
        for spec in specs:
            reused = next((r for r in rows if r["role"] == "sweep" and _same(spec, r)), None)
            if reused is not None:  # the proxy at the chosen lr is size 0's run
                rows.append({**reused, "role": spec.role, "same_run_as_sweep": True})
                continue
            row = do(spec)
            if row is None:
                if train:
                    return False
                continue
            rows.append(row)
        return True

    if not do_all(sweep_specs(p, modes)) or missing:
        return rows, False
    lrs = {}
    for mode in modes:
        lr, edge = choose_lr([r for r in rows if r["mode"] == mode and r["role"] == "sweep"])
        lrs[mode] = lr
        say(f"[{mode}] chosen lr {lr:g}" + (" (at the edge of the grid)" if edge else ""))
    per_size = {m: size_specs(p, m, lrs[m]) for m in modes}
    for i in range(len(p.sizes)):
        batch = [s for m in modes for s in per_size[m] if s.size == p.sizes[i]]
        if not do_all(batch):
            return rows, False
    for make in (undertrain_specs, transfer_specs):
        if not do_all([s for m in modes for s in make(p, m, lrs[m])]):
            return rows, False
    return rows, not missing


def _same(spec: RunSpec, row: dict[str, Any]) -> bool:
    return (
        row["mode"] == spec.mode
        and row["size"] == spec.size.name
        and row["lr"] == spec.lr
        and row["steps"] == spec.steps
        and row.get("seed", 0) == spec.seed
        and row["d_model"] == spec.size.d_model
        and row["n_layers"] == spec.size.n_layers
    )
