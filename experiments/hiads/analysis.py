"""The HI-ADS runs and their verdicts: per-seed final fractions of the simulated cooperation
curves, bootstrap bands, the excess over each setting's swapping twin, the sentences per learner
family and the controls."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import jax
import numpy as np

from experiments.hiads.simulate import BETA, Config, Setting, run_setting
from myojax.progress import Progress


def bootstrap_mean_ci(
    x: np.ndarray, rng: np.random.Generator, n_boot: int = 2000, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over axis 0 (seeds)."""
    idx = rng.integers(0, x.shape[0], (n_boot, x.shape[0]))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def summarise(setting: Setting, coop: np.ndarray, cfg: Config, rng: np.random.Generator) -> dict:
    seeds, steps = coop.shape
    tail = coop[:, int(0.9 * steps) :].mean(axis=1)  # final fraction per seed
    binned = coop[:, : steps - steps % cfg.bins].reshape(seeds, cfg.bins, -1).mean(-1)
    lo, hi = bootstrap_mean_ci(binned, rng)
    t_lo, t_hi = bootstrap_mean_ci(tail, rng)
    n_coop = int((tail > 0.5).sum())
    per_seed_bins = binned[:, max(1, cfg.bins // 20) :]  # skip the first 5%: θ₀ starts near 0.5
    n_ever = int((per_seed_bins > 0.5).any(axis=1).sum())
    return {
        "setting": dataclasses.asdict(setting),
        "final_per_seed": tail.tolist(),
        "final_mean": float(tail.mean()),
        "final_ci": [float(t_lo), float(t_hi)],
        "seeds_cooperating": n_coop,
        "seeds_ever_cooperating": n_ever,
        "verdict": "FAIL" if n_coop > 0 else "PASS",
        "curve_mean": binned.mean(0).tolist(),
        "curve_lo": lo.tolist(),
        "curve_hi": hi.tolist(),
    }


def run(cfg: Config, settings: Sequence[Setting], show: bool | None = None) -> dict:
    """Every setting simulated and summarised (``summarise``); ``show``: a progress bar (default:
    on a terminal), else a line per setting."""
    rng = np.random.default_rng(0)
    rows = []
    t0 = time.time()
    bar = Progress(len(settings), enabled=show, unit="setting", desc="hiads")
    for i, setting in enumerate(settings):
        coop = run_setting(setting, cfg, jax.random.fold_in(jax.random.key(0), i))
        row = summarise(setting, coop, cfg, rng)
        bar.update(
            i + 1,
            postfix={"setting": setting.name},
            line=f"[{i + 1}/{len(settings)}] {setting.name}: final {row['final_mean']:.3f} "
            f"{row['verdict']} ({time.time() - t0:.0f} s)",
        )
        rows.append(row)
    bar.close()
    return {"config": dataclasses.asdict(cfg), "beta": BETA, "rows": rows}


def swap_excess(results: dict, n_boot: int = 2000) -> dict[str, tuple[float, float, float]]:
    """Final cooperation of each setting minus its ``_swap`` twin, with a bootstrap interval."""
    rng = np.random.default_rng(1)
    by_name = {row["setting"]["name"]: np.asarray(row["final_per_seed"]) for row in results["rows"]}
    out = {}
    for name, x in by_name.items():
        y = by_name.get(name + "_swap")
        if y is None:
            continue
        diffs = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1) - y[
            rng.integers(0, len(y), (n_boot, len(y)))
        ].mean(1)
        lo, hi = np.quantile(diffs, [0.025, 0.975])
        out[name] = (float(x.mean() - y.mean()), float(lo), float(hi))
    return out


def verdict_lines(results: dict) -> list[str]:
    """One generated sentence per learner family, from the test settings' verdicts."""
    tests = [r for r in results["rows"] if r["setting"]["role"] == "test"]

    def fmt(rows: list[dict]) -> str:
        return ", ".join(
            f"{r['setting']['name']} {r['verdict']} ({r['seeds_cooperating']}/"
            f"{len(r['final_per_seed'])} seeds)"
            for r in rows
        )

    out = []
    families = {
        "REINFORCE without PBT": lambda s: s["learner"] == "reinforce" and not s["pbt_interval"],
        "REINFORCE inside PBT": lambda s: s["learner"] == "reinforce" and s["pbt_interval"] > 0,
        "Q-learning (γ = 0, no state)": lambda s: s["learner"] == "qlearning",
    }
    for family, pick in families.items():
        rows = [r for r in tests if pick(r["setting"])]
        if not rows:
            continue
        failed = sum(r["verdict"] == "FAIL" for r in rows)
        word = (
            "FAILS" if failed == len(rows) else "PASSES" if not failed else "FAILS in some settings"
        )
        out.append(f"{family}: {word} — {fmt(rows)}.")
    q = [r for r in tests if r["setting"]["learner"] == "qlearning"]
    if q and all(r["verdict"] == "PASS" for r in q):
        out.append(
            "The paper reports that Q-learning sometimes fails this test; this stateless, "
            "γ = 0, tabular Q-learner with a constant step size did not in any setting run here."
        )
    return out


def control_checks(results: dict) -> dict[str, bool]:
    """The negative controls must pass, the positive control must cooperate in every seed."""
    out = {}
    for row in results["rows"]:
        s = row["setting"]
        if s["role"] == "control-":
            out[f"{s['name']} passes"] = row["verdict"] == "PASS"
        elif s["role"] == "control+":
            out[f"{s['name']} cooperates in all seeds"] = min(row["final_per_seed"]) > 0.5
    return out
