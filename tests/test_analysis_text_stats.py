import math

import numpy as np
import pytest

from myojax.analysis import text_stats as ts


def test_ngrams_stay_inside_rows():
    rows = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(ts.ngrams(rows, 2), [[1, 2], [3, 4]])  # no (2, 3)
    np.testing.assert_array_equal(ts.ngrams([np.array([5, 6, 7])], 2), [[5, 6], [6, 7]])
    assert ts.ngrams(rows, 3).shape == (0, 3)
    with pytest.raises(ValueError, match="n must be"):
        ts.ngrams(rows, 0)


def test_aligned_counts_over_the_union_of_both_samples():
    p, q = ts.aligned_counts(np.array([[0, 0, 0, 1]]), np.array([[1, 2]]), 1)
    # cells 0, 1, 2 in sorted order
    np.testing.assert_array_equal(p, [3, 1, 0])
    np.testing.assert_array_equal(q, [0, 1, 1])


def test_kl_hand_computed():
    # alpha = 0: P = (3/4, 1/4), Q = (1/2, 1/2).
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert ts.kl_divergence(np.array([3, 1]), np.array([1, 1]), alpha=0) == pytest.approx(want)
    # alpha = 0.5: P = (3.5, 1.5)/5, Q = (1.5, 1.5)/3.
    want = 0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5)
    assert ts.kl_divergence(np.array([3, 1]), np.array([1, 1])) == pytest.approx(want)
    # A cell empty in both samples is dropped, not smoothed.
    assert ts.kl_divergence(np.array([3, 1, 0]), np.array([1, 1, 0])) == pytest.approx(want)
    # Q lacks a cell P has: smoothing keeps it finite; unsmoothed it is refused.
    assert math.isfinite(ts.kl_divergence(np.array([1, 1]), np.array([2, 0])))
    with pytest.raises(ValueError, match="alpha"):
        ts.kl_divergence(np.array([1, 1]), np.array([2, 0]), alpha=0)


def test_ngram_kl_is_zero_for_equal_samples_and_positive_otherwise():
    a = np.array([[1, 2, 3, 1, 2, 3]])
    assert ts.ngram_kl(a, a[:, ::-1], 1) == pytest.approx(0.0)  # same unigrams
    assert ts.ngram_kl(a, a[:, ::-1], 2) > 0.1  # bigrams reversed
    # bigram counts: P = {12: 2, 23: 2, 31: 1}, Q = {12: 1, 21: 1}; union 12, 21, 23, 31.
    b = np.array([[1, 2, 1]])
    p = np.array([2, 0, 2, 1]) + 0.5
    q = np.array([1, 1, 0, 0]) + 0.5
    p, q = p / p.sum(), q / q.sum()
    assert ts.ngram_kl(a, b, 2) == pytest.approx(float(np.sum(p * np.log(p / q))))


def test_entropy_hand_computed():
    assert ts.entropy(np.array([2, 2])) == pytest.approx(math.log(2))
    assert ts.entropy(np.array([4, 0])) == pytest.approx(0.0)
    assert ts.ngram_entropy(np.array([[0, 0, 1, 1]]), 1) == pytest.approx(math.log(2))
    # bigrams 00, 01, 11 once each
    assert ts.ngram_entropy(np.array([[0, 0, 1, 1]]), 2) == pytest.approx(math.log(3))


def test_distinct_and_repetition_hand_computed():
    loop = np.array([[1, 2, 1, 2, 1]])  # bigrams 12 21 12 21
    assert ts.distinct_n(loop, 2) == 0.5
    assert ts.repetition_rate(loop, 2) == 0.5
    # The same row twice: half the bigrams are duplicates across rows, none within a row.
    twice = np.array([[1, 2, 3], [1, 2, 3]])
    assert ts.distinct_n(twice, 2) == 0.5
    assert ts.repetition_rate(twice, 2) == 0.0
    assert ts.distinct_n(np.arange(10)[None], 3) == 1.0
    with pytest.raises(ValueError, match="no row"):
        ts.distinct_n(twice, 4)


def test_drift_separates_a_collapsed_sample_from_a_fresh_one():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 20, (64, 32))
    fresh = rng.integers(0, 20, (64, 32))
    collapsed = np.tile(np.array([3, 4, 5, 6]), (64, 8))  # a four-token loop
    d_fresh, d_collapsed = ts.drift(fresh, reference), ts.drift(collapsed, reference)
    assert d_collapsed["unigram_kl"] > 10 * d_fresh["unigram_kl"]
    assert d_collapsed["bigram_kl"] > 2 * d_fresh["bigram_kl"]
    assert d_collapsed["unigram_entropy"] == pytest.approx(math.log(4))
    assert d_collapsed["repetition_8"] > 0.8 > d_fresh["repetition_8"]
    assert d_collapsed["distinct_4"] < 0.01 < d_fresh["distinct_4"]
