"""Measured per-step cost of each size of a study preset, and the preset's projected CPU time
(``python -m experiments.scaling.costs`` writes them to results/scaling-costs-PRESET.md).

For each size: the process CPU time and wall time of compiling the train step, and of ``--steps``
further steps (one batch of the preset's shape, myopic mode). CPU time, not wall time, is what
extrapolates to an idle machine when the measuring machine is shared: the projection for the
whole preset is sum over its runs of steps x CPU per step, plus one compile per distinct
compiled program (the persistent compilation cache serves the other seeds) plus a fixed cost per
run (restore, evaluation, checkpoints; ``--per-run-s``, from the smoke preset's cache-hit runs).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from experiments import epilogue
from experiments.scaling import protocol, records
from experiments.scaling.sections import Floats
from myojax.provenance import environment, load_summary

_record = dataclasses.dataclass(frozen=True, kw_only=True)


@_record
class SizeCost:
    """One size's measured compile and per-step costs, and the load while it was measured."""

    size: str
    non_embedding_params: int
    compile_cpu_s: float
    compile_wall_s: float
    cpu_per_step_s: float
    wall_per_step_s: float
    load_avg_1_5_15: Floats | None


@_record
class Projection:
    """The whole preset's projected CPU seconds (both default modes)."""

    runs: int
    compiled_programs: int
    train_cpu_s: float
    compile_cpu_s: float
    per_run_cpu_s: float
    total_cpu_s: float


@_record
class StepCosts:
    """``scaling-costs-PRESET.json``: every size measured, the projection, and their cost."""

    command: str
    preset: str
    batch: int
    seq_len: int
    steps: int
    per_run_s: float
    sizes: tuple[SizeCost, ...]
    projection: Projection
    wall_s: float
    cpu_s: float
    environment: dict[str, Any]  # myojax.provenance.environment() at the start


def measure(p: protocol.StudyPreset, size: protocol.Size, steps: int) -> SizeCost:
    import jax

    from myojax.loss import to_batch
    from myojax.model import GPT, param_counts
    from myojax.train.config import TrainConfig
    from myojax.train.optim import make_optimizer
    from myojax.train.step import compile_train_step, init_state

    cfg = protocol.model_config(p, size, "myopic")
    tc = TrainConfig(steps=1000, batch_size=p.batch_size, warmup_steps=10)
    opt = make_optimizer(tc, GPT(cfg, key=jax.random.key(0)))
    windows = np.random.default_rng(0).integers(0, p.vocab_size, (p.batch_size, p.seq_len + 1))
    batch = to_batch(windows.astype(np.int32))
    c0, w0 = time.process_time(), time.perf_counter()
    state = init_state(cfg, opt, jax.random.key(0))
    step = compile_train_step(opt)
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    c1, w1 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    c2, w2 = time.process_time(), time.perf_counter()
    load = environment()["load_avg_1_5_15"]
    return SizeCost(
        size=size.name,
        non_embedding_params=param_counts(cfg)[1],
        compile_cpu_s=c1 - c0,
        compile_wall_s=w1 - w0,
        cpu_per_step_s=(c2 - c1) / steps,
        wall_per_step_s=(w2 - w1) / steps,
        load_avg_1_5_15=None if load is None else tuple(load),
    )


def project(p: protocol.StudyPreset, rows: Sequence[SizeCost], per_run_s: float) -> Projection:
    """Projected CPU seconds of the whole preset (both default modes) from measured costs."""
    by_size = {r.size: r for r in rows}
    specs = protocol.plan_specs(p, ("standard", "myopic"))
    train = sum(s.steps * by_size[s.size.name].cpu_per_step_s for s in specs)
    programs = {(s.mode, s.size.name, s.lr, s.steps, s.role) for s in specs}
    compile_s = sum(by_size[size].compile_cpu_s for _, size, *_ in programs)
    return Projection(
        runs=len(specs),
        compiled_programs=len(programs),
        train_cpu_s=train,
        compile_cpu_s=compile_s,
        per_run_cpu_s=per_run_s * len(specs),
        total_cpu_s=train + compile_s + per_run_s * len(specs),
    )


def _load(r: SizeCost) -> str:
    return "n/a" if r.load_avg_1_5_15 is None else "/".join(f"{x:.1f}" for x in r.load_avg_1_5_15)


def render(doc: StepCosts) -> str:
    pr, env = doc.projection, doc.environment
    lines = [
        f"# Per-step costs of the `{doc.preset}` scaling preset",
        "",
        f"Written by `{doc.command}` ({doc.wall_s:.0f} s wall, {doc.cpu_s:.0f} s CPU, "
        f"{env['time']}); batch {doc.batch} sequences x {doc.seq_len} "
        f"tokens, myopic mode, {doc.steps} timed steps after the compiling one; "
        f"{load_summary(env)} (each row's load is in the table). The projection "
        "extrapolates CPU time, which other processes' load inflates far less than wall time.",
        "",
        "| size | N (non-emb.) | compile CPU (s) | compile wall (s) | CPU per step (ms) | "
        "wall per step (ms) | load 1/5/15 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc.sizes:
        lines.append(
            f"| {r.size} | {r.non_embedding_params:,} | {r.compile_cpu_s:.1f} | "
            f"{r.compile_wall_s:.1f} | {1e3 * r.cpu_per_step_s:.1f} | "
            f"{1e3 * r.wall_per_step_s:.1f} | {_load(r)} |"
        )
    lines += [
        "",
        f"Projection for `python -m experiments.scaling --preset {doc.preset}` (standard and "
        f"myopic): {pr.runs} runs, {pr.compiled_programs} distinct compiled programs. "
        f"Training {pr.train_cpu_s:.0f} CPU-s + compiling {pr.compile_cpu_s:.0f} CPU-s + "
        f"{doc.per_run_s:g} CPU-s per run for restore, evaluation and checkpoints "
        f"({pr.per_run_cpu_s:.0f} CPU-s) = **{pr.total_cpu_s:.0f} CPU-seconds "
        f"({pr.total_cpu_s / 60:.1f} min)**. On an idle 2-core machine the wall time is "
        "between half of that (both cores busy) and all of it (one core busy).",
        "",
    ]
    return "\n".join(lines)


def from_json(obj: Any) -> StepCosts:
    """Saved costs (``scaling-costs-PRESET.json``, parsed) as records; one clear error if not."""
    return records.parse(StepCosts, obj, "scaling-costs JSON")


def page(preset: str) -> epilogue.Page:
    """``scaling-costs-PRESET.md`` and its JSON, side by side in the command's --out."""
    return epilogue.results_page(
        f"scaling-costs-{preset}", lambda obj, _prefix: render(from_json(obj))
    )


def measure_preset(
    p: protocol.StudyPreset,
    steps: int,
    per_run_s: float,
    command: str,
    say: Callable[[SizeCost], None] = print,
) -> StepCosts:
    """Every size measured (each row handed to ``say`` as it comes) and the projection."""
    t0, c0, env = time.perf_counter(), time.process_time(), environment()
    rows = []
    for size in p.sizes:
        rows.append(measure(p, size, steps))
        say(rows[-1])
    return StepCosts(
        command=command,
        preset=p.name,
        batch=p.batch_size,
        seq_len=p.seq_len,
        steps=steps,
        per_run_s=per_run_s,
        sizes=tuple(rows),
        projection=project(p, rows, per_run_s),
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
        environment=env,
    )
