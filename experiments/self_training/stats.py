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
    name: str,
    a_base: np.ndarray,
    a_after: np.ndarray,
    b_base: np.ndarray,
    b_after: np.ndarray,
) -> Contrast:
    """The paired difference of differences (b_after − b_base) − (a_after − a_base), per seed:
    how much more B changes than A between the two conditions, net of the gap between B and A
    already present in the base condition."""
    a0, a1, b0, b1 = (np.asarray(x, float) for x in (a_base, a_after, b_base, b_after))
    if not a0.shape == a1.shape == b0.shape == b1.shape:
        raise ValueError(f"{name}: the four per-seed arrays must have the same length")
    return Contrast.of(name, (b1 - b0) - (a1 - a0))
