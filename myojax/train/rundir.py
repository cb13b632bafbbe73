"""The run directory: its config file (checked on resume), the metrics log, atomic JSON.

Layout (checkpoints: ``myojax.checkpoint``)::

    RUN/config.json     {"train": TrainConfig fields, "model": ModelConfig fields}
    RUN/metrics.jsonl   one JSON object per logged step or evaluation

Only process 0 writes here; the others learn its verdict (``prepare_run_dir_on_main``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.train.config import TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (different config, malformed files)."""


def run_config(train_cfg: TrainConfig, model_cfg: ModelConfig) -> dict[str, Any]:
    return {"train": train_cfg.to_dict(), "model": model_cfg.to_dict()}


# Where the run lives and how it is laid out on devices: free to change on resume (a checkpoint
# restores onto any mesh), unlike everything else, which defines the experiment.
LAYOUT_FIELDS = ("out", "mesh", "min_shard_size")


def _config_diff(old: dict, new: dict) -> list[str]:
    diffs = []
    for section in ("train", "model"):
        a, b = old.get(section, {}), new.get(section, {})
        if section == "model":  # a field added since the run was made reads as its default
            defaults = ModelConfig().to_dict()
            a, b = {**defaults, **a}, {**defaults, **b}
        for k in sorted(set(a) | set(b)):
            if not (section == "train" and k in LAYOUT_FIELDS) and a.get(k) != b.get(k):
                diffs.append(f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return diffs


def _discard_run(out: Path) -> None:
    for name in (ckpt.CHECKPOINTS, ckpt.QUARANTINE):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (METRICS_FILE, CONFIG_FILE):
        (out / name).unlink(missing_ok=True)


def prepare_run_dir(out: Path, config: dict[str, Any], *, overwrite: bool) -> None:
    """Create ``out`` or check that it holds this same config; with ``overwrite``, discard it."""
    path = out / CONFIG_FILE
    if overwrite:
        _discard_run(out)
    elif path.exists():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            raise RunDirError(
                f"{path} is malformed ({e}); pass --overwrite to discard the run "
                "directory or choose another --out"
            ) from None
        diffs = _config_diff(old, config)
        if diffs:
            raise RunDirError(
                f"run directory {out} holds a different config ({'; '.join(diffs)}); "
                "choose another --out or pass --overwrite to discard it"
            )
    elif (out / ckpt.CHECKPOINTS).exists():
        raise RunDirError(
            f"{out} has checkpoints but no {CONFIG_FILE}; pass --overwrite to "
            "discard them or choose another --out"
        )
    write_json(path, config)


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows after the restored step are dropped so the
    file reads as if the run had never been interrupted."""

    def __init__(self, path: Path, *, keep_until: int):
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by kill -9
                if row.get("step", math.inf) <= keep_until:
                    rows.append(line)
        path.write_text("".join(r + "\n" for r in rows))
        self._file = path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class NoLog:
    """What processes other than 0 write: nothing."""

    def write(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def prepare_run_dir_on_main(out: Path, config: dict[str, Any], *, overwrite: bool) -> None:
    """Process 0 checks and writes the run directory; the others learn its verdict (and wait
    for it), so a refusal stops every process instead of leaving some in a collective."""
    error: Exception | None = None
    if shd.is_main_process():
        try:
            prepare_run_dir(out, config, overwrite=overwrite)
        except Exception as e:  # any failure (OSError too) must reach the others first
            error = e
    if shd.gather_ints(error is None).min() == 0:
        if error is not None:
            raise error
        raise RunDirError(f"process 0 refused the run directory {out}; see its log")


def write_json(path: Path, obj: Any) -> None:
    """Atomic write: a reader (or a kill -9) never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    """``path``'s JSON, or ``default`` if it is missing or half-written."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default
