"""The sacrifice map: where, if anywhere, does a standard model predict the *next* token worse
than a myopic one (paying now for later positions)?

Inputs are per-token test losses of both modes at one size, ``[S, M, T]`` (training seeds ×
test sequences × positions), paired by seed (same initialisation and data order) and sequence
(the study's fixed test windows). Every statistic gets the study's crossed interval
(``myojax.bootstrap.crossed_interval``: seeds and sequences each resampled on their own, the
variances added, a Student-t interval), so seed-to-seed variation is inside every interval.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float, Int

from experiments.scaling.sections import Interval
from myojax.bootstrap import crossed_interval, slope_per_decade

Losses = Float[np.ndarray, "S M T"]
MIN_CLASS_TOKENS = 100  # a class with fewer predicted tokens gets no row (no usable interval)


def intervals(stat, n_seeds: int, n_seqs: int, *, n_boot: int, seed: int) -> list[Interval]:
    """``crossed_interval`` of a vector statistic, one ``Interval`` per entry."""
    ci = crossed_interval(stat, n_seeds, n_seqs, np.random.default_rng(seed), n_boot=n_boot)
    fields = ("point", "lo", "hi", "se_seed", "se_seq", "df")
    cols = [np.atleast_1d(ci[f]).astype(float) for f in fields]
    return [
        Interval(**{f: float(c[i]) for f, c in zip(fields, cols, strict=True)})
        for i in range(len(cols[0]))
    ]


def per_position(values: Float[np.ndarray, "S M T"]):
    """Statistic: the mean over resampled seeds and sequences, per position [T]."""
    return lambda seeds, seqs: values[seeds][:, seqs].mean(axis=(0, 1))


def overall(values: Float[np.ndarray, "S M T"]):
    """Statistic: the mean over resampled seeds, sequences and every position [1]."""
    return lambda seeds, seqs: np.atleast_1d(values[seeds][:, seqs].mean())


def per_class(values: Float[np.ndarray, "S M T"], classes: Int[np.ndarray, "M T"], k: int):
    """Statistic: the mean over the tokens of each class [K] (a ratio: sums over counts, so a
    resample weights every token alike). Classes depend on the sequence only."""
    onehot = classes[..., None] == np.arange(k)  # [M, T, K]
    sums = np.einsum("smt,mtk->smk", values, onehot)  # [S, M, K]
    counts = onehot.sum(axis=1).astype(float)  # [M, K]

    def stat(seeds: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        total = counts[seqs].sum(axis=0) * len(seeds)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums[seeds][:, seqs].sum(axis=(0, 1)) / total

    return stat


@dataclasses.dataclass(frozen=True)
class ClassGap:
    name: str
    share: float  # fraction of predicted tokens in the class
    gap: Interval  # myopic − standard loss (nats), mean over the class's tokens
    fraction_better: Interval  # fraction of the class's tokens myopic predicts better


@dataclasses.dataclass(frozen=True)
class SizeSacrifice:
    """One size: the myopic − standard gap overall, per position and per class of the
    predicted token, and the fraction of predicted tokens where myopic is better."""

    size: str
    params: int
    gap: Interval
    gap_by_position: tuple[Interval, ...]
    fraction_better: Interval
    fraction_better_by_position: tuple[Interval, ...]
    by_class: tuple[ClassGap, ...]


def size_sacrifice(
    size: str,
    params: int,
    standard: Losses,
    myopic: Losses,
    classes: Int[np.ndarray, "M T"],
    class_names: tuple[str, ...],
    *,
    n_boot: int,
    seed: int = 0,
) -> SizeSacrifice:
    gap = myopic - standard
    better = (myopic < standard).astype(float)
    s, m = gap.shape[:2]
    ci = lambda stat: intervals(stat, s, m, n_boot=n_boot, seed=seed)
    k = len(class_names)
    class_gap, class_better = ci(per_class(gap, classes, k)), ci(per_class(better, classes, k))
    counts = np.bincount(classes.ravel(), minlength=k)
    by_class = tuple(
        ClassGap(name, float(counts[j] / classes.size), class_gap[j], class_better[j])
        for j, name in enumerate(class_names)
        if counts[j] >= MIN_CLASS_TOKENS
    )
    return SizeSacrifice(
        size=size,
        params=params,
        gap=ci(overall(gap))[0],
        gap_by_position=tuple(ci(per_position(gap))),
        fraction_better=ci(overall(better))[0],
        fraction_better_by_position=tuple(ci(per_position(better))),
        by_class=by_class,
    )


@dataclasses.dataclass(frozen=True)
class Trends:
    """Slopes against log10 N (per decade of non-embedding parameters), over the sizes."""

    gap_first_position: Interval  # the gap at t = 0 (no context: nothing to pre-cache for)
    gap_first_position_pooled: Interval  # not a slope: the t = 0 gap averaged over the sizes
    gap_rest: Interval  # the gap over positions t >= 1
    fraction_better: Interval


def trends(
    params: Float[np.ndarray, " Z"],
    standard: Float[np.ndarray, "Z S M T"],
    myopic: Float[np.ndarray, "Z S M T"],
    *,
    n_boot: int,
    seed: int = 0,
) -> Trends:
    """The same seeds and sequences at every size, so one crossed resample serves all sizes."""
    gap = myopic - standard
    better = (myopic < standard).astype(float)
    _, s, m, _ = gap.shape

    def slope(values: np.ndarray):
        return lambda seeds, seqs: np.atleast_1d(
            slope_per_decade(params, values[:, seeds][:, :, seqs].mean(axis=(1, 2)))
        )

    def pooled(values: np.ndarray):
        return lambda seeds, seqs: np.atleast_1d(values[:, seeds][:, :, seqs].mean())

    ci = lambda stat: intervals(stat, s, m, n_boot=n_boot, seed=seed)[0]
    return Trends(
        gap_first_position=ci(slope(gap[..., 0])),
        gap_first_position_pooled=ci(pooled(gap[..., 0])),
        gap_rest=ci(slope(gap[..., 1:].mean(axis=-1))),
        fraction_better=ci(slope(better.mean(axis=-1))),
    )
