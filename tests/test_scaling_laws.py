"""myojax.scaling_laws: the Huber/L-BFGS power-law fit, the paired bootstrap, trend slopes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from myojax import scaling_laws as sl

TRUE = np.array([1.5, 40.0, 0.35])  # E, A, alpha
N = np.geomspace(2.5e4, 4e5, 4)  # the cpu preset's span
SMALL_GRID = ((0.0, 1.0), (2.5, 10.0), (0.3, 1.0))  # 8 starts: enough for these curves, fast


def synthetic(
    rng: np.random.Generator,
    params: np.ndarray = TRUE,
    n: np.ndarray = N,
    items: int = 256,
    item_sd: float = 0.5,
    noise_sd: float = 0.05,
) -> np.ndarray:
    """Per-item losses like a held-out set: a shared per-item difficulty (the same sequences
    are hard for every model) plus independent per-model noise."""
    difficulty = rng.normal(0.0, item_sd, items)
    return (
        sl.predict(params, n)[:, None]
        + difficulty[None]
        + rng.normal(0.0, noise_sd, (len(n), items))
    )


def test_recovers_exact_parameters():
    fit = sl.fit_power_law(N, sl.predict(TRUE, N))
    np.testing.assert_allclose([fit.E, fit.A, fit.alpha], TRUE, rtol=1e-4)
    assert fit.objective < 1e-12
    np.testing.assert_allclose(fit.predict(N), sl.predict(TRUE, N), rtol=1e-6)


def test_objective_gradient_matches_finite_differences():
    log_n, log_loss = np.log(N), np.log(sl.predict(TRUE, N) * np.array([1.01, 0.99, 1.0, 1.02]))
    theta = np.array([0.2, 3.0, 0.4])
    err = optimize.check_grad(
        lambda t: sl.objective(t, log_n, log_loss)[0],
        lambda t: sl.objective(t, log_n, log_loss)[1],
        theta,
        epsilon=1e-7,
    )
    assert err < 1e-6


def test_noisy_fit_close_and_intervals_cover_truth():
    rng = np.random.default_rng(0)
    per_item = synthetic(rng)
    fit = sl.fit_power_law(N, per_item.mean(axis=1))
    params = sl.bootstrap_fits(
        N, per_item, sl.bootstrap_indices(rng, per_item.shape[1], 100), point=fit
    )
    lo, hi = sl.interval(params)
    assert np.all(lo <= TRUE) and np.all(hi >= TRUE), (lo, hi)
    assert abs(fit.alpha - TRUE[2]) < 0.1 and abs(fit.E - TRUE[0]) < 0.2


def test_prediction_intervals_cover_truth_in_repeated_experiments():
    """Coverage of the fitted curve at the measured sizes over 6 independent synthetic studies
    (deterministic seeds). Nominal 95%; the percentile bootstrap with 4 sizes and 30 replicates
    may under-cover a little, so require 5 of 6."""
    covered = 0
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        per_item = synthetic(rng)
        fit = sl.fit_power_law(N, per_item.mean(axis=1), grid=SMALL_GRID)
        params = sl.bootstrap_fits(
            N, per_item, sl.bootstrap_indices(rng, per_item.shape[1], 30), point=fit
        )
        lo, hi = sl.interval(sl.predict(params, N))
        truth = sl.predict(TRUE, N)
        covered += bool(np.all((lo <= truth) & (truth <= hi)))
    assert covered >= 5, covered


def test_point_start_bootstrap_matches_full_grid():
    rng = np.random.default_rng(1)
    per_item = synthetic(rng)
    fit = sl.fit_power_law(N, per_item.mean(axis=1))
    idx = sl.bootstrap_indices(rng, per_item.shape[1], 3)
    fast = sl.bootstrap_fits(N, per_item, idx, point=fit)
    for b, means in enumerate(sl.resampled_means(per_item, idx)):
        full = sl.fit_power_law(N, means)
        theta = [np.log(fast[b, 0]), np.log(fast[b, 1]), fast[b, 2]]
        assert (
            sl.objective(theta, np.log(N), np.log(means))[0] <= full.objective * (1 + 1e-3) + 1e-15
        )
        np.testing.assert_allclose(fast[b], [full.E, full.A, full.alpha], rtol=1e-2)


def test_negative_control_flat_losses_give_no_scaling():
    """Losses that do not depend on N: the bootstrap interval of the improvement from the
    smallest to the largest size must include zero (a fit that always 'finds' a power law
    would be useless)."""
    rng = np.random.default_rng(2)
    flat = np.array([2.0, 2.0, 2.0, 2.0])
    per_item = synthetic(rng, params=np.array([2.0, 1e-9, 0.5]))
    assert np.allclose(sl.predict([2.0, 1e-9, 0.5], N), flat)
    fit = sl.fit_power_law(N, per_item.mean(axis=1))
    params = sl.bootstrap_fits(
        N, per_item, sl.bootstrap_indices(rng, per_item.shape[1], 60), point=fit
    )
    pred = sl.predict(params, N[[0, -1]])
    lo, hi = sl.interval(pred[:, 0] - pred[:, 1])
    assert lo <= 0.0 <= hi or abs(hi) < 0.02, (lo, hi)


def test_paired_gap_trend_control_and_detection():
    """Same true curve for both 'modes': the gap trend interval covers 0. A gap growing by
    0.05 nats per decade: the interval excludes 0 and covers the truth."""
    rng = np.random.default_rng(3)
    idx = sl.bootstrap_indices(rng, 256, 300)
    difficulty = rng.normal(0.0, 0.5, 256)
    base = sl.predict(TRUE, N)[:, None] + difficulty

    def trend_ci(shift: np.ndarray) -> tuple[float, float]:
        a = base + rng.normal(0.0, 0.05, base.shape)
        b = base + shift[:, None] + rng.normal(0.0, 0.05, base.shape)
        lo, hi = sl.interval(sl.trend_slope(N, sl.resampled_means(b - a, idx)))
        return float(lo), float(hi)

    lo, hi = trend_ci(np.zeros(len(N)))
    assert lo <= 0.0 <= hi
    growing = 0.05 * np.log10(N / N[0])
    lo, hi = trend_ci(growing)
    assert 0.0 < lo <= 0.05 <= hi


def test_trend_slope_exact():
    np.testing.assert_allclose(sl.trend_slope(N, 3.0 + 0.2 * np.log10(N)), 0.2)
    rows = np.stack([np.log10(N), -np.log10(N)])
    np.testing.assert_allclose(sl.trend_slope(N, rows), [1.0, -1.0])


def test_resampled_means_are_paired():
    per_item = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
    idx = np.array([[0, 0, 0], [2, 2, 1]])
    np.testing.assert_allclose(sl.resampled_means(per_item, idx), [[1.0, 2.0], [8 / 3, 11 / 3]])


@pytest.mark.parametrize(
    "n, loss, message",
    [
        ([1e4, 2e4], [3.0, 2.9], "at least 3 distinct sizes"),
        ([1e4, 2e4, 4e4], [3.0, 2.9, 0.0], "finite and positive"),
        ([1e4, 2e4, 4e4], [3.0, 2.9, np.nan], "finite and positive"),
        ([1e4, -2e4, 4e4], [3.0, 2.9, 2.8], "sizes must be"),
        ([1e4, 2e4, 4e4], [3.0, 2.9], "equal length"),
    ],
)
def test_bad_input_is_one_clear_error(n, loss, message):
    with pytest.raises(ValueError, match=message):
        sl.fit_power_law(n, loss)


def test_interval_rejects_bad_level():
    with pytest.raises(ValueError, match="level"):
        sl.interval(np.zeros((3, 2)), level=1.5)


def test_shared_floor_fit_recovers_a_known_law_and_refits_from_a_start():
    n = np.geomspace(2e4, 2e5, 5)
    truth = {"standard": (20.0, 0.30), "myopic": (25.0, 0.28)}
    losses = {k: 1.5 + a * n**-al for k, (a, al) in truth.items()}
    fit = sl.fit_shared_floor(n, losses)
    assert pytest.approx(1.5, rel=1e-4) == fit.E and fit.at_bounds == ()
    for k, (a, al) in truth.items():
        assert fit.A[k] == pytest.approx(a, rel=1e-3) and fit.alpha[k] == pytest.approx(
            al, rel=1e-4
        )
        assert np.allclose(fit.predict(k, n), losses[k], rtol=1e-6)
    again = sl.fit_shared_floor(n, {k: v * 1.001 for k, v in losses.items()}, start=fit)
    assert pytest.approx(1.5015, rel=1e-4) == again.E


def test_shared_floor_fit_flags_a_parameter_on_its_bound():
    n = np.geomspace(2e4, 2e5, 5)
    pure = {"standard": 20 * n**-0.3, "myopic": 25 * n**-0.28}  # no floor: E -> 0
    fit = sl.fit_shared_floor(n, pure)
    assert "E" in fit.at_bounds and fit.E < 1e-3
    flat = {"standard": 1.5 + 20 * n**-0.3, "myopic": np.full(5, 2.0)}  # no decrease: alpha -> 0
    assert "alpha[myopic]" in sl.fit_shared_floor(n, flat).at_bounds
