"""The HI-ADS figure: cooperation curves of the paper's Q-learner and PBT, every learner's
excess over its swapped twin, and the β sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.hiads.analysis import MARGIN, Excess, Row
from experiments.hiads.settings import SWEEP_BETAS

FIGURE = "hiads.png"
COLOURS = {
    "FAIL": "tab:red",
    "FAIL, small": "tab:pink",
    "PASS": "tab:green",
    "inconclusive": "tab:orange",
}


def _curves(ax, rows: Sequence[Row], names: Sequence[str], title: str) -> None:
    by_name = {r.setting.name: r for r in rows}
    for name in names:
        for suffix, style in (("", "-"), ("_swap", ":")):
            row = by_name.get(name + suffix)
            if row is None:
                continue
            steps = row.setting.steps
            x = (np.arange(len(row.curve_mean)) + 0.5) * steps / len(row.curve_mean)
            (line,) = ax.plot(x, row.curve_mean, style, label=name + suffix)
            ax.fill_between(x, row.curve_lo, row.curve_hi, color=line.get_color(), alpha=0.15)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("mean P(cooperate)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="center right")


def _forest(ax, excess: Sequence[Excess]) -> None:
    tests = [e for e in excess if not e.row.setting.family.startswith("β")]
    y = np.arange(len(tests))[::-1]
    for yi, e in zip(y, tests, strict=True):
        ax.errorbar(e.mean, yi, xerr=[[e.mean - e.lo], [e.hi - e.mean]], fmt="o", ms=3,
                    color=COLOURS[e.verdict])  # fmt: skip
    ax.axvline(0, color="k", lw=0.6)
    ax.axvline(MARGIN, color="gray", lw=0.6, ls=":")
    ax.set_yticks(y, [e.row.setting.name for e in tests], fontsize=5)
    ax.set_xlabel("cooperation minus swapped twin (95% CI); red FAIL, green PASS")
    ax.set_title("excess over the swapped twin", fontsize=10)


def _beta(ax, excess: Sequence[Excess]) -> None:
    by_name = {e.row.setting.name: e for e in excess}
    for label, stem, base in (
        ("Q-learning (paper)", "q_paper_beta_", "q_paper"),
        ("PBT (paper, n 100, K 10)", "pbt_paper_n100_k10_beta_", "pbt_paper_n100_k10"),
    ):
        points = [(b, by_name.get(f"{stem}{b:g}")) for b in SWEEP_BETAS]
        points.append((-0.5, by_name.get(base)))
        points = sorted((b, e) for b, e in points if e is not None)
        if not points:
            continue
        b = np.array([p[0] for p in points])
        m = np.array([p[1].mean for p in points])
        err = np.array([[p[1].mean - p[1].lo, p[1].hi - p[1].mean] for p in points]).T
        ax.errorbar(b, m, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(-1, color="gray", lw=0.6, ls=":")
    ax.set_xlabel("β (cooperating pays 1 + β per step in the long run)")
    ax.set_ylabel("excess cooperation over the swapped twin")
    ax.set_title("β sweep", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot(rows: Sequence[Row], excess: Sequence[Excess], folder: Path) -> list[str]:
    """Four panels; returns the file written in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    q_names = ("q_paper", "q_alpha_0.1", "q_eps_0.01", "q_prior_0")
    _curves(axes[0, 0], rows, q_names, "Q-learning, γ = 0 (dotted: swapped twin)")
    pbt_names = [f"pbt_paper_n1000_k{k}" for k in (0, 1, 10, 100)]
    _curves(axes[0, 1], rows, pbt_names, "PBT, paper's rules, 1000 agents (dotted: swapped)")
    _forest(axes[1, 0], excess)
    _beta(axes[1, 1], excess)
    fig.suptitle("HI-ADS unit test: bands and intervals are 95% bootstrap over seeds")
    fig.tight_layout()
    fig.savefig(Path(folder) / FIGURE, dpi=100)
    plt.close(fig)
    return [FIGURE]
