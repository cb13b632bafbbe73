"""The isoFLOP study's analysis: per budget and mode the profile fit (a parabola in log N,
Hoffmann et al.'s approach 2) giving L*(C) and N*(C); the model-free compute multiplier m(C)
(the compute at which standard reaches myopic's frontier loss at C, over C) and its trend per
decade of C; one fitted form L*(C) = E + A·C^-alpha with E shared by both modes, and the
N*(C) exponents; and the same multiplier and trend with L* read from each profile in the other
ways of ``READINGS``, which check how far the answer rests on the parabola's shape. Every
interval is the crossed seed x sequence bootstrap of myojax.bootstrap around the whole chain.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float

from myojax import bootstrap, scaling_laws

MODES = ("standard", "myopic")

# Other ways to read L* from a profile than the answer's parabola through every size, each as
# (name, sizes read around the best measured mean). A parabola over more than a decade of N
# can miss a profile that is not parabolic there; one through the 3 sizes around the best
# follows the minimum's neighbourhood alone, and the best measured mean fits nothing (it is
# off by up to the grid's step, and is the lowest of noisy means).
READINGS = (
    ("a parabola through the 3 sizes around the best", 3),
    ("the best measured mean (no fit)", 1),
)


@dataclasses.dataclass(frozen=True)
class IsoflopLosses:
    """Test losses of a finished isoFLOP study: ``loss[mode, budget, size, seed, sequence]``
    (modes in ``MODES`` order) of the models with ``sizes[budget, size]`` parameters trained
    on ``budgets[budget]`` FLOPs."""

    budgets: Float[np.ndarray, " B"]
    sizes: Float[np.ndarray, "B K"]
    loss: Float[np.ndarray, "2 B K S M"]


@dataclasses.dataclass(frozen=True)
class Estimate:
    point: float
    lo: float
    hi: float


@dataclasses.dataclass(frozen=True)
class BudgetResult:
    """One budget: per mode L*, N* (with intervals) and whether the profile's minimum is at an
    edge; m(C) with its interval and whether it needed extrapolating the standard frontier."""

    budget: float
    loss_opt: dict[str, Estimate]
    n_opt: dict[str, Estimate]
    at_edge: dict[str, bool]
    multiplier: Estimate
    extrapolated: bool
    # per mode the profile's parabola in ln N (ProfileFit.coefficients), to draw it
    parabola: dict[str, tuple[float, float, float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FrontierForm:
    """L*(C) = E + A_mode C^-alpha_mode with E shared, each parameter with its interval, and
    the exponents' difference (myopic - standard: > 0, myopic's frontier falls faster).
    ``at_bounds`` (SharedFloorFit's) names the parameters whose point fit sits on the box:
    those values are the box's, not findings."""

    E: Estimate
    A: dict[str, Estimate]
    alpha: dict[str, Estimate]
    alpha_difference: Estimate
    at_bounds: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Reading:
    """The answer with L* read from every profile another way (one of ``READINGS``): m(C) per
    budget, whether each needed extrapolating standard's frontier, whether either mode's
    minimum lies at an edge of the sizes read, and the factor per decade."""

    name: str
    multiplier: tuple[Estimate, ...]
    extrapolated: tuple[bool, ...]
    at_edge: tuple[bool, ...]
    factor_per_decade: Estimate


@dataclasses.dataclass(frozen=True)
class IsoflopAnalysis:
    budgets: tuple[BudgetResult, ...]
    factor_per_decade: Estimate  # 10 ** slope of log10 m against log10 C
    frontier_fit: FrontierForm  # L*(C) = E + A C^-alpha, E shared
    n_opt_exponent: dict[str, Estimate]  # N*(C) ~ C^a per mode
    n_opt_exponent_difference: Estimate  # a[myopic] - a[standard]: > 0, myopic wants larger
    readings: tuple[Reading, ...] = ()  # the answer under READINGS (records before: none)


def read_profile(
    sizes: Float[np.ndarray, " K"], loss: Float[np.ndarray, " K"], window: int | None = None
) -> tuple[float, float, bool]:
    """(L*, N*, at_edge) of one profile: the parabola's vertex through every size (``None``)
    or through the ``window`` sizes around the best measured mean (clipped at the ends), or
    the best measured mean itself (``window`` 1). ``at_edge``: the minimum is not inside the
    sizes read (for ``window`` 1: the best is the smallest or largest size)."""
    order = np.argsort(sizes)
    sizes, loss = np.asarray(sizes, float)[order], np.asarray(loss, float)[order]
    best = int(np.argmin(loss))
    if window == 1:
        return float(loss[best]), float(sizes[best]), best in (0, len(loss) - 1)
    if window is not None:
        lo = int(np.clip(best - window // 2, 0, len(loss) - window))
        sizes, loss = sizes[lo : lo + window], loss[lo : lo + window]
    fit = scaling_laws.fit_profile(sizes, loss)
    return fit.loss_opt, fit.n_opt, fit.at_edge


def frontiers(
    study: IsoflopLosses, seeds: np.ndarray, seqs: np.ndarray, window: int | None = None
) -> np.ndarray:
    """(mode, budget, [ln L*, ln N*, at_edge]) from the profiles of one resample, read with
    ``window`` (``read_profile``; default: the parabola through every size)."""
    mean = study.loss[:, :, :, seeds][..., seqs].mean(axis=(-2, -1))
    out = np.zeros((*mean.shape[:2], 3))
    for m in range(mean.shape[0]):
        for b in range(mean.shape[1]):
            loss_opt, n_opt, edge = read_profile(study.sizes[b], mean[m, b], window)
            out[m, b] = np.log(loss_opt), np.log(n_opt), edge
    return out


def _log_m_and_trend(budgets: np.ndarray, f: np.ndarray) -> np.ndarray:
    """[log10 m(C) per budget, its slope per decade of C] from one resample's frontiers."""
    loss_opt = np.exp(f[..., 0])
    m, _ = scaling_laws.compute_multiplier(budgets, loss_opt[0], loss_opt[1])
    log_m = np.log10(m)
    return np.concatenate([log_m, [bootstrap.slope_per_decade(budgets, log_m)]])


def form_parameters(fit: scaling_laws.SharedFloorFit) -> np.ndarray:
    """[E, ln A per mode, alpha per mode, alpha[myopic] - alpha[standard]]."""
    log_a = [np.log(fit.A[k]) for k in MODES]
    alpha = [fit.alpha[k] for k in MODES]
    return np.array([fit.E, *log_a, *alpha, alpha[1] - alpha[0]])


def _fit_form(
    budgets: np.ndarray, loss_opt: np.ndarray, start: scaling_laws.SharedFloorFit | None = None
) -> scaling_laws.SharedFloorFit:
    curves = {k: loss_opt[i] for i, k in enumerate(MODES)}
    return scaling_laws.fit_shared_floor(budgets, curves, start=start)


def _statistic(study: IsoflopLosses):
    """The chain on one resample: frontiers, log10 m(C) and its trend, the N*(C) exponents and
    their difference; then log10 m(C) and its trend under each of ``READINGS``."""

    def stat(seeds: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        f = frontiers(study, seeds, seqs)
        n_exp = bootstrap.slope_per_decade(study.budgets, f[..., 1] / np.log(10))
        parts = [f[..., 0].ravel(), f[..., 1].ravel(), _log_m_and_trend(study.budgets, f), n_exp]
        parts += [[n_exp[1] - n_exp[0]]]
        for _, window in READINGS:
            parts += [_log_m_and_trend(study.budgets, frontiers(study, seeds, seqs, window))]
        return np.concatenate(parts)

    return stat


def _form_statistic(study: IsoflopLosses, start: scaling_laws.SharedFloorFit):
    """The fitted form's parameters on one resample's frontiers, refitted from the point fit
    (its own bootstrap: each refit costs ~0.2 s, the rest of the chain ~1 ms)."""

    def stat(seeds: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        loss_opt = np.exp(frontiers(study, seeds, seqs)[..., 0])
        return form_parameters(_fit_form(study.budgets, loss_opt, start))

    return stat


def _estimate(ci: dict[str, np.ndarray], i: int, transform=lambda v: v) -> Estimate:
    return Estimate(*(float(transform(ci[k][i])) for k in ("point", "lo", "hi")))


def analyse(
    study: IsoflopLosses,
    rng: np.random.Generator,
    *,
    n_boot: int = 400,
    n_form_boot: int | None = None,
) -> IsoflopAnalysis:
    """Point estimates and crossed-bootstrap intervals of every quantity the report states;
    the fitted form's from ``n_form_boot`` resamples (default ``n_boot``)."""
    n_modes, n_b, _, n_seeds, n_seqs = study.loss.shape
    point = frontiers(study, np.arange(n_seeds), np.arange(n_seqs))
    loss_opt = np.exp(point[..., 0])
    _, extrapolated = scaling_laws.compute_multiplier(study.budgets, loss_opt[0], loss_opt[1])
    fit = _fit_form(study.budgets, loss_opt)
    ci = bootstrap.crossed_interval(_statistic(study), n_seeds, n_seqs, rng, n_boot=n_boot)
    form_ci = bootstrap.crossed_interval(
        _form_statistic(study, fit), n_seeds, n_seqs, rng, n_boot=n_form_boot or n_boot
    )
    mean = study.loss.mean(axis=(-2, -1))
    per_budget = []
    for b in range(n_b):

        def idx(block: int, mode: int, b: int = b) -> int:
            return block * n_modes * n_b + mode * n_b + b

        per_budget.append(
            BudgetResult(
                budget=float(study.budgets[b]),
                loss_opt={k: _estimate(ci, idx(0, i), np.exp) for i, k in enumerate(MODES)},
                n_opt={k: _estimate(ci, idx(1, i), np.exp) for i, k in enumerate(MODES)},
                at_edge={k: bool(point[i, b, 2]) for i, k in enumerate(MODES)},
                multiplier=_estimate(ci, 2 * n_modes * n_b + b, lambda v: 10**v),
                extrapolated=bool(extrapolated[b]),
                parabola={
                    k: scaling_laws.fit_profile(study.sizes[b], mean[i, b]).coefficients
                    for i, k in enumerate(MODES)
                },
            )
        )
    tail = 2 * n_modes * n_b + n_b
    return IsoflopAnalysis(
        budgets=tuple(per_budget),
        factor_per_decade=_estimate(ci, tail, lambda v: 10**v),
        frontier_fit=_form(form_ci, fit.at_bounds),
        n_opt_exponent={k: _estimate(ci, tail + 1 + i) for i, k in enumerate(MODES)},
        n_opt_exponent_difference=_estimate(ci, tail + 3),
        readings=_readings(study, ci, tail + 4),
    )


def _readings(study: IsoflopLosses, ci: dict[str, np.ndarray], start: int) -> tuple[Reading, ...]:
    """The ``READINGS`` blocks of the statistic, from index ``start`` on: n_b log10 m, then the
    trend, per reading."""
    n_seeds, n_seqs, n_b = study.loss.shape[-2], study.loss.shape[-1], len(study.budgets)
    out = []
    for j, (name, window) in enumerate(READINGS):
        at = start + j * (n_b + 1)
        point = frontiers(study, np.arange(n_seeds), np.arange(n_seqs), window)
        loss_opt = np.exp(point[..., 0])
        _, extrapolated = scaling_laws.compute_multiplier(study.budgets, loss_opt[0], loss_opt[1])
        out.append(
            Reading(
                name=name,
                multiplier=tuple(_estimate(ci, at + b, lambda v: 10**v) for b in range(n_b)),
                extrapolated=tuple(bool(e) for e in extrapolated),
                at_edge=tuple(bool(point[:, b, 2].any()) for b in range(n_b)),
                factor_per_decade=_estimate(ci, at + n_b, lambda v: 10**v),
            )
        )
    return tuple(out)


def _form(ci: dict[str, np.ndarray], at_bounds: tuple[str, ...]) -> FrontierForm:
    """The FrontierForm from intervals of ``form_parameters``."""
    return FrontierForm(
        E=_estimate(ci, 0),
        A={k: _estimate(ci, 1 + i, np.exp) for i, k in enumerate(MODES)},
        alpha={k: _estimate(ci, 3 + i) for i, k in enumerate(MODES)},
        alpha_difference=_estimate(ci, 5),
        at_bounds=at_bounds,
    )
