"""Experiment trackers: TensorBoard and W&B (offline) views of a run's ``metrics.jsonl``.

    python -m myojax.train.track RUN_DIR --to tensorboard     # rebuild the log of an old run

``metrics.jsonl`` stays the source of truth; a tracker log is derived from it. When a run
starts or resumes, the trainer rebuilds the tracker log from the rows ``metrics.jsonl`` kept
(after a kill -9, rows past the restored checkpoint are dropped from both) and then appends,
so every logged step is in the tracker exactly once. A row goes to ``metrics.jsonl`` first:
a kill between the two writes only leaves the tracker a row short until the next start.

Writers: TensorBoard through ``tensorboardX`` (a light, pure-Python writer: numpy and
protobuf, no TensorFlow and no torch), read back with TensorBoard itself; W&B always in
offline mode (no network, no account; ``wandb sync RUN_DIR/wandb/offline-run-*`` uploads).
Both land inside the run directory (``RUN_DIR/tensorboard``, ``RUN_DIR/wandb``), so
``tensorboard --logdir STUDY_DIR`` shows every run of a study side by side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

TRACKERS = ("tensorboard", "wandb", "none")
TRACKER_DIRS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def default_tracker() -> str:
    """``tensorboard`` when its writer (tensorboardX) is installed, else ``none``."""
    return "tensorboard" if importlib.util.find_spec("tensorboardX") else "none"


@dataclasses.dataclass(frozen=True)
class TrackerSpec:
    """Which tracker a run logs to, and how it is labelled among the runs of a study.

    ``kind``: one of ``TRACKERS`` (None: ``default_tracker()``). ``tags``: ``key=value`` labels
    (mode, size, seed, budget) written as hyperparameters (TensorBoard) or W&B tags.
    ``group``: the study the run belongs to (W&B group)."""

    kind: str | None = None
    tags: tuple[str, ...] = ()
    group: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in TRACKERS:
            raise ValueError(f"unknown tracker {self.kind!r}; choose one of {', '.join(TRACKERS)}")

    @property
    def resolved(self) -> str:
        return default_tracker() if self.kind is None else self.kind


class Tracker(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """A metrics row's finite scalars under tracker names: ``eval/`` for held-out losses
    (``val_*``), ``train/`` for the rest. Lists (per-position losses) and the step are left out."""
    out = {}
    for key, value in row.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[f"{'eval' if key.startswith('val_') else 'train'}/{key}"] = float(value)
    return out


def hyperparameters(config: dict[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """config.json flattened to ``section.field`` scalars (what TensorBoard's HParams accept),
    with the tags as ``tag.key`` entries."""
    flat: dict[str, Any] = {}
    for section, fields in config.items():
        for key, value in (fields or {}).items() if isinstance(fields, dict) else ():
            if isinstance(value, bool | int | float | str):
                flat[f"{section}.{key}"] = value
    for tag in tags:
        key, _, value = tag.partition("=")
        flat[f"tag.{key}"] = value
    return flat


class TensorBoardTracker:
    """Scalars per row, the config as hyperparameters and text, into ``RUN_DIR/tensorboard``
    (rebuilt on every open)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], spec: TrackerSpec):
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        logdir = Path(run_dir) / TRACKER_DIRS["tensorboard"]
        shutil.rmtree(logdir, ignore_errors=True)
        self._writer = SummaryWriter(logdir=str(logdir), flush_secs=10)
        # In the run's own event file (tensorboardX's add_hparams would open a sub-run).
        for summary in hparams(hyperparameters(config, spec.tags), {"eval/val_loss": 0.0}):
            self._writer.file_writer.add_summary(summary)
        self._writer.add_text("config", "```\n" + json.dumps(config, indent=1) + "\n```", 0)

    def log(self, row: dict[str, Any]) -> None:
        for name, value in scalars(row).items():
            self._writer.add_scalar(name, value, row["step"])
        self._writer.flush()  # so a study is watchable live

    def close(self) -> None:
        self._writer.close()


def wandb_run_id(run_dir: Path) -> str:
    """One W&B id per run directory: a resumed run continues the same W&B run."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


class WandbTracker:
    """An offline W&B run in ``RUN_DIR/wandb`` (rebuilt on every open); never uses the network."""

    def __init__(self, run_dir: Path, config: dict[str, Any], spec: TrackerSpec):
        os.environ["WANDB_MODE"] = "offline"  # also for W&B's service process
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        root = Path(run_dir)
        shutil.rmtree(root / TRACKER_DIRS["wandb"], ignore_errors=True)
        self._run = wandb.init(
            dir=str(root),
            mode="offline",
            id=wandb_run_id(root),
            name=root.name,
            group=spec.group,
            tags=list(spec.tags),
            config=config,
            reinit="create_new",
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )

    def log(self, row: dict[str, Any]) -> None:
        self._run.log(scalars(row), step=int(row["step"]))

    def close(self) -> None:
        self._run.finish()


class NoTracker:
    def log(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def open_tracker(run_dir: Path, config: dict[str, Any], spec: TrackerSpec) -> Tracker:
    """A fresh tracker log for ``run_dir`` (any earlier one is replaced)."""
    kind = spec.resolved
    if kind == "tensorboard":
        if not importlib.util.find_spec("tensorboardX"):
            raise ValueError(
                "--tracker tensorboard needs tensorboardX: pip install 'myojax[track]'"
            )
        return TensorBoardTracker(run_dir, config, spec)
    if kind == "wandb":
        if not importlib.util.find_spec("wandb"):
            raise ValueError("--tracker wandb needs wandb: pip install 'myojax[track]'")
        return WandbTracker(run_dir, config, spec)
    return NoTracker()


class TrackedLog:
    """A metrics log that also feeds a tracker: replays the rows the log kept, then writes each
    new row to the log first and to the tracker second. ``kept``: the log's kept rows."""

    def __init__(self, log: Any, tracker: Tracker):
        self._log, self._tracker = log, tracker
        self.kept = log.kept
        for row in self.kept:
            tracker.log(row)

    def write(self, row: dict[str, Any]) -> None:
        self._log.write(row)
        self._tracker.log(row)

    def close(self) -> None:
        try:
            self._log.close()
        finally:
            self._tracker.close()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's rows, skipping a last line cut short by a kill."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def rebuild(run_dir: Path, spec: TrackerSpec) -> tuple[int, list[int]]:
    """Rewrite ``run_dir``'s tracker log from its config.json and metrics.jsonl; returns
    (rows written, steps)."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.jsonl (is it a run directory?)")
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    rows = [r for r in read_rows(metrics) if isinstance(r.get("step"), int)]
    tracker = open_tracker(run_dir, config, spec)
    try:
        for row in rows:
            tracker.log(row)
    finally:
        tracker.close()
    return len(rows), sorted({r["step"] for r in rows})
