"""Intervals for statistics of a (training seed x held-out sequence) design: pure numpy.

A study evaluates every trained model on the same held-out sequences, and trains every
configuration with the same few seeds, so a loss (or a gap between two modes, paired by seed
and sequence) has two crossed sources of variation: which seeds were trained and which
sequences were held out. ``crossed_interval`` bootstraps each level on its own: seeds are
resampled (all sequences kept) and sequences are resampled (all seeds kept); each level's
bootstrap variance is scaled by n/(n-1) (the plain bootstrap's small-sample shrinkage, large
with 3 seeds), the two are added, and the interval is the point estimate ± a Student-t
quantile times that standard error, with Welch-Satterthwaite degrees of freedom. With few
seeds and seed variation dominant, the degrees of freedom approach n_seeds - 1 (t = 4.30 for
3 seeds) where a percentile interval would be far too narrow.

``joint_percentile_interval`` is the plain hierarchical bootstrap (seeds and sequences
resampled together, percentile interval): kept as the reference that the coverage study
(``python -m experiments.scaling.coverage``) measures against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jaxtyping import Float, Int
from scipy import stats

# stat(seed_indices, sequence_indices) -> the statistic(s) on that resample
Statistic = Callable[[Int[np.ndarray, " S"], Int[np.ndarray, " M"]], Float[np.ndarray, " P"]]


def _check(n_seeds: int, n_seqs: int, n_boot: int, level: float) -> None:
    if n_seeds < 2 or n_seqs < 2:
        raise ValueError(f"need >= 2 seeds and >= 2 sequences, got {n_seeds} and {n_seqs}")
    if n_boot < 10:
        raise ValueError(f"n_boot must be >= 10, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def crossed_interval(
    stat: Statistic,
    n_seeds: int,
    n_seqs: int,
    rng: np.random.Generator,
    *,
    n_boot: int = 400,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Point estimate, interval, standard error and degrees of freedom of ``stat``.

    Returns arrays of the statistic's shape: ``point``, ``lo``, ``hi``, ``se``, ``df``,
    ``se_seed`` and ``se_seq`` (each level's share of the standard error).
    """
    _check(n_seeds, n_seqs, n_boot, level)
    all_seeds, all_seqs = np.arange(n_seeds), np.arange(n_seqs)
    point = np.asarray(stat(all_seeds, all_seqs), float)
    by_seed = np.array([stat(rng.integers(0, n_seeds, n_seeds), all_seqs) for _ in range(n_boot)])
    by_seq = np.array([stat(all_seeds, rng.integers(0, n_seqs, n_seqs)) for _ in range(n_boot)])
    v_seed = np.var(by_seed, axis=0, ddof=1) * n_seeds / (n_seeds - 1)
    v_seq = np.var(by_seq, axis=0, ddof=1) * n_seqs / (n_seqs - 1)
    v = v_seed + v_seq
    with np.errstate(divide="ignore", invalid="ignore"):
        df = v**2 / (v_seed**2 / (n_seeds - 1) + v_seq**2 / (n_seqs - 1))
    df = np.where(np.isfinite(df), df, n_seeds - 1.0)
    half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(v)
    return {
        "point": point,
        "lo": point - half,
        "hi": point + half,
        "se": np.sqrt(v),
        "df": df,
        "se_seed": np.sqrt(v_seed),
        "se_seq": np.sqrt(v_seq),
    }


def joint_percentile_interval(
    stat: Statistic,
    n_seeds: int,
    n_seqs: int,
    rng: np.random.Generator,
    *,
    n_boot: int = 400,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """The plain hierarchical bootstrap: seeds and sequences resampled together, percentiles."""
    _check(n_seeds, n_seqs, n_boot, level)
    point = np.asarray(stat(np.arange(n_seeds), np.arange(n_seqs)), float)
    reps = np.array(
        [
            stat(rng.integers(0, n_seeds, n_seeds), rng.integers(0, n_seqs, n_seqs))
            for _ in range(n_boot)
        ]
    )
    lo, hi = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return {"point": point, "lo": lo, "hi": hi}


def mean_over(
    values: Float[np.ndarray, "... S M"],
) -> Statistic:
    """The statistic "mean over the resampled seeds and sequences" of ``values[..., seed, seq]``
    (e.g. per-size paired gaps myopic - standard), one number per leading index."""
    values = np.asarray(values, float)

    def stat(seeds: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        return values[..., seeds, :][..., seqs].mean(axis=(-2, -1))

    return stat


def slope_per_decade(
    n: Float[np.ndarray, " K"], y: Float[np.ndarray, "... K"]
) -> Float[np.ndarray, ...]:
    """Least-squares slope of ``y`` against log10 N (per row): change of y per decade of N."""
    x = np.log10(np.asarray(n, float))
    x = x - x.mean()
    y = np.asarray(y, float)
    return (y - y.mean(axis=-1, keepdims=True)) @ x / (x @ x)


def simulate_gaps(
    rng: np.random.Generator,
    truth: Float[np.ndarray, " K"],
    *,
    n_seeds: int,
    n_seqs: int,
    sd_seed: float,
    sd_seq: float,
    sd_noise: float,
    seq_corr: float = 0.8,
) -> Float[np.ndarray, "K S M"]:
    """One simulated study of paired gaps with expected value ``truth[k]`` at size k.

    gap[k, s, m] = truth[k] + a[k, s] + b[k, m] + e[k, s, m]: a seed effect per (size, seed),
    a sequence effect correlated across sizes (the same sequences are held out at every size:
    correlation ``seq_corr``) and independent noise. The truth is the mean over both
    populations, which is what the study's intervals claim to cover.
    """
    k = len(truth)
    a = rng.normal(0, sd_seed, (k, n_seeds, 1))
    shared = rng.normal(0, 1, (1, 1, n_seqs))
    own = rng.normal(0, 1, (k, 1, n_seqs))
    b = sd_seq * (np.sqrt(seq_corr) * shared + np.sqrt(1 - seq_corr) * own)
    e = rng.normal(0, sd_noise, (k, n_seeds, n_seqs))
    return np.asarray(truth, float)[:, None, None] + a + b + e


def mean_t_interval(values: Float[np.ndarray, " S"], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t interval over seeds (one value per seed: the
    seed is the only level of variation; 0 for a single seed)."""
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return float(v.mean()), 0.0
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half)
