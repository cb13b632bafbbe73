"""Simulated isoFLOP studies with a known compute multiplier, for the analysis tests.

Standard's loss surface is L(N, D) = E + A N^-a + B D^-b with D = C / (6N); myopic's is
standard's at (k N, k D) with k = sqrt(m(C)), so its profile at C is standard's at m(C)·C
(shifted in N by 1/k) and its frontier is exactly standard's frontier at m(C)·C: the planted
multiplier is m(C) = m0 · (C / C0) ** log10(factor_per_decade).
"""

from __future__ import annotations

import numpy as np

from experiments.scaling.isoflop_analysis import IsoflopLosses

E, A, ALPHA, B, BETA = 1.5, 60.0, 0.34, 80.0, 0.28
BUDGETS = 1e13 * 10 ** np.array([0.0, 0.5, 1.0, 1.5])
SPREAD = 4.0 ** np.array([-1.0, -0.5, 0.0, 0.5, 1.0])


def loss_surface(n: np.ndarray, c: float) -> np.ndarray:
    return E + A * n**-ALPHA + B * (c / (6 * n)) ** -BETA


def true_n_opt(c: float) -> float:
    grid = np.exp(np.linspace(np.log(1e2), np.log(1e10), 20001))
    return float(grid[np.argmin(loss_surface(grid, c))])


def planted_multiplier(c: np.ndarray, m0: float, factor: float) -> np.ndarray:
    return m0 * (np.asarray(c) / BUDGETS[0]) ** np.log10(factor)


def expected_losses(m0: float, factor: float, budgets=BUDGETS, spread=SPREAD):
    """(sizes[B, K], mean loss[2, B, K]) with sizes centred on standard's optimum."""
    sizes = np.array([true_n_opt(c) * spread for c in budgets])
    k = np.sqrt(planted_multiplier(budgets, m0, factor))
    std = np.array([loss_surface(s, c) for s, c in zip(sizes, budgets, strict=True)])
    my = np.array(
        [loss_surface(kk * s, kk**2 * c) for s, c, kk in zip(sizes, budgets, k, strict=True)]
    )
    return sizes, np.stack([std, my])


def simulate(
    rng: np.random.Generator,
    m0: float = 0.5,
    factor: float = 0.8,
    *,
    n_seeds: int = 3,
    n_seqs: int = 40,
    sd_seed: float = 0.004,
    sd_seq: float = 0.05,
    sd_noise: float = 0.01,
    budgets=BUDGETS,
    spread=SPREAD,
) -> IsoflopLosses:
    """One noisy study: a seed effect per run, a per-sequence difficulty shared by every
    model (the same held-out sequences) and independent noise per (run, sequence)."""
    sizes, mean = expected_losses(m0, factor, budgets, spread)
    shape = (*mean.shape, n_seeds, n_seqs)
    seed_effect = rng.normal(0, sd_seed, (*mean.shape, n_seeds, 1))
    seq_effect = rng.normal(0, sd_seq, (1, 1, 1, 1, n_seqs))
    noise = rng.normal(0, sd_noise, shape)
    return IsoflopLosses(
        np.asarray(budgets, float), sizes, mean[..., None, None] + seed_effect + seq_effect + noise
    )
