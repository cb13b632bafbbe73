"""Where a train step's time goes: a ``jax.profiler`` trace of each mode's compiled step, every
XLA op's time summed into categories (``python -m experiments.bench --profile``).

The modes (and nothing else) run interleaved inside one trace, each compiled under its own module
name, so load from other processes hits them alike. An op's category comes from the optimized
HLO: dots (matmuls, as YNNPACK fusions or plain dots), reductions, elementwise work on T×T
attention arrays, layout copies and transposes, the rolled scan's plumbing (zero-filled
activation stacks, dynamic slices), and all other elementwise fusions (LayerNorm, GELU, residual
adds, the optimizer).
"""

from __future__ import annotations

import collections
import functools
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax
import optax

from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import Batch
from myojax.provenance import environment, write_section
from myojax.train import init_state
from myojax.train.step import train_step

CATEGORIES = (
    "matmuls",
    "reductions",
    "T×T elementwise",
    "layout copies",
    "loop plumbing",
    "other elementwise",
)
_NOT_OPS = ("ThunkExecutor", "while", "Slinky", "$", "PjRt", "Execute", "Threadpool", "Wait")


def _instructions(hlo: str) -> dict[str, tuple[str, str]]:
    """HLO instruction name -> (result shape, the jax op it came from)."""
    out = {}
    for line in hlo.splitlines():
        m = re.match(r"\s+(?:ROOT )?%(\S+) = (\S+?)[{ ]", line)
        if m:
            op = re.search(r'op_name="([^"]*)"', line)
            out[m[1]] = (m[2], op[1].rsplit("/", 1)[-1] if op else "")
    return out


def categorize(name: str, shape: str, op: str, tt_dims: str) -> str:
    kind = re.sub(r"\.\d+$", "", name)
    if kind.startswith(("ynn_fusion", "dot")) and op in ("dot_general", "transpose", ""):
        return "matmuls"
    if kind.startswith("ynn_fusion") or op.startswith("reduce"):
        return "reductions"
    if "dynamic" in kind or (kind.startswith("wrapped_broadcast") and op == ""):
        return "loop plumbing"
    if tt_dims in shape:
        return "T×T elementwise"
    if "copy" in kind or "transpose" in kind:
        return "layout copies"
    return "other elementwise"


def profile(cfg: ModelConfig, batch_size: int, steps: int = 4) -> dict:
    """Per mode: ms per step in each category (and in total) from one interleaved trace."""
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-4, weight_decay=0.1))
    data = jax.random.randint(jax.random.key(0), (batch_size, cfg.seq_len + 1), 0, cfg.vocab_size)
    batch = Batch.from_windows(data)
    runs, modules = {}, {}
    for mode in GRADIENT_MODES:
        state = init_state(cfg.replace(gradient_mode=mode), optimizer, jax.random.key(0))
        fn = functools.partial(train_step, optimizer=optimizer)
        named = functools.wraps(train_step)(lambda s, b, fn=fn: fn(s, b))
        named.__name__ = named.__qualname__ = f"step_{mode}"
        compiled = jax.jit(named).lower(state, batch).compile()
        modules[f"jit_step_{mode}"] = (mode, _instructions(compiled.as_text()))
        for _ in range(2):  # warm up
            state, metrics = compiled(state, batch)
        metrics["loss"].block_until_ready()
        runs[mode] = [compiled, state]
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        for _ in range(steps):
            for run in runs.values():
                run[1], metrics = run[0](run[1], batch)
                metrics["loss"].block_until_ready()
        jax.profiler.stop_trace()
        (trace_file,) = Path(trace_dir).rglob("*.trace.json.gz")
        with gzip.open(trace_file) as f:
            events = json.load(f)["traceEvents"]
    h = cfg.n_heads
    tt_dims = f"{batch_size},{h},{cfg.seq_len},{cfg.seq_len}]"
    durations = collections.defaultdict(list)  # (module, op) -> every execution's duration
    for e in events:
        args = e.get("args", {})
        if e.get("ph") != "X" or args.get("hlo_module") not in modules:
            continue
        if not e["name"].startswith(_NOT_OPS):
            durations[args["hlo_module"], e["name"]].append(e["dur"] / 1e3)
    per_mode = {mode: collections.Counter() for mode in GRADIENT_MODES}
    for (module, name), ds in durations.items():
        mode, instructions = modules[module]
        shape, op = instructions.get(name, ("?", ""))
        # The fastest execution × executions per step: on a shared machine an op's wall time
        # mostly measures how long other processes held the cores, the minimum least so.
        per_mode[mode][categorize(name, shape, op, tt_dims)] += min(ds) * len(ds) / steps
    return {
        mode: {"total_ms": sum(c.values()), **{k: c.get(k, 0.0) for k in CATEGORIES}}
        for mode, c in per_mode.items()
    }


def profile_markdown(result: dict, command: str, shape: str, provenance: str) -> str:
    lines = [
        f"```bash\n{command}\n```",
        "",
        f"{shape}; XLA op time per step from one `jax.profiler` trace of 4 steps per mode, the "
        "modes interleaved; each op counted at its fastest execution (ms, and share of the "
        f"mode's op time). {provenance}.",
        "",
        "| category | " + " | ".join(GRADIENT_MODES) + " |",
        "|---|" + "---|" * len(GRADIENT_MODES),
    ]
    for cat in (*CATEGORIES, "total_ms"):
        cells = []
        for mode in GRADIENT_MODES:
            ms, total = result[mode][cat], result[mode]["total_ms"]
            cells.append(f"{ms:.1f}" if cat == "total_ms" else f"{ms:.1f} ({ms / total:.0%})")
        label = "total" if cat == "total_ms" else cat
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    std = result["standard"]["total_ms"]
    lines += [
        "",
        "Extra op time over standard, by category: "
        + "; ".join(
            f"{mode}: "
            + ", ".join(
                f"{cat} {result[mode][cat] - result['standard'][cat]:+.1f} ms" for cat in CATEGORIES
            )
            + f" (total {result[mode]['total_ms'] / std:.3f}× standard)"
            for mode in GRADIENT_MODES[1:]
        )
        + ".",
    ]
    return "\n".join(lines)


def report_profile(
    cfg: ModelConfig, batch_size: int, out: str | None, command: str, rolled: bool = False
) -> str:
    """Profile every mode's step; the markdown, also written as a section of ``out`` if given."""
    from experiments.bench.report import load_text, shape_text

    wall0, cpu0 = time.perf_counter(), time.process_time()
    start = environment()
    result = profile(cfg, batch_size)
    provenance = (
        f"Measured {start['time']} on {start['cpu_count']} CPUs, jax {start['jax']}; load "
        f"average (1/5/15 min) {load_text(start['load_avg_1_5_15'])} at start, "
        f"{load_text(environment()['load_avg_1_5_15'])} at end; wall "
        f"{time.perf_counter() - wall0:.0f} s, process CPU {time.process_time() - cpu0:.0f} s"
    )
    shape = shape_text(cfg.to_dict(), batch_size)
    shape += "; layer scan kept rolled (`--rolled`)" if rolled else ""
    text = profile_markdown(result, command, shape, provenance)
    if out:
        key = f"bench profile d{cfg.d_model} L{cfg.n_layers} T{cfg.seq_len} B{batch_size}"
        key += " rolled" if rolled else ""
        write_section(out, key, text)
    return text
