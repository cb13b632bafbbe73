"""Watching a study: runs done / total, elapsed time and an ETA from the measured per-step
costs of the runs finished so far; read from the study directory alone (``--status``), so it
works for a study running in another process or on a pod's shared disk, without touching it.

The ETA prices each remaining run at its size's measured seconds per step (the cheapest finished
run of that size, any mode: compiling is paid once per size); a size not yet measured is priced
by a fixed-plus-per-parameter step cost fitted to the measured sizes.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from experiments.scaling import protocol
from experiments.scaling import records as rec
from experiments.scaling.protocol import RunSpec, StudyPreset


def _key(mode: str, role: str, size: str, steps: int, seed: int) -> tuple:
    return (mode, role, size, steps, seed)


def remaining(plan: Sequence[RunSpec], done: Iterable[rec.RunRecord]) -> list[RunSpec]:
    """The planned runs without a finished record (lrs are matched loosely: they are chosen
    during the study, so a plan made before knows them only as placeholders)."""
    left = collections.Counter(_key(r.mode, r.role, r.size, r.steps, r.seed) for r in done)
    out = []
    for spec in plan:
        key = _key(spec.mode, spec.role, spec.size.name, spec.steps, spec.seed)
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(spec)
    return out


def step_costs(done: Sequence[rec.RunRecord]) -> dict[str, tuple[float, int]]:
    """Per size: (fewest seconds per step over its timed runs, non-embedding parameters). The
    minimum is a run that found its step compiled (the persistent cache serves the other seeds
    and modes), so one compile does not price every later run of the size."""
    per_size: dict[str, list[float]] = collections.defaultdict(list)
    params: dict[str, int] = {}
    for r in done:
        if r.wall_s and r.final_step:
            per_size[r.size].append(r.wall_s / r.final_step)
            params[r.size] = r.non_embedding_params
    return {size: (min(costs), params[size]) for size, costs in per_size.items()}


def step_price(costs: dict[str, tuple[float, int]]) -> Callable[[int], float]:
    """Seconds per step of a model of N non-embedding parameters: a + b·N fitted to the
    measured sizes (a: what every step costs whatever the size; both kept >= 0), or, with one
    size measured, that size's cost scaled by N (an overestimate for small models)."""
    y = np.array([c for c, _ in costs.values()])
    x = np.array([n for _, n in costs.values()], np.float64)
    if len(costs) == 1:
        return lambda n: float(y[0] * n / x[0])
    slope = max(0.0, float(np.polyfit(x, y, 1)[0]))
    intercept = max(0.0, float(np.mean(y - slope * x)))
    return lambda n: intercept + slope * n


def eta_s(
    todo: Sequence[RunSpec],
    done: Sequence[rec.RunRecord],
    steps_done: Mapping[RunSpec, int] | None = None,
) -> float | None:
    """Projected seconds for ``todo`` from the measured costs of ``done`` (None: nothing
    measured yet): a measured size at its ``step_costs``, any other at ``step_price``, for the
    steps a run has not yet logged (``steps_done``: a started run's last step). Compiles of
    sizes not yet trained are not included."""
    costs = step_costs(done)
    if not costs:
        return None
    price, logged = step_price(costs), steps_done or {}
    total = 0.0
    for spec in todo:
        measured = costs.get(spec.size.name)
        per_step = measured[0] if measured else price(protocol.param_counts(spec.model)[1])
        total += max(spec.steps - logged.get(spec, 0), 0) * per_step
    return total


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclasses.dataclass(frozen=True)
class StudyStatus:
    """Where a study stands. ``elapsed_s``: the runs' recorded wall time (finished runs and
    interrupted ones' cost so far); ``current``: a started, unfinished run and its last step."""

    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    current: str | None = None
    processes: int = 1  # training the study now (isoFLOP --share): the ETA is one's work

    def line(self) -> str:
        eta = self.eta_s if self.done < self.total else 0.0
        text = f"{self.done}/{self.total} runs, elapsed {duration(self.elapsed_s)}, "
        text += f"ETA {duration(eta)}"
        if self.processes > 1 and eta:
            text += (
                f" of one process's work (at best {duration(eta / self.processes)} over the "
                f"{self.processes} processes training it now)"
            )
        return text + (f"; running {self.current}" if self.current else "")


def last_step(run_dir: Path) -> int | None:
    """The run's last logged step (its metrics.jsonl), or None."""
    from myojax.train.track import read_rows

    metrics = run_dir / "metrics.jsonl"
    steps = [r["step"] for r in read_rows(metrics) if "step" in r] if metrics.is_file() else []
    return max(steps) if steps else None


def study_status(p: StudyPreset, modes: Sequence[str], out: Path) -> StudyStatus:
    """The status of the study in ``out``, read from its run directories; writes nothing."""
    plan = protocol.plan_specs(p, modes)
    by_dir = {s.run_dir(Path(out)): s for s in plan}
    done, elapsed, current, steps_done = [], 0.0, None, {}
    for run_dir in sorted((Path(out) / "runs").glob("*/*")):
        record = rec.read_run(run_dir)
        if record is not None:
            done.append(record)
            elapsed += record.wall_s or 0.0
            continue
        cost = rec.read_cost(run_dir)
        elapsed += cost.wall_s if cost is not None else 0.0
        step = last_step(run_dir)
        if step is not None:
            current = f"{run_dir.parent.name}/{run_dir.name} at step {step}"
            if run_dir in by_dir:  # a run the plan still has: only its steps left are priced
                steps_done[by_dir[run_dir]] = step
    todo = remaining(plan, done)
    eta = eta_s(todo, done, steps_done)
    return StudyStatus(len(plan) - len(todo), len(plan), elapsed, eta, current)
