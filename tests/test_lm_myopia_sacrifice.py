"""The sacrifice map's statistics: planted gaps are found where they were planted, with
crossed intervals that cover them; a zero gap is not called a sacrifice (negative control)."""

from __future__ import annotations

import numpy as np

from experiments.lm_myopia.sacrifice import per_class, size_sacrifice, trends

S, M, T = 3, 60, 8


def _losses(rng: np.random.Generator, gap_by_position: np.ndarray, seed_sd: float = 0.01):
    """Standard losses and myopic = standard + the planted gap + seed and token noise."""
    standard = 2.0 + rng.normal(0, 0.3, (S, M, T))
    seed_effect = rng.normal(0, seed_sd, (S, 1, 1))
    myopic = standard + gap_by_position + seed_effect + rng.normal(0, 0.05, (S, M, T))
    return standard, myopic


def test_planted_first_position_advantage_is_found_there_only():
    rng = np.random.default_rng(0)
    gap = np.full(T, 0.2)
    gap[0] = -0.2  # myopic better at t = 0, worse elsewhere
    standard, myopic = _losses(rng, gap)
    classes = np.tile(np.arange(T) % 2, (M, 1))  # class 0 at even positions
    out = size_sacrifice("z", 1, standard, myopic, classes, ("even", "odd"), n_boot=100)
    first, rest = out.gap_by_position[0], out.gap_by_position[1:]
    assert first.lo < -0.2 < first.hi and first.hi < 0
    assert all(iv.lo > 0 for iv in rest)
    assert out.fraction_better_by_position[0].lo > 0.5  # most t = 0 tokens: myopic better
    assert all(iv.hi < 0.5 for iv in out.fraction_better_by_position[1:])
    even, odd = out.by_class
    assert abs(even.gap.point - np.mean(gap[::2])) < 0.03 and even.share == 0.5
    assert abs(odd.gap.point - 0.2) < 0.03
    assert abs(out.gap.point - gap.mean()) < 0.02


def test_zero_gap_is_not_a_sacrifice():
    rng = np.random.default_rng(1)
    standard, myopic = _losses(rng, np.zeros(T), seed_sd=0.0)
    classes = np.zeros((M, T), int)
    out = size_sacrifice("z", 1, standard, myopic, classes, ("all",), n_boot=100)
    assert out.gap.lo < 0 < out.gap.hi
    assert out.fraction_better.lo < 0.5 < out.fraction_better.hi
    assert sum(iv.hi < 0 for iv in out.gap_by_position) <= 1  # at most a 5% false positive


def test_per_class_weights_every_token_alike():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(S, M, T))
    classes = rng.integers(0, 3, (M, T))
    got = per_class(values, classes, 3)(np.arange(S), np.arange(M))
    for k in range(3):
        assert np.isclose(got[k], values[:, classes == k].mean())


def test_trend_finds_a_planted_slope_and_no_slope_when_none():
    rng = np.random.default_rng(3)
    params = np.array([1e4, 1e5, 1e6])
    base = 2.0 + rng.normal(0, 0.2, (1, S, M, T))
    standard = np.repeat(base, 3, axis=0)
    noise = lambda: rng.normal(0, 0.02, (3, S, M, T))
    growing = standard + np.array([0.0, 0.1, 0.2])[:, None, None, None] + noise()
    flat = standard + noise()
    up = trends(params, standard, growing, n_boot=100)
    assert up.gap_rest.lo < 0.1 < up.gap_rest.hi and up.gap_rest.lo > 0
    assert up.fraction_better.hi < 0  # a growing gap: fewer tokens better with size
    none = trends(params, standard, flat, n_boot=100)
    assert none.gap_rest.lo < 0 < none.gap_rest.hi
