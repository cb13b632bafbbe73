"""Paired contrasts over seeds, their intervals, and the power calculation that sized the study.

Every comparison of the study is paired within a seed (the same initial weights, data order
and human windows), so a contrast is a per-seed difference (or a difference of differences:
an interaction) and its interval is the Student-t interval of the mean over seeds. The
smallest effect the study can detect is the minimum detectable effect at 80% power of a
two-sided 5% t-test with the contrast's measured seed standard deviation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

ALPHA, POWER = 0.05, 0.8


def minimum_detectable_effect(
    sd: float, n: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The true mean difference a paired t-test over ``n`` seeds detects with probability
    ``power`` at level ``alpha`` (two-sided), given the per-seed standard deviation ``sd``
    (the usual (t_(1−α/2) + t_power) · sd/√n approximation)."""
    if n < 2:
        raise ValueError(f"need at least 2 seeds, got {n}")
    t = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)
    return float(t * sd / math.sqrt(n))


def seeds_needed(sd: float, effect: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """The fewest seeds whose minimum detectable effect is at most ``effect``."""
    if effect <= 0:
        raise ValueError(f"effect must be positive, got {effect}")
    n = 2
    while minimum_detectable_effect(sd, n, alpha, power) > effect:
        n += 1
        if n > 100_000:
            raise ValueError(f"sd {sd} is too large for an effect of {effect}")
    return n


@dataclasses.dataclass(frozen=True)
class Contrast:
    """A paired contrast: its per-seed values, mean, 95% t-interval over seeds, seed standard
    deviation and minimum detectable effect."""

    name: str
    per_seed: list[float]
    mean: float
    lo: float
    hi: float
    sd: float
    mde: float

    @classmethod
    def of(cls, name: str, per_seed: Sequence[float] | np.ndarray) -> Contrast:
        x = np.asarray(per_seed, float)
        n = len(x)
        if n < 2:
            raise ValueError(f"{name}: need at least 2 seeds, got {n}")
        sd = float(x.std(ddof=1))
        half = float(stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n))
        m = float(x.mean())
        return cls(name, x.tolist(), m, m - half, m + half, sd, minimum_detectable_effect(sd, n))

    @property
    def verdict(self) -> str:
        """In words: which side of zero the interval lies, or that it straddles zero."""
        if self.lo > 0:
            return "positive"
        if self.hi < 0:
            return "negative"
        return "not distinguishable from 0"


def interaction(
    a_start: Sequence[float] | np.ndarray,
    a_end: Sequence[float] | np.ndarray,
    b_start: Sequence[float] | np.ndarray,
    b_end: Sequence[float] | np.ndarray,
    name: str = "interaction",
) -> Contrast:
    """The mode × generation interaction, paired within a seed: how much more mode B changed
    from the start to the end than mode A did, (b_end − b_start) − (a_end − a_start). The gap
    already present at the start (on human data) cancels, seed by seed."""
    arrays = [np.asarray(x, float) for x in (a_start, a_end, b_start, b_end)]
    if len({x.shape for x in arrays}) != 1:
        raise ValueError(f"{name}: the four per-seed arrays must have the same length")
    a0, a1, b0, b1 = arrays
    return Contrast.of(name, (b1 - b0) - (a1 - a0))


def bootstrap_interval(
    per_seed: Sequence[float] | np.ndarray, seed: int, resamples: int = 4000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over seeds (a check on the t-interval that
    does not assume normal per-seed differences)."""
    x = np.asarray(per_seed, float)
    if len(x) < 2:
        raise ValueError(f"need at least 2 seeds, got {len(x)}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
