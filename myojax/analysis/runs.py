"""Opening a run directory for analysis: the model of a step, its configuration, its tokenizer,
and one-line errors for command-line tools."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from myojax import checkpoint as ckpt
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.data.tokenizer import Tokenizer, get_tokenizer
from myojax.model import GPT

DEBUG_ENV = "MYOJAX_DEBUG"


class RunError(RuntimeError):
    """A run directory that cannot be analysed as asked."""


class Run(NamedTuple):
    path: Path
    step: int
    config: dict[str, Any]  # {"train": ..., "model": ...}
    model_config: ModelConfig
    model: GPT


def latest_step(run_dir: str | Path) -> int:
    steps = sorted(int(p.name) for p in ckpt.checkpoint_dir(run_dir).glob("[0-9]*") if p.is_dir())
    if not steps:
        raise RunError(f"{run_dir} holds no checkpoints")
    return steps[-1]


def open_run(run_dir: str | Path, step: int | None = None) -> Run:
    """The model and configuration of ``step`` (default: the latest) of ``run_dir``."""
    path = Path(run_dir)
    if not (path / ckpt.CHECKPOINTS).is_dir():
        raise RunError(f"{path} is not a run directory (no {ckpt.CHECKPOINTS}/ inside)")
    step = latest_step(path) if step is None else step
    config = ckpt.read_config(path, step)
    model_config, model = ckpt.restore(path, step)
    return Run(path, step, config, model_config, model)


def tokenizer_name(run_config: dict[str, Any]) -> str:
    """The tokenizer a run trained with: bytes for the embedded corpus, otherwise what its
    shards' sidecars record."""
    data = run_config["train"]["data"]
    if data == pipeline.EMBEDDED:
        return "byte"
    sidecars = sorted(Path(data).glob("train_*.json"))
    if not sidecars:
        raise RunError(f"the run's data directory {data} has no train_*.json shard sidecar")
    return str(json.loads(sidecars[0].read_text()).get("tokenizer", "byte"))


def run_tokenizer(run_config: dict[str, Any]) -> Tokenizer:
    return get_tokenizer(tokenizer_name(run_config))


def cli_main(fn: Callable[[], Any]) -> Any:
    """Run a command-line tool: known failures print one ``error:`` line and exit 2 for a
    request that cannot be met (not a run directory, a prompt past the context), 1 for
    unreadable data or checkpoints; set MYOJAX_DEBUG=1 for the traceback."""
    try:
        return fn()
    except (RunError, ckpt.CheckpointError, pipeline.DataError, ValueError, OSError) as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        bad_request = isinstance(e, (RunError, ValueError)) and not isinstance(
            e, pipeline.DataError
        )
        raise SystemExit(2 if bad_request else 1) from None
