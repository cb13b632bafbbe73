"""myojax.bootstrap: the crossed seed x sequence interval covers a known truth about 95% of the
time on simulated studies (where the plain percentile bootstrap, the negative control, does
not), and its two levels see the variation they should.

The full coverage table (1000 studies per regime) is ``python -m experiments.scaling.coverage``
(results/scaling-coverage.md)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.scaling import interval_coverage as cov
from myojax import bootstrap as bs


def test_coverage_on_simulated_studies_is_near_nominal():
    """Seed-dominated regime, 3 seeds: where the intervals matter most."""
    res = cov.coverage(cov.REGIMES["seed-dominated"], studies=120, n_boot=60, seed=1)
    # 120 studies: binomial SE 0.02 at 0.95, so >= 0.88 is a 3.5-SE margin.
    assert res["crossed_t"].slope_coverage >= 0.88
    assert res["crossed_t"].gap_coverage >= 0.88
    # Negative control: the plain percentile bootstrap undercovers here (~0.75-0.8).
    assert res["plain_percentile"].gap_coverage < 0.88


def test_each_level_sees_its_own_variation():
    rng = np.random.default_rng(0)
    seed_only = rng.normal(0, 1, (1, 3, 1)) + np.zeros((1, 3, 200))
    seq_only = rng.normal(0, 1, (1, 1, 200)) + np.zeros((1, 3, 200))
    a = bs.crossed_interval(bs.mean_over(seed_only), 3, 200, rng, n_boot=200)
    b = bs.crossed_interval(bs.mean_over(seq_only), 3, 200, rng, n_boot=200)
    assert a["se_seq"][0] < 1e-12 < a["se_seed"][0] and a["df"][0] == pytest.approx(2)
    assert b["se_seed"][0] < 1e-12 < b["se_seq"][0] and b["df"][0] == pytest.approx(199)
    # 3 seeds: the t quantile with 2 degrees of freedom (4.30), not 1.96
    half = (a["hi"] - a["lo"])[0] / 2
    assert half == pytest.approx(4.303 * a["se"][0], rel=1e-3)
    constant = bs.crossed_interval(bs.mean_over(np.ones((2, 3, 5))), 3, 5, rng, n_boot=20)
    assert np.all(constant["lo"] == 1) and np.all(constant["hi"] == 1)


def test_slope_per_decade_and_bad_arguments():
    n = np.array([1e3, 1e4, 1e5])
    assert bs.slope_per_decade(n, 0.5 + 0.1 * np.log10(n)) == pytest.approx(0.1)
    rng = np.random.default_rng(0)
    stat = bs.mean_over(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="2 seeds"):
        bs.crossed_interval(stat, 1, 4, rng)
    with pytest.raises(ValueError, match="n_boot"):
        bs.crossed_interval(stat, 3, 4, rng, n_boot=2)
    with pytest.raises(ValueError, match="level"):
        bs.joint_percentile_interval(stat, 3, 4, rng, level=1.5)


def test_mean_t_interval_is_scipys_t_interval_over_seeds():
    from scipy import stats

    from myojax.bootstrap import mean_t_interval

    values = np.array([0.31, 0.27, 0.35, 0.29])
    mean, half = mean_t_interval(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert np.isclose(mean, values.mean()) and np.isclose(half, (hi - lo) / 2)
    assert mean_t_interval(values, level=0.5)[1] < half  # a lower level gives a narrower interval
    assert mean_t_interval(np.array([0.4])) == (0.4, 0.0)
