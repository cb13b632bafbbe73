"""Statistics of token text: n-gram counts, KL between two samples, entropy, distinct-n and
repetition rates. All in nats; all on 2-D arrays of rows (one sequence per row) where an n-gram
never straddles two rows.

Used to measure how far sampled text drifts from human text (``experiments.self_training``).
Every plug-in estimate here depends on the sample size, so compare two samples of the same
shape, and report the same statistic between two disjoint human samples as the floor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Int
from numpy.lib.stride_tricks import sliding_window_view


def _rows(rows: Int[np.ndarray, "R L"] | Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(r).reshape(-1) for r in rows]
    if not out:
        raise ValueError("need at least one row of tokens")
    return out


def ngrams(rows: Int[np.ndarray, "R L"] | Sequence[np.ndarray], n: int) -> Int[np.ndarray, "K n"]:
    """Every n-gram inside each row, in order (rows shorter than ``n`` contribute none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [sliding_window_view(r, n) for r in _rows(rows) if r.size >= n]
    return np.concatenate(grams) if grams else np.zeros((0, n), np.int64)


def aligned_counts(
    rows_p: Int[np.ndarray, "R L"] | Sequence[np.ndarray],
    rows_q: Int[np.ndarray, "S M"] | Sequence[np.ndarray],
    n: int,
) -> tuple[Int[np.ndarray, " K"], Int[np.ndarray, " K"]]:
    """n-gram counts of two samples over the union of the n-grams either one contains."""
    gp, gq = ngrams(rows_p, n), ngrams(rows_q, n)
    _, inverse = np.unique(np.concatenate([gp, gq]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = int(inverse.max()) + 1 if inverse.size else 0
    return (
        np.bincount(inverse[: len(gp)], minlength=k),
        np.bincount(inverse[len(gp) :], minlength=k),
    )


def kl_divergence(
    p_counts: Int[np.ndarray, " K"], q_counts: Int[np.ndarray, " K"], alpha: float = 0.5
) -> float:
    """KL(P ‖ Q) in nats between two count vectors over the same cells, each smoothed by adding
    ``alpha`` to every cell where either count is positive (cells empty in both are dropped:
    with byte bigrams most of the 65536 cells are, and smoothing them would swamp the data)."""
    p, q = np.asarray(p_counts, np.float64), np.asarray(q_counts, np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"count vectors must be 1-D of one shape, got {p.shape} and {q.shape}")
    if alpha < 0 or (alpha == 0 and np.any((p > 0) & (q == 0))):
        raise ValueError("alpha must be >= 0, and > 0 when P has a cell that Q lacks")
    seen = (p + q) > 0
    p, q = p[seen] + alpha, q[seen] + alpha
    p, q = p / p.sum(), q / q.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def ngram_kl(
    rows_p: Int[np.ndarray, "R L"] | Sequence[np.ndarray],
    rows_q: Int[np.ndarray, "S M"] | Sequence[np.ndarray],
    n: int,
    alpha: float = 0.5,
) -> float:
    """KL(P ‖ Q) in nats between the n-gram distributions of two samples (``kl_divergence``)."""
    return kl_divergence(*aligned_counts(rows_p, rows_q, n), alpha=alpha)


def entropy(counts: Int[np.ndarray, " K"]) -> float:
    """Plug-in Shannon entropy in nats of a count vector."""
    c = np.asarray(counts, np.float64)
    p = c[c > 0] / c.sum()
    return float(-np.sum(p * np.log(p)))


def ngram_entropy(rows: Int[np.ndarray, "R L"] | Sequence[np.ndarray], n: int = 1) -> float:
    """Plug-in entropy in nats of the n-gram distribution of a sample."""
    _, counts = np.unique(ngrams(rows, n), axis=0, return_counts=True)
    return entropy(counts)


def distinct_n(rows: Int[np.ndarray, "R L"] | Sequence[np.ndarray], n: int) -> float:
    """Distinct n-grams over all n-grams of the whole sample (Li et al. 2016's distinct-n)."""
    g = ngrams(rows, n)
    if len(g) == 0:
        raise ValueError(f"no row has {n} tokens")
    return len(np.unique(g, axis=0)) / len(g)


def repetition_rate(rows: Int[np.ndarray, "R L"] | Sequence[np.ndarray], n: int) -> float:
    """Fraction of n-grams that repeat an n-gram seen earlier in the same row, pooled over rows
    (loops such as ``"the the the"``); repeats across rows do not count."""
    total = repeats = 0
    for r in _rows(rows):
        g = ngrams([r], n)
        total += len(g)
        repeats += len(g) - (len(np.unique(g, axis=0)) if len(g) else 0)
    if total == 0:
        raise ValueError(f"no row has {n} tokens")
    return repeats / total


def drift(
    sample: Int[np.ndarray, "R L"],
    reference: Int[np.ndarray, "S M"],
    *,
    distinct: Sequence[int] = (4, 8),
    repetition: int = 8,
    alpha: float = 0.5,
) -> dict[str, float]:
    """How ``sample`` differs from ``reference`` text: unigram and bigram KL(reference ‖ sample)
    (mass the sample lost) and KL(sample ‖ reference) (mass it invented), its unigram and
    bigram entropy, its within-row repetition rate of ``repetition``-grams and its distinct-n."""
    out: dict[str, float] = {
        "unigram_kl": ngram_kl(reference, sample, 1, alpha),
        "bigram_kl": ngram_kl(reference, sample, 2, alpha),
        "unigram_kl_rev": ngram_kl(sample, reference, 1, alpha),
        "bigram_kl_rev": ngram_kl(sample, reference, 2, alpha),
        "unigram_entropy": ngram_entropy(sample, 1),
        "bigram_entropy": ngram_entropy(sample, 2),
        f"repetition_{repetition}": repetition_rate(sample, repetition),
    }
    for n in distinct:
        out[f"distinct_{n}"] = distinct_n(sample, n)
    return out
