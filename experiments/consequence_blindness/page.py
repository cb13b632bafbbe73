"""The consequence-blindness pages: plots and reports of both tasks from their results alone
(``--from-json`` redraws them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments import epilogue
from experiments.consequence_blindness.fib import FIB_METRICS, affine_residual, bootstrap_ci
from experiments.consequence_blindness.linear import REGIMES, Analytic


def _runs(results: dict, rho: float, regime: str) -> list[dict]:
    return [r for r in results["runs"] if r["rho"] == rho and r["regime"] == regime]


def _values(results: dict, rho: float, regime: str, key: str) -> np.ndarray:
    runs = _runs(results, rho, regime)
    if key == "total":
        return np.array([r["z1_mse"] + r["z2_mse"] for r in runs])
    return np.array([r[key] for r in runs])


def _ci(values: np.ndarray, rng: np.random.Generator, sign: str = "") -> str:
    m, lo, hi = bootstrap_ci(values, rng)
    return f"{m:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


def linear_table(results: dict) -> str:
    """The linear task's tables, one per ρ, with the analytic optimum of each regime beside the
    measured values, and the paired live − stopped total (mean [95% bootstrap interval])."""
    rng = np.random.default_rng(0)
    cfg = results["config"]
    lines = []
    for rho in cfg["rhos"]:
        a = Analytic(rho)
        lines += [
            f"### ρ = {rho:g}" + (" (orthogonal targets: the flat valley)" if rho == 0 else ""),
            "",
            "| regime | z1 MSE | z2 MSE (fed own ẑ1) | total, measured | total, analytic "
            "| ẑ1 map along w (analytic) | along û⊥ (analytic) |",
            "|---|---|---|---|---|---|---|",
        ]
        for regime in REGIMES:
            v = lambda k, rho=rho, regime=regime: _values(results, rho, regime, k)
            opt = a.along(regime)
            aw, ap = ("any", "any") if opt is None else (f"{opt[0]:.3f}", f"{opt[1]:.3f}")
            lines.append(
                f"| {regime} | {_ci(v('z1_mse'), rng)} | {_ci(v('z2_mse'), rng)} | "
                f"{_ci(v('total'), rng)} | {a.total(regime):.3f} | {_ci(v('along_w'), rng)} "
                f"({aw}) | {_ci(v('along_perp'), rng, '+')} ({ap}) |"
            )
        diff = _values(results, rho, "fed_live", "total") - _values(
            results, rho, "fed_stopped", "total"
        )
        spread = _values(results, rho, "fed_live", "along_perp")
        lines += [
            "",
            f"Paired by seed, fed_live − fed_stopped total: {_ci(diff, rng, '+')} (analytic "
            f"{a.total('fed_live') - a.total('fed_stopped'):+.3f}); fed_live's component along "
            f"û⊥ ranges over [{spread.min():+.3f}, {spread.max():+.3f}] across seeds.",
            "",
        ]
    lines.append(
        f"Mean [95% bootstrap interval] over {cfg['seeds']} seeds, {cfg['steps']} Adam steps "
        f"each; noise σ = {results['noise']:g} on both targets. Analytic values are the "
        "expected losses at each regime's optimum for a linear ẑ1 (module docstring of "
        "`experiments/consequence_blindness/linear.py`)."
    )
    return "\n".join(lines)


def linear_findings(results: dict) -> str:
    """What the linear tables say, per ρ, from their numbers; and what the design can detect."""
    rng = np.random.default_rng(1)
    out = []
    for rho in results["config"]["rhos"]:
        a = Analytic(rho)
        gain = a.total("fed_live") - a.total("fed_stopped")
        diff = _values(results, rho, "fed_live", "total") - _values(
            results, rho, "fed_stopped", "total"
        )
        m, lo, hi = bootstrap_ci(diff, rng)
        if hi < 0:
            seen = (
                f"the live regime takes it: its total is lower by {-m:.3f} [{-hi:.3f}, {-lo:.3f}]"
            )
        elif lo > 0:
            seen = f"the live regime ends higher, by {m:.3f} [{lo:.3f}, {hi:.3f}]"
        else:
            seen = f"the paired difference {m:+.3f} [{lo:+.3f}, {hi:+.3f}] includes 0"
        what = (
            f"shaping ẑ1 for z2 strictly pays {-gain:.3f} in expectation"
            if gain < 0
            else "no shaping of ẑ1 pays: every tilt of the live map is drift along a flat "
            "valley of equal total loss, set by the initialisation, not an incentive"
        )
        out.append(f"- ρ = {rho:g}: {what}; {seen}.")
    out += [
        "",
        "What this design can detect: whether gradients through the model's own prediction "
        "find a strictly profitable shaping of it, against the analytic optimum, to within the "
        "intervals above; that the blind regimes do not shape it. What it cannot: anything "
        "about nonlinear channels (see the Fibonacci toy) or about language models.",
    ]
    return "\n".join(out)


def plot_linear(results: dict, path: Path) -> None:
    plt = _pyplot()
    rhos = results["config"]["rhos"]
    keys = (("total", "total loss (dashes: analytic)"), ("along_perp", "ẑ1 map along û⊥"))
    fig, axes = plt.subplots(len(rhos), 2, figsize=(10, 3.2 * len(rhos)), squeeze=False)
    for row, rho in zip(axes, rhos, strict=True):
        for ax, (key, title) in zip(row, keys, strict=True):
            for i, regime in enumerate(REGIMES):
                vals = _values(results, rho, regime, key)
                ax.scatter(np.full(len(vals), i), vals, s=18, alpha=0.7)
                a = Analytic(rho)
                opt = a.along(regime)
                target = a.total(regime) if key == "total" else None if opt is None else opt[1]
                if target is not None:
                    ax.hlines(target, i - 0.3, i + 0.3, colors="k", linestyles="--")
            ax.set_xticks(range(len(REGIMES)), REGIMES)
            ax.set_title(f"ρ = {rho:g}: {title}", fontsize=10)
    fig.suptitle(f"Linear consequence-blindness toy, {results['config']['seeds']} seeds (dots)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fib(results: dict, path: Path) -> None:
    plt = _pyplot()
    x, rho, z1 = np.asarray(results["x"]), np.asarray(results["rho"]), np.asarray(results["z1"])
    colors = dict(zip(REGIMES, ("C0", "C1", "C3"), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    ax.plot(x, rho, "k-o", lw=1.5, label="ρ: z2 beyond any affine map of z1")
    ax.plot(x, rho / 2, "k:", lw=1, label="ρ/2 (optimal leak for g2 = identity)")
    for regime in REGIMES:
        for i, err in enumerate(np.asarray(results["errors"][regime])):
            ax.plot(
                x,
                affine_residual(z1, err),
                color=colors[regime],
                alpha=0.6,
                lw=1,
                label=f"e⊥, {regime}" if i == 0 else None,
            )
    ax.set_xlabel("x")
    ax.set_ylabel("standardised log units")
    ax.set_title("g1's error beyond an affine map of z1 (e⊥), per seed", fontsize=10)
    ax.legend(fontsize=7)
    panels = (
        ("z1_mse", "g1's cost: z1 MSE (log scale)"),
        ("gain", "channel: z2 gain of an affine reader"),
    )
    for ax, (metric, title) in zip(axes[1:], panels, strict=True):
        for i, regime in enumerate(REGIMES):
            vals = [r[metric] for r in results["runs"] if r["regime"] == regime]
            mean, lo, hi = results["summary"][regime][metric]
            ax.scatter(np.full(len(vals), i), vals, s=18, alpha=0.7, color=colors[regime])
            ax.errorbar(i + 0.2, mean, yerr=[[mean - lo], [hi - mean]], fmt="ks", capsize=3)
        ax.set_xticks(range(len(REGIMES)), REGIMES)
        ax.set_title(title, fontsize=10)
    axes[1].set_yscale("log")
    axes[2].axhline(0, color="gray", lw=0.6)
    fig.suptitle(
        f"Fibonacci encoded-channel toy, {results['config']['seeds']} seeds "
        "(dots; squares: mean, 95% bootstrap interval)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fib_per_seed(results: dict) -> list[str]:
    """Per regime, every seed's z1 and z2 MSE, g2 gain and channel gain, and the seeds where
    g1 gave up on z1."""
    lines = []
    var_z1 = float(np.var(results["z1"]))
    for regime in REGIMES:
        runs = [r for r in results["runs"] if r["regime"] == regime]
        gave_up = [r["seed"] for r in runs if r["z1_mse"] > 0.1 * var_z1]
        lines.append(
            f"\n{regime}, per seed: z1 MSE "
            + " ".join(f"{r['z1_mse']:.3g}" for r in runs)
            + "; z2 MSE "
            + " ".join(f"{r['z2_mse']:.3g}" for r in runs)
            + "; g2 gain "
            + " ".join(f"{r['g2_gain']:.3g}" for r in runs)
            + "; channel gain "
            + " ".join(f"{r['gain']:.3g}" for r in runs)
            + f". Seeds where g1 gave up on z1 (z1 MSE > 10% of var z1 = {var_z1:.3g}): "
            + (", ".join(map(str, gave_up)) if gave_up else "none")
            + "."
        )
    return lines


def report_fib(results: dict) -> str:
    cfg, s = results["config"], results["summary"]
    lines = [
        f"x ∈ {{1, …, {cfg['x_max']}}} one-hot; z1 = log Fib(x), z2 = log Fib(x+1), standardised "
        f"together; f: MLP(one-hot → {cfg['hidden']} → {cfg['hidden']}), g1 linear, g2 affine "
        f"scalar → scalar; full-batch Adam, lr {cfg['lr']} cosine, {cfg['steps']} steps; "
        f"{cfg['seeds']} seeds; probe null from {cfg['permutations']} permutations. Mean square of "
        f"ρ (the part of z2 no affine map of z1 gives): {results['rho_ms']:.5f}.",
        "",
        "| regime | z1 MSE | z2 MSE (g2 fed own ẑ1) | channel gain | probe ρ ~ e⊥: R² | slope "
        "| permutation p | seeds with p < 0.01 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for regime in REGIMES:
        cells = " | ".join(
            f"{m:.3g} [{lo:.3g}, {hi:.3g}]"
            for m, lo, hi in (s[regime][k] for k in FIB_METRICS[:-1])
        )
        ps = [r["p_value"] for r in results["runs"] if r["regime"] == regime]
        lines.append(
            f"| {regime} | {cells} | {np.median(ps):.3g} (median) | "
            f"{sum(p < 0.01 for p in ps)}/{len(ps)} |"
        )
    d = results["live_minus_stopped"]
    lines += _fib_per_seed(results)
    lines += [
        "",
        "Mean [95% bootstrap interval over seeds]. Channel gain = z2 MSE of the best affine map "
        "from z1 minus that from ẑ1 (> 0: g1's output carries z2 information an affine g2 can "
        "read and the truth does not). Probe: least squares ρ ≈ slope·e⊥ + c, e⊥ = g1's error "
        "minus its affine fit on z1; permutation p over x. Where R² ≈ 0 the slope means nothing "
        "(in the blind regimes e is float32 rounding, z1 MSE ~1e-15).",
        "",
        "Paired by seed, fed_live minus fed_stopped: "
        f"z1 MSE {d['z1_mse'][0]:+.3g} [{d['z1_mse'][1]:+.3g}, {d['z1_mse'][2]:+.3g}], "
        f"z2 MSE {d['z2_mse'][0]:+.3g} [{d['z2_mse'][1]:+.3g}, {d['z2_mse'][2]:+.3g}], "
        f"channel gain {d['gain'][0]:+.3g} [{d['gain'][1]:+.3g}, {d['gain'][2]:+.3g}].",
        "",
        "Reference point: if g1 may shift its output by δ(x) and g2 is the identity plus a "
        "constant, the sum of the two squared errors δ² + (ρ − δ)² is smallest at δ = ρ/2, "
        f"i.e. z1 MSE = z2 MSE = mean ρ²/4 = {results['rho_ms'] / 4:.3g} (probe slope 2), "
        f"against z1 MSE 0 and z2 MSE = mean ρ² = {results['rho_ms']:.3g} for a g1 that does not "
        "leak.",
        "",
        "Why no mutual-information estimate between e and x: x takes "
        f"{cfg['x_max']} values and e is a deterministic function of x in every regime, so I(e; x) "
        "= H(e) is maximal as soon as the errors differ at all — float32 rounding noise in the "
        "blind regimes would count as 'information about x'. The probe asks the question that "
        "matters: is e aligned with the part of z2 that g2 cannot get from z1?",
    ]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def full_report(task: str, results: dict, figure: str) -> str:
    meta = results["meta"]
    title = {
        "linear": "Consequence-blindness toy: linear task",
        "fib": "Consequence-blindness toy: Fibonacci encoded channel",
    }[task]
    if task == "linear":
        body = linear_table(results) + "\n\n" + linear_findings(results)
    else:
        body = report_fib(results)
    load = " / ".join(f"{v:.2f}" for v in meta["load_before"])
    load_after = " / ".join(f"{v:.2f}" for v in meta["load_after"])
    return "\n".join(
        [
            f"# {title}",
            "",
            "Generated by the command below; every number here is written by it.",
            "",
            f"Command: `{meta['command']}`  ",
            f"Wall time: {meta['wall_s']:.1f} s; machine load (1/5/15 min) before {load}, after "
            f"{load_after}; {meta['cpus']} CPUs; jax {meta['jax']} on {meta['backend']}; "
            f"{meta['date']}.",
            "",
            body,
            "",
            f"![{task}]({figure})",
            "",
        ]
    )


TASKS = ("linear", "fib")


def page(task: str) -> epilogue.Page:
    """What ``--task task`` writes: results.json, report.md and its PNG in --out; published,
    results/consequence_blindness_<task>.{json,md} and the PNG in docs/figures/."""
    figure = f"consequence_blindness_{task}.png"
    draw = plot_linear if task == "linear" else plot_fib

    def plot(results: dict, folder: Path) -> list[str]:
        draw(results, Path(folder) / figure)
        return [figure]

    def render(results: dict, figure_prefix: str) -> str:
        return full_report(task, results, figure_prefix + figure)

    return epilogue.report_page(f"consequence_blindness_{task}", render, plot)
