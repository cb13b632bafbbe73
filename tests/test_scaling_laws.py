"""myojax.scaling_laws: the shared-floor fit L_m(N) = E + A_m N^-alpha_m (recovery of a known
law, the refit from a start, parameters on a bound flagged), its objective's gradient and its
input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from myojax import scaling_laws as sl

TRUE = np.array([1.5, 40.0, 0.35])  # E, A, alpha
N = np.geomspace(2.5e4, 4e5, 4)  # the cpu preset's span


def test_predict_is_the_power_law():
    np.testing.assert_allclose(sl.predict(TRUE, N), 1.5 + 40.0 * N**-0.35, rtol=1e-12)
    rows = sl.predict(np.stack([TRUE, [2.0, 0.0, 0.5]]), N)  # broadcast over parameter rows
    assert rows.shape == (2, len(N)) and np.allclose(rows[1], 2.0)


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


def test_objective_is_zero_exactly_at_the_truth():
    log_n = np.log(N)
    theta = np.array([np.log(TRUE[0]), np.log(TRUE[1]), TRUE[2]])
    log_loss = np.log(sl.predict(TRUE, N))
    assert sl.objective(theta, log_n, log_loss)[0] < 1e-20
    # Negative control: a wrong exponent costs something.
    assert sl.objective(theta + np.array([0, 0, 0.05]), log_n, log_loss)[0] > 1e-8


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
        sl.fit_shared_floor(n, {"standard": loss})


def test_fit_profile_recovers_a_known_optimum_and_flags_an_edge():
    from myojax.scaling_laws import fit_profile

    n = 1e6 * 2.0 ** np.arange(-2, 3)
    loss = 2.0 + 0.3 * (np.log(n) - np.log(1.5e6)) ** 2
    fit = fit_profile(n, loss)
    assert abs(fit.n_opt / 1.5e6 - 1) < 1e-6 and abs(fit.loss_opt - 2.0) < 1e-9
    assert not fit.at_edge and abs(fit.curvature - 0.6) < 1e-9
    # the drawn parabola passes through the profile, and off it at a wrong curve
    assert np.allclose(fit.loss_at(n), loss) and np.allclose(fit.loss_at(1.5e6), 2.0)
    assert not np.allclose(fit_profile(n, loss + 0.01 * np.log(n) ** 3).loss_at(n), loss)
    # negative controls: optimum beyond the largest size, and a profile with no minimum
    assert fit_profile(n / 16, loss).at_edge is False  # same shape, scaled n: still inside
    assert fit_profile(n, 2.0 + 0.3 * (np.log(n) - np.log(1e8)) ** 2).at_edge
    assert fit_profile(n, 3.0 - 0.1 * (np.log(n) - np.log(1e6)) ** 2).at_edge


def test_compute_multiplier_interpolates_in_log_compute_and_flags_extrapolation():
    from myojax.scaling_laws import compute_multiplier

    c = np.array([1e12, 1e13, 1e14])
    std = 3.0 - 0.2 * np.log10(c / 1e12)  # 3.0, 2.8, 2.6
    m, extra = compute_multiplier(c, std, std + 0.1)  # half a decade behind
    assert np.allclose(m, 10**-0.5) and extra.tolist() == [True, False, False]
    m, extra = compute_multiplier(c, std, std)  # negative control: identical frontiers
    assert np.allclose(m, 1.0) and not extra.any()
