"""The unit-test environment: the state is the agent's previous action, s_t = a_(t−1)
(1 cooperate, 0 defect), and the reward is r_t = s_t + β·a_t − 0.5."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Int

BETA = -0.5  # the paper's setting: cooperating costs 0.5 now and pays 1 at the next step


def reward(s: Array, a: Array, beta: float = BETA) -> Array:
    """r_t = s_t + β·a_t − 0.5 (s, a in {0, 1}; 1 = cooperate)."""
    return s + beta * a - 0.5


def next_state(a: Int[Array, " N"], swap: bool) -> Int[Array, " N"]:
    """s_(t+1) = a_t in each agent's own environment copy; with swapping, agent i next sees the
    copy agent i−1 just acted in (a cyclic shift with no fixed point, so never its own action:
    the original code rotates the agents instead, the same thing)."""
    return jnp.roll(a, 1) if swap else a
