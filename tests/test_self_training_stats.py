"""The self-training study's statistics: the power calculation against closed forms, the
Student-t interval and its coverage, and the paired interaction estimator on simulated numbers
with a planted interaction."""

import math

import numpy as np
import pytest
from scipy import stats

from experiments.self_training.stats import (
    Contrast,
    interaction,
    minimum_detectable_effect,
    seeds_needed,
)


def _paired_t_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Exact power of the two-sided paired t-test (noncentral t), the closed form the
    approximation in ``minimum_detectable_effect`` is checked against."""
    df, nc = n - 1, effect * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def test_mde_approaches_the_normal_closed_form_for_many_seeds():
    # (z_{0.975} + z_{0.8}) · sd / √n = 2.8016 · sd / √n
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert minimum_detectable_effect(1.0, 10_000) == pytest.approx(z / 100, rel=1e-3)
    assert z == pytest.approx(2.8016, abs=1e-4)


@pytest.mark.parametrize("n", [8, 12, 16, 32])
def test_the_mde_has_about_80_percent_exact_power(n):
    sd = 0.03
    power = _paired_t_power(minimum_detectable_effect(sd, n), sd, n)
    assert 0.78 < power < 0.83
    # negative control: half the MDE is badly underpowered
    assert _paired_t_power(minimum_detectable_effect(sd, n) / 2, sd, n) < 0.4


def test_seeds_needed_is_the_smallest_sufficient_count():
    sd, effect = 0.02, 0.015
    n = seeds_needed(sd, effect)
    assert minimum_detectable_effect(sd, n) <= effect < minimum_detectable_effect(sd, n - 1)
    with pytest.raises(ValueError, match="positive"):
        seeds_needed(sd, 0.0)


def test_mde_scales_with_sd_over_root_n():
    assert minimum_detectable_effect(2.0, 12) == pytest.approx(
        2 * minimum_detectable_effect(1.0, 12)
    )
    with pytest.raises(ValueError, match="2 seeds"):
        minimum_detectable_effect(1.0, 1)


def test_contrast_interval_is_the_student_t_interval():
    x = np.array([0.1, 0.3, 0.2, 0.4])
    c = Contrast.of("c", x)
    half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert (c.lo, c.hi) == pytest.approx((x.mean() - half, x.mean() + half))
    with pytest.raises(ValueError, match="2 seeds"):
        Contrast.of("one", [1.0])


def _simulated_study(planted: float, seeds: int, rng: np.random.Generator):
    """Per-seed losses with a large shared seed effect, a mode gap at the start, a common drift
    over generations and a planted extra drift of mode B."""
    seed_effect = rng.normal(0, 0.5, seeds)  # cancels in paired differences

    def noise():
        return rng.normal(0, 0.01, seeds)

    a0 = 3.0 + seed_effect + noise()
    b0 = 3.2 + seed_effect + noise()  # the mode gap already present on human data
    a1 = a0 + 0.3 + noise()
    b1 = b0 + 0.3 + planted + noise()
    return a0, a1, b0, b1


def test_interaction_recovers_a_planted_interaction_with_covering_interval():
    rng = np.random.default_rng(0)
    c = interaction("x", *_simulated_study(0.05, 24, rng))
    assert c.lo < 0.05 < c.hi
    assert c.mean == pytest.approx(0.05, abs=0.01)
    assert c.verdict == "positive"
    c = interaction("x", *_simulated_study(-0.05, 24, rng))
    assert c.verdict == "negative"


def test_interaction_without_planted_effect_is_not_distinguishable_from_zero():
    # negative control: the start gap and the common drift must not leak into the interaction
    rng = np.random.default_rng(3)
    c = interaction("null", *_simulated_study(0.0, 24, rng))
    assert c.lo < 0 < c.hi
    assert c.verdict == "not distinguishable from 0"
    assert abs(c.mean) < 0.02


def test_interval_coverage_over_many_simulated_studies():
    rng = np.random.default_rng(7)
    covered = sum(
        (c := interaction("x", *_simulated_study(0.05, 12, rng))).lo < 0.05 < c.hi
        for _ in range(400)
    )
    assert 0.92 < covered / 400 < 0.98


def test_interaction_rejects_unequal_seed_counts():
    with pytest.raises(ValueError, match="same length"):
        interaction("x", [1, 2], [1, 2], [1, 2], [1, 2, 3])
