"""The linear consequence-blindness task: x ~ N(0, I_8), z1 = w·x + noise, z2 = u·x + noise with
unit w, u at cosine ρ; does shaping ẑ1 for the second head pay, and does the live regime do it?

With ẑ1 = v·x and ẑ2 = c·ẑ1 (what g2 can do with one number), the expected total loss is
|v − w|² + |c·v − u|² + 2σ². A consequence-blind first head keeps v = w, and g2's best c is
then ρ: total 1 − ρ² + 2σ². The best (v, c) is the rank-one fit of the rows w and u: v =
(w + u)/2, c = 1, total 1 − ρ + 2σ². So gradients through ẑ1 strictly pay ρ(1 − ρ) for 0 < ρ
< 1 (0.25 at ρ = 0.5), and at ρ = 0 (orthogonal targets, the earlier version of this toy)
every c gives the same total 1 + 2σ²: a flat valley, where any tilt is drift, not incentive.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from myojax.progress import Progress

REGIMES = ("teacher", "fed_stopped", "fed_live")
sg = jax.lax.stop_gradient
DIM, HIDDEN, NOISE, BATCH, TEST = 8, 32, 0.1, 256, 4096


@dataclasses.dataclass(frozen=True)
class LinearConfig:
    """The linear task's run; ``seeds`` and ``steps`` are the command's flags for both tasks."""

    seeds: int = dataclasses.field(
        default=10, metadata={"help": "training seeds per regime (fib: 10, at least 3)"}
    )
    steps: int = dataclasses.field(
        default=2000, metadata={"help": "Adam steps per run (fib: 4000 full-batch)"}
    )
    rhos: tuple[float, ...] = dataclasses.field(
        default=(0.5, 0.0),
        metadata={"help": "linear: cosines between w and u (0: the flat valley)"},
    )

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.steps < 1:
            raise ValueError("--seeds and --steps must be positive")
        if self.seeds < 2:
            raise ValueError("--task linear needs --seeds >= 2 (intervals over seeds)")
        if not self.rhos or any(not 0.0 <= r < 1.0 for r in self.rhos):
            raise ValueError(f"--rhos must lie in [0, 1), got {self.rhos}")


@dataclasses.dataclass(frozen=True)
class Analytic:
    """Expected losses at each regime's optimum for a linear ẑ1 (see the module docstring)."""

    rho: float

    def total(self, regime: str) -> float:
        r, noise = self.rho, 2 * NOISE**2
        if regime == "teacher":  # g2 fitted on the noisy true z1: c = ρ/(1 + σ²), fed ẑ1 = w·x
            c = r / (1 + NOISE**2)
            return c * c - 2 * c * r + 1 + noise
        if regime == "fed_stopped":
            return 1 - r * r + noise
        return 1 - r + noise  # fed_live: the rank-one optimum

    def along(self, regime: str) -> tuple[float, float] | None:
        """The optimal ẑ1 map's components along w and along û⊥ (u's part orthogonal to w);
        None where the optimum is not unique (fed_live at ρ = 0: any point of the valley)."""
        if regime != "fed_live":
            return 1.0, 0.0
        if self.rho == 0:
            return None
        return (1 + self.rho) / 2, math.sqrt(1 - self.rho**2) / 2


class TwoHeads(eqx.Module):
    encoder: eqx.nn.MLP
    head1: eqx.nn.Linear
    head2: eqx.nn.Linear

    def __init__(self, dim: int, hidden: int, *, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.encoder = eqx.nn.MLP(dim, hidden, hidden, depth=1, key=k1)
        self.head1 = eqx.nn.Linear(hidden, "scalar", key=k2)
        self.head2 = eqx.nn.Linear("scalar", "scalar", key=k3)

    def predict_z1(self, x: jax.Array) -> jax.Array:
        return self.head1(self.encoder(x))


def directions(key: jax.Array, rho: Float[Array, ""]) -> tuple[Array, Array, Array]:
    """Unit w, unit u with w·u = ρ, and û⊥ (unit, orthogonal to w, in the plane of w and u)."""
    q, _ = jnp.linalg.qr(jax.random.normal(key, (DIM, 2)))
    w, perp = q[:, 0], q[:, 1]
    return w, rho * w + jnp.sqrt(1 - rho**2) * perp, perp


def make_data(key: jax.Array, n: int, w: Array, u: Array) -> tuple[Array, Array, Array]:
    kx, k1, k2 = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, w.shape[0]))
    return (
        x,
        x @ w + NOISE * jax.random.normal(k1, (n,)),
        x @ u + NOISE * jax.random.normal(k2, (n,)),
    )


def loss(model: TwoHeads, regime: str, x: Array, z1: Array, z2: Array) -> Array:
    z1_hat = jax.vmap(model.predict_z1)(x)
    z1_in = {"teacher": z1, "fed_stopped": sg(z1_hat), "fed_live": z1_hat}[regime]
    z2_hat = jax.vmap(model.head2)(z1_in)
    return jnp.mean((z1_hat - z1) ** 2) + jnp.mean((z2_hat - z2) ** 2)


def train_regime(regime: str, rho: float, seeds: int, steps: int) -> dict[str, np.ndarray]:
    """Every seed at once (vmap; lax.scan over Adam steps); per seed the held-out z1 and z2
    MSE (g2 fed the model's own ẑ1, as at use time) and the learned map's components."""
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps))

    def one(seed_key: jax.Array) -> dict[str, Array]:
        k_dirs, k_model, k_train, k_test = jax.random.split(seed_key, 4)
        w, u, perp = directions(k_dirs, jnp.float32(rho))
        model = TwoHeads(DIM, HIDDEN, key=k_model)
        params, static = eqx.partition(model, eqx.is_array)

        def step(carry, key):
            params, opt_state = carry
            data = make_data(key, BATCH, w, u)
            grads = jax.grad(lambda p: loss(eqx.combine(p, static), regime, *data))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(k_train, steps)
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        model = eqx.combine(params, static)
        x, z1, z2 = make_data(k_test, TEST, w, u)
        z1_hat = jax.vmap(model.predict_z1)(x)
        z2_hat = jax.vmap(model.head2)(z1_hat)
        coef = jnp.linalg.lstsq(x, z1_hat - z1_hat.mean())[0]  # linear summary of x -> ẑ1
        return {
            "z1_mse": jnp.mean((z1_hat - z1) ** 2),
            "z2_mse": jnp.mean((z2_hat - z2) ** 2),
            "along_w": coef @ w,
            "along_perp": coef @ perp,
        }

    keys = jnp.stack([jax.random.key(s) for s in range(seeds)])
    out = jax.jit(jax.vmap(one))(keys)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def run(cfg: LinearConfig, show: bool | None = None) -> dict:
    """Every ρ, regime and seed; seed s shares its directions, initialisation and data across
    regimes, so regime differences are paired."""
    jobs = [(rho, regime) for rho in cfg.rhos for regime in REGIMES]
    bar = Progress(len(jobs), enabled=show, unit="regime", desc="linear")
    runs = []
    for done, (rho, regime) in enumerate(jobs, 1):
        m = train_regime(regime, rho, cfg.seeds, cfg.steps)
        for seed in range(cfg.seeds):
            runs.append({"rho": rho, "regime": regime, "seed": seed}
                        | {k: float(v[seed]) for k, v in m.items()})  # fmt: skip
        bar.update(done, line=f"[{done}/{len(jobs)}] linear ρ {rho:g} {regime}")
    bar.close()
    return {"config": dataclasses.asdict(cfg), "noise": NOISE, "runs": runs}
