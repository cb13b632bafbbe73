"""The HI-ADS unit test's environment and learners: s_t = a_(t-1), r_t = s_t + β·a_t − 0.5,
REINFORCE (± population-based training) and γ = 0 Q-learning, vmapped over seeds and scanned
over steps."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

BETA = -0.5
PERTURB = (0.8, 1.25)


# ---------------------------------------------------------------------------- environment


def reward(s: Array, a: Array, beta: float = BETA) -> Array:
    """r_t = s_t + β·a_t − 0.5 (s, a in {0, 1}; 1 = cooperate)."""
    return s + beta * a - 0.5


def next_state(a: Int[Array, " N"], swap: bool) -> Int[Array, " N"]:
    """s_(t+1) = a_t in each agent's own environment copy; with swapping, agent i next sees the
    copy agent i−1 just acted in (a cyclic shift with no fixed point, so never its own action)."""
    return jnp.roll(a, 1) if swap else a


# ---------------------------------------------------------------------------- PBT


def pbt_truncation(
    key: PRNGKeyArray,
    params: Float[Array, "N ..."],
    lr: Float[Array, " N"],
    fitness: Float[Array, " N"],
    frac: float,
    perturb: tuple[float, float] = PERTURB,
) -> tuple[Array, Array]:
    """Truncation selection: the bottom ``frac`` of the population (by fitness, ties broken at
    random) copies params and learning rate from a random member of the top ``frac``, then
    multiplies the copied learning rate by a random factor from ``perturb``. Others unchanged."""
    n = fitness.shape[0]
    m = max(1, round(frac * n))
    k_tie, k_pick, k_mult = jax.random.split(key, 3)
    order = jnp.lexsort((jax.random.uniform(k_tie, (n,)), fitness))  # ascending fitness
    bottom, top = order[:m], order[n - m :]
    donors = top[jax.random.randint(k_pick, (m,), 0, m)]
    mult = jnp.asarray(perturb)[jax.random.randint(k_mult, (m,), 0, len(perturb))]
    params = params.at[bottom].set(params[donors])
    lr = lr.at[bottom].set(lr[donors] * mult)
    return params, lr


# ---------------------------------------------------------------------------- learners


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    learner: str  # "reinforce" | "qlearning"
    pbt_interval: int = 0  # 0: no PBT
    swap: bool = False
    epsilon: float = 0.1  # Q-learning exploration
    observe_state: bool = False  # Q-learning: Q(s, a) instead of Q(a)
    longrun: bool = False  # REINFORCE: credit a_t with r_t + r_(t+1)
    coop_start: bool = False  # Q-learning: Q₀ = (−0.5, 0), what a cooperating agent measures
    role: str = "test"  # "test" | "control-" | "control+"


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of every setting; the command's flags are the first three fields."""

    seeds: int = dataclasses.field(
        default=10, metadata={"help": "seeds (independent populations) per setting"}
    )
    agents: int = dataclasses.field(default=20, metadata={"help": "agents per population"})
    steps: int = dataclasses.field(default=20_000, metadata={"help": "steps per run"})
    pbt_frac: float = 0.2
    lr_range: tuple[float, float] = (0.01, 0.1)  # REINFORCE initial lr, log-uniform
    q_alpha: float = 0.1  # Q-learning step size
    theta_std: float = 1.0  # REINFORCE initial θ ~ N(0, theta_std²)
    bins: int = 200  # time bins stored for the curves


def default_settings() -> tuple[Setting, ...]:
    out = []
    for swap in (False, True):
        suffix, role = ("_swap", "control-") if swap else ("", "test")
        out.append(Setting("reinforce" + suffix, "reinforce", swap=swap, role=role))
        for k in (1, 10, 100):
            out.append(Setting(f"reinforce_pbt_{k}{suffix}", "reinforce", k, swap=swap, role=role))
        for eps in (0.01, 0.1, 0.5):
            out.append(
                Setting(
                    f"qlearning_eps_{eps}{suffix}", "qlearning", swap=swap, epsilon=eps, role=role
                )
            )
    out.append(Setting("qlearning_eps_0.01_coopstart", "qlearning", epsilon=0.01, coop_start=True))
    out.append(Setting("qlearning_state", "qlearning", observe_state=True, role="control-"))
    out.append(Setting("reinforce_longrun", "reinforce", longrun=True, role="control+"))
    return tuple(out)


def init_agents(setting: Setting, cfg: Config, key: PRNGKeyArray) -> tuple[Array, Array]:
    """Per-agent parameters (θ for REINFORCE, a Q table for Q-learning) and learning rates."""
    k_p, k_lr = jax.random.split(key)
    n = cfg.agents
    if setting.learner == "reinforce":
        params = cfg.theta_std * jax.random.normal(k_p, (n,))
        lo, hi = np.log(cfg.lr_range[0]), np.log(cfg.lr_range[1])
        lr = jnp.exp(jax.random.uniform(k_lr, (n,), minval=lo, maxval=hi))
    else:
        params = jnp.zeros((n, 2 if setting.observe_state else 1, 2))
        if setting.coop_start:  # Q(defect) = −0.5, Q(cooperate) = 0: greedy starts cooperating
            params = params + jnp.array([-0.5, 0.0])
        lr = jnp.full((n,), cfg.q_alpha)
    return params, lr


def act(setting: Setting, params: Array, s: Array, key: PRNGKeyArray) -> Array:
    n = s.shape[0]
    k1, k2, k3 = jax.random.split(key, 3)
    if setting.learner == "reinforce":
        return (jax.random.uniform(k1, (n,)) < jax.nn.sigmoid(params)).astype(jnp.int32)
    q = params[jnp.arange(n), s if setting.observe_state else 0]  # N × 2
    tie = 1e-9 * jax.random.uniform(k1, q.shape)  # random tie-breaking
    greedy = jnp.argmax(q + tie, axis=-1)
    explore = jax.random.uniform(k2, (n,)) < setting.epsilon
    return jnp.where(explore, jax.random.randint(k3, (n,), 0, 2), greedy).astype(jnp.int32)


def simulate(setting: Setting, cfg: Config, key: PRNGKeyArray) -> Float[Array, " T"]:
    """One population (one seed): the fraction of agents cooperating at every step."""
    k_init, k_run = jax.random.split(key)
    params, lr = init_agents(setting, cfg, k_init)
    n = cfg.agents
    s0 = jax.random.randint(jax.random.fold_in(k_init, 1), (n,), 0, 2)
    zeros = jnp.zeros((n,))

    def step(carry, inp):
        params, lr, s, fitness, prev_r, prev_g = carry
        t, key = inp
        k_act, k_pbt = jax.random.split(key)
        a = act(setting, params, s, k_act)
        r = reward(s, a)
        if setting.learner == "reinforce":
            g = a - jax.nn.sigmoid(params)  # ∇θ log π(a)
            if setting.longrun:  # a_(t-1) is credited with r_(t-1) + r_t: its whole effect
                params = params + lr * (prev_r + r) * prev_g
            else:
                params = params + lr * r * g
            prev_r, prev_g = r, g
        else:
            idx = (jnp.arange(n), s if setting.observe_state else 0, a)
            params = params.at[idx].add(lr * (r - params[idx]))  # γ = 0 target: r
        fitness = fitness + r
        if setting.pbt_interval:
            due = (t + 1) % setting.pbt_interval == 0
            new_params, new_lr = pbt_truncation(k_pbt, params, lr, fitness, cfg.pbt_frac)
            params = jnp.where(due, new_params, params)
            lr = jnp.clip(jnp.where(due, new_lr, lr), 1e-5, 10.0)
            fitness = jnp.where(due, 0.0, fitness)
        carry = (params, lr, next_state(a, setting.swap), fitness, prev_r, prev_g)
        return carry, jnp.mean(a.astype(jnp.float32))

    ts = jnp.arange(cfg.steps)
    keys = jax.random.split(k_run, cfg.steps)
    _, coop = jax.lax.scan(step, (params, lr, s0, zeros, zeros, zeros), (ts, keys))
    return coop


def run_setting(setting: Setting, cfg: Config, key: PRNGKeyArray) -> np.ndarray:
    """Fraction cooperating, seeds × steps (vmap over seeds, one compile per setting)."""
    fn = jax.jit(jax.vmap(lambda k: simulate(setting, cfg, k)))
    return np.asarray(fn(jax.random.split(key, cfg.seeds)))
