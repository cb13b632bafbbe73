"""Analysis of the study: a pure function of the run rows (no training, no JAX).

Choices (the lr) look only at validation losses; everything reported is on the test split.
Intervals come from ``myojax.bootstrap.crossed_interval`` over training seeds and test
sequences, paired (every mode and size shares the seeds' labels and the same test sequences).
Reported in this order: the model-free answer (the myopic - standard gap per size and its slope
per decade of N), then one joint fit L_m(N) = E + A_m·N^(−alpha_m) with E shared by the modes
(parameters on a bound flagged), then the undertraining and muP transfer checks.
``results_document`` is what lands in results.json; the report and plots read it alone.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.scaling.protocol import EVAL_SEED, StudyPreset, transfer_lrs
from myojax import bootstrap as bs
from myojax import scaling_laws as sl
from myojax.model import param_counts
from myojax.presets import GPT2_SHAPES, model_preset
from myojax.provenance import environment

SCHEMA_VERSION = 2
METHOD = (
    "crossed bootstrap over training seeds and test sequences (each level resampled on its "
    "own, variances scaled by n/(n-1) and added), interval = estimate ± Student-t quantile x "
    "standard error with Welch-Satterthwaite degrees of freedom; gaps paired by seed and "
    "sequence"
)


def lr_table(rows: Sequence[dict[str, Any]]) -> tuple[list[float], list[int], np.ndarray]:
    """(lrs, seeds, validation loss [seed, lr]; NaN where a run diverged or is missing)."""
    lrs = sorted({r["lr"] for r in rows})
    seeds = sorted({r.get("seed", 0) for r in rows})
    table = np.full((len(seeds), len(lrs)), np.nan)
    for r in rows:
        if r["status"] == "ok":
            table[seeds.index(r.get("seed", 0)), lrs.index(r["lr"])] = r["val_loss"]
    return lrs, seeds, table


def choose_lr(rows: Sequence[dict[str, Any]]) -> tuple[float, bool]:
    """(lr with the lowest validation loss averaged over seeds, whether it is a grid edge).

    One lr per mode for every seed (pooled): choosing per seed would let each seed's lr fit
    that seed's noise. An lr that diverged for any seed is excluded.
    """
    lrs, _, table = lr_table(rows)
    mean = table.mean(axis=0)  # NaN for an lr with a diverged or missing seed
    if not np.isfinite(mean).any():
        raise RuntimeError(f"every sweep lr of mode {rows[0]['mode']} diverged; lower the lrs")
    i = int(np.nanargmin(mean))
    return lrs[i], i in (0, len(lrs) - 1)


def _nan_to_none(a: np.ndarray) -> list:
    return [None if not math.isfinite(x) else float(x) for x in np.ravel(a)]


def _ci_dict(ci: dict[str, np.ndarray], i: int | slice) -> dict[str, Any]:
    keys = ("point", "lo", "hi", "se_seed", "se_seq", "df")
    return {k: np.asarray(ci[k])[i].tolist() for k in keys}


def sweep_summary(runs: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    out = {}
    for mode in modes:
        rows = [r for r in runs if r["mode"] == mode and r["role"] == "sweep"]
        if not rows:
            continue
        lrs, seeds, table = lr_table(rows)
        chosen, edge = choose_lr(rows)
        per_seed = [lrs[int(np.nanargmin(t))] if np.isfinite(t).any() else None for t in table]
        out[mode] = {
            "lrs": lrs,
            "seeds": seeds,
            "val_loss": [_nan_to_none(t) for t in table],
            "mean_val_loss": _nan_to_none(table.mean(axis=0)),
            "chosen_lr": chosen,
            "at_edge": edge,
            "per_seed_best_lr": per_seed,
        }
    return out


def _test_losses(
    runs: Sequence[dict[str, Any]], role: str, size: str, seeds: Sequence[int], budget: float = 1.0
) -> dict[str, np.ndarray]:
    """mode -> [seed, sequence] test losses of (role, size, budget); modes missing a seed are
    left out."""
    cells: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        if (r["role"], r["size"], r.get("budget", 1.0), r["status"]) == (role, size, budget, "ok"):
            cells.setdefault(r["mode"], {})[r.get("seed", 0)] = r["test_loss_per_sequence"]
    return {
        m: np.array([c[s] for s in seeds]) for m, c in cells.items() if all(s in c for s in seeds)
    }


def analyze(
    p: StudyPreset,
    modes: Sequence[str],
    runs: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Everything the report states, with intervals; ``runs`` may be a partial study (only
    sizes finished for every mode and seed enter)."""
    t0, n_boot_fit = time.process_time(), p.n_boot_fit
    rng = np.random.default_rng(seed)
    seeds = list(p.seeds)
    out: dict[str, Any] = {
        "level": level,
        "n_boot": p.n_boot,
        "n_boot_fit": n_boot_fit,
        "method": METHOD,
        "sweeps": sweep_summary(runs, modes),
        "losses": {},
        "gaps": {},
    }
    per_size = {s.name: _test_losses(runs, "size", s.name, seeds) for s in p.sizes}
    sizes = [s for s in p.sizes if all(m in per_size[s.name] for m in modes)]
    out["complete_sizes"] = [s.name for s in sizes]
    if not sizes:
        return out
    n = np.array([param_counts(_cfg(p, s))[1] for s in sizes], float)
    X = {m: np.stack([per_size[s.name][m] for s in sizes]) for m in modes}  # [K, S, M]
    n_seqs = X[modes[0]].shape[-1]

    def ci(stat: bs.Statistic, n_boot: int = p.n_boot) -> dict[str, np.ndarray]:
        return bs.crossed_interval(stat, len(seeds), n_seqs, rng, n_boot=n_boot, level=level)

    for m in modes:
        out["losses"][m] = {
            "sizes": [s.name for s in sizes],
            "n": n.tolist(),
            "per_seed": X[m].mean(axis=-1).tolist(),
            **_ci_dict(ci(bs.mean_over(X[m])), slice(None)),
        }
    others = [m for m in modes if m != "standard"] if "standard" in modes else []
    for m in others:
        D = X[m] - X["standard"]
        gap_mean = bs.mean_over(D)

        def gap_and_slope(si: np.ndarray, mi: np.ndarray, gap_mean=gap_mean) -> np.ndarray:
            g = gap_mean(si, mi)
            return np.append(g, bs.slope_per_decade(n, g) if len(g) >= 2 else np.nan)

        c = ci(gap_and_slope)
        naive = bs.joint_percentile_interval(
            gap_and_slope, len(seeds), n_seqs, rng, n_boot=p.n_boot, level=level
        )
        k = len(sizes)
        out["gaps"][m] = {
            "sizes": [s.name for s in sizes],
            "n": n.tolist(),
            "gap": _ci_dict(c, slice(0, k)),
            "relative": (c["point"][:k] / X["standard"].mean(axis=(1, 2))).tolist(),
            "per_seed": D.mean(axis=-1).tolist(),
            "slope_per_decade": _ci_dict(c, k) if k >= 2 else None,
            "plain_percentile": {"lo": naive["lo"].tolist(), "hi": naive["hi"].tolist()},
        }
    if others and len(sizes) >= 3:
        out["fit"] = _joint_fit(n, X, modes, others, ci, n_boot_fit)
    if p.undertrain_size and others:
        out["undertrain"] = _undertrain(p, runs, seeds, modes, others, ci)
    out["transfer"] = _transfer(p, runs, modes, out["sweeps"])
    out["answer"] = _answer(out, others)
    out["cpu_s"] = time.process_time() - t0
    return out


def _cfg(p: StudyPreset, size: Any) -> Any:
    from experiments.scaling.protocol import model_config

    return model_config(p, size, "standard")


def _joint_fit(n, X, modes, others, ci, n_boot_fit) -> dict[str, Any]:
    """L_m(N) = E + A_m N^-alpha_m, E shared, fitted to the seed-and-sequence means."""
    extrap_names = list(GPT2_SHAPES)
    extrap_n = np.array([param_counts(model_preset(k))[1] for k in extrap_names], float)
    point = sl.fit_shared_floor(n, {m: X[m].mean(axis=(1, 2)) for m in modes})
    names = (
        ["E"]
        + [f"A[{m}]" for m in modes]
        + [f"alpha[{m}]" for m in modes]
        + [f"alpha[{m}] - alpha[standard]" for m in others]
        + [f"extrapolated gap {m} @ {k}" for m in others for k in extrap_names]
    )

    def vector(f: sl.SharedFloorFit) -> np.ndarray:  # E and A on log scale: positive, skewed
        v = [math.log(f.E)] + [math.log(f.A[m]) for m in modes] + [f.alpha[m] for m in modes]
        v += [f.alpha[m] - f.alpha["standard"] for m in others]
        for m in others:
            v += list(f.predict(m, extrap_n) - f.predict("standard", extrap_n))
        return np.array(v)

    def stat(si: np.ndarray, mi: np.ndarray) -> np.ndarray:
        means = {m: X[m][:, si][:, :, mi].mean(axis=(1, 2)) for m in modes}
        return vector(sl.fit_shared_floor(n, means, start=point))

    c = ci(stat, n_boot_fit)
    params = {k: _ci_dict(c, i) for i, k in enumerate(names)}
    for k in names[: 1 + len(modes)]:  # intervals for log E, log A: back to E, A
        params[k].update({x: math.exp(params[k][x]) for x in ("point", "lo", "hi")}, scale="log")
    return {
        "form": "L_m(N) = E + A_m N^-alpha_m, E shared by the modes; Huber(1e-3) on log L, "
        "L-BFGS-B in a box; intervals of E and A computed for log E, log A",
        "params": params,
        "point": point.to_dict(),
        "at_bounds": list(point.at_bounds),
        "extrapolation_sizes": extrap_names,
        "extrapolation_n": extrap_n.tolist(),
    }


def _undertrain(p, runs, seeds, modes, others, ci) -> dict[str, Any]:
    size = p.undertrain_size
    factors = [1.0, *map(float, p.undertrain_factors)]
    cells = {
        f: _test_losses(runs, "size" if f == 1 else "undertrain", size, seeds, f) for f in factors
    }
    factors = [f for f in factors if all(m in cells[f] for m in modes)]
    if len(factors) < 2:
        return {"size": size, "factors": factors, "complete": False}
    out: dict[str, Any] = {"size": size, "factors": factors, "complete": True, "modes": {}}
    for m in modes:
        Y = np.stack([cells[f][m] for f in factors])
        out["modes"].setdefault(m, {})["loss"] = _ci_dict(ci(bs.mean_over(Y)), slice(None))
    for m in others:
        D = np.stack([cells[f][m] - cells[f]["standard"] for f in factors])
        gm = bs.mean_over(D)

        def stat(si: np.ndarray, mi: np.ndarray, gm=gm) -> np.ndarray:
            g = gm(si, mi)
            return np.append(g, g[-1] - g[0])

        c = ci(stat)
        out["modes"][m]["gap"] = _ci_dict(c, slice(0, len(factors)))
        out["modes"][m]["gap_change"] = _ci_dict(c, len(factors))
        out["modes"][m]["per_seed_gap"] = D.mean(axis=-1).tolist()
    return out


def _transfer(p, runs, modes, sweeps) -> dict[str, Any]:
    """Largest size: validation loss at the transferred lr and grid steps around it."""
    largest = p.sizes[-1].name
    seeds = list(p.seeds[: p.transfer_seeds])
    out = {}
    for m in modes:
        if m not in sweeps:
            continue
        lr0 = sweeps[m]["chosen_lr"]
        local = sorted({lr0, *transfer_lrs(p, lr0)})
        rows = [
            r
            for r in runs
            if r["mode"] == m
            and r["size"] == largest
            and r["role"] in ("size", "transfer")
            and r.get("seed", 0) in seeds
            and r["lr"] in local
        ]
        lrs, got_seeds, table = lr_table(rows)
        if lrs != local or got_seeds != seeds:
            out[m] = {"complete": False, "transferred_lr": lr0}
            continue
        mean = table.mean(axis=0)
        i = int(np.nanargmin(mean)) if np.isfinite(mean).any() else None
        own = lrs[i] if i is not None else None
        steps = None if own is None else round(math.log(own / lr0) / math.log(p.lr_step))
        at_edge = i in (0, len(lrs) - 1) and own != lr0
        within = (
            None
            if own is None
            else (abs(steps) <= 1 if not at_edge else (False if abs(steps) >= 2 else None))
        )
        out[m] = {
            "complete": True,
            "size": largest,
            "seeds": seeds,
            "transferred_lr": lr0,
            "lrs": lrs,
            "val_loss": [_nan_to_none(t) for t in table],
            "mean_val_loss": _nan_to_none(mean),
            "own_optimum": own,
            "steps_from_transferred": steps,
            "own_optimum_at_local_edge": at_edge,
            "within_one_step": within,
        }
    return out


def _answer(an: dict[str, Any], others: Sequence[str]) -> dict[str, Any] | None:
    """The one-sentence answer, from the first non-standard mode's gap slope."""
    if not others or an["gaps"][others[0]]["slope_per_decade"] is None:
        return None
    m = others[0]
    g = an["gaps"][m]
    s = g["slope_per_decade"]
    lo, hi = s["lo"], s["hi"]
    verdict = (
        "grows with size"
        if lo > 0
        else "shrinks with size"
        if hi < 0
        else "shows no trend with size distinguishable from zero"
    )
    pct = round(100 * an["level"])
    n = g["n"]
    text = (
        f"Over N = {_fmt_n(min(n))}-{_fmt_n(max(n))} non-embedding parameters, the test-loss "
        f"cost of {m} training ({m} - standard) {verdict}: {s['point']:+.4f} nats per decade of "
        f"N ({pct}% CI [{lo:+.4f}, {hi:+.4f}]), from a gap of {g['gap']['point'][0]:+.4f} at the "
        f"smallest size to {g['gap']['point'][-1]:+.4f} at the largest."
    )
    return {"mode": m, "verdict": verdict, "text": text}


def _fmt_n(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def results_document(
    p: StudyPreset,
    modes: Sequence[str],
    runs: list[dict[str, Any]],
    analysis: dict[str, Any],
    *,
    command: str,
    wall_s: float,
    cpu_s: float,
    env_start: dict[str, Any],
    data: str,
    trained: int,
    previous: dict[str, Any] | None = None,
    finished: bool = True,
    planned_runs: int | None = None,
) -> dict[str, Any]:
    """The results.json document. ``invocations`` keeps every command that contributed (a
    resumed study took several), with its wall time, CPU time, load and runs trained."""
    invocation = {
        "command": command,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "runs_trained": trained,
        "environment_start": env_start,
        "environment_end": environment(),
    }
    invocations = [*(previous or {}).get("invocations", []), invocation]
    distinct = [r for r in runs if not r.get("same_run_as_sweep")]
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": p.name,
        "description": p.description,
        "modes": list(modes),
        "finished": finished,
        "planned_runs": planned_runs,
        "command": command,
        "data": data,
        "protocol": {
            "sizes": [dataclasses.asdict(s) for s in p.sizes],
            "proxy": dataclasses.asdict(p.proxy),
            "base_width": p.base_width,
            "lrs": list(p.lrs),
            "lr_step": p.lr_step,
            "seeds": list(p.seeds),
            "seq_len": p.seq_len,
            "batch_size": p.batch_size,
            "tokens_per_param": p.tokens_per_param,
            "token_rule": "D = tokens_per_param x N (non-embedding), rounded up to whole steps",
            "undertrain_size": p.undertrain_size,
            "undertrain_factors": list(p.undertrain_factors),
            "transfer_steps": list(p.transfer_steps),
            "transfer_seeds": list(p.seeds[: p.transfer_seeds]),
            "warmup_frac": p.warmup_frac,
            "eval_seed": EVAL_SEED,
            "eval_sequences_per_split": p.eval_batches * p.batch_size,
            "splits": "train / validation (every choice) / test (every reported loss), "
            "disjoint by whole works",
            "n_boot": p.n_boot,
        },
        "cost": {
            "distinct_runs": len(distinct),
            "sum_run_wall_s": sum(r.get("wall_s", 0.0) for r in distinct),
            "sum_run_cpu_s": sum(r.get("cpu_s", 0.0) for r in distinct),
            "analysis_cpu_s": analysis.get("cpu_s"),
        },
        "wall_s": wall_s,
        "environment_start": env_start,
        "environment_end": invocation["environment_end"],
        "invocations": invocations,
        "runs": runs,
        "analysis": analysis,
    }


def runs_fingerprint(runs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the analysis depends on: used to make a rerun with nothing new a no-op."""
    return sorted(
        (
            r["mode"],
            r["role"],
            r["size"],
            r.get("seed", 0),
            r.get("budget", 1.0),
            r["lr"],
            r["status"],
            r.get("test_loss"),
        )
        for r in runs
    )
