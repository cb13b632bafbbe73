"""The study's estimates from its run records: the lr choice, the gap per size and its slope,
the joint fit, the undertraining and muP transfer checks, each with its interval (pure: no
training, no JAX).

Choices (the lr) look only at validation losses; everything reported is on the test split.
Intervals come from ``myojax.bootstrap.crossed_interval`` over training seeds and test
sequences, paired (every mode and size shares the seeds' labels and the same test sequences).
Reported in this order: the model-free answer (the myopic - standard gap per size and its slope
per decade of N), then one joint fit L_m(N) = E + A_m·N^(−alpha_m) with E shared by the modes
(parameters on a bound flagged), then the undertraining and muP transfer checks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from experiments.scaling import records as rec
from experiments.scaling import sections as sec
from experiments.scaling.formats import fmt_n
from experiments.scaling.protocol import StudyPreset, model_config, transfer_lrs
from myojax import bootstrap as bs
from myojax import scaling_laws as sl
from myojax.model import param_counts
from myojax.presets import GPT2_SHAPES, model_preset

METHOD = (
    "crossed bootstrap over training seeds and test sequences (each level resampled on its "
    "own, variances scaled by n/(n-1) and added), interval = estimate ± Student-t quantile x "
    "standard error with Welch-Satterthwaite degrees of freedom; gaps paired by seed and "
    "sequence"
)
FIT_FORM = (
    "L_m(N) = E + A_m N^-alpha_m, E shared by the modes; Huber(1e-3) on log L, "
    "L-BFGS-B in a box; intervals of E and A computed for log E, log A"
)
CI = Callable[..., dict[str, np.ndarray]]  # ci(statistic, n_boot=...) -> crossed_interval


def lr_table(
    rows: Sequence[rec.RunRecord],
) -> tuple[list[float], list[int], np.ndarray]:
    """(lrs, seeds, validation loss [seed, lr]; NaN where a run diverged or is missing)."""
    lrs = sorted({r.lr for r in rows})
    seeds = sorted({r.seed for r in rows})
    table = np.full((len(seeds), len(lrs)), np.nan)
    for r in rows:
        if r.ok:
            table[seeds.index(r.seed), lrs.index(r.lr)] = r.val_loss
    return lrs, seeds, table


def choose_lr(rows: Sequence[rec.RunRecord]) -> tuple[float, bool]:
    """(lr with the lowest validation loss averaged over seeds, whether it is a grid edge).

    One lr per mode for every seed (pooled): choosing per seed would let each seed's lr fit
    that seed's noise. An lr that diverged for any seed is excluded.
    """
    lrs, _, table = lr_table(rows)
    mean = table.mean(axis=0)  # NaN for an lr with a diverged or missing seed
    if not np.isfinite(mean).any():
        raise RuntimeError(f"every sweep lr of mode {rows[0].mode} diverged; lower the lrs")
    i = int(np.nanargmin(mean))
    return lrs[i], i in (0, len(lrs) - 1)


def _nan_to_none(a: np.ndarray) -> tuple[float | None, ...]:
    return tuple(None if not math.isfinite(x) else float(x) for x in np.ravel(a))


def _interval(ci: dict[str, np.ndarray], i: int) -> sec.Interval:
    return sec.Interval(**{k: np.asarray(ci[k])[i].tolist() for k in _CI_KEYS})


def _intervals(ci: dict[str, np.ndarray], i: slice = slice(None)) -> sec.Intervals:
    return sec.Intervals(**{k: tuple(np.asarray(ci[k])[i].tolist()) for k in _CI_KEYS})


_CI_KEYS = ("point", "lo", "hi", "se_seed", "se_seq", "df")


def sweep_summary(runs: Sequence[rec.RunRecord], modes: Sequence[str]) -> dict[str, sec.Sweep]:
    out = {}
    for mode in modes:
        rows = [r for r in runs if r.mode == mode and r.role == "sweep"]
        if not rows:
            continue
        lrs, seeds, table = lr_table(rows)
        chosen, edge = choose_lr(rows)
        per_seed = [lrs[int(np.nanargmin(t))] if np.isfinite(t).any() else None for t in table]
        out[mode] = sec.Sweep(
            lrs=tuple(lrs),
            seeds=tuple(seeds),
            val_loss=tuple(_nan_to_none(t) for t in table),
            mean_val_loss=_nan_to_none(table.mean(axis=0)),
            chosen_lr=chosen,
            at_edge=edge,
            per_seed_best_lr=tuple(per_seed),
        )
    return out


def _test_losses(
    runs: Sequence[rec.RunRecord],
    role: str,
    size: str,
    seeds: Sequence[int],
    budget: float = 1.0,
) -> dict[str, np.ndarray]:
    """mode -> [seed, sequence] test losses of (role, size, budget); modes missing a seed are
    left out."""
    cells: dict[str, dict[int, Sequence[float]]] = {}
    for r in runs:
        if (r.role, r.size, r.budget, r.status) == (role, size, budget, "ok"):
            cells.setdefault(r.mode, {})[r.seed] = r.test_loss_per_sequence
    return {
        m: np.array([c[s] for s in seeds]) for m, c in cells.items() if all(s in c for s in seeds)
    }


def analyze(
    p: StudyPreset,
    modes: Sequence[str],
    runs: Sequence[rec.RunRecord],
    *,
    seed: int = 0,
    level: float = 0.95,
) -> sec.Analysis:
    """Everything the report states, with intervals; ``runs`` may be a partial study (only
    sizes finished for every mode and seed enter)."""
    t0 = time.process_time()
    rng = np.random.default_rng(seed)
    seeds = list(p.seeds)
    sweeps = sweep_summary(runs, modes)
    per_size = {s.name: _test_losses(runs, "size", s.name, seeds) for s in p.sizes}
    sizes = [s for s in p.sizes if all(m in per_size[s.name] for m in modes)]
    empty = sec.Analysis(
        level=level,
        n_boot=p.n_boot,
        n_boot_fit=p.n_boot_fit,
        method=METHOD,
        sweeps=sweeps,
        losses={},
        gaps={},
        complete_sizes=tuple(s.name for s in sizes),
    )
    if not sizes:
        return empty
    n = np.array([param_counts(model_config(p, s, "standard"))[1] for s in sizes], float)
    X = {m: np.stack([per_size[s.name][m] for s in sizes]) for m in modes}  # [K, S, M]
    n_seqs = X[modes[0]].shape[-1]

    def ci(stat: bs.Statistic, n_boot: int = p.n_boot) -> dict[str, np.ndarray]:
        return bs.crossed_interval(stat, len(seeds), n_seqs, rng, n_boot=n_boot, level=level)

    names = tuple(s.name for s in sizes)
    losses = {
        m: sec.LossCurve(
            sizes=names,
            n=tuple(n.tolist()),
            per_seed=tuple(map(tuple, X[m].mean(axis=-1).tolist())),
            **vars(_intervals(ci(bs.mean_over(X[m])))),
        )
        for m in modes
    }
    others = [m for m in modes if m != "standard"] if "standard" in modes else []
    gaps = {m: _gap(names, n, X, m, ci, rng, p.n_boot, level) for m in others}
    an = dataclasses.replace(empty, losses=losses, gaps=gaps)
    return dataclasses.replace(
        an,
        fit=_joint_fit(n, X, modes, others, ci, p.n_boot_fit)
        if others and len(sizes) >= 3
        else None,
        undertrain=_undertrain(p, runs, seeds, modes, others, ci)
        if p.undertrain_size and others
        else None,
        transfer=_transfer(p, runs, modes, sweeps),
        answer=_answer(an, others),
        cpu_s=time.process_time() - t0,
    )


def _gap(names, n, X, m, ci, rng, n_boot, level) -> sec.Gap:
    """``m`` - standard per size, paired by seed and sequence, and its slope per decade."""
    D = X[m] - X["standard"]
    gap_mean = bs.mean_over(D)

    def gap_and_slope(si: np.ndarray, mi: np.ndarray) -> np.ndarray:
        g = gap_mean(si, mi)
        return np.append(g, bs.slope_per_decade(n, g) if len(g) >= 2 else np.nan)

    c = ci(gap_and_slope)
    n_seeds, n_seqs = D.shape[1], D.shape[2]
    naive = bs.joint_percentile_interval(
        gap_and_slope, n_seeds, n_seqs, rng, n_boot=n_boot, level=level
    )
    k = len(names)
    return sec.Gap(
        sizes=names,
        n=tuple(n.tolist()),
        gap=_intervals(c, slice(0, k)),
        relative=tuple((c["point"][:k] / X["standard"].mean(axis=(1, 2))).tolist()),
        per_seed=tuple(map(tuple, D.mean(axis=-1).tolist())),
        slope_per_decade=_interval(c, k) if k >= 2 else None,
        plain_percentile=sec.Band(lo=tuple(naive["lo"].tolist()), hi=tuple(naive["hi"].tolist())),
    )


def _joint_fit(n, X, modes, others, ci: CI, n_boot_fit: int) -> sec.JointFit:
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
    params = {k: _interval(c, i) for i, k in enumerate(names)}
    for k in names[: 1 + len(modes)]:  # intervals for log E, log A: back to E, A
        v = params[k]
        exp = {x: math.exp(getattr(v, x)) for x in ("point", "lo", "hi")}
        params[k] = dataclasses.replace(v, **exp, scale="log")
    return sec.JointFit(
        form=FIT_FORM,
        params=params,
        point=point,
        at_bounds=tuple(point.at_bounds),
        extrapolation_sizes=tuple(extrap_names),
        extrapolation_n=tuple(extrap_n.tolist()),
    )


def _undertrain(p, runs, seeds, modes, others, ci: CI) -> sec.Undertrain:
    size = p.undertrain_size
    factors = [1.0, *map(float, p.undertrain_factors)]
    cells = {
        f: _test_losses(runs, "size" if f == 1 else "undertrain", size, seeds, f) for f in factors
    }
    factors = [f for f in factors if all(m in cells[f] for m in modes)]
    if len(factors) < 2:
        return sec.Undertrain(size=size, factors=tuple(factors), complete=False)
    per_mode = {}
    for m in modes:
        loss = _intervals(ci(bs.mean_over(np.stack([cells[f][m] for f in factors]))))
        per_mode[m] = sec.UndertrainMode(loss=loss)
    for m in others:
        D = np.stack([cells[f][m] - cells[f]["standard"] for f in factors])
        gm = bs.mean_over(D)

        def stat(si: np.ndarray, mi: np.ndarray, gm=gm) -> np.ndarray:
            g = gm(si, mi)
            return np.append(g, g[-1] - g[0])

        c = ci(stat)
        per_mode[m] = sec.UndertrainMode(
            loss=per_mode[m].loss,
            gap=_intervals(c, slice(0, len(factors))),
            gap_change=_interval(c, len(factors)),
            per_seed_gap=tuple(map(tuple, D.mean(axis=-1).tolist())),
        )
    return sec.Undertrain(size=size, factors=tuple(factors), complete=True, modes=per_mode)


def _transfer(p, runs, modes, sweeps: dict[str, sec.Sweep]) -> dict[str, sec.Transfer]:
    """Largest size: validation loss at the transferred lr and grid steps around it."""
    largest = p.sizes[-1].name
    seeds = list(p.seeds[: p.transfer_seeds])
    out = {}
    for m in modes:
        if m not in sweeps:
            continue
        lr0 = sweeps[m].chosen_lr
        local = sorted({lr0, *transfer_lrs(p, lr0)})
        rows = [
            r
            for r in runs
            if r.mode == m
            and r.size == largest
            and r.role in ("size", "transfer")
            and r.seed in seeds
            and r.lr in local
        ]
        lrs, got_seeds, table = lr_table(rows)
        if lrs != local or got_seeds != seeds:
            out[m] = sec.Transfer(complete=False, transferred_lr=lr0)
            continue
        out[m] = _resweep(p, largest, seeds, lr0, lrs, table)
    return out


def _resweep(p, size, seeds, lr0, lrs, table) -> sec.Transfer:
    """The verdict of a complete re-sweep: is the transferred lr within one grid step of the
    size's own optimum (None: not determined, the optimum is at the re-sweep's edge)?"""
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
    return sec.Transfer(
        complete=True,
        size=size,
        seeds=tuple(seeds),
        transferred_lr=lr0,
        lrs=tuple(lrs),
        val_loss=tuple(_nan_to_none(t) for t in table),
        mean_val_loss=_nan_to_none(mean),
        own_optimum=own,
        steps_from_transferred=steps,
        own_optimum_at_local_edge=at_edge,
        within_one_step=within,
    )


def _answer(an: sec.Analysis, others: Sequence[str]) -> sec.Answer | None:
    """The one-sentence answer, from the first non-standard mode's gap slope."""
    if not others or an.gaps[others[0]].slope_per_decade is None:
        return None
    m = others[0]
    g = an.gaps[m]
    s = g.slope_per_decade
    verdict = (
        "grows with size"
        if s.lo > 0
        else "shrinks with size"
        if s.hi < 0
        else "shows no trend with size distinguishable from zero"
    )
    pct = round(100 * an.level)
    text = (
        f"Over N = {fmt_n(min(g.n))}-{fmt_n(max(g.n))} non-embedding parameters, the test-loss "
        f"cost of {m} training ({m} - standard) {verdict}: {s.point:+.4f} nats per decade of "
        f"N ({pct}% CI [{s.lo:+.4f}, {s.hi:+.4f}]), from a gap of {g.gap.point[0]:+.4f} at the "
        f"smallest size to {g.gap.point[-1]:+.4f} at the largest."
    )
    return sec.Answer(mode=m, verdict=verdict, text=text)
