"""Fitting L_m(N) = E + A_m·N^(−α_m), one curve per gradient mode with the irreducible loss E
shared: pure functions over numpy arrays.

The fit follows the third approach of Hoffmann et al. (2022, "Chinchilla"): parametrize
E = exp(e), A = exp(a) so that log L̂(N) = logsumexp(a − α·log N, e), minimize the Huber loss of
log L̂ − log L with L-BFGS-B in a box from several starts, and keep the best optimum. Huber on
log-loss keeps one bad point from dominating; the starts guard against the shallow, curved
valley in which A and α trade off against each other. A parameter whose optimum sits on the
box is named in ``at_bounds``: a property of the box, not a finding.

This module fits point estimates only. The scaling study's intervals come from refitting
bootstrap resamples with ``myojax.bootstrap.crossed_interval``, which resamples training seeds
and held-out sequences, so seed-to-seed training variance is in them
(``experiments.scaling.estimates``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import Float
from scipy import optimize, special

HUBER_DELTA = 1e-3  # as in Hoffmann et al.: quadratic for residuals below 0.1% of log-loss
# L-BFGS-B box: alpha > 0 keeps "loss falls with size" the model's only shape; the upper
# bounds only stop the optimizer from wandering off into an overflow.
BOUNDS: tuple[tuple[float, float], ...] = ((-10.0, 5.0), (-10.0, 40.0), (0.0, 3.0))


def predict(
    params: Float[np.ndarray, "... 3"], n: Float[np.ndarray, " K"] | float
) -> Float[np.ndarray, "... K"]:
    """L(N) for parameter rows ``(E, A, alpha)`` (broadcast over leading axes)."""
    params = np.asarray(params, float)
    n = np.atleast_1d(np.asarray(n, float))
    e_, a_, al = (params[..., i, None] for i in range(3))
    return e_ + a_ * np.exp(-al * np.log(n))


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    return loss, np.clip(r, -delta, delta)


def objective(
    theta: Float[np.ndarray, " 3"],
    log_n: Float[np.ndarray, " K"],
    log_loss: Float[np.ndarray, " K"],
    delta: float = HUBER_DELTA,
) -> tuple[float, Float[np.ndarray, " 3"]]:
    """Summed Huber loss of log-space residuals at theta = (e, a, alpha), and its gradient."""
    e, a, alpha = theta
    z = np.stack([a - alpha * log_n, np.full_like(log_n, e)])
    pred = special.logsumexp(z, axis=0)
    w_power = np.exp(z[0] - pred)  # d pred / d a; d pred / d e = 1 - w_power
    loss, dloss = _huber(pred - log_loss, delta)
    grad = np.array(
        [np.sum(dloss * (1 - w_power)), np.sum(dloss * w_power), np.sum(dloss * w_power * -log_n)]
    )
    return float(np.sum(loss)), grad


# The optimizer sees the objective divided by delta^2: the summed Huber loss is ~1e-6 here, and
# scipy's ftol test is relative to max(|f|, 1), so unscaled it would stop almost at once.
_OPTIONS = {"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9}


def _check_inputs(n: np.ndarray, loss: np.ndarray) -> None:
    if n.ndim != 1 or n.shape != loss.shape:
        raise ValueError(f"n and loss must be 1-D of equal length, got {n.shape} and {loss.shape}")
    if len(np.unique(n)) < 3:
        raise ValueError(
            f"fitting E, A, alpha needs at least 3 distinct sizes, got {len(np.unique(n))}"
        )
    if not (np.all(np.isfinite(n)) and np.all(n > 0)):
        raise ValueError(f"sizes must be finite and positive, got {n}")
    if not (np.all(np.isfinite(loss)) and np.all(loss > 0)):
        raise ValueError(f"losses must be finite and positive, got {loss}")


FLOOR_STARTS = (0.0, 0.5, 0.8, 0.9, 0.97)  # initial E as a fraction of the smallest loss


@dataclasses.dataclass(frozen=True)
class SharedFloorFit:
    """One irreducible loss E shared by every curve, an amplitude and exponent per curve.

    ``at_bounds`` names each parameter whose optimum sits on its box bound (e.g. "E" at its
    lower bound: no floor identified; "alpha[myopic]" at 0): such a value is a property of the
    box, not a finding, and is flagged wherever it is reported.
    """

    E: float
    A: dict[str, float]
    alpha: dict[str, float]
    objective: float
    at_bounds: tuple[str, ...]

    def predict(self, curve: str, n: Float[np.ndarray, " K"] | float) -> Float[np.ndarray, " K"]:
        return predict(np.array([self.E, self.A[curve], self.alpha[curve]]), n)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _joint_objective(
    theta: np.ndarray, log_n: np.ndarray, log_losses: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """theta = (e, a_1, alpha_1, ..., a_C, alpha_C); log_losses is (C, K)."""
    f, grad = 0.0, np.zeros_like(theta)
    for c, log_loss in enumerate(log_losses):
        fc, gc = objective(
            np.array([theta[0], theta[1 + 2 * c], theta[2 + 2 * c]]), log_n, log_loss, delta
        )
        f += fc
        grad[0] += gc[0]
        grad[1 + 2 * c : 3 + 2 * c] += gc[1:]
    return f, grad


def fit_shared_floor(
    n: Float[np.ndarray, " K"] | Sequence[float],
    losses: dict[str, Float[np.ndarray, " K"] | Sequence[float]],
    *,
    delta: float = HUBER_DELTA,
    start: SharedFloorFit | None = None,
) -> SharedFloorFit:
    """Huber/L-BFGS-B fit of every curve in ``losses`` (same sizes ``n``) with one shared E.

    Starts: for each floor E = f·min(L), f in ``FLOOR_STARTS``, each curve's (A, alpha) from a
    straight line through log(L - E) against log N; or only ``start`` (a previous fit, e.g.
    the point estimate when refitting bootstrap resamples).
    """
    n = np.asarray(n, float)
    names = list(losses)
    arr = np.array([np.asarray(losses[k], float) for k in names])
    for row in arr:
        _check_inputs(n, row)
    # Centred log N: with a' = a - alpha * mean(log N) (the amplitude at the geometric-mean
    # size) a' and alpha are nearly uncorrelated, where a and alpha are almost collinear (log N
    # ~ 10-20), which cuts L-BFGS iterations several-fold. The optimum is the same point.
    c = float(np.mean(np.log(n)))
    log_n, log_losses = np.log(n) - c, np.log(arr)
    scale = 1.0 / delta**2

    def scaled(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = _joint_objective(theta, log_n, log_losses, delta)
        return f * scale, g * scale

    if start is not None:
        starts = [[math.log(start.E)] + [v for k in names for v in _theta_c(start, k, c)]]
    else:
        starts = [_floor_start(f * arr.min(), log_n, arr) for f in FLOOR_STARTS]
    bounds = [BOUNDS[0]] + [BOUNDS[1], BOUNDS[2]] * len(names)
    best_x, best_f = None, math.inf
    for x0 in starts:
        res = optimize.minimize(
            scaled,
            np.array(x0, float),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options=_OPTIONS,
        )
        if res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
    e = best_x[0]
    a = {k: best_x[1 + 2 * i] + best_x[2 + 2 * i] * c for i, k in enumerate(names)}
    al = {k: float(best_x[2 + 2 * i]) for i, k in enumerate(names)}
    flags = [] if not _on_bound(e, BOUNDS[0]) else ["E"]
    for i, k in enumerate(names):  # the box holds the centred amplitude
        flags += [f"A[{k}]"] if _on_bound(best_x[1 + 2 * i], BOUNDS[1]) else []
        flags += [f"alpha[{k}]"] if _on_bound(al[k], BOUNDS[2]) else []
    return SharedFloorFit(
        E=float(np.exp(e)),
        A={k: float(np.exp(v)) for k, v in a.items()},
        alpha=al,
        objective=best_f / scale,
        at_bounds=tuple(flags),
    )


def _floor_start(floor: float, log_n_c: np.ndarray, losses: np.ndarray) -> list[float]:
    """(e, a_c, alpha per curve) from least squares of log(L - floor) on centred log N."""
    theta = [math.log(max(floor, math.exp(BOUNDS[0][0])))]
    for row in losses:
        y = np.log(np.maximum(row - floor, 1e-6))
        slope = float(np.polyfit(log_n_c, y, 1)[0]) if np.ptp(log_n_c) > 0 else 0.0
        alpha = float(np.clip(-slope, 0.01, BOUNDS[2][1] - 0.01))
        theta += [float(y.mean()), alpha]
    return theta


def _theta_c(fit: SharedFloorFit, curve: str, c: float) -> list[float]:
    return [math.log(fit.A[curve]) - fit.alpha[curve] * c, fit.alpha[curve]]


def _on_bound(x: float, bound: tuple[float, float], tol: float = 1e-4) -> bool:
    return x <= bound[0] + tol or x >= bound[1] - tol


@dataclasses.dataclass(frozen=True)
class ProfileFit:
    """An isoFLOP profile's parabola in log N (Hoffmann et al.'s approach 2): the loss at its
    vertex ``loss_opt``, the size there ``n_opt``, and ``at_edge`` when the minimum is not
    inside the measured sizes (measured best at an end, vertex outside, or no minimum at all):
    then L*(C) and N*(C) are bounds of the profile, not findings."""

    n_opt: float
    loss_opt: float
    curvature: float  # d2L / d(ln N)^2 at the vertex
    at_edge: bool
    coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)  # L = c2 x^2 + c1 x + c0, x = ln N

    def loss_at(self, n: Float[np.ndarray, " K"] | float) -> Float[np.ndarray, " K"]:
        """The fitted parabola's loss at sizes ``n`` (for drawing it through the profile)."""
        return np.polyval(self.coefficients, np.log(np.atleast_1d(np.asarray(n, float))))


def fit_profile(
    n: Float[np.ndarray, " K"] | Sequence[float], loss: Float[np.ndarray, " K"] | Sequence[float]
) -> ProfileFit:
    """Least-squares parabola of loss against ln N at one compute budget (>= 3 sizes)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    _check_inputs(n, loss)
    if len(n) < 3:
        raise ValueError(f"a profile needs >= 3 sizes, got {len(n)}")
    x = np.log(n)
    c2, c1, c0 = np.polyfit(x, loss, 2)
    coefficients = (float(c2), float(c1), float(c0))
    best = int(np.argmin(loss))
    if c2 <= 0:  # no minimum: report the best measured point, flagged
        return ProfileFit(float(n[best]), float(loss[best]), float(2 * c2), True, coefficients)
    x_opt = -c1 / (2 * c2)
    edge = best in (int(np.argmin(x)), int(np.argmax(x))) or not x.min() < x_opt < x.max()
    vertex = float(c0 - c1**2 / (4 * c2))
    return ProfileFit(float(np.exp(x_opt)), vertex, float(2 * c2), bool(edge), coefficients)


def compute_multiplier(
    budgets: Float[np.ndarray, " B"] | Sequence[float],
    reference: Float[np.ndarray, " B"] | Sequence[float],
    other: Float[np.ndarray, " B"] | Sequence[float],
) -> tuple[Float[np.ndarray, " B"], Float[np.ndarray, " B"]]:
    """Model-free m(C): the compute at which the ``reference`` frontier (loss at each budget)
    reaches ``other``'s frontier loss at C, divided by C. The reference is interpolated
    linearly in (loss, ln C) between measured budgets; beyond them its end segment is
    extended and the second array (bool) says so (an extrapolation, not a measurement)."""
    log_c = np.log(np.asarray(budgets, float))
    ref, oth = np.asarray(reference, float), np.asarray(other, float)
    if len(log_c) < 2 or ref.shape != log_c.shape or oth.shape != log_c.shape:
        raise ValueError("need >= 2 budgets and one frontier loss per budget for each mode")
    order = np.argsort(ref)  # lower loss = more compute on a decreasing frontier
    y, x = ref[order], log_c[order]
    idx = np.clip(np.searchsorted(y, oth) - 1, 0, len(y) - 2)
    slope = (x[idx + 1] - x[idx]) / np.where(y[idx + 1] != y[idx], y[idx + 1] - y[idx], np.inf)
    log_needed = x[idx] + slope * (oth - y[idx])
    return np.exp(log_needed - log_c), (oth < y[0]) | (oth > y[-1])
