"""The Fibonacci encoded-channel task: z1 = log Fib(x), z2 = log Fib(x+1), an affine g2 too small to
compute z2 from z1; does g1 hide in its own error the part of z2 that g2 cannot get?"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from experiments.consequence_blindness.linear import REGIMES, sg
from myojax.progress import Progress


@dataclasses.dataclass(frozen=True)
class FibConfig:
    x_max: int = 12  # x ∈ {1, …, x_max}: beyond ~12 Binet's correction is below float32 noise
    hidden: int = 32
    steps: int = 4000
    lr: float = 3e-3
    seeds: int = 10
    permutations: int = 2000  # permutation null of the probe

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.steps < 1:
            raise ValueError("--seeds and --steps must be positive")
        if self.seeds < 3:
            raise ValueError("--task fib needs --seeds >= 3 (intervals over seeds)")


def fib(n: int) -> int:
    """Exact Fib(n) (Fib(0) = 0, Fib(1) = Fib(2) = 1) in Python integers."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def fib_targets(x_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = 1..x_max and the targets z1 = Fib(x), z2 = Fib(x+1) as standardised logarithms.

    Why logs: raw Fib spans 1 … Fib(x_max+1), so a squared error would be all about the largest
    x; the logarithm is O(x), and standardising it (one mean and scale for both targets, taken
    over log Fib(1..x_max+1)) puts both targets in [−2, 2] and keeps z2 ≈ z1 + const, so an
    affine g2 gets everything except Binet's correction ε(x)."""
    x = np.arange(1, x_max + 1)
    logs = np.log([float(fib(n)) for n in range(1, x_max + 2)])
    mean, scale = logs.mean(), logs.std()
    return x, (logs[:-1] - mean) / scale, (logs[1:] - mean) / scale


def affine_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b minus its least-squares affine fit on a."""
    design = np.stack([a, np.ones_like(a)], axis=1)
    return b - design @ np.linalg.lstsq(design, b, rcond=None)[0]


def channel(
    e: np.ndarray, z1: np.ndarray, z2: np.ndarray, rng: np.random.Generator, permutations: int
) -> dict:
    """Does g1's error e = ẑ1 − z1 carry information about z2 that z1 does not give g2?

    ρ = z2 minus its best affine fit on z1: what an affine g2 cannot get from the true z1.

    * ``gain``  — MSE of the best affine map z1 → z2 minus that of ẑ1 = z1 + e → z2: > 0 iff the
      output tells a g2-sized reader more about z2 than the truth does. Pure noise in e gives
      ≤ 0 (up to chance alignment), a planted channel e ∝ ρ gives > 0.
    * ``probe_r2``, ``probe_slope`` — least-squares probe ρ ≈ slope·e⊥ + c, where e⊥ is e minus
      its affine fit on z1 (the part of the error that is not a rescaling of z1, which an
      affine reader could undo anyway; ρ is orthogonal to z1 by construction).
    * ``p_value`` — the fraction of random permutations of e⊥ (across x) whose probe R² is at
      least the observed one (+1 smoothing): small when e⊥ is aligned with ρ beyond chance.
    """
    rho = affine_residual(z1, z2)
    gain = float(np.mean(rho**2) - np.mean(affine_residual(z1 + e, z2) ** 2))
    e = affine_residual(z1, e)

    def r2(err: np.ndarray) -> float:
        if np.ptp(err) < 1e-12:
            return 0.0
        resid = affine_residual(err, rho)
        return float(1 - resid.var() / rho.var())

    observed = r2(e)
    null = np.array([r2(rng.permutation(e)) for _ in range(permutations)])
    slope = float(np.cov(e, rho)[0, 1] / e.var(ddof=1)) if np.ptp(e) > 0 else 0.0
    return {
        "gain": gain,
        "probe_r2": observed,
        "probe_slope": slope,
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + permutations)),
    }


class FibNet(eqx.Module):
    encoder: eqx.nn.MLP
    head1: eqx.nn.Linear
    head2: eqx.nn.Linear  # affine scalar → scalar: too small to compute z2 from z1

    def __init__(self, x_max: int, hidden: int, *, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.encoder = eqx.nn.MLP(x_max, hidden, hidden, depth=1, key=k1)
        self.head1 = eqx.nn.Linear(hidden, "scalar", key=k2)
        self.head2 = eqx.nn.Linear("scalar", "scalar", key=k3)

    def predict_z1(self, onehot: Float[Array, " X"]) -> Float[Array, ""]:
        return self.head1(self.encoder(onehot))


def fib_loss(
    model: FibNet,
    regime: str,
    onehot: Float[Array, "X X"],
    z1: Float[Array, " X"],
    z2: Float[Array, " X"],
) -> Float[Array, ""]:
    z1_hat = jax.vmap(model.predict_z1)(onehot)
    z1_in = {"teacher": z1, "fed_stopped": sg(z1_hat), "fed_live": z1_hat}[regime]
    z2_hat = jax.vmap(model.head2)(z1_in)
    return jnp.mean((z1_hat - z1) ** 2) + jnp.mean((z2_hat - z2) ** 2)


def train_fib(regime: str, cfg: FibConfig, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Adam on every x at once, vmapped over seeds, lax.scan over steps.
    Returns ẑ1 and ẑ2 (g2 fed its own ẑ1, as at use time), each seeds × x_max."""
    _, z1_np, z2_np = fib_targets(cfg.x_max)
    z1, z2 = jnp.asarray(z1_np, jnp.float32), jnp.asarray(z2_np, jnp.float32)
    onehot = jnp.eye(cfg.x_max)
    optimizer = optax.adam(optax.cosine_decay_schedule(cfg.lr, cfg.steps))

    def one_seed(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        model = FibNet(cfg.x_max, cfg.hidden, key=key)
        params, static = eqx.partition(model, eqx.is_array)

        def step(carry, _):
            params, opt_state = carry
            grads = jax.grad(lambda p: fib_loss(eqx.combine(p, static), regime, onehot, z1, z2))(
                params
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, cfg.steps)
        model = eqx.combine(params, static)
        z1_hat = jax.vmap(model.predict_z1)(onehot)
        return z1_hat, jax.vmap(model.head2)(z1_hat)

    keys = jnp.stack([jax.random.key(s) for s in seeds])
    z1_hat, z2_hat = jax.jit(jax.vmap(one_seed))(keys)
    return np.asarray(z1_hat, np.float64), np.asarray(z2_hat, np.float64)


def bootstrap_ci(values: Sequence[float], rng: np.random.Generator, n_boot: int = 4000) -> list:
    """Mean and percentile-bootstrap 95% interval over seeds."""
    v = np.asarray(values, np.float64)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return [float(v.mean()), float(lo), float(hi)]


FIB_METRICS = ("z1_mse", "z2_mse", "gain", "probe_r2", "probe_slope", "p_value")


def run_fib(cfg: FibConfig, show: bool | None = None) -> dict:
    """Every regime over every seed: the per-seed channel measures, their bootstrap intervals,
    and the paired live-minus-stopped differences."""
    rng = np.random.default_rng(0)
    x, z1, z2 = fib_targets(cfg.x_max)
    rows, errors = [], {}
    bar = Progress(len(REGIMES), enabled=show, unit="regime", desc="fib")
    for i, regime in enumerate(REGIMES):
        z1_hat, z2_hat = train_fib(regime, cfg, range(cfg.seeds))
        bar.update(i + 1, line=f"[{i + 1}/{len(REGIMES)}] fib {regime}")
        errors[regime] = (z1_hat - z1).tolist()
        for seed in range(cfg.seeds):
            e = z1_hat[seed] - z1
            rows.append(
                {
                    "regime": regime,
                    "seed": seed,
                    "z1_mse": float(np.mean(e**2)),
                    "z2_mse": float(np.mean((z2_hat[seed] - z2) ** 2)),
                    # g2 is affine, so its gain is the slope of ẑ2 against ẑ1.
                    "g2_gain": float(np.polyfit(z1_hat[seed], z2_hat[seed], 1)[0]),
                    **channel(e, z1, z2, rng, cfg.permutations),
                }
            )
    bar.close()
    summary = {
        regime: {
            m: bootstrap_ci([r[m] for r in rows if r["regime"] == regime], rng) for m in FIB_METRICS
        }
        for regime in REGIMES
    }
    rho = affine_residual(z1, z2)
    # Paired (same seed = same initialisation) differences, live minus stopped.
    paired = {}
    for m in ("z1_mse", "z2_mse", "gain"):
        live = np.array([r[m] for r in rows if r["regime"] == "fed_live"])
        stopped = np.array([r[m] for r in rows if r["regime"] == "fed_stopped"])
        paired[m] = bootstrap_ci(live - stopped, rng)
    return {
        "config": dataclasses.asdict(cfg),
        "x": x.tolist(),
        "z1": z1.tolist(),
        "z2": z2.tolist(),
        "rho": rho.tolist(),
        "rho_ms": float(np.mean(rho**2)),
        "errors": errors,
        "runs": rows,
        "summary": summary,
        "live_minus_stopped": paired,
    }
