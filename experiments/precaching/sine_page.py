"""The lagged-sine page: the summary over seeds, the probe heatmaps, the breadcrumb curves and
the results section, from a run's results alone (``--from-json`` redraws them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import epilogue
from myojax.bootstrap import mean_t_interval
from myojax.provenance import load_summary

FIGURE, SWITCH_FIGURE = "precaching_sine.png", "precaching_sine_switch.png"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (p, mode): loss mean ± 95% interval over seeds, trivial losses, mean probe R²."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["p"], r["mode"]), []).append(r)
    out = {}
    for (p, mode), rows in groups.items():
        out[f"p={p} {mode}"] = {
            "p": p,
            "mode": mode,
            "seeds": len(rows),
            "loss": mean_t_interval([r["loss"] for r in rows]),
            "loss_per_seed": [r["loss"] for r in rows],
            "trivial_zero": float(np.mean([r["trivial"]["zero"] for r in rows])),
            "trivial_x_n": float(np.mean([r["trivial"]["x_n"] for r in rows])),
            "r2": np.mean([r["probes"]["r2"] for r in rows], axis=0).tolist(),
            "control_r2": np.mean([r["probes"]["control_r2"] for r in rows], axis=0).tolist(),
        }
    return out


def plot(summary: dict[str, Any], settings: dict[str, Any], path: Path) -> None:
    """One heatmap (site × lag, mean R² over seeds) per mode and p."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(e["mode"] for e in summary.values()))
    ps = list(settings["ps"])
    fig, axes = plt.subplots(
        len(modes), len(ps), figsize=(3.2 * len(ps), 1.5 + 1.8 * len(modes)), squeeze=False
    )
    sites = ["embed"] + [f"L{i + 1}" for i in range(settings["n_layers"])]
    image = None
    for row, mode in enumerate(modes):
        for col, p in enumerate(ps):
            ax = axes[row][col]
            entry = summary.get(f"p={p} {mode}")
            ax.set_xticks([]), ax.set_yticks([])
            if entry is None:
                ax.axis("off")
                continue
            image = ax.imshow(
                np.asarray(entry["r2"]), vmin=0, vmax=1, cmap="viridis", aspect="auto"
            )
            ax.set_yticks(range(len(sites)), sites)
            ax.set_xticks(range(0, settings["probe_lags"] + 1, 2))
            ax.set_title(f"{mode}, p={p} ({entry['seeds']} seeds)", fontsize=9)
            if row == len(modes) - 1:
                ax.set_xlabel("lag i of sin(k·x_{n-i})")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="held-out R²")
    fig.subplots_adjust(hspace=0.7, wspace=0.35)
    fig.suptitle("Probe R² from the residual stream at n (mean over seeds)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summarized(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with the summary recomputed from its runs (a saved JSON's too)."""
    runs = sorted(results["runs"], key=lambda r: (r["p"], r["mode"], r["seed"]))
    return {**results, "summary": summarize(runs)}


def plot_page(results: dict[str, Any], folder: Path) -> list[str]:
    """The probe heatmaps and, when the run has switched modes, the switch curves."""
    results = _summarized(results)
    plot(results["summary"], results["settings"], Path(folder) / FIGURE)
    if not any("->" in r["mode"] for r in results["runs"]):
        return [FIGURE]
    plot_switches(results, Path(folder) / SWITCH_FIGURE)
    return [FIGURE, SWITCH_FIGURE]


def plot_switches(results: dict[str, Any], path: Path) -> None:
    """Training loss (50-step means, over seeds) of the switched runs and their references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["settings"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for mode in ("standard", "myopic", "standard->myopic", "myopic->standard"):
        rows = [r for r in results["runs"] if r["p"] == s["switch_p"] and r["mode"] == mode]
        if rows:
            curve = np.mean([r["train_loss_curve"] for r in rows], axis=0)
            ax.plot(np.arange(len(curve)) * 50, curve, label=mode, ls="--" if "->" in mode else "-")
    ax.axvline(s["steps"] // 2, color="gray", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step (switch at the vertical line)")
    ax.set_ylabel("training Huber loss")
    ax.set_title(f"Breadcrumbs vs pre-caching, p = {s['switch_p']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def switch_summary(results: dict[str, Any], figure_prefix: str = "") -> list[str]:
    """The breadcrumbs section: losses around the switch and the share of the advantage kept."""
    s, summary = results["settings"], results["summary"]
    p = s["switch_p"]
    get = lambda mode: summary.get(f"p={p} {mode}")
    std, myo, s2m, m2s = (
        get(m) for m in ("standard", "myopic", "standard->myopic", "myopic->standard")
    )
    if None in (std, myo, s2m, m2s):
        return []
    half = s["steps"] // 2
    lines = [
        "",
        f"### Breadcrumbs versus pre-caching (p = {p}, mode switched at step {half} of "
        f"{s['steps']})",
        "",
        "| run | held-out Huber | training loss just before the switch | at the end |",
        "|---|---|---|---|",
    ]
    for mode in ("standard", "myopic", "standard->myopic", "myopic->standard"):
        rows = [r for r in results["runs"] if r["p"] == p and r["mode"] == mode]
        before = np.mean([r["train_loss_curve"][half // 50 - 1] for r in rows])
        end = np.mean([r["train_loss_curve"][-1] for r in rows])
        e = get(mode)
        lines.append(
            f"| {mode} | {e['loss'][0]:.4f} ± {e['loss'][1]:.4f} | {before:.4f} | {end:.4f} |"
        )
    gap = myo["loss"][0] - std["loss"][0]
    if gap > 0:
        kept = (myo["loss"][0] - s2m["loss"][0]) / gap
        gained = (myo["loss"][0] - m2s["loss"][0]) / gap
        lines += [
            "",
            f"Standard's advantage over myopic at p = {p}: {gap:.4f} (held-out Huber). A model "
            f"trained standard and then myopic keeps {100 * kept:.0f}% of it; one trained myopic "
            f"and then standard recovers {100 * gained:.0f}% (means over seeds; the share that "
            "is lost after the switch is what needs the gradient through attention).",
        ]
    else:
        lines += [
            "",
            f"At p = {p} standard is not better than myopic ({gap:+.4f}): no advantage"
            " to attribute.",
        ]
    return [*lines, "", f"![switch curves]({figure_prefix}{SWITCH_FIGURE})"]


def report(results: dict[str, Any], figure_prefix: str = "") -> str:
    """The results section (from results carrying their summary)."""
    s, summary, env = results["settings"], results["summary"], results["environment"]
    first = min(s["probe_lags"], s["seq_len"] // 2)
    lines = [
        "## The lagged-sine task",
        "",
        f"Command: `{results['command']}`; wall {results['wall_s']:.0f} s, process CPU "
        f"{results['cpu_s']:.0f} s; {load_summary(env, results.get('environment_start'))}. "
        f"Runs finished: "
        f"{len(results['runs'])} of {results.get('runs_planned', len(results['runs']))}.",
        "",
        f"Task: T = {s['seq_len']}, y_n = z_n·Σ_(i=1..{s['n_lags']}) sin({s['freq']:g}·x_(n−i)) "
        f"+ (1 − z_n)·x_n. Model: {s['n_layers']} layers, d_model {s['d_model']}, "
        f"{s['n_heads']} heads, ReLU, linear input and readout, Huber loss; {s['steps']} steps × "
        f"batch {s['batch_size']}, lr {s['lr']}, {s['seeds']} seeds. Held-out Huber loss on "
        f"{s['eval_sequences']} fresh sequences, mean ± 95% t-interval over seeds; the trivial "
        "predictors (0 and x_n) on the same sequences.",
        "",
        "| p | mode | held-out Huber | per seed | predict 0 | predict x_n "
        "| max R² of sin(k·x_(n−i)), i = 1..lags, last layer |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary.values():
        last = np.asarray(e["r2"])[-1, 1 : s["n_lags"] + 1]
        lines.append(
            f"| {e['p']} | {e['mode']} | {e['loss'][0]:.4f} ± {e['loss'][1]:.4f} "
            f"| {', '.join(f'{v:.4f}' for v in e['loss_per_seed'])} "
            f"| {e['trivial_zero']:.4f} | {e['trivial_x_n']:.4f} | {last.max():.2f} |"
        )
    lines += [
        "",
        f"Probe R² (held-out sequences, positions n ≥ {first}) from the residual stream at n to "
        f"sin({s['freq']:g}·x_(n−i)), by site (rows: embedding, after each layer) and lag i = "
        f"0..{s['probe_lags']}, mean over seeds; the shuffled-label control's largest mean R² "
        "is given per entry.",
        "",
    ]
    for key, e in summary.items():
        r2 = np.asarray(e["r2"])
        control = float(np.max(e["control_r2"]))
        lines.append(f"- {key}: control max R² {control:.3f}")
        for site, row in zip(["embed"] + [f"L{i + 1}" for i in range(s["n_layers"])], r2):
            lines.append(f"  - {site}: " + " ".join(f"{v:.2f}" for v in row))
    lines += [
        "",
        f"![lagged-sine probes]({figure_prefix}{FIGURE})",
        *switch_summary(results, figure_prefix),
        "",
    ]
    return "\n".join(lines)


PAGE = epilogue.results_page(
    "precaching_sine", lambda results, prefix: report(_summarized(results), prefix), plot_page
)
