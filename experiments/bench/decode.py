"""Decoding throughput of ``myojax.generate`` (KV cache) against recomputing the full forward for
every new token: the measurement, the recompute baseline and the page of ``python -m
experiments.decode_throughput``."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from experiments import epilogue
from myojax.analysis.sampling import generate
from myojax.data import corpus
from myojax.model import GPT
from myojax.presets import MODEL_PRESETS
from myojax.provenance import environment

PROMPT_TOKENS = 8


@eqx.filter_jit
def recompute_greedy(model: GPT, buffers: jax.Array, start: int, steps: int) -> jax.Array:
    """Greedy decoding without a cache: the full forward over the buffer for every token."""

    def step(buf: jax.Array, pos: jax.Array) -> tuple[jax.Array, None]:
        logits = jax.vmap(model)(buf)[:, pos - 1]
        return buf.at[:, pos].set(jnp.argmax(logits, -1).astype(buf.dtype)), None

    out, _ = jax.lax.scan(step, buffers, start + jnp.arange(steps))
    return out


def _timed(fn, repeats: int) -> tuple[float, float, float]:
    """(compile-and-first-call s, median s, median CPU s) of ``fn``."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return first, statistics.median(walls), statistics.median(cpus)


def measure(preset: str, batch: int, repeats: int) -> dict:
    config = MODEL_PRESETS[preset]
    model = GPT(config, key=jax.random.key(0))
    prompt = np.asarray(corpus.load().val[:PROMPT_TOKENS], np.int32)
    n = config.seq_len - PROMPT_TOKENS + 1
    prompts = np.tile(prompt, (batch, 1))
    key = jax.random.key(1)
    first, wall, cpu = _timed(lambda: generate(model, prompts, n, key=key).tokens, repeats)
    buffers = jnp.zeros((batch, config.seq_len), jnp.int32).at[:, :PROMPT_TOKENS].set(prompt)
    steps = config.seq_len - PROMPT_TOKENS  # the last token needs no forward of its own
    r_first, r_wall, r_cpu = _timed(
        lambda: recompute_greedy(model, buffers, PROMPT_TOKENS, steps), repeats
    )
    return {
        "preset": preset,
        "batch": batch,
        "new_tokens": n,
        "compile_and_first_s": first,
        "median_s": wall,
        "median_cpu_s": cpu,
        "tokens_per_s": batch * n / wall,
        "recompute_median_s": r_wall,
        "recompute_tokens_per_s": batch * steps / r_wall,
        "recompute_median_cpu_s": r_cpu,
        "recompute_tokens_per_cpu_s": batch * steps / r_cpu,
        "recompute_compile_and_first_s": r_first,
        "load_after": list(environment()["load_avg_1_5_15"]),
    }


def run(presets: Sequence[str], batches: Sequence[int], repeats: int, command: str) -> dict:
    """Every (preset, batch) row, with the machine before and after and the wall time."""
    start, env_before = time.perf_counter(), environment()
    rows = []
    for preset in presets:
        for batch in batches:
            rows.append(measure(preset, batch, repeats))
            print(json.dumps(rows[-1]), flush=True)
    return {
        "rows": rows,
        "environment_before": env_before,
        "environment_after": environment(),
        "command": command,
        "wall_s": time.perf_counter() - start,
    }


def render(record: dict, figure_prefix: str = "") -> str:
    """The page from a run's record (``--from-json`` redraws it)."""
    rows, env_before, env_after = (
        record[k] for k in ("rows", "environment_before", "environment_after")
    )
    load = lambda env: " / ".join(f"{x:.1f}" for x in env["load_avg_1_5_15"])
    lines = [
        "# Decoding throughput: `myojax.generate` with a KV cache",
        "",
        f"Written by `{record['command']}` on {env_before['time']} ({record['wall_s']:.0f} s wall "
        "in all).",
        "",
        f"Machine: {env_before['platform']}, {env_before['cpu_count']} CPU cores, backend "
        f"{env_before['backend']}, jax {env_before['jax']}. **The machine was shared and loaded**: "
        f"load average (1/5/15 min) {load(env_before)} before and "
        f"{load(env_after)} after (on its "
        f"{env_before['cpu_count']} cores), so every figure is a lower bound on tokens/s "
        "and the ratios are more trustworthy than the absolute numbers. Where the wall time per "
        "call is far above its CPU time, the process was waiting for a core: tokens per "
        "CPU-second is the load-robust figure.",
        "",
        f"Prompt: {PROMPT_TOKENS} corpus bytes; decoding runs to the end of the context "
        "(seq_len − 7 new tokens), temperature 1. Median of the timed calls after one "
        "compiling call; recompute = greedy decoding that runs the full fixed-length forward "
        "for every new token (one jitted `lax.scan`, no cache).",
        "",
        "| preset | batch | new tokens | tokens/s (KV cache) | s per call | CPU s per call "
        "| tokens per CPU-s | compile + first call (s) | recompute: tokens/s | recompute: tokens "
        "per CPU-s | cache speed-up per CPU-s | load after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_cpu = r["batch"] * r["new_tokens"] / r["median_cpu_s"]
        lines.append(
            f"| {r['preset']} | {r['batch']} | {r['new_tokens']} | {r['tokens_per_s']:,.0f} | "
            f"{r['median_s']:.3f} | {r['median_cpu_s']:.3f} | "
            f"{per_cpu:,.0f} | "
            f"{r['compile_and_first_s']:.1f} | "
            f"{r['recompute_tokens_per_s']:,.0f} | {r['recompute_tokens_per_cpu_s']:,.0f} | "
            f"{per_cpu / r['recompute_tokens_per_cpu_s']:.1f}× | "
            f"{r['load_after'][0]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def page(out: Path) -> epilogue.Page:
    """The page ``out`` and its JSON beside it (``out`` with ``.json``)."""
    return epilogue.page_at(out, render)
