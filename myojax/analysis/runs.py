"""Opening a run directory for analysis: the model of a step, its configuration, its tokenizer,
and text sampled from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import PRNGKeyArray

from myojax import checkpoint as ckpt
from myojax.analysis.sampling import generate
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.data.tokenizer import Tokenizer, get_tokenizer
from myojax.model import GPT


class RunError(ValueError):
    """A run directory that cannot be analysed as asked (a request that cannot be met)."""


class Run(NamedTuple):
    path: Path
    step: int
    config: dict[str, Any]  # {"train": ..., "model": ...}
    model_config: ModelConfig
    model: GPT


def open_run(run_dir: str | Path, step: int | None = None) -> Run:
    """The model and configuration of ``step`` (default: the latest good step) of ``run_dir``.

    The step is resolved by ``checkpoint.restore_step``, the resolver the trainer's restore and
    ``verify`` share: orbax's unfinished save directories are not steps, and an unreadable or
    non-finite latest step is reported in one line on stderr and the previous one used."""
    path = Path(run_dir)
    if not (path / ckpt.CHECKPOINTS).is_dir():
        raise RunError(f"{path} is not a run directory (no {ckpt.CHECKPOINTS}/ inside)")
    step, model_config, model = ckpt.restore_step(path, step)
    config = ckpt.read_config(path, step)
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


def sample_text(
    run: Run,
    prompt: str,
    *,
    max_new_tokens: int | None,
    key: PRNGKeyArray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_samples: int = 1,
) -> list[str]:
    """``num_samples`` continuations of ``prompt`` by the run's model (one batch, KV-cache
    decoding), prompt included, in the run's tokenizer; ``max_new_tokens=None`` fills the
    context."""
    tok = run_tokenizer(run.config)
    ids = np.asarray(tok.encode(prompt), np.int32)
    if ids.size == 0:
        raise RunError("--prompt encodes to no tokens")
    room = run.model_config.seq_len - ids.size + 1
    out = generate(
        run.model,
        [ids] * num_samples,
        room if max_new_tokens is None else max_new_tokens,
        key=key,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
    )
    return [prompt + tok.decode(np.asarray(row)) for row in out.tokens]
