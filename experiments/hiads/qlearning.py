"""The γ = 0 tabular Q-learner of the paper's unit test, and the variants the page sweeps.

As in the original (``unit_test_Q_learning.py`` of capybaralet/HIDS_SIDS_code_release): Q(a)
is the mean of every reward received for action a, with the prior Q(defect) = −0.5,
Q(cooperate) = 0 counted as one observation each, so Q never forgets; the first state is
cooperate; with probability ε, or when the two values are exactly equal, the action is a fair
coin, else the greedy one. The running mean is kept as integer sums of 2r and counts (every
reward is a multiple of 0.5 here) and compared by cross-multiplying, so ties are exact.
``q_step > 0`` replaces the mean by a constant step size α (Q ← Q + α(r − Q)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from experiments.hiads.environment import next_state, reward
from experiments.hiads.settings import Setting

INT_LIMIT = 2**31 - 1


def check(setting: Setting) -> None:
    """Refuse what the exact running mean cannot represent (values off the 0.5 grid, or
    products of sums and counts past int32)."""
    if setting.q_step > 0:
        return
    values = (*setting.q_prior, setting.beta)
    if any(not float(2 * v).is_integer() for v in values):
        raise ValueError(f"{setting.name}: the running mean needs β and priors in steps of 0.5")
    biggest = 2 * (1.5 + abs(setting.beta)) * (setting.steps + 1)  # |2r| · count bound
    if biggest * (setting.steps + 1) > INT_LIMIT:
        raise ValueError(f"{setting.name}: --steps too large for the exact running mean")


def _init(setting: Setting, n: int):
    states = 2 if setting.observe_state else 1
    prior = jnp.broadcast_to(jnp.asarray(setting.q_prior, jnp.float32), (n, states, 2))
    if setting.q_step > 0:
        return prior
    return (2 * prior).astype(jnp.int32), jnp.ones((n, states, 2), jnp.int32)


def preference(setting: Setting, table, rows: Array) -> tuple[Array, Array]:
    """(cooperate is greedy, the two values tie) for each agent's row ``rows`` of its table."""
    n = rows.shape[0]
    if setting.q_step > 0:
        q = table[jnp.arange(n), rows]
        return q[:, 1] > q[:, 0], q[:, 1] == q[:, 0]
    num, den = (x[jnp.arange(n), rows] for x in table)
    coop, defect = num[:, 1] * den[:, 0], num[:, 0] * den[:, 1]  # Q(C) vs Q(D), exact
    return coop > defect, coop == defect


def update(setting: Setting, table, rows: Array, a: Array, r: Array):
    """Q of the action taken moves to the new reward: by 1/(count + 1), or by α."""
    idx = (jnp.arange(rows.shape[0]), rows, a)
    if setting.q_step > 0:
        return table.at[idx].add(setting.q_step * (r - table[idx]))
    num, den = table
    twice = jnp.round(2 * r).astype(jnp.int32)
    return num.at[idx].add(twice), den.at[idx].add(1)


def simulate(setting: Setting, key: PRNGKeyArray) -> tuple[Float[Array, " T"], Float[Array, " N"]]:
    """One population: the mean probability of cooperating at every step, and each agent's
    probability of cooperating averaged over the last 10% of steps."""
    n, steps, eps = setting.agents, setting.steps, setting.epsilon
    k_start, k_run = jax.random.split(key)
    if setting.start == "cooperate":
        s0 = jnp.ones((n,), jnp.int32)
    else:
        s0 = jax.random.randint(k_start, (n,), 0, 2)
    tail_from = int(0.9 * steps)

    def step(carry, xs):
        table, s, tail = carry
        t, key = xs
        k_explore, k_coin = jax.random.split(key)
        rows = s if setting.observe_state else jnp.zeros_like(s)
        coop, tie = preference(setting, table, rows)
        p_coop = jnp.where(tie, 0.5, (1 - eps) * coop + eps / 2)
        coin = jax.random.uniform(k_explore, (n,)) < eps
        random = jax.random.randint(k_coin, (n,), 0, 2)
        a = jnp.where(coin | tie, random, coop.astype(jnp.int32))
        r = reward(s, a, setting.beta)
        table = update(setting, table, rows, a, r)
        tail = tail + jnp.where(t >= tail_from, p_coop, 0.0)
        return (table, next_state(a, setting.swap), tail), jnp.mean(p_coop)

    xs = (jnp.arange(steps), jax.random.split(k_run, steps))
    carry = (_init(setting, n), s0, jnp.zeros((n,)))
    (_, _, tail), curve = jax.lax.scan(step, carry, xs)
    return curve, tail / (steps - tail_from)
