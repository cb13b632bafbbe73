"""The study's contrasts from per-seed losses: a planted interaction is recovered."""

import numpy as np
import pytest

from experiments.self_training.analysis import contrasts
from experiments.self_training.study import condition


def _losses(n=40, gen_interaction=-0.05, feed_interaction=0.0, seed=0):
    rng = np.random.default_rng(seed)
    seed_effect = rng.normal(0, 0.1, n)  # shared by every condition of a seed

    def noisy(mean):
        return (3.0 + seed_effect + mean + rng.normal(0, 0.01, n)).tolist()

    out = {}
    for mode, gap in (("standard", 0.0), ("myopic", 0.07)):
        out[condition(mode)] = noisy(gap)
        for mix in (0.5, 1.0):
            for g in (1, 2):
                extra = gen_interaction * g * mix if mode == "myopic" else 0.0
                out[condition(mode, g, mix)] = noisy(gap + 0.1 * g * mix + extra)
        out[condition(mode, feed="control")] = noisy(gap + 0.02)
        out[condition(mode, feed="own")] = noisy(
            gap + 0.02 + (feed_interaction if mode == "myopic" else 0)
        )
    return out


def test_the_generation_gap_is_reported_separately_from_the_interaction():
    c = contrasts(_losses(), 3, (0.5, 1.0))
    assert c.gap.lo < 0.07 < c.gap.hi
    last = c.interactions[-1]  # generation 2, mix 1: planted -0.05 * 2 * 1 = -0.1
    assert "generation 2" in last.name and "mix 1" in last.name
    assert last.lo <= -0.1 <= last.hi and last.hi < 0
    assert len(c.changes) == 8 and len(c.interactions) == 4


def test_no_planted_interaction_gives_intervals_covering_zero():
    c = contrasts(_losses(gen_interaction=0.0, seed=1), 3, (0.5, 1.0))
    assert all(x.lo <= 0 <= x.hi for x in c.interactions)
    assert c.feed_interaction.lo <= 0 <= c.feed_interaction.hi


def test_a_planted_own_consequence_interaction_is_recovered():
    c = contrasts(_losses(feed_interaction=0.03), 3, (0.5, 1.0))
    assert c.feed_interaction.mean == pytest.approx(0.03, abs=0.01)
    assert c.feed_interaction.lo > 0
    # the mode x feeding interaction is, seed by seed, myopic's own - control minus standard's
    std, myo = c.feed
    np.testing.assert_allclose(
        c.feed_interaction.per_seed, np.subtract(myo.per_seed, std.per_seed), atol=1e-12
    )
