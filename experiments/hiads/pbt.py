"""REINFORCE agents, alone or inside population-based training (PBT), in the unit test.

The policy does not see the state: P(cooperate) = σ(θ), one θ per agent, θ₀ ~ N(0, 1), and
REINFORCE without a baseline, θ ← θ + lr·r_t·(a_t − σ(θ)). Every ``pbt_interval`` steps the
population is ranked and its bottom fraction copies θ and the learning rate of random members
of its top fraction (exploit), then learning rates are perturbed (explore). Two rule sets:

* ``paper`` — the original code (``unit_test_meta_learning.py``): fitness is the reward of
  the last step alone, int(0.2·n) agents replaced, parents drawn with replacement, then every
  agent's lr multiplied by 0.8 or 1.2, initial lr log-uniform in [0.01, 1], no clip.
* ``ours`` — this project's earlier rules: fitness is the reward summed since the last
  selection, round(0.2·n) replaced, only the copied lr multiplied by 0.8 or 1.25, initial lr
  log-uniform in [0.01, 0.1], lr clipped to [1e-5, 10].

``shuffled_fitness`` permutes the fitness across agents before ranking: selection then
carries no information about reward (a control).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from experiments.hiads.environment import next_state, reward
from experiments.hiads.settings import Setting


@dataclasses.dataclass(frozen=True)
class Rules:
    frac: float
    floor: bool  # int(frac·n) (paper) or max(1, round(frac·n))
    fitness: str  # "last" | "sum"
    perturb: tuple[float, float]
    perturb_all: bool  # explore every agent's lr (paper) or the copied ones only
    lr_range: tuple[float, float]  # initial lr, log-uniform
    lr_clip: tuple[float, float] | None

    def replaced(self, n: int) -> int:
        return int(self.frac * n) if self.floor else max(1, round(self.frac * n))


RULES = {
    "paper": Rules(0.2, True, "last", (0.8, 1.2), True, (0.01, 1.0), None),
    "ours": Rules(0.2, False, "sum", (0.8, 1.25), False, (0.01, 0.1), (1e-5, 10.0)),
}


def select(
    key: PRNGKeyArray,
    theta: Float[Array, " N"],
    lr: Float[Array, " N"],
    fitness: Float[Array, " N"],
    rules: Rules,
    shuffled: bool = False,
) -> tuple[Array, Array]:
    """One PBT event: truncation selection (ties broken at random), then explore."""
    n = fitness.shape[0]
    m = rules.replaced(n)
    k_perm, k_tie, k_pick, k_mult = jax.random.split(key, 4)
    if shuffled:
        fitness = fitness[jax.random.permutation(k_perm, n)]
    if m > 0:
        order = jnp.lexsort((jax.random.uniform(k_tie, (n,)), fitness))  # ascending
        bottom, top = order[:m], order[n - m :]
        donors = top[jax.random.randint(k_pick, (m,), 0, m)]
        theta = theta.at[bottom].set(theta[donors])
        lr = lr.at[bottom].set(lr[donors])
    factor = jnp.asarray(rules.perturb)[jax.random.randint(k_mult, (n,), 0, 2)]
    if rules.perturb_all:
        lr = lr * factor
    elif m > 0:
        lr = lr.at[bottom].multiply(factor[:m])
    if rules.lr_clip is not None:
        lr = jnp.clip(lr, *rules.lr_clip)
    return theta, lr


def simulate(setting: Setting, key: PRNGKeyArray) -> tuple[Float[Array, " T"], Float[Array, " N"]]:
    """One population: the mean P(cooperate) at every step (before acting), and each agent's
    P(cooperate) averaged over the last 10% of steps."""
    rules = RULES[setting.pbt_rules]
    n, steps, k = setting.agents, setting.steps, setting.pbt_interval
    k_theta, k_lr, k_s, k_run = jax.random.split(key, 4)
    lo, hi = math.log(rules.lr_range[0]), math.log(rules.lr_range[1])
    theta = jax.random.normal(k_theta, (n,))
    lr = jnp.exp(jax.random.uniform(k_lr, (n,), minval=lo, maxval=hi))
    s0 = jax.random.randint(k_s, (n,), 0, 2)
    tail_from = int(0.9 * steps)
    zeros = jnp.zeros((n,))

    def step(carry, xs):
        theta, lr, s, fitness, prev_r, prev_g, tail = carry
        t, key = xs
        k_act, k_pbt = jax.random.split(key)
        p = jax.nn.sigmoid(theta)
        a = (jax.random.uniform(k_act, (n,)) < p).astype(jnp.int32)
        r = reward(s, a, setting.beta)
        g = a - p  # ∇θ log π(a)
        if setting.longrun:  # a_(t−1) is credited with r_(t−1) + r_t: its whole effect
            theta = theta + lr * (prev_r + r) * prev_g
        else:
            theta = theta + lr * r * g
        fitness = fitness + r if rules.fitness == "sum" else r
        if k:
            due = (t + 1) % k == 0
            new_theta, new_lr = select(k_pbt, theta, lr, fitness, rules, setting.shuffled_fitness)
            theta, lr = jnp.where(due, new_theta, theta), jnp.where(due, new_lr, lr)
            fitness = jnp.where(due, 0.0, fitness)
        tail = tail + jnp.where(t >= tail_from, p, 0.0)
        carry = (theta, lr, next_state(a, setting.swap), fitness, r, g, tail)
        return carry, jnp.mean(p)

    xs = (jnp.arange(steps), jax.random.split(k_run, steps))
    carry = (theta, lr, s0, zeros, zeros, zeros, zeros)
    (*_, tail), curve = jax.lax.scan(step, carry, xs)
    return curve, tail / (steps - tail_from)
