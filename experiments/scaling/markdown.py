"""The study's report (``report.md``, published as ``results/scaling*.md``), rendered from its
results records alone, so the report cannot disagree with ``results.json``.

Its order: the answer (``experiments.scaling.findings``), the cost, the gap per size, the loss
per size, the joint fit, the undertraining check, the lr sweeps, the transfer check, the plots,
the caveats (``experiments.scaling.caveats``), the protocol and every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.scaling import findings
from experiments.scaling import records as rec
from experiments.scaling.caveats import caveats
from experiments.scaling.formats import ci_text, fmt_n, load_text
from myojax.provenance import idle


def render_report(res: rec.StudyResults, plots: Sequence[str], *, figure_prefix: str = "") -> str:
    """The whole page; ``plots`` are the figures' file names, linked under ``figure_prefix``."""
    pct = round(100 * res.analysis.level)
    lines = [f"# Scaling study: standard vs myopic ({res.preset} preset)", ""]
    lines += findings.headline(res)
    lines += [
        f"{res.description}.",
        "",
        "Every number below is written by `python -m experiments.scaling` from "
        "`results.json`; intervals are "
        f"{pct}% and cover both training-seed and test-sequence variation "
        f"({res.analysis.method}).",
        "",
    ]
    lines += _cost_section(res)
    lines += findings.gap_section(res, pct)
    lines += _loss_section(res, pct)
    lines += _fit_section(res, pct)
    lines += findings.undertrain_section(res, pct)
    lines += _sweep_section(res)
    lines += findings.transfer_section(res)
    if plots:
        lines += ["## Plots", "", "Every seed's point is drawn (small dots) beside the means.", ""]
        lines += [f"![{p}]({figure_prefix}{p})" for p in plots]
        lines.append("")
    lines += ["## Caveats", ""] + [f"- {c}" for c in caveats(res)] + [""]
    lines += _protocol_section(res, pct)
    lines += _runs_section(res)
    return "\n".join(lines)


def _cost_section(res: rec.StudyResults) -> list[str]:
    cost = res.cost
    lines = [
        "## Cost",
        "",
        f"{cost.distinct_runs} distinct training runs: {cost.sum_run_wall_s / 60:.1f} "
        f"min of wall time and {cost.sum_run_cpu_s / 60:.1f} min of process CPU time "
        "(training, checkpoints, evaluation; all threads). " + _load_verdict(res),
        "",
        "| invocation | runs trained | wall | CPU | load avg 1/5/15 min at start -> end |",
        "|---|---|---|---|---|",
    ]
    for inv in res.invocations:
        cpu_s = math.nan if inv.cpu_s is None else inv.cpu_s
        lines.append(
            f"| `{inv.command}` | {inv.runs_trained} | {inv.wall_s / 60:.1f} min | "
            f"{cpu_s / 60:.1f} min | {load_text(inv.load_start)} -> {load_text(inv.load_end)} |"
        )
    return [*lines, ""]


def _load_verdict(res: rec.StudyResults) -> str:
    """Whether the invocations that trained started on an otherwise idle machine
    (``myojax.provenance.idle``), from their recorded load; the wall time is read accordingly."""
    starts = [inv.environment_start for inv in res.invocations if inv.runs_trained > 0]
    if not starts:
        return (
            "No invocation that trained recorded its load (an interrupted one records none): "
            "each run's own load is in the table of every run below."
        )
    if all(idle(e) for e in starts):
        return (
            "Every invocation that trained started on an otherwise idle machine (load averages "
            "below), so the wall time is this machine's."
        )
    return (
        "The machine was shared with other jobs for at least one invocation that trained (load "
        "averages below), so wall times are inflated by contention. On an idle 2-core machine "
        "the wall time lies between half the CPU time (both cores busy) and the CPU time (one "
        "core busy): that range, not the loaded wall time, is the estimate for an idle machine."
    )


def _loss_section(res: rec.StudyResults, pct: int) -> list[str]:
    if not res.analysis.losses:
        return []
    lines = [
        "## Test loss per size",
        "",
        f"| mode | size | N | test loss [{pct}% CI] | per seed |",
        "|---|---|---|---|---|",
    ]
    for mode, f in res.analysis.losses.items():
        for i, (s, n) in enumerate(zip(f.sizes, f.n)):
            seeds = ", ".join(f"{v:.4f}" for v in f.per_seed[i])
            lines.append(
                f"| {mode} | {s} | {fmt_n(n)} | {f.point[i]:.4f} "
                f"{ci_text(f.lo[i], f.hi[i])} | {seeds} |"
            )
    return [*lines, ""]


def _fit_section(res: rec.StudyResults, pct: int) -> list[str]:
    fit = res.analysis.fit
    if not fit:
        return []
    lines = [
        "## Both modes in one functional form",
        "",
        f"{fit.form}. Intervals from the same crossed bootstrap "
        f"({res.analysis.n_boot_fit} refits per level).",
        "",
        f"| parameter | estimate [{pct}% CI] |",
        "|---|---|",
    ]
    flagged = set(fit.at_bounds)
    for name, v in fit.params.items():
        base = name.split(" - ")[0]
        flag = " **(at a bound of the fit's box: not a finding)**" if base in flagged else ""
        if name.startswith("extrapolated"):
            continue
        lines.append(f"| {name} | {v.point:.4g} [{v.lo:.4g}, {v.hi:.4g}]{flag} |")
    if flagged:
        lines += [
            "",
            f"**Parameters on a bound: {', '.join(sorted(flagged))}.** A bound means "
            "the data do not identify that parameter inside the box; its value and "
            "interval describe the box, not the models.",
        ]
    ex = [(k, v) for k, v in fit.params.items() if k.startswith("extrapolated")]
    if ex:
        lines += [
            "",
            "Extrapolated gaps at the GPT-2 sizes (the fitted curves carried 2-4 "
            "orders of magnitude beyond the data; a property of the functional form more "
            "than of the measurements):",
            "",
        ]
        lines += [f"- {k}: {v.point:+.4f} {ci_text(v.lo, v.hi, sign=True)}" for k, v in ex]
    return [*lines, ""]


def _sweep_section(res: rec.StudyResults) -> list[str]:
    sweeps = res.analysis.sweeps
    if not sweeps:
        return []
    lrs = next(iter(sweeps.values())).lrs
    lines = [
        f"## Learning-rate sweeps (validation split, proxy `{res.protocol.proxy.name}`)",
        "",
        "One lr per mode, the lowest validation loss averaged over seeds (pooled: choosing per "
        "seed would fit each seed's noise); every seed's curve is in the plot.",
        "",
        "| mode | seed | " + " | ".join(f"lr {x:g}" for x in lrs) + " | best |",
        "|---|---|" + "---|" * (len(lrs) + 1),
    ]
    for mode, s in sweeps.items():
        for seed, row, best in zip(s.seeds, s.val_loss, s.per_seed_best_lr):
            cells = [f"{v:.4f}" if v is not None else "diverged" for v in row]
            lines.append(f"| {mode} | {seed} | " + " | ".join(cells) + f" | {best:g} |")
        cells = [f"**{v:.4f}**" if v is not None else "-" for v in s.mean_val_loss]
        edge = " **(at the grid's edge: the optimum may lie outside)**" if s.at_edge else ""
        lines.append(f"| {mode} | mean | " + " | ".join(cells) + f" | **{s.chosen_lr:g}**{edge} |")
    return [*lines, ""]


def _protocol_section(res: rec.StudyResults, pct: int) -> list[str]:
    proto = res.protocol
    sizes = ", ".join(f"{s.name} ({s.n_layers}x{s.d_model})" for s in proto.sizes)
    return [
        "## Protocol",
        "",
        f"- Modes: {', '.join(res.modes)}; muP with base width {proto.base_width}; sizes {sizes}.",
        f"- Data splits: {proto.splits}. {proto.eval_sequences_per_split} windows of "
        f"{proto.seq_len} tokens per held-out split (seed {proto.eval_seed}), the same "
        "for every run.",
        f"- Seeds {list(proto.seeds)} for every (mode, size): the seed sets initialisation and "
        "data order.",
        f"- Token budget: {proto.token_rule}; tokens_per_param = {proto.tokens_per_param:g}. "
        f"Batch {proto.batch_size} x {proto.seq_len}; warmup {proto.warmup_frac:.0%} "
        "then cosine to 10%.",
        f"- lr grid {list(proto.lrs)} (factor {proto.lr_step:g}) on the proxy "
        f"`{proto.proxy.name}`, every seed; the proxy's run at the chosen lr is also its "
        "size run.",
        f"- Undertraining check at {proto.undertrain_size} with factors "
        f"{list(proto.undertrain_factors)}; transfer check at the largest size, grid steps "
        f"{list(proto.transfer_steps)} around the transferred lr, seeds "
        f"{list(proto.transfer_seeds)}.",
        f"- Intervals: {pct}%, {proto.n_boot} bootstrap replicates per level.",
        "- The gpt2 preset's per-device memory (the planner against XLA's memory analysis of "
        "the sharded step, the four GPT-2 sizes on simulated meshes) is in "
        "results/memory_plan.md (`python -m experiments.memory_check`), its pod plan in "
        "`python -m experiments.scaling --preset gpt2 --dry-run --accelerator v4-32`.",
        "",
    ]


def _runs_section(res: rec.StudyResults) -> list[str]:
    lines = [
        "## Every run",
        "",
        "| mode | role | size | seed | budget | lr | steps | tokens | val loss | test loss | "
        "wall (s) | CPU (s) | load at start |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = math.nan
    for r in res.distinct_runs:
        lines.append(
            f"| {r.mode} | {r.role} | {r.size} | {r.seed} | {r.budget:g}x | {r.lr:g} | "
            f"{r.steps} | {r.tokens:,} | "
            + (f"{r.val_loss:.4f} | {r.test_loss:.4f}" if r.ok else f"**{r.status}** | -")
            + f" | {nan if r.wall_s is None else r.wall_s:.0f} | "
            f"{nan if r.cpu_s is None else r.cpu_s:.0f} | {load_text(r.load_start)} |"
        )
    return [*lines, ""]
