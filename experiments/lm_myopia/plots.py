"""The page's figures, drawn from ``LmMyopiaResults`` alone (``--from-json`` redraws them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.lm_myopia.records import LmMyopiaResults, from_json

SACRIFICE = "sacrifice.png"
PROBES = "probes.png"


def _band(ax, intervals, label: str) -> None:
    point = np.array([iv.point for iv in intervals])
    lo, hi = (np.array([getattr(iv, f) for iv in intervals]) for f in ("lo", "hi"))
    t = np.arange(len(point))
    ax.fill_between(t, lo, hi, alpha=0.2)
    ax.plot(t, point, lw=1.2, label=label)


def sacrifice(r: LmMyopiaResults, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.2), width_ratios=(3, 3, 2))
    for s in r.sacrifice:
        _band(a1, s.gap_by_position, s.size)
        _band(a2, s.fraction_better_by_position, s.size)
    a1.axhline(0, color="grey", lw=0.8)
    a1.set(xlabel="position t", ylabel="myopic − standard loss (nats)", title="gap per position")
    a2.axhline(0.5, color="grey", lw=0.8)
    a2.set(xlabel="position t", ylabel="share of tokens", title="tokens myopic predicts better")
    names = [c.name for c in r.sacrifice[0].by_class]
    width = 0.8 / len(r.sacrifice)
    for i, s in enumerate(r.sacrifice):
        mean = np.array([c.gap.point for c in s.by_class])
        err = np.abs(np.array([[c.gap.lo, c.gap.hi] for c in s.by_class]).T - mean)
        a3.bar(np.arange(len(names)) + i * width, mean, width, yerr=err, capsize=2, label=s.size)
    a3.axhline(0, color="grey", lw=0.8)
    a3.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, fontsize=8)
    a3.set(ylabel="myopic − standard loss (nats)", title="gap by class of the predicted token")
    for ax in (a1, a2, a3):
        ax.legend(fontsize=7)
    fig.suptitle("95% crossed intervals over seeds and test sequences", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def probes(r: LmMyopiaResults, path: Path) -> None:
    import matplotlib.pyplot as plt

    n = len(r.sizes)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), sharey=True, squeeze=False)
    ks = np.arange(1, len(r.probes[0].chance) + 1)
    for ax, size in zip(axes[0], r.sizes, strict=True):
        for mode, site, style in (("standard", -1, "-"), ("myopic", -1, "-"), ("standard", 0, ":")):
            rows = np.array(
                [p.accuracy[site] for p in r.probes if p.size == size and p.mode == mode]
            )
            label = "embedding" if site == 0 else f"{mode}, last layer"
            ax.errorbar(ks, rows.mean(0), yerr=rows.std(0), ls=style, marker="o", ms=3, label=label)
        ax.plot(
            ks, np.mean([p.chance for p in r.probes], axis=0), color="grey", lw=0.8, label="chance"
        )
        ax.set(title=size, xlabel="k (token s + k)")
    axes[0][0].set_ylabel("probe accuracy (held out)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Future-token probes: mean over seeds, bars one SD", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(obj: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    r = from_json(obj)
    sacrifice(r, Path(folder) / SACRIFICE)
    probes(r, Path(folder) / PROBES)
    return [SACRIFICE, PROBES]
