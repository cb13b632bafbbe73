"""Rendering a scaling study's ``results.json``: report.md and PNG plots (matplotlib, Agg).

Every number and every point drawn here is read from the results document, never recomputed
from run directories, so the report and the plots cannot disagree with ``results.json``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from myojax.provenance import idle

PLOTS = {
    "loss": "loss_vs_params.png",
    "gap": "gap_vs_params.png",
    "sweep": "lr_sweep.png",
    "undertrain": "undertrain.png",
    "position": "per_position_largest.png",
}
COLORS = {"standard": "tab:blue", "myopic": "tab:red", "myopic_kv": "tab:purple"}


def _fmt_n(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def _ci(lo: float, hi: float, digits: int = 4, sign: bool = False) -> str:
    f = f"+.{digits}f" if sign else f".{digits}f"
    return f"[{lo:{f}}, {hi:{f}}]"


def _load(load: Any) -> str:
    return "n/a" if not load else "/".join(f"{x:.1f}" for x in load)


# ----------------------------------------------------------------------------------------------
# Plots


def _log_x(ax: Any) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short spans


def _jitter(n: np.ndarray, s: int, n_seeds: int) -> np.ndarray:
    """Spread the seeds' points a little along log N so that they do not hide each other."""
    return n * 1.025 ** (s - (n_seeds - 1) / 2)


def plot_all(doc: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs that the document supports; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    an, modes = doc["analysis"], doc["modes"]
    pct = round(100 * an["level"])
    written = []

    def save(fig: Any, key: str) -> None:
        fig.tight_layout()
        fig.savefig(out / PLOTS[key], dpi=110)
        plt.close(fig)
        written.append(PLOTS[key])

    if an["losses"]:
        fig, ax = plt.subplots(figsize=(6.6, 4.6))
        fit = an.get("fit")
        for mode in modes:
            f = an["losses"][mode]
            n, c = np.array(f["n"]), COLORS.get(mode)
            per_seed = np.array(f["per_seed"])  # [K, S]
            for s in range(per_seed.shape[1]):
                ax.plot(_jitter(n, s, per_seed.shape[1]), per_seed[:, s], ".", color=c, alpha=0.45)
            pt, lo, hi = (np.array(f[k]) for k in ("point", "lo", "hi"))
            ax.errorbar(
                n,
                pt,
                yerr=[pt - lo, hi - pt],
                fmt="o",
                color=c,
                capsize=3,
                label=f"{mode}: seed mean, {pct}% CI (dots: seeds)",
            )
            if fit:
                p = fit["point"]
                grid = np.geomspace(n.min() / 1.3, n.max() * 1.3, 100)
                ax.plot(
                    grid,
                    p["E"] + p["A"][mode] * grid ** -p["alpha"][mode],
                    color=c,
                    lw=1,
                    label=f"shared-E fit: alpha={p['alpha'][mode]:.3f}",
                )
        _log_x(ax)
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("test loss (nats/byte)")
        ax.set_title(f"{doc['preset']} preset: test loss per size, every seed")
        ax.legend(fontsize=7)
        save(fig, "loss")

    if an["gaps"]:
        fig, ax = plt.subplots(figsize=(6.6, 4.6))
        for mode, g in an["gaps"].items():
            n, c = np.array(g["n"]), COLORS.get(mode)
            per_seed = np.array(g["per_seed"])
            for s in range(per_seed.shape[1]):
                ax.plot(_jitter(n, s, per_seed.shape[1]), per_seed[:, s], ".", color=c, alpha=0.45)
            pt, lo, hi = (np.array(g["gap"][k]) for k in ("point", "lo", "hi"))
            ax.errorbar(
                n,
                pt,
                yerr=[pt - lo, hi - pt],
                fmt="o",
                color=c,
                capsize=3,
                label=f"{mode} - standard: mean, {pct}% CI (dots: seeds)",
            )
            if g["slope_per_decade"]:
                sl = g["slope_per_decade"]
                x = np.log10(n)
                line = pt.mean() + sl["point"] * (np.log10(n) - x.mean())
                ax.plot(
                    n,
                    line,
                    "--",
                    color=c,
                    lw=1,
                    label=f"slope {sl['point']:+.4f}/decade {_ci(sl['lo'], sl['hi'], sign=True)}",
                )
        ax.axhline(0, color="k", lw=0.5)
        _log_x(ax)
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("test-loss gap (nats/byte)")
        ax.set_title("cost of myopia per size (paired by seed and test sequence)")
        ax.legend(fontsize=7)
        save(fig, "gap")

    sweeps, transfer = an["sweeps"], an.get("transfer", {})
    if sweeps:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        for mode, s in sweeps.items():
            c = COLORS.get(mode)
            lrs = np.array(s["lrs"])
            for i, row in enumerate(s["val_loss"]):
                y = np.array([np.nan if v is None else v for v in row])
                axes[0].plot(
                    lrs,
                    y,
                    ".-",
                    color=c,
                    lw=0.6,
                    alpha=0.5,
                    label=f"{mode}: each seed" if i == 0 else None,
                )
            mean = np.array([np.nan if v is None else v for v in s["mean_val_loss"]])
            edge = " (grid edge!)" if s["at_edge"] else ""
            axes[0].plot(lrs, mean, "o-", color=c, lw=2, label=f"{mode}: seed mean{edge}")
            axes[0].axvline(s["chosen_lr"], color=c, ls=":", lw=1)
            t = transfer.get(mode, {})
            if t.get("complete"):
                for i, row in enumerate(t["val_loss"]):
                    axes[1].plot(
                        t["lrs"],
                        [np.nan if v is None else v for v in row],
                        "o-",
                        color=c,
                        label=f"{mode} (seed {t['seeds'][i]})",
                    )
                axes[1].axvline(t["transferred_lr"], color=c, ls=":", lw=1)
        for ax in axes:
            _log_x(ax)
            ax.set_xlabel("peak learning rate (muP)")
            ax.set_ylabel("validation loss")
            ax.legend(fontsize=7)
        axes[0].set_title(f"lr sweep on the proxy ({doc['protocol']['proxy']['name']})")
        axes[1].set_title("transfer check: largest size around the transferred lr (dotted)")
        save(fig, "sweep")

    ut = an.get("undertrain")
    if ut and ut.get("complete"):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        f = np.array(ut["factors"])
        for mode, d in ut["modes"].items():
            if "gap" not in d:
                continue
            c = COLORS.get(mode)
            per_seed = np.array(d["per_seed_gap"])
            for s in range(per_seed.shape[1]):
                ax.plot(f * 1.03 ** (s - 1), per_seed[:, s], ".", color=c, alpha=0.45)
            pt, lo, hi = (np.array(d["gap"][k]) for k in ("point", "lo", "hi"))
            ax.errorbar(
                f,
                pt,
                yerr=[pt - lo, hi - pt],
                fmt="o-",
                color=c,
                capsize=3,
                label=f"{mode} - standard: mean, {pct}% CI (dots: seeds)",
            )
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(f, [f"{x:g}x" for x in f])
        ax.set_xlabel(f"token budget (x {doc['protocol']['tokens_per_param']:g} tokens/param)")
        ax.set_ylabel("test-loss gap (nats/byte)")
        ax.set_title(f"undertraining check at {ut['size']}")
        ax.legend(fontsize=7)
        save(fig, "undertrain")

    largest = an.get("complete_sizes", [])[-1:] or None
    if largest:
        rows = [
            r
            for r in doc["runs"]
            if r["role"] == "size"
            and r["size"] == largest[0]
            and r["status"] == "ok"
            and "test_loss_per_position" in r
        ]
        if rows:
            fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.4, 6), sharex=True)
            curves = {
                m: np.mean([r["test_loss_per_position"] for r in rows if r["mode"] == m], 0)
                for m in modes
            }
            for mode, pp in curves.items():
                ax.plot(np.arange(len(pp)), pp, color=COLORS.get(mode), label=mode)
                if mode != modes[0]:
                    ax2.plot(
                        np.arange(len(pp)),
                        pp - curves[modes[0]],
                        color=COLORS.get(mode),
                        label=f"{mode} - {modes[0]}",
                    )
            ax.set_ylabel("test loss (mean over seeds)")
            ax.set_title(f"per-position test loss, largest size ({largest[0]})")
            ax.legend(fontsize=8)
            ax2.axhline(0, color="k", lw=0.5)
            ax2.set_xlabel("position t (context length t+1)")
            ax2.set_ylabel("difference")
            ax2.legend(fontsize=8)
            save(fig, "position")
    return written


# ----------------------------------------------------------------------------------------------
# report.md


def render_report(doc: dict[str, Any], plots: list[str], *, figure_prefix: str = "") -> str:
    an = doc["analysis"]
    pct = round(100 * an["level"])
    lines = [f"# Scaling study: standard vs myopic ({doc['preset']} preset)", ""]
    lines += headline(doc)
    lines += [
        f"{doc['description']}.",
        "",
        "Every number below is written by `python -m experiments.scaling` from "
        "`results.json`; intervals are "
        f"{pct}% and cover both training-seed and test-sequence variation ({an['method']}).",
        "",
    ]
    lines += _cost_section(doc)
    lines += _gap_section(doc, pct)
    lines += _loss_section(doc, pct)
    lines += _fit_section(doc, pct)
    lines += _undertrain_section(doc, pct)
    lines += _sweep_section(doc)
    lines += _transfer_section(doc)
    if plots:
        lines += ["## Plots", "", "Every seed's point is drawn (small dots) beside the means.", ""]
        lines += [f"![{p}]({figure_prefix}{p})" for p in plots]
        lines.append("")
    lines += ["## Caveats", ""] + [f"- {c}" for c in caveats(doc)] + [""]
    lines += _protocol_section(doc, pct)
    lines += _runs_section(doc)
    return "\n".join(lines)


def headline(doc: dict[str, Any]) -> list[str]:
    """The PARTIAL banner (for a study not finished) and the one-sentence answer, in bold."""
    an, lines = doc["analysis"], []
    if not doc.get("finished", True):
        lines += [
            f"**PARTIAL: this report rests on the {doc['cost']['distinct_runs']} of "
            f"{doc['planned_runs']} planned runs finished so far (`--report-only`); sizes "
            f"analysed: {', '.join(an.get('complete_sizes', [])) or 'none'}.**",
            "",
        ]
    answer = an.get("answer")
    return [
        *lines,
        f"**Answer: {answer['text']}**" if answer else "**No answer: no finished pair of sizes.**",
        "",
    ]


def answer_sections(doc: dict[str, Any], retitle: Callable[[str], str]) -> list[str]:
    """What a copy of the answer elsewhere carries: the gap per size with its slope, the
    undertraining and the muP transfer checks, their headings passed through ``retitle``."""
    pct = round(100 * doc["analysis"]["level"])
    lines: list[str] = []
    for section in (_gap_section(doc, pct), _undertrain_section(doc, pct), _transfer_section(doc)):
        for line in section:
            line = retitle(line) if line.startswith("#") else line
            if line or (lines and lines[-1]):  # no double blank lines
                lines.append(line)
    return lines


def readme_summary(doc: dict[str, Any]) -> str:
    """The README's copy of the study's answer (``answer_sections`` under bold titles), written
    by ``--publish`` between the README's markers."""
    answer = doc["analysis"].get("answer")
    lines = [f"> {answer['text']}" if answer else "> No answer: no finished pair of sizes.", ""]
    lines += answer_sections(doc, lambda title: f"**{title.lstrip('# ')}**")
    cost = doc["cost"]
    preset = "" if doc["preset"] == "cpu" else f" --preset {doc['preset']}"
    page = "results/scaling.md" if doc["preset"] == "cpu" else f"results/scaling-{doc['preset']}.md"
    partial = (
        ""
        if doc.get("finished", True)
        else f" of {doc['planned_runs']} planned (PARTIAL: `--report-only`)"
    )
    lines.append(
        f"Written by `python -m experiments.scaling{preset} --publish` from the study's "
        f"{cost['distinct_runs']} runs{partial} ({cost['sum_run_wall_s'] / 60:.1f} min of run "
        f"wall time; the full report, with the machine's load, is {page})."
    )
    return "\n".join(lines)


def _cost_section(doc: dict[str, Any]) -> list[str]:
    cost = doc["cost"]
    lines = [
        "## Cost",
        "",
        f"{cost['distinct_runs']} distinct training runs: {cost['sum_run_wall_s'] / 60:.1f} "
        f"min of wall time and {cost['sum_run_cpu_s'] / 60:.1f} min of process CPU time "
        "(training, checkpoints, evaluation; all threads). " + _load_verdict(doc),
        "",
        "| invocation | runs trained | wall | CPU | load avg 1/5/15 min at start -> end |",
        "|---|---|---|---|---|",
    ]
    for inv in doc.get("invocations", []):
        lines.append(
            f"| `{inv['command']}` | {inv['runs_trained']} | {inv['wall_s'] / 60:.1f} min | "
            f"{inv.get('cpu_s', float('nan')) / 60:.1f} min | "
            f"{_load(inv['environment_start'].get('load_avg_1_5_15'))} -> "
            f"{_load(inv['environment_end'].get('load_avg_1_5_15'))} |"
        )
    return [*lines, ""]


def _load_verdict(doc: dict[str, Any]) -> str:
    """Whether the invocations that trained started on an otherwise idle machine
    (``myojax.provenance.idle``), from their recorded load; the wall time is read accordingly."""
    starts = [
        inv["environment_start"]
        for inv in doc.get("invocations", [])
        if inv.get("runs_trained", 0) > 0
    ]
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


def _gap_section(doc: dict[str, Any], pct: int) -> list[str]:
    an = doc["analysis"]
    lines = []
    for mode, g in an["gaps"].items():
        lines += [
            f"## The model-free answer: {mode} - standard test loss per size",
            "",
            f"| size | N | gap (nats) [{pct}% CI] | per seed | relative | SE seeds / SE "
            "sequences | plain percentile CI |",
            "|---|---|---|---|---|---|---|",
        ]
        gp, pl = g["gap"], g["plain_percentile"]
        for i, (s, n) in enumerate(zip(g["sizes"], g["n"])):
            seeds = ", ".join(f"{v:+.4f}" for v in g["per_seed"][i])
            lines.append(
                f"| {s} | {_fmt_n(n)} | {gp['point'][i]:+.4f} "
                f"{_ci(gp['lo'][i], gp['hi'][i], sign=True)} | {seeds} | "
                f"{100 * g['relative'][i]:+.2f}% | {gp['se_seed'][i]:.4f} / {gp['se_seq'][i]:.4f} "
                f"| {_ci(pl['lo'][i], pl['hi'][i], sign=True)} |"
            )
        sl, n_seeds = g["slope_per_decade"], len(doc["protocol"]["seeds"])
        if sl:
            k = len(g["sizes"])
            lines += [
                "",
                f"Slope of the gap against log10 N (least squares over the sizes): "
                f"**{sl['point']:+.4f} nats per decade {_ci(sl['lo'], sl['hi'], sign=True)}** "
                f"(SE from seeds {sl['se_seed']:.4f}, from test sequences {sl['se_seq']:.4f}, "
                f"{sl['df']:.1f} degrees of freedom; the plain percentile bootstrap would give "
                f"{_ci(g['plain_percentile']['lo'][k], g['plain_percentile']['hi'][k], sign=True)}"
                f", too narrow with {n_seeds} seeds: see the coverage study).",
            ]
        lines.append("")
    return lines


def _loss_section(doc: dict[str, Any], pct: int) -> list[str]:
    an = doc["analysis"]
    if not an["losses"]:
        return []
    lines = [
        "## Test loss per size",
        "",
        f"| mode | size | N | test loss [{pct}% CI] | per seed |",
        "|---|---|---|---|---|",
    ]
    for mode, f in an["losses"].items():
        for i, (s, n) in enumerate(zip(f["sizes"], f["n"])):
            seeds = ", ".join(f"{v:.4f}" for v in f["per_seed"][i])
            lines.append(
                f"| {mode} | {s} | {_fmt_n(n)} | {f['point'][i]:.4f} "
                f"{_ci(f['lo'][i], f['hi'][i])} | {seeds} |"
            )
    return [*lines, ""]


def _fit_section(doc: dict[str, Any], pct: int) -> list[str]:
    fit = doc["analysis"].get("fit")
    if not fit:
        return []
    lines = [
        "## Both modes in one functional form",
        "",
        f"{fit['form']}. Intervals from the same crossed bootstrap "
        f"({doc['analysis']['n_boot_fit']} refits per level).",
        "",
        f"| parameter | estimate [{pct}% CI] |",
        "|---|---|",
    ]
    flagged = set(fit["at_bounds"])
    for name, v in fit["params"].items():
        base = name.split(" - ")[0]
        flag = " **(at a bound of the fit's box: not a finding)**" if base in flagged else ""
        if name.startswith("extrapolated"):
            continue
        lines.append(f"| {name} | {v['point']:.4g} [{v['lo']:.4g}, {v['hi']:.4g}]{flag} |")
    if flagged:
        lines += [
            "",
            f"**Parameters on a bound: {', '.join(sorted(flagged))}.** A bound means "
            "the data do not identify that parameter inside the box; its value and "
            "interval describe the box, not the models.",
        ]
    ex = [(k, v) for k, v in fit["params"].items() if k.startswith("extrapolated")]
    if ex:
        lines += [
            "",
            "Extrapolated gaps at the GPT-2 sizes (the fitted curves carried 2-4 "
            "orders of magnitude beyond the data; a property of the functional form more "
            "than of the measurements):",
            "",
        ]
        lines += [f"- {k}: {v['point']:+.4f} {_ci(v['lo'], v['hi'], sign=True)}" for k, v in ex]
    return [*lines, ""]


def _undertrain_section(doc: dict[str, Any], pct: int) -> list[str]:
    ut = doc["analysis"].get("undertrain")
    if not ut:
        return []
    if not ut.get("complete"):
        return ["## Undertraining check", "", "Not complete (runs missing).", ""]
    tpp = doc["protocol"]["tokens_per_param"]
    lines = [
        f"## Undertraining check: {ut['size']} at 1x, 2x, 4x the token budget",
        "",
        "| budget | tokens/param | "
        + " | ".join(f"{m} test loss [{pct}% CI]" for m in ut["modes"])
        + " | "
        + " | ".join(
            f"gap {m} - standard [{pct}% CI]" for m, d in ut["modes"].items() if "gap" in d
        )
        + " |",
        "|---|---|" + "---|" * (len(ut["modes"]) + sum("gap" in d for d in ut["modes"].values())),
    ]
    for i, f in enumerate(ut["factors"]):
        cells = [
            f"{d['loss']['point'][i]:.4f} {_ci(d['loss']['lo'][i], d['loss']['hi'][i])}"
            for d in ut["modes"].values()
        ]
        cells += [
            f"{d['gap']['point'][i]:+.4f} {_ci(d['gap']['lo'][i], d['gap']['hi'][i], sign=True)}"
            for d in ut["modes"].values()
            if "gap" in d
        ]
        lines.append(f"| {f:g}x | {f * tpp:g} | " + " | ".join(cells) + " |")
    for m, d in ut["modes"].items():
        if "gap_change" in d:
            c = d["gap_change"]
            verdict = (
                "the gap grows with more training"
                if c["lo"] > 0
                else "the gap shrinks with more training: part of the measured cost is slower "
                "learning"
                if c["hi"] < 0
                else "no change of the gap distinguishable from zero"
            )
            lines += [
                "",
                f"{m}: gap at {ut['factors'][-1]:g}x minus gap at 1x = "
                f"**{c['point']:+.4f} {_ci(c['lo'], c['hi'], sign=True)}**: {verdict}.",
            ]
    return [*lines, ""]


def _sweep_section(doc: dict[str, Any]) -> list[str]:
    sweeps = doc["analysis"]["sweeps"]
    if not sweeps:
        return []
    lrs = next(iter(sweeps.values()))["lrs"]
    lines = [
        f"## Learning-rate sweeps (validation split, proxy `{doc['protocol']['proxy']['name']}`)",
        "",
        "One lr per mode, the lowest validation loss averaged over seeds (pooled: choosing per "
        "seed would fit each seed's noise); every seed's curve is in the plot.",
        "",
        "| mode | seed | " + " | ".join(f"lr {x:g}" for x in lrs) + " | best |",
        "|---|---|" + "---|" * (len(lrs) + 1),
    ]
    for mode, s in sweeps.items():
        for seed, row, best in zip(s["seeds"], s["val_loss"], s["per_seed_best_lr"]):
            cells = [f"{v:.4f}" if v is not None else "diverged" for v in row]
            lines.append(f"| {mode} | {seed} | " + " | ".join(cells) + f" | {best:g} |")
        cells = [f"**{v:.4f}**" if v is not None else "-" for v in s["mean_val_loss"]]
        edge = " **(at the grid's edge: the optimum may lie outside)**" if s["at_edge"] else ""
        lines.append(
            f"| {mode} | mean | " + " | ".join(cells) + f" | **{s['chosen_lr']:g}**{edge} |"
        )
    return [*lines, ""]


def _transfer_section(doc: dict[str, Any]) -> list[str]:
    tr = doc["analysis"].get("transfer") or {}
    if not tr:
        return []
    lines = ["## muP transfer check (largest size, validation split)", ""]
    for mode, t in tr.items():
        if not t.get("complete"):
            lines.append(f"- {mode}: not complete (runs missing).")
            continue
        means = ", ".join(
            f"lr {x:g}: {v:.4f}" if v is not None else f"lr {x:g}: diverged"
            for x, v in zip(t["lrs"], t["mean_val_loss"])
        )
        w = t["within_one_step"]
        verdict = (
            "yes"
            if w
            else "no"
            if w is False
            else "not determined (the size's own optimum is at the edge of the re-sweep, so it "
            "may lie further out)"
        )
        lines.append(
            f"- {mode}: transferred lr {t['transferred_lr']:g}; re-sweep at {t['size']} "
            f"(seeds {t['seeds']}) gives {means}; own optimum {t['own_optimum']:g} "
            f"({t['steps_from_transferred']:+d} grid steps). Transferred lr within one grid step "
            f"of the size's own optimum: **{verdict}**."
        )
    return [*lines, ""]


def caveats(doc: dict[str, Any]) -> list[str]:
    """The caveats, each derived from the numbers it qualifies."""
    an, proto = doc["analysis"], doc["protocol"]
    out = []
    n = [v for f in an["losses"].values() for v in f["n"]]
    if n:
        out.append(
            f"{len(an['complete_sizes'])} sizes spanning {math.log10(max(n) / min(n)):.2f} "
            f"decades of N ({_fmt_n(min(n))}-{_fmt_n(max(n))}): a slope over a short span, and "
            "a 3-parameter law per mode is barely constrained"
        )
    out += [c for mode, g in an["gaps"].items() if (c := _shape_caveat(mode, g))]
    tpp = proto["tokens_per_param"]
    if tpp < 20:
        out.append(
            f"**{tpp:g} tokens per parameter, below Chinchilla's 20** (forced by the preset's "
            "time budget): the models are undertrained; the undertraining check measures how "
            "much the gap moves with 2x and 4x the budget"
        )
    out.append(
        f"{len(proto['seeds'])} training seeds per configuration: the seed level of the "
        "interval rests on few samples (the t quantile with few degrees of freedom is what "
        "keeps its coverage near nominal; see the coverage study)"
    )
    edge = [m for m, s in an["sweeps"].items() if s["at_edge"]]
    if edge:
        out.append(f"the chosen lr of {', '.join(edge)} is at the edge of the sweep grid")
    for m, t in (an.get("transfer") or {}).items():
        if t.get("complete") and t["within_one_step"] is not True:
            out.append(f"muP transfer for {m} is not confirmed at the largest size (see the check)")
        if t.get("complete") and len(t["seeds"]) < len(proto["seeds"]):
            out.append(f"the transfer check of {m} used seed(s) {t['seeds']} only")
    if an.get("fit", {}).get("at_bounds"):
        out.append(
            f"joint-fit parameters on a bound ({', '.join(an['fit']['at_bounds'])}): the "
            "functional form, not the data, decides them"
        )
    if doc["data"] == "shakespeare":
        out.append(
            "byte-level Shakespeare (5 MB, 256 symbols) is not web text; validation and test "
            "are two works each (a play and a poem), so 'test sequences' are windows of few "
            "documents and the sequence level understates document-to-document variation"
        )
    proxy = doc["protocol"]["proxy"]["name"]
    out.append(
        f"the lr was tuned on {proxy} at its own token budget and transferred by muP to the "
        "other sizes; muP transfers across width, not across depth or training length"
    )
    return out


def _shape_caveat(mode: str, g: dict[str, Any]) -> str | None:
    """A gap per size that peaks before the largest size: a straight-line slope then averages a
    rise and a fall, so the per-size gaps, not the slope alone, describe it."""
    points, sizes = g["gap"]["point"], g["sizes"]
    peak = int(np.argmax(points))
    if peak == len(points) - 1 or len(points) < 3:
        return None
    after = points[peak:]
    falls = all(b < a for a, b in itertools.pairwise(after))
    return (
        f"the {mode} gap is not monotone in size: largest at {sizes[peak]} "
        f"({points[peak]:+.4f}), then {'smaller at every larger size' if falls else 'lower'} "
        f"down to {points[-1]:+.4f} at {sizes[-1]}; the slope over all sizes averages that "
        "rise and fall, so read the gap per size before the slope"
    )


def _protocol_section(doc: dict[str, Any], pct: int) -> list[str]:
    proto = doc["protocol"]
    sizes = ", ".join(f"{s['name']} ({s['n_layers']}x{s['d_model']})" for s in proto["sizes"])
    return [
        "## Protocol",
        "",
        f"- Modes: {', '.join(doc['modes'])}; muP with base width {proto['base_width']}; "
        f"sizes {sizes}.",
        f"- Data splits: {proto['splits']}. {proto['eval_sequences_per_split']} windows of "
        f"{proto['seq_len']} tokens per held-out split (seed {proto['eval_seed']}), the same "
        "for every run.",
        f"- Seeds {proto['seeds']} for every (mode, size): the seed sets initialisation and "
        "data order.",
        f"- Token budget: {proto['token_rule']}; tokens_per_param = {proto['tokens_per_param']:g}. "
        f"Batch {proto['batch_size']} x {proto['seq_len']}; warmup {proto['warmup_frac']:.0%} "
        "then cosine to 10%.",
        f"- lr grid {proto['lrs']} (factor {proto['lr_step']:g}) on the proxy "
        f"`{proto['proxy']['name']}`, every seed; the proxy's run at the chosen lr is also its "
        "size run.",
        f"- Undertraining check at {proto['undertrain_size']} with factors "
        f"{proto['undertrain_factors']}; transfer check at the largest size, grid steps "
        f"{proto['transfer_steps']} around the transferred lr, seeds {proto['transfer_seeds']}.",
        f"- Intervals: {pct}%, {proto['n_boot']} bootstrap replicates per level.",
        "- The gpt2 preset's per-device memory (the planner against XLA's memory analysis of "
        "the sharded step, the four GPT-2 sizes on simulated meshes) is in "
        "results/memory_plan.md (`python -m experiments.memory_check`), its pod plan in "
        "`python -m experiments.scaling --preset gpt2 --dry-run --accelerator v4-32`.",
        "",
    ]


def _runs_section(doc: dict[str, Any]) -> list[str]:
    lines = [
        "## Every run",
        "",
        "| mode | role | size | seed | budget | lr | steps | tokens | val loss | test loss | "
        "wall (s) | CPU (s) | load at start |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        if r.get("same_run_as_sweep"):
            continue
        ok = r["status"] == "ok"
        lines.append(
            f"| {r['mode']} | {r['role']} | {r['size']} | {r.get('seed', 0)} | "
            f"{r.get('budget', 1):g}x | {r['lr']:g} | {r['steps']} | {r['tokens']:,} | "
            + (f"{r['val_loss']:.4f} | {r['test_loss']:.4f}" if ok else f"**{r['status']}** | -")
            + f" | {r.get('wall_s', float('nan')):.0f} | {r.get('cpu_s', float('nan')):.0f} | "
            f"{_load(r.get('load_start'))} |"
        )
    return [*lines, ""]
