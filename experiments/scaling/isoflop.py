"""The isoFLOP design (``--preset cpu-isoflop``): compute budgets C spanning 1.5 decades, at
each budget sizes around a prior compute-optimal N*(C) so the profile's minimum lies inside,
every run trained on D = C / (6N) tokens of non-overlapping windows of the pycode corpus.

The budgets are derived from MEASURED per-step costs (``python -m experiments.scaling.costs``,
which records the load it ran under): the per-step wall time is fitted as a power of N over
the measured sizes, and the largest budget is the one whose whole design (lr sweep included)
takes ``hours`` on this machine when idle. ``--dry-run`` prints the design and the projection.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from experiments.scaling import protocol, step_costs
from myojax.model import param_counts

MODES = ("standard", "myopic")
# The isoFLOP sizes' own measurement (python -m experiments.scaling.costs --preset cpu-isoflop)
# once it exists, else the cpu ladder's.
COSTS_FILES = (
    Path("results/scaling-costs-cpu-isoflop.json"),
    Path("results/scaling-costs-cpu.json"),
)


@dataclasses.dataclass(frozen=True)
class IsoflopPreset:
    """How the design is derived: ``n_budgets`` budgets spaced ``decades`` apart in total,
    ``sizes_per_budget`` sizes spaced ``size_step`` apart around N*(C) = sqrt(C / (6 * 20))
    (Chinchilla's 20 tokens per parameter as the prior), sized to ``hours`` idle; then
    ``smaller_sizes`` more below each budget's grid, continuing its steps downward."""

    name: str
    base: protocol.StudyPreset  # shapes, batch, lrs, seeds, eval of every run
    hours: float
    n_budgets: int = 4
    decades: float = 1.5
    sizes_per_budget: int = 5
    size_step: float = 2.0
    # Sizes below the grid, for profiles whose minimum lies under it. The budgets are derived
    # from the grid alone, so adding them keeps every budget and every finished run.
    smaller_sizes: int = 0
    costs_files: tuple[Path, ...] = COSTS_FILES
    budgets: tuple[float, ...] | None = None  # fixed budgets (a pod plan), not cost-derived
    description: str = ""


@dataclasses.dataclass(frozen=True)
class StepCostModel:
    """Per-step wall seconds = exp(intercept) * N ** slope, fitted on measured sizes; the load
    they were measured under; ``fixed_s`` per run (compile + start)."""

    intercept: float
    slope: float
    fixed_s: float
    measured_n: tuple[int, ...]
    load: tuple[float, ...] | None
    source: str

    def per_step_s(self, n: float) -> float:
        return math.exp(self.intercept + self.slope * math.log(n))


def recorded_costs(p: IsoflopPreset) -> Path:
    """The first recorded cost file of ``p.costs_files`` (one clear error if none is)."""
    for path in p.costs_files:
        if path.exists():
            return path
    raise FileNotFoundError(
        f"no recorded step costs ({', '.join(map(str, p.costs_files))}): run "
        "python -m experiments.scaling.costs --preset cpu-isoflop"
    )


def measurement_preset(d: Design) -> protocol.StudyPreset:
    """A study preset whose ladder is the design's distinct sizes, for the costs command."""
    sizes = sorted({r.size: r.non_embedding for r in d.runs}.items(), key=lambda kv: kv[1])
    return dataclasses.replace(
        d.preset.base,
        sizes=tuple(s for s, _ in sizes),
        undertrain_size=None,
        transfer_steps=(),
        sweep_size=d.sweep.size,
    )


def cost_model(path: Path, per_run_s: float = 1.0) -> StepCostModel:
    doc = step_costs.from_json(json.loads(Path(path).read_text()))
    n = np.array([r.non_embedding_params for r in doc.sizes], float)
    t = np.array([r.wall_per_step_s for r in doc.sizes], float)
    slope, intercept = np.polyfit(np.log(n), np.log(t), 1)
    loads = [r.load_avg_1_5_15 for r in doc.sizes if r.load_avg_1_5_15]
    compile_s = float(np.mean([r.compile_wall_s for r in doc.sizes]))
    return StepCostModel(
        float(intercept),
        float(slope),
        compile_s + per_run_s,
        tuple(int(x) for x in n),
        tuple(loads[0]) if loads else None,
        str(path),
    )


def _shape_family(base: protocol.StudyPreset) -> list[tuple[protocol.Size, int]]:
    """Candidate shapes and their N: head dim 16, 32-64 widths per layer (the cpu ladders'
    aspect ratios)."""
    out, head = [], base.head_dim
    for d in range(head, 32 * head + 1, head):
        for layers in range(max(1, d // 64), min(48, max(1, d // 32)) + 1):
            size = protocol.Size(f"L{layers}w{d}", layers, d, d // head)
            out.append((size, param_counts(protocol.model_config(base, size, "standard"))[1]))
    return out


@dataclasses.dataclass(frozen=True)
class IsoflopRun:
    budget: float
    size: protocol.Size
    non_embedding: int
    steps: int
    tokens: int


@dataclasses.dataclass(frozen=True)
class Design:
    preset: IsoflopPreset
    costs: StepCostModel
    budgets: tuple[float, ...]
    runs: tuple[IsoflopRun, ...]  # one per (budget, size); each is trained per mode and seed
    sweep: IsoflopRun  # the lr sweep's run (per mode, lr and first seed), on validation
    train_tokens: int | None  # tokens of the corpus's training split, if it is built

    def run_s(self, r: IsoflopRun) -> float:
        return r.steps * self.costs.per_step_s(r.non_embedding) + self.costs.fixed_s

    @property
    def total_s(self) -> float:
        seeds, modes = len(self.preset.base.seeds), len(MODES)
        main = sum(self.run_s(r) for r in self.runs) * seeds * modes
        return main + self.run_s(self.sweep) * len(self.preset.base.lrs) * modes


def _pick(p: IsoflopPreset, budget: float, family, targets) -> list[IsoflopRun]:
    """For each target N, the free shape nearest in log N, trained on D = C / (6N)."""
    runs: list[IsoflopRun] = []
    for target in targets:
        free = [s for s in family if s[0] not in {r.size for r in runs}]
        size, n = min(free, key=lambda s: abs(math.log(s[1] / target)))
        steps = max(1, math.ceil(budget / (6 * n) / p.base.tokens_per_step))
        runs.append(IsoflopRun(budget, size, n, steps, steps * p.base.tokens_per_step))
    return runs


def _grid(p: IsoflopPreset, budget: float, family) -> list[IsoflopRun]:
    """The ``sizes_per_budget`` sizes centred on the prior N*(C), smallest first."""
    n_opt, half = math.sqrt(budget / 120.0), (p.sizes_per_budget - 1) / 2
    targets = [n_opt * p.size_step ** (k - half) for k in range(p.sizes_per_budget)]
    return _pick(p, budget, family, targets)


def _runs(p: IsoflopPreset, budget: float, family, smaller: bool = True) -> list[IsoflopRun]:
    """The grid and (``smaller``) the ``smaller_sizes`` below it, ordered by N."""
    grid = _grid(p, budget, family)
    if not smaller or not p.smaller_sizes:
        return grid
    low = min(r.non_embedding for r in grid)
    targets = [low * p.size_step**-k for k in range(1, p.smaller_sizes + 1)]
    below = [s for s in family if s[1] < low]
    if len(below) < p.smaller_sizes:
        raise ValueError(
            f"{p.name}: no {p.smaller_sizes} shapes below N = {low} for the smaller sizes"
        )
    return sorted(grid + _pick(p, budget, below, targets), key=lambda r: r.non_embedding)


def design(p: IsoflopPreset, costs: StepCostModel, train_tokens: int | None = None) -> Design:
    """Budgets scaled so the grid takes ``p.hours`` (bisection on the largest C); the smaller
    sizes come on top, so adding them changes no budget."""
    family = _shape_family(p.base)

    def build(c_max: float, smaller: bool) -> Design:
        budgets = p.budgets or tuple(
            c_max * 10 ** (-p.decades * (1 - i / (p.n_budgets - 1))) for i in range(p.n_budgets)
        )
        runs = [r for c in budgets for r in _runs(p, c, family, smaller)]
        sweep = _grid(p, budgets[0], family)[p.sizes_per_budget // 2]
        return Design(p, costs, budgets, tuple(runs), sweep, train_tokens)

    if p.budgets is not None:
        return build(p.budgets[-1], True)
    lo, hi = 1e9, 1e20
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if build(mid, False).total_s <= p.hours * 3600 else (lo, mid)
    return build(lo, True)


def _sizes_each(p: IsoflopPreset) -> str:
    more = f" + {p.smaller_sizes} below" if p.smaller_sizes else ""
    return f"{p.sizes_per_budget}{more}"


def dry_run_lines(d: Design) -> list[str]:
    c, b = d.costs, d.preset.base
    load = "not recorded" if c.load is None else "/".join(f"{x:.1f}" for x in c.load)
    lines = [
        f"preset {d.preset.name}: {len(d.budgets)} budgets x {_sizes_each(d.preset)} sizes "
        f"x {len(MODES)} modes x {len(b.seeds)} seeds, D = C/(6N), disjoint windows of "
        f"{b.data}; lr sweep {len(b.lrs)} lrs per mode on {d.sweep.size.name}",
        f"per-step costs from {c.source} (sizes N = {', '.join(map(str, c.measured_n))}; "
        f"load 1/5/15 min when measured: {load}): wall/step = {math.exp(c.intercept):.3g} "
        f"* N^{c.slope:.2f} s, + {c.fixed_s:.1f} s per run",
    ]
    for budget in d.budgets:
        rs = [r for r in d.runs if r.budget == budget]
        sizes = ", ".join(f"{r.size.name} (N={r.non_embedding}, {r.steps} steps)" for r in rs)
        lines.append(f"  C = {budget:.3g} FLOPs: {sizes}")
    extrapolated = [
        r for r in d.runs if not min(c.measured_n) <= r.non_embedding <= max(c.measured_n)
    ]
    if extrapolated:
        lines.append(
            f"  {len(extrapolated)} of {len(d.runs)} sizes lie outside the measured N: their "
            "step cost is extrapolated (rerun the costs command with --preset cpu-isoflop)"
        )
    most = max(r.tokens for r in d.runs)
    split = "unknown (corpus not built)" if d.train_tokens is None else f"{d.train_tokens}"
    lines.append(f"largest run reads {most} training tokens once; training split: {split}")
    total = f"projected total: {d.total_s / 3600:.2f} h on this machine when idle"
    if d.preset.smaller_sizes:
        grid = design(dataclasses.replace(d.preset, smaller_sizes=0), d.costs).total_s
        total += f" ({grid / 3600:.2f} h the grid the budgets were sized to, the rest below it)"
    lines.append(total)
    return lines


CPU_ISOFLOP = IsoflopPreset(
    name="cpu-isoflop",
    base=dataclasses.replace(
        protocol.STUDY_PRESETS["cpu"],
        name="cpu-isoflop",
        data="pycode",
        disjoint_windows=True,
        eval_batches=32,
        n_boot=1000,
        description="isoFLOP design on pycode",
    ),
    hours=5.0,
    # The first three budgets put the myopic minimum at the grid's smallest size.
    smaller_sizes=1,
    description="isoFLOP design: 4 compute budgets over 1.5 decades, 5 sizes each around the "
    "prior N* and 1 below them, 2 modes, 3 seeds, D = C/(6N) non-overlapping pycode windows; "
    "budgets from measured step costs for a <= 5 h idle grid",
)
ISOFLOP_SMOKE = dataclasses.replace(
    CPU_ISOFLOP,
    name="isoflop-smoke",
    base=dataclasses.replace(
        CPU_ISOFLOP.base,
        name="isoflop-smoke",
        seeds=(0, 1),
        lrs=(4e-3, 1.6e-2),
        eval_batches=2,
        n_boot=40,
    ),
    hours=0.02,
    n_budgets=3,
    decades=0.5,
    sizes_per_budget=3,
    smaller_sizes=0,
    description="tiny isoFLOP plumbing check",
)
GPT2_ISOFLOP = IsoflopPreset(
    name="gpt2-isoflop",
    base=dataclasses.replace(
        protocol.STUDY_PRESETS["gpt2"], name="gpt2-isoflop", disjoint_windows=True
    ),
    hours=0.0,  # not cost-derived: the pod plan prints the hours
    size_step=1.6,
    budgets=tuple(1e18 * 10 ** (k / 2) for k in range(4)),
    description="isoFLOP design at GPT-2 scale (dry run): 4 budgets 1e18-3.2e19 FLOPs, "
    "5 sizes each around sqrt(C/120), ~40M-1.4B parameters",
)
PRESETS = {p.name: p for p in (CPU_ISOFLOP, ISOFLOP_SMOKE, GPT2_ISOFLOP)}
