"""Paired contrasts, the interaction estimator and the power calculation."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from experiments.self_training.stats import (
    Contrast,
    interaction,
    minimum_detectable_effect,
    seeds_needed,
)


def test_mde_matches_the_normal_closed_form_for_many_seeds():
    # (z_{1-a/2} + z_{power}) * sd / sqrt(n) = (1.95996 + 0.84162) * sd / sqrt(n)
    n, sd = 20_000, 0.3
    closed = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert minimum_detectable_effect(sd, n) == pytest.approx(closed, rel=1e-3)
    assert (1.95996 + 0.84162) * sd / math.sqrt(n) == pytest.approx(closed, rel=1e-4)


def test_mde_has_about_80_percent_power_by_the_exact_noncentral_t():
    n, sd = 12, 0.05
    mde = minimum_detectable_effect(sd, n)
    crit = sps.t.ppf(0.975, n - 1)
    power = 1 - sps.nct.cdf(crit, n - 1, mde / (sd / math.sqrt(n)))
    assert 0.78 < power < 0.82
    # negative control: half the MDE has far less power
    half = 1 - sps.nct.cdf(crit, n - 1, 0.5 * mde / (sd / math.sqrt(n)))
    assert half < 0.4


def test_seeds_needed_is_the_smallest_n_whose_mde_fits():
    n = seeds_needed(0.12, 0.05)
    assert minimum_detectable_effect(0.12, n) <= 0.05 < minimum_detectable_effect(0.12, n - 1)
    with pytest.raises(ValueError):
        seeds_needed(0.1, 0.0)


def test_interaction_recovers_a_planted_effect_with_a_covering_interval():
    rng = np.random.default_rng(0)
    n, planted = 30, -0.04
    seed_effect = rng.normal(0, 0.1, n)  # shared by all four cells of a seed: pairing cancels it
    a0 = 3.0 + seed_effect + rng.normal(0, 0.01, n)
    a1 = a0 + 0.10 + rng.normal(0, 0.01, n)
    b0 = a0 + 0.07 + rng.normal(0, 0.01, n)  # a gap already present at baseline
    b1 = b0 + 0.10 + planted + rng.normal(0, 0.01, n)
    c = interaction("x", a0, a1, b0, b1)
    assert c.lo <= planted <= c.hi
    assert c.hi < 0 and c.verdict == "negative"
    assert c.mean == pytest.approx(planted, abs=0.01)
    # negative control: no planted interaction -> the interval covers 0
    null = interaction("null", a0, a1, b0, b0 + (a1 - a0))
    assert null.lo <= 0 <= null.hi


def test_contrast_interval_is_the_student_t_interval():
    x = np.array([0.1, 0.3, 0.2, 0.4])
    c = Contrast.of("c", x)
    half = sps.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert (c.lo, c.hi) == pytest.approx((x.mean() - half, x.mean() + half))
    with pytest.raises(ValueError):
        Contrast.of("one", [1.0])
