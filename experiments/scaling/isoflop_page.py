"""The isoFLOP study's page, plots and README section, from its record alone
(``isoflop_record``; so ``--publish`` and ``--from-json`` write the same bytes): the answer
sentence first, the per-budget table, the fitted forms, how this answer relates to the
fixed-ratio ladders, and every run with the times it read its training tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import epilogue
from experiments.scaling import isoflop_analysis, isoflop_record

RELATION = (
    "The cpu and cpu-large studies train every size at one fixed tokens-per-parameter ratio "
    "(7.5 and 20), so they compare the modes along one line through (N, D); this study lets "
    "each mode pick its best size at every compute budget, so m(C) is the compute-optimal "
    "comparison that those ladders approximate."
)


READINGS = (
    "How far the answer rests on the parabola: m(C) and its trend with L* read from every "
    "profile each way (95% intervals; the figure's right panel draws the points):"
)


def _budget_rows(res: isoflop_record.IsoflopResults) -> list[str]:
    rows = [
        "| C (FLOPs) | L* standard | L* myopic | N* standard | N* myopic | m(C) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in res.analysis.budgets:
        lo, n, m = b.loss_opt, b.n_opt, b.multiplier
        edges = [k for k, v in b.at_edge.items() if v]
        notes = [f"edge minimum: {', '.join(edges)}"] if edges else []
        note = "; ".join(notes + (["extrapolated"] if b.extrapolated else []))
        rows.append(
            f"| {b.budget:.3g} | {lo['standard'].point:.4f} | {lo['myopic'].point:.4f} "
            f"| {n['standard'].point:.3g} | {n['myopic'].point:.3g} | {m.point:.3g} "
            f"[{m.lo:.3g}, {m.hi:.3g}] | {note} |"
        )
    return rows


def _profile(res: isoflop_record.IsoflopResults, budget: float, mode: str):
    """(sizes, mean test loss over seeds at each size) of one mode's profile at one budget."""
    runs = [
        x.record
        for x in res.runs
        if x.role == "size" and x.record.mode == mode and x.budget == budget
    ]
    sizes = np.array(sorted({r.non_embedding_params for r in runs}), float)
    loss = [np.mean([r.test_loss for r in runs if r.non_embedding_params == n]) for n in sizes]
    return sizes, np.array(loss, float)


def _fit_rows(res: isoflop_record.IsoflopResults) -> list[str]:
    """How closely each parabola follows its profile: its vertex against the best measured
    mean, and its rms residual (a profile that is not parabolic moves L* away from the data)."""
    rows = [
        "| C (FLOPs) | mode | best measured (size) | L* (vertex) | vertex - best | rms residual |",
        "|---|---|---|---|---|---|",
    ]
    for b in res.analysis.budgets:
        for mode in b.parabola:
            sizes, loss = _profile(res, b.budget, mode)
            resid = loss - np.polyval(b.parabola[mode], np.log(sizes))
            best, vertex = int(np.argmin(loss)), b.loss_opt[mode].point
            rows.append(
                f"| {b.budget:.3g} | {mode} | {loss[best]:.4f} ({sizes[best]:.3g}) "
                f"| {vertex:.4f} | {vertex - loss[best]:+.4f} "
                f"| {np.sqrt(np.mean(resid**2)):.4f} |"
            )
    return rows


def _reading_row(r: isoflop_analysis.Reading) -> str:
    def flags(x: bool, e: bool) -> str:
        return (" (extrapolated)" if x else "") + (" (edge)" if e else "")

    ms = zip(r.multiplier, r.extrapolated, r.at_edge, strict=True)
    cells = [f"{m.point:.3g} [{m.lo:.3g}, {m.hi:.3g}]{flags(x, e)}" for m, x, e in ms]
    f = r.factor_per_decade
    return f"| {r.name} | {' | '.join(cells)} | {f.point:.3g} [{f.lo:.3g}, {f.hi:.3g}] |"


def _reading_rows(res: isoflop_record.IsoflopResults) -> list[str]:
    """m(C) per budget and the factor per decade with L* read each way from every profile,
    the answer's parabola through every size first."""
    a = res.analysis
    answer = isoflop_analysis.Reading(
        "a parabola through every size (the answer)",
        tuple(b.multiplier for b in a.budgets),
        tuple(b.extrapolated for b in a.budgets),
        tuple(any(b.at_edge.values()) for b in a.budgets),
        a.factor_per_decade,
    )
    head = " | ".join(f"m at C = {b.budget:.3g}" for b in a.budgets)
    rule = "|---|" + "---|" * (len(a.budgets) + 1)
    return [f"| L* read with | {head} | factor per decade |", rule] + [
        _reading_row(r) for r in (answer, *a.readings)
    ]


def _load(v: tuple[float, ...] | None) -> str:
    return "" if v is None else f"{v[0]:.1f}"


def _run_rows(res: isoflop_record.IsoflopResults) -> list[str]:
    """Every run, the most times it read any of its training tokens (must be <= 1), and its
    cost: wall and CPU time over every invocation, the 1-minute load at its start and end."""
    rows = [
        "| run | role | mode | C (FLOPs) | N | seed | lr | tokens | test loss | token reads "
        "| wall (s) | CPU (s) | load start / end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in res.runs:
        r = x.record
        test = "" if r.test_loss is None else f"{r.test_loss:.4f}"
        wall = "" if r.wall_s is None else f"{r.wall_s:.0f}"
        cpu = "" if r.cpu_s is None else f"{r.cpu_s:.0f}"
        rows.append(
            f"| {r.size} | {x.role} | {r.mode} | {x.budget:.3g} | {r.non_embedding_params} "
            f"| {r.seed} | {r.lr:g} | {r.tokens} | {test} | {x.max_token_reads} | {wall} | {cpu} "
            f"| {_load(r.load_start)} / {_load(r.load_end)} |"
        )
    return rows


def _cost_line(res: isoflop_record.IsoflopResults) -> str:
    """The runs' total cost, summed from their records (this machine's load is per run)."""
    wall = sum(x.record.wall_s or 0.0 for x in res.runs)
    cpu = sum(x.record.cpu_s or 0.0 for x in res.runs)
    return (
        f"{len(res.runs)} runs took {wall / 3600:.2f} h of wall time and {cpu / 3600:.2f} h of "
        f"CPU time in all (each run's, with the machine's load, in the last table); command: "
        f"`{res.command}`."
    )


def render(doc: dict[str, Any], prefix: str) -> str:
    res = isoflop_record.from_json(doc)
    figure = f"![isoFLOP profiles, frontiers and m(C)]({prefix}{res.preset}-isoflop.png)"
    runs = "Every run, with the most times it read any of its training tokens (must be <= 1):"
    title = f"# isoFLOP study ({res.preset}{', PARTIAL' if res.partial else ''})"
    fits = (
        "How closely each profile's parabola follows the mean test losses it is fitted to "
        "(the vertex is L*; a profile that is not parabolic over its sizes moves it):"
    )
    body = [title, *res.report, "\n".join(_budget_rows(res)), fits, "\n".join(_fit_rows(res))]
    if res.analysis.readings:
        body += [READINGS, "\n".join(_reading_rows(res))]
    body += [figure, RELATION, _cost_line(res), runs, "\n".join(_run_rows(res))]
    return "\n\n".join(body) + "\n"


def readme(doc: dict[str, Any]) -> str:
    res = isoflop_record.from_json(doc)
    return f"{res.report[0]}\n\n{RELATION} Details: results/scaling-{res.preset}.md."


def _profiles(ax: Any, res: isoflop_record.IsoflopResults) -> None:
    """Each profile's mean test loss per size and its fitted parabola in ln N: one colour per
    budget, markers and line style per mode."""
    for mode, marker, line in (("standard", "o", "-"), ("myopic", "s", "--")):
        for i, b in enumerate(res.analysis.budgets):
            sizes, loss = _profile(res, b.budget, mode)
            label = mode if i == 0 else None
            ax.plot(sizes, loss, marker, color=f"C{i}", alpha=0.7, mfc="none", label=label)
            grid = np.geomspace(sizes.min(), sizes.max(), 50)
            curve = np.polyval(b.parabola[mode], np.log(grid))
            ax.plot(grid, curve, line, color=f"C{i}", lw=1)
    ax.legend(title="one colour per budget")


def _multiplier(ax: Any, res: isoflop_record.IsoflopResults) -> None:
    """m(C) and its band on log axes, the band clipped to two decades around the points so
    a too-wide interval does not flatten the plot."""
    budgets = res.analysis.budgets
    c = np.array([b.budget for b in budgets])
    m = np.array([[b.multiplier.point, b.multiplier.lo, b.multiplier.hi] for b in budgets])
    floor, ceiling = m[:, 0].min() / 100, m[:, 0].max() * 100
    ax.plot(c, m[:, 0], "-o", label="parabola through every size")
    ax.fill_between(c, np.clip(m[:, 1], floor, None), np.clip(m[:, 2], None, ceiling), alpha=0.3)
    for i, r in enumerate(res.analysis.readings):
        points = [e.point for e in r.multiplier]
        ax.plot(c, points, marker="x^v"[i % 3], ls=":", lw=1, color="gray", label=r.name)
    if res.analysis.readings:
        ax.legend(fontsize="small", title="L* read with")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(min(floor * 10, 0.5), max(ceiling / 10, 2.0))


def plot(doc: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    res = isoflop_record.from_json(doc)
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    budgets = res.analysis.budgets
    _profiles(ax[0], res)
    c = np.array([b.budget for b in budgets])
    for mode, style in (("standard", "-o"), ("myopic", "--s")):
        ax[1].plot(c, [b.loss_opt[mode].point for b in budgets], style, label=mode)
    _multiplier(ax[2], res)
    titles = ("profiles and fitted parabolas (test loss vs N)", "frontiers L*(C)", "m(C)")
    for a, title in zip(ax, titles, strict=True):
        a.set_xscale("log")
        a.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap across 1.5 decades
        a.set_title(title)
    ax[1].legend()
    name = f"{res.preset}-isoflop.png"
    fig.tight_layout()
    fig.savefig(folder / name, dpi=100)
    plt.close(fig)
    return [name]


def page(preset: str) -> epilogue.Page:
    key = f"{preset} answer, written by python -m experiments.scaling --preset {preset} --publish"
    return epilogue.Page(
        f"scaling-{preset}.json",
        f"scaling-{preset}.md",
        render,
        plot,
        figures="docs/figures/scaling",
        readme=readme,
        readme_key=key,
        local_page="isoflop.md",
        local_json="isoflop.json",
    )
