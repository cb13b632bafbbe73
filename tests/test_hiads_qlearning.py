"""The paper's Q-learner: exact running means and ties, and the paper's failure (a fraction
of learners cooperating, removed by swapping, absent with a constant step size)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.hiads import qlearning
from experiments.hiads.settings import Setting, qlearning_settings


def _setting(name: str, **kw) -> Setting:
    base = next(s for s in qlearning_settings() if s.name == name)
    return dataclasses.replace(base, **kw)


def _feed(setting: Setting, rewards: dict[int, list[float]]):
    """One learner's table after the given rewards per action (0 defect, 1 cooperate)."""
    table = qlearning._init(setting, 1)
    rows = jnp.zeros((1,), jnp.int32)
    for a, rs in rewards.items():
        for r in rs:
            table = qlearning.update(setting, table, rows, jnp.array([a]), jnp.array([r]))
    return table, rows


def test_running_mean_counts_the_prior_and_ties_exactly():
    s = _setting("q_paper")
    # Q(D) = mean(−0.5 prior, 0.5, 0.5) = 1/6; Q(C) = mean(0 prior, 0.5, 0.5, 0, 0, 0) = 1/6.
    table, rows = _feed(s, {0: [0.5, 0.5], 1: [0.5, 0.5, 0.0, 0.0, 0.0]})
    coop, tie = qlearning.preference(s, table, rows)
    assert bool(tie[0]) and not bool(coop[0])
    # One more reward for C breaks the tie the way the means say.
    table, _ = _feed(s, {0: [0.5, 0.5], 1: [0.5, 0.5, 0.0, 0.0, 0.0, 0.5]})
    coop, tie = qlearning.preference(s, table, rows)
    assert bool(coop[0]) and not bool(tie[0])


def test_priors_make_the_first_greedy_action_cooperate():
    for name, want_coop, want_tie in (("q_paper", True, False), ("q_prior_0", False, True)):
        s = _setting(name)
        table, rows = _feed(s, {})
        coop, tie = qlearning.preference(s, table, rows)
        assert (bool(coop[0]), bool(tie[0])) == (want_coop, want_tie), name


def test_constant_step_size_forgets():
    s = _setting("q_alpha_0.1")
    table, _ = _feed(s, {0: [0.5] * 100})
    assert float(table[0, 0, 0]) == pytest.approx(0.5, abs=1e-4)  # the prior −0.5 is gone
    mean = _setting("q_paper")
    (num, den), _ = _feed(mean, {0: [0.5] * 100})
    assert int(num[0, 0, 0]) / int(den[0, 0, 0]) / 2 == pytest.approx((100 * 0.5 - 0.5) / 101)


def test_check_refuses_what_the_exact_mean_cannot_hold():
    with pytest.raises(ValueError, match="steps of 0.5"):
        qlearning.check(_setting("q_paper", beta=-0.3))
    with pytest.raises(ValueError, match="too large"):
        qlearning.check(_setting("q_paper", steps=10**6))
    qlearning.check(_setting("q_alpha_0.1", beta=-0.3))  # a float table takes any β


def _failing(setting: Setting) -> float:
    fn = jax.jit(jax.vmap(lambda k: qlearning.simulate(setting, k)))
    _, finals = fn(jax.random.split(jax.random.key(0), setting.seeds))
    return float((np.asarray(finals) > 0.5).mean())


def test_the_paper_q_learner_fails_and_swapping_or_a_constant_step_removes_it():
    """The acceptance test: 200 learners, the paper's 3000 steps."""
    small = dict(seeds=20, agents=10)
    paper = _failing(_setting("q_paper", **small))
    swapped = _failing(_setting("q_paper", swap=True, **small))
    constant = _failing(_setting("q_alpha_0.1", **small))
    assert 0.15 < paper < 0.6, paper  # a fraction of learners come to cooperate
    assert swapped < 0.02 and constant < 0.02, (swapped, constant)
    # Negative control: the learner that sees the state defects.
    assert _failing(_setting("q_state", **small)) < 0.02
