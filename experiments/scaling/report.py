"""Rendering a scaling study's ``results.json``: report.md and PNG plots (matplotlib, Agg).

Every number and every point drawn here is read from the results document, never recomputed
from run directories, so the report and the plots cannot disagree with ``results.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

PLOTS = {
    "loss": "loss_vs_params.png",
    "gap": "gap_vs_params.png",
    "position": "per_position_largest.png",
    "sweep": "lr_sweep.png",
}
COLORS = {"standard": "tab:blue", "myopic": "tab:red", "myopic_kv": "tab:purple"}


def _fmt_n(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def _ci(lo: float, hi: float, digits: int = 4) -> str:
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _size_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    order = {s["name"]: i for i, s in enumerate(doc["protocol"]["sizes"])}
    rows = [r for r in doc["runs"] if r["role"] == "size"]
    return sorted(rows, key=lambda r: (doc["modes"].index(r["mode"]), order[r["size"]]))


# ----------------------------------------------------------------------------------------------
# Plots


def _log_x(ax: Any) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short spans


def plot_all(doc: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs that the document supports; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    an = doc["analysis"]
    modes = doc["modes"]

    # Loss vs non-embedding parameters, with the fitted curves (and their extrapolation band).
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for mode in modes:
        f = an["fits"].get(mode)
        if not f:
            continue
        n, loss = np.array(f["n"]), np.array(f["loss"])
        lo, hi = np.array(f["loss_ci"])
        c = COLORS.get(mode)
        ax.errorbar(
            n, loss, yerr=[loss - lo, hi - loss], fmt="o", color=c, label=f"{mode} (held-out)"
        )
        if "fit" in f:
            grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
            fit = f["fit"]
            ax.plot(
                grid,
                fit["E"] + fit["A"] * grid ** -fit["alpha"],
                color=c,
                lw=1,
                label=f"fit: E={fit['E']:.3f}, alpha={fit['alpha']:.3f}",
            )
    _log_x(ax)
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(
        f"{doc['preset']} preset: L(N) = E + A N^-alpha, {int(100 * an['level'])}% bootstrap CIs"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PLOTS["loss"], dpi=110)
    plt.close(fig)
    written.append(PLOTS["loss"])

    if an["gaps"]:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for mode, g in an["gaps"].items():
            n, gap = np.array(g["n"]), np.array(g["gap"])
            lo, hi = np.array(g["ci"])
            c = COLORS.get(mode)
            ax.errorbar(
                n,
                gap,
                yerr=[gap - lo, hi - gap],
                fmt="o",
                color=c,
                label=f"{mode} - standard (measured)",
            )
            fm, fs = an["fits"].get(mode, {}).get("fit"), an["fits"].get("standard", {}).get("fit")
            if fm and fs:
                grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
                curve = (fm["E"] + fm["A"] * grid ** -fm["alpha"]) - (
                    fs["E"] + fs["A"] * grid ** -fs["alpha"]
                )
                ax.plot(grid, curve, color=c, lw=1, label="difference of the fits")
        ax.axhline(0, color="k", lw=0.5)
        _log_x(ax)
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("held-out loss gap (nats/token)")
        ax.set_title("cost of myopia per size (paired bootstrap CIs)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / PLOTS["gap"], dpi=110)
        plt.close(fig)
        written.append(PLOTS["gap"])

    # Per-position loss of the largest size finished in every mode.
    rows = _size_rows(doc)
    ok = {(r["mode"], r["size"]): r for r in rows if r["status"] == "ok"}
    common = [
        s["name"] for s in doc["protocol"]["sizes"] if all((m, s["name"]) in ok for m in modes)
    ]
    if common:
        largest = common[-1]
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.4, 6), sharex=True)
        base = np.array(ok[modes[0], largest]["val_loss_per_position"])
        for mode in modes:
            pp = np.array(ok[mode, largest]["val_loss_per_position"])
            ax.plot(np.arange(len(pp)), pp, color=COLORS.get(mode), label=mode)
            if mode != modes[0]:
                ax2.plot(
                    np.arange(len(pp)),
                    pp - base,
                    color=COLORS.get(mode),
                    label=f"{mode} - {modes[0]}",
                )
        ax.set_ylabel("held-out loss")
        ax.set_title(f"per-position held-out loss, largest size ({largest})")
        ax.legend(fontsize=8)
        ax2.axhline(0, color="k", lw=0.5)
        ax2.set_xlabel("position t (context length t+1)")
        ax2.set_ylabel("difference")
        ax2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / PLOTS["position"], dpi=110)
        plt.close(fig)
        written.append(PLOTS["position"])

    if doc["sweeps"]:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for mode, s in doc["sweeps"].items():
            lrs = np.array(s["lrs"])
            loss = np.array([np.nan if v is None else v for v in s["val_loss"]])
            c = COLORS.get(mode)
            ax.plot(lrs, loss, "o-", color=c, label=mode)
            bad = ~np.isfinite(loss)
            if bad.any():
                ax.plot(
                    lrs[bad],
                    np.full(bad.sum(), np.nanmax(loss)),
                    "x",
                    color=c,
                    ms=10,
                    label=f"{mode}: diverged",
                )
            ax.axvline(s["best_lr"], color=c, ls=":", lw=1)
        _log_x(ax)
        ax.set_xlabel("peak learning rate (muP, base width)")
        ax.set_ylabel("held-out loss of the proxy")
        ax.set_title(f"muP learning-rate sweep on the width-{doc['protocol']['base_width']} proxy")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / PLOTS["sweep"], dpi=110)
        plt.close(fig)
        written.append(PLOTS["sweep"])
    return written


# ----------------------------------------------------------------------------------------------
# report.md


def render_report(doc: dict[str, Any], plots: list[str], *, figure_prefix: str = "") -> str:
    an, proto = doc["analysis"], doc["protocol"]
    pct = round(100 * an["level"])
    train_minutes = (
        sum(r.get("wall_s", 0) for r in doc["runs"] if r["role"] == "sweep" or not _shared(doc, r))
        / 60
    )
    lines = [
        f"# Scaling study: standard vs myopic ({doc['preset']} preset)",
        "",
        f"{doc['description']}.",
        "",
        f"Sum of run wall times (training, checkpointing, evaluation): "
        f"{train_minutes:.1f} min. "
        f"Machine: {doc['environment_start']['platform']}, {doc['environment_start']['cpu_count']} "
        f"CPUs, backend {doc['environment_start']['backend']} (shared with other jobs: see the "
        "load averages).",
        "",
        "| invocation | runs trained | wall time | load avg 1/5/15 min at start -> end |",
        "|---|---|---|---|",
    ]
    for inv in doc.get("invocations", []):
        lines.append(
            f"| `{inv['command']}` | {inv['runs_trained']} | {inv['wall_s'] / 60:.1f} min | "
            f"{_load(inv['environment_start'])} -> {_load(inv['environment_end'])} |"
        )
    lines.append("")

    lines += [
        "## Protocol",
        "",
        f"- Modes: {', '.join(doc['modes'])}. Parametrization: muP with base width "
        f"{proto['base_width']} (proxy `{proto['proxy']['name']}`: {proto['proxy']['n_layers']} "
        f"layers, d_model {proto['proxy']['d_model']}).",
        f"- Learning-rate sweep per mode on the proxy over {proto['lrs']}; the best held-out "
        "loss picks the mode's lr, which every size of that mode then uses.",
        f"- Token budget: {proto['token_rule']['formula']} with ref_tokens = "
        f"{proto['token_rule']['ref_tokens']}, exponent = {proto['token_rule']['exponent']}. "
        f"Batch {proto['batch_size']} x {proto['seq_len']} tokens; warmup "
        f"{proto['warmup_frac']:.0%} then cosine to 10%.",
        f"- Same seed ({proto['seed']}) and data order for every run; held-out loss on the same "
        f"{proto['eval_sequences']} held-out sequences (seed {proto['eval_seed']}), each model "
        "restored from its final orbax checkpoint.",
        f"- Fit: {proto['fit']}. Intervals: {pct}% percentile, {an['n_boot']} replicates, "
        f"{an['bootstrap']}.",
        "",
    ]

    lines += [
        "## Learning-rate sweeps",
        "",
        "| mode | " + " | ".join(f"lr {lr:g}" for lr in proto["lrs"]) + " | best |",
        "|---" * (len(proto["lrs"]) + 2) + "|",
    ]
    for mode, s in doc["sweeps"].items():
        cells = [f"{v:.4f}" if v is not None else st for v, st in zip(s["val_loss"], s["status"])]
        best = f"{s['best_lr']:g}" + (" (edge of grid)" if s["best_at_edge"] else "")
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {best} |")
    lines.append("")

    lines += [
        "## Runs (every size, every mode)",
        "",
        f"| mode | size | layers x width | N (non-emb.) | params | tokens | lr | held-out loss "
        f"[{pct}% CI] | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fits = an["fits"]
    for r in _size_rows(doc):
        if r["status"] == "ok":
            f = fits[r["mode"]]
            i = f["sizes"].index(r["size"])
            loss = f"{r['val_loss']:.4f} {_ci(f['loss_ci'][0][i], f['loss_ci'][1][i])}"
        else:
            loss = f"**{r['status']}**"
        lines.append(
            f"| {r['mode']} | {r['size']} | {r['n_layers']} x {r['d_model']} | "
            f"{r['non_embedding_params']:,} | {r['params']:,} | {r['tokens']:,} | "
            f"{r['lr']:g} | {loss} | {r.get('wall_s', float('nan')):.0f} |"
        )
    lines.append("")
    bad = [r for r in doc["runs"] if r["status"] != "ok"]
    if bad:
        lines += ["**Runs that did not finish normally** (excluded from fits):", ""]
        lines += [
            f"- {r['mode']} {r['role']} {r['size']} lr {r['lr']:g}: {r['status']}"
            + (f" ({r['error']})" if r.get("error") else "")
            for r in bad
        ]
        lines.append("")

    notes: dict[str, list[str]] = {}
    lines += [
        "## Fits L(N) = E + A N^-alpha",
        "",
        f"| mode | E [{pct}% CI] | A [{pct}% CI] | alpha [{pct}% CI] | Huber objective |",
        "|---|---|---|---|---|",
    ]
    for mode, f in fits.items():
        if "fit" not in f:
            lines.append(f"| {mode} | (fewer than 3 finished sizes: no fit) | | | |")
            continue
        p, c = f["fit"], f["fit_ci"]
        notes[mode] = _bound_notes(p)
        lines.append(
            f"| {mode} | {p['E']:.4f} {_ci(*c['E'])} | {p['A']:.4g} "
            f"[{c['A'][0]:.4g}, {c['A'][1]:.4g}] | {p['alpha']:.4f} {_ci(*c['alpha'])} | "
            f"{p['objective']:.2e} |"
        )
    for mode, ns in notes.items():
        lines += [f"\n**{mode}: {n}**" for n in ns]
    lines.append("")

    for mode, g in an["gaps"].items():
        lines += [
            f"## Gap: {mode} - standard",
            "",
            f"| size | N | gap (nats) [{pct}% CI] | relative gap |",
            "|---|---|---|---|",
        ]
        for s, n, v, lo, hi, rel in zip(
            g["sizes"], g["n"], g["gap"], g["ci"][0], g["ci"][1], g["relative"]
        ):
            lines.append(f"| {s} | {_fmt_n(n)} | {v:+.4f} {_ci(lo, hi)} | {100 * rel:+.2f}% |")
        if "trend_per_decade" in g:
            lo, hi = g["trend_ci"]
            verdict = (
                "grows with N"
                if lo > 0
                else "shrinks with N"
                if hi < 0
                else "no trend distinguishable from zero"
            )
            lines += [
                "",
                f"Trend (least-squares slope of the gap against log10 N): "
                f"{g['trend_per_decade']:+.4f} nats per decade {_ci(lo, hi)}: {verdict} "
                "(held-out sampling noise only).",
            ]
        lines.append("")

    if an["extrapolation"]:
        modes = list(an["extrapolation"])
        first = an["extrapolation"][modes[0]]
        head = " | ".join(f"{m} loss [{pct}% CI]" for m in modes)
        gap_modes = [m for m in an["gaps"] if "extrapolated" in an["gaps"][m]]
        head += "".join(f" | gap {m} - standard [{pct}% CI]" for m in gap_modes)
        lines += [
            "## Extrapolation to the GPT-2 sizes",
            "",
            "Both fits evaluated at the GPT-2 non-embedding parameter counts. **Read with "
            "care**: see the caveats below; these are this study's curves carried 2-4 orders "
            "of magnitude beyond the data, not predictions of GPT-2's loss.",
            "",
            f"| model | N | {head} |",
            "|---|---|" + "---|" * (len(modes) + len(gap_modes)),
        ]
        for i, (name, n) in enumerate(zip(first["sizes"], first["n"])):
            cells = [
                f"{an['extrapolation'][m]['loss'][i]:.3f} "
                f"{_ci(an['extrapolation'][m]['ci'][0][i], an['extrapolation'][m]['ci'][1][i], 3)}"
                for m in modes
            ]
            for m in gap_modes:
                x = an["gaps"][m]["extrapolated"]
                cells.append(f"{x['gap'][i]:+.4f} {_ci(x['ci'][0][i], x['ci'][1][i])}")
            lines.append(f"| {name} | {_fmt_n(n)} | " + " | ".join(cells) + " |")
        lines.append("")

    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p}]({figure_prefix}{p})" for p in plots]
        lines.append("")

    lines += ["## What these numbers show and do not show", "", interpretation(doc), ""]
    return "\n".join(lines)


def _bound_notes(p: dict[str, float]) -> list[str]:
    """Say when the optimum sits on a bound of the fit's box: the law is then degenerate."""
    from myojax.scaling_laws import BOUNDS

    notes = []
    if math.log(p["E"]) <= BOUNDS[0][0] + 1e-6:
        notes.append(
            "E is at its lower bound (~0): the data prefer no irreducible floor, so the "
            "fit is a pure power law and its extrapolation keeps falling; intervals are "
            "conditional on this functional form"
        )
    if p["alpha"] <= BOUNDS[2][0] + 1e-9 or p["alpha"] >= BOUNDS[2][1] - 1e-9:
        notes.append(f"alpha is at a bound ({p['alpha']:g}): no power-law decrease is identified")
    return notes


def _shared(doc: dict[str, Any], row: dict[str, Any]) -> bool:
    """A size row that is the same run as a sweep row (its wall time is counted there)."""
    return any(r["role"] == "sweep" and r["run_dir"] == row["run_dir"] for r in doc["runs"])


def _load(env: dict[str, Any]) -> str:
    load = env.get("load_avg_1_5_15")
    return "n/a" if not load else "/".join(f"{x:.1f}" for x in load)


def interpretation(doc: dict[str, Any]) -> str:
    """The honest paragraph, with its claims derived from the numbers it qualifies."""
    an, proto = doc["analysis"], doc["protocol"]
    sizes = proto["sizes"]
    parts = []
    for mode, g in an["gaps"].items():
        signs = [
            "above" if lo > 0 else "below" if hi < 0 else "overlapping" for lo, hi in zip(*g["ci"])
        ]
        n_pos = signs.count("above")
        parts.append(
            f"At every measured size the {mode} model's held-out loss is compared with the "
            "standard "
            f"model's on the same held-out sequences: the gap's {int(100 * an['level'])}% interval "
            f"lies above zero at {n_pos} of {len(signs)} sizes"
            + (f" and below zero at {signs.count('below')}" if "below" in signs else "")
            + "."
        )
        if "trend_ci" in g:
            lo, hi = g["trend_ci"]
            parts.append(
                "The gap's trend with size is "
                + (
                    "positive (the cost of myopia grows with N over this range)"
                    if lo > 0
                    else "negative (the cost of myopia shrinks with N over this range)"
                    if hi < 0
                    else "not distinguishable from zero"
                )
                + f" ({g['trend_per_decade']:+.4f} nats per "
                f"decade, interval [{lo:+.4f}, {hi:+.4f}])."
            )
    edge = [m for m, s in doc["sweeps"].items() if s["best_at_edge"]]
    degenerate = [m for m, f in an["fits"].items() if "fit" in f and _bound_notes(f["fit"])]
    span = max(s["d_model"] for s in sizes) / min(s["d_model"] for s in sizes)
    n_all = [r["non_embedding_params"] for r in doc["runs"] if r["role"] == "size"]
    caveats = [
        f"only {len(sizes)} sizes spanning {max(n_all) / min(n_all):.0f}x in non-embedding "
        f"parameters (width x{span:.1f}, depth fixed per rung as listed), so a 3-parameter fit is "
        "nearly interpolating and E, A and alpha trade off against each other (wide intervals are "
        "expected; their correlation is not shown by marginal intervals)",
        "one training seed per configuration: the intervals cover held-out sampling noise only, "
        "not seed-to-seed training variance, which at these scales can be comparable to the gap",
        f"short training (token budget exponent {proto['token_rule']['exponent']}; larger models "
        "get relatively fewer tokens per parameter when it is below 1), so these are losses of "
        "this budget rule, not of converged or compute-optimal models",
        "the learning rate was tuned on the smallest width and transferred by muP; the proxy's "
        "budget is the smallest model's, and muP does not transfer across training length, so "
        "larger models may be slightly off their optimal lr",
        "the held-out set was also used to pick the lr "
        "(mild selection bias, the same for both modes)",
    ]
    if doc["data"] == "shakespeare":
        caveats.append(
            "byte-level Shakespeare (a few MB, 256 symbols) is not web text: "
            "extrapolated losses are in nats per byte of this corpus and say nothing "
            "direct about GPT-2-sized models on BPE web text, whose depth and data differ"
        )
    if degenerate:
        caveats.append(
            f"the fit of {', '.join(degenerate)} has a parameter on its bound (see the "
            "fit notes), so its extrapolation and the extrapolated gap depend on the "
            "functional form more than on the data"
        )
    if edge:
        caveats.append(
            f"the best lr of {', '.join(edge)} is at the edge of the sweep grid, so the "
            "true optimum may lie outside it"
        )
    return (
        " ".join(parts) + " Caveats: " + "; ".join(caveats) + ". Whether myopia's cost "
        "grows with scale at the scales that matter is therefore not settled by this preset; "
        "it demonstrates the protocol and bounds the effect at small scale."
    )
