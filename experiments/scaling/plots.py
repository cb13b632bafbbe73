"""The study's PNG plots (matplotlib, Agg), drawn from its results records alone.

Every point drawn is read from the results, never recomputed from run directories, so the
plots cannot disagree with ``results.json``. ``available`` names the plots the results
support without drawing them (the report lists them), ``plot_all`` draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.scaling import records as rec
from experiments.scaling import sections as sec
from experiments.scaling.formats import ci_text

PLOTS = {
    "loss": "loss_vs_params.png",
    "gap": "gap_vs_params.png",
    "sweep": "lr_sweep.png",
    "undertrain": "undertrain.png",
    "position": "per_position_largest.png",
}
COLORS = {"standard": "tab:blue", "myopic": "tab:red", "myopic_kv": "tab:purple"}
Spread = Callable[[np.ndarray, int], np.ndarray]  # (x, seed index) -> where that seed's dot goes


def _log_x(ax: Any) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short spans


def _jitter(n_seeds: int) -> Spread:
    """Spread the seeds' points a little along log N so that they do not hide each other."""
    return lambda n, s: n * 1.025 ** (s - (n_seeds - 1) / 2)


def _seeds_and_means(
    ax: Any,
    x: np.ndarray,
    per_seed: Sequence[Sequence[float]],
    iv: sec.Intervals,
    spread: Spread,
    *,
    color: str | None,
    label: str,
    fmt: str = "o",
) -> np.ndarray:
    """Every seed's value as a small dot beside the mean with its interval; returns the means."""
    seeds = np.array(per_seed)  # [x, seed]
    for s in range(seeds.shape[1]):
        ax.plot(spread(x, s), seeds[:, s], ".", color=color, alpha=0.45)
    pt, lo, hi = np.array(iv.point), np.array(iv.lo), np.array(iv.hi)
    ax.errorbar(x, pt, yerr=[pt - lo, hi - pt], fmt=fmt, color=color, capsize=3, label=label)
    return pt


def _loss(ax: Any, res: rec.StudyResults, pct: int) -> None:
    fit = res.analysis.fit
    for mode in res.modes:
        f = res.analysis.losses[mode]
        n, c = np.array(f.n), COLORS.get(mode)
        label = f"{mode}: seed mean, {pct}% CI (dots: seeds)"
        _seeds_and_means(ax, n, f.per_seed, f, _jitter(len(f.per_seed[0])), color=c, label=label)
        if fit:
            p = fit.point
            grid = np.geomspace(n.min() / 1.3, n.max() * 1.3, 100)
            ax.plot(
                grid,
                p.E + p.A[mode] * grid ** -p.alpha[mode],
                color=c,
                lw=1,
                label=f"shared-E fit: alpha={p.alpha[mode]:.3f}",
            )
    _log_x(ax)
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("test loss (nats/byte)")
    ax.set_title(f"{res.preset} preset: test loss per size, every seed")
    ax.legend(fontsize=7)


def _gap(ax: Any, res: rec.StudyResults, pct: int) -> None:
    for mode, g in res.analysis.gaps.items():
        n, c = np.array(g.n), COLORS.get(mode)
        label = f"{mode} - standard: mean, {pct}% CI (dots: seeds)"
        spread = _jitter(len(g.per_seed[0]))
        pt = _seeds_and_means(ax, n, g.per_seed, g.gap, spread, color=c, label=label)
        if sl := g.slope_per_decade:
            x = np.log10(n)
            line = pt.mean() + sl.point * (np.log10(n) - x.mean())
            ax.plot(
                n,
                line,
                "--",
                color=c,
                lw=1,
                label=f"slope {sl.point:+.4f}/decade {ci_text(sl.lo, sl.hi, sign=True)}",
            )
    ax.axhline(0, color="k", lw=0.5)
    _log_x(ax)
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("test-loss gap (nats/byte)")
    ax.set_title("cost of myopia per size (paired by seed and test sequence)")
    ax.legend(fontsize=7)


def _nan(row: Sequence[float | None]) -> list[float]:
    return [np.nan if v is None else v for v in row]


def _sweep(axes: Any, res: rec.StudyResults) -> None:
    transfer = res.analysis.transfer or {}
    for mode, s in res.analysis.sweeps.items():
        c = COLORS.get(mode)
        lrs = np.array(s.lrs)
        for i, row in enumerate(s.val_loss):
            label = f"{mode}: each seed" if i == 0 else None
            axes[0].plot(lrs, np.array(_nan(row)), ".-", color=c, lw=0.6, alpha=0.5, label=label)
        edge = " (grid edge!)" if s.at_edge else ""
        mean = np.array(_nan(s.mean_val_loss))
        axes[0].plot(lrs, mean, "o-", color=c, lw=2, label=f"{mode}: seed mean{edge}")
        axes[0].axvline(s.chosen_lr, color=c, ls=":", lw=1)
        t = transfer.get(mode)
        if t is not None and t.complete:
            for i, row in enumerate(t.val_loss):
                label = f"{mode} (seed {t.seeds[i]})"
                axes[1].plot(t.lrs, _nan(row), "o-", color=c, label=label)
            axes[1].axvline(t.transferred_lr, color=c, ls=":", lw=1)
    for ax in axes:
        _log_x(ax)
        ax.set_xlabel("peak learning rate (muP)")
        ax.set_ylabel("validation loss")
        ax.legend(fontsize=7)
    axes[0].set_title(f"lr sweep on the proxy ({res.protocol.proxy.name})")
    axes[1].set_title("transfer check: largest size around the transferred lr (dotted)")


def _undertrain(ax: Any, res: rec.StudyResults, pct: int) -> None:
    ut = res.analysis.undertrain
    f = np.array(ut.factors)
    spread: Spread = lambda x, s: x * 1.03 ** (s - 1)
    for mode, d in ut.modes.items():
        if d.gap is None:
            continue
        label = f"{mode} - standard: mean, {pct}% CI (dots: seeds)"
        color = COLORS.get(mode)
        _seeds_and_means(ax, f, d.per_seed_gap, d.gap, spread, color=color, label=label, fmt="o-")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(f, [f"{x:g}x" for x in f])
    ax.set_xlabel(f"token budget (x {res.protocol.tokens_per_param:g} tokens/param)")
    ax.set_ylabel("test-loss gap (nats/byte)")
    ax.set_title(f"undertraining check at {ut.size}")
    ax.legend(fontsize=7)


def _largest_runs(res: rec.StudyResults) -> list[rec.RunRecord]:
    """The finished size runs of the largest complete size that kept per-position losses."""
    largest = res.analysis.complete_sizes[-1:]
    return [
        r
        for r in res.runs
        if largest
        and r.role == "size"
        and r.size == largest[0]
        and r.ok
        and r.test_loss_per_position is not None
    ]


def _position(axes: Any, res: rec.StudyResults) -> None:
    ax, ax2 = axes
    rows, modes = _largest_runs(res), res.modes
    curves = {m: np.mean([r.test_loss_per_position for r in rows if r.mode == m], 0) for m in modes}
    for mode, pp in curves.items():
        ax.plot(np.arange(len(pp)), pp, color=COLORS.get(mode), label=mode)
        if mode != modes[0]:
            diff = pp - curves[modes[0]]
            ax2.plot(np.arange(len(pp)), diff, color=COLORS.get(mode), label=f"{mode} - {modes[0]}")
    ax.set_ylabel("test loss (mean over seeds)")
    ax.set_title(f"per-position test loss, largest size ({res.analysis.complete_sizes[-1]})")
    ax.legend(fontsize=8)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_xlabel("position t (context length t+1)")
    ax2.set_ylabel("difference")
    ax2.legend(fontsize=8)


def available(res: rec.StudyResults) -> list[str]:
    """The keys of ``PLOTS`` that the results support, in drawing order."""
    an = res.analysis
    ut = an.undertrain
    return [
        key
        for key, present in (
            ("loss", bool(an.losses)),
            ("gap", bool(an.gaps)),
            ("sweep", bool(an.sweeps)),
            ("undertrain", ut is not None and ut.complete),
            ("position", bool(_largest_runs(res))),
        )
        if present
    ]


def plot_names(res: rec.StudyResults) -> list[str]:
    """The file names ``plot_all`` writes for these results."""
    return [PLOTS[key] for key in available(res)]


def plot_all(res: rec.StudyResults, out: Path) -> list[str]:
    """Write the PNGs that the results support into ``out``; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pct = round(100 * res.analysis.level)
    draw = {
        "loss": ((6.6, 4.6), {}, lambda ax: _loss(ax, res, pct)),
        "gap": ((6.6, 4.6), {}, lambda ax: _gap(ax, res, pct)),
        "sweep": ((10, 4.2), {"ncols": 2}, lambda axes: _sweep(axes, res)),
        "undertrain": ((6.4, 4.4), {}, lambda ax: _undertrain(ax, res, pct)),
        "position": ((6.4, 6), {"nrows": 2, "sharex": True}, lambda axes: _position(axes, res)),
    }
    written = []
    for key in available(res):
        size, layout, plot = draw[key]
        fig, axes = plt.subplots(figsize=size, **layout)
        plot(axes)
        fig.tight_layout()
        fig.savefig(out / PLOTS[key], dpi=110)
        plt.close(fig)
        written.append(PLOTS[key])
    return written
