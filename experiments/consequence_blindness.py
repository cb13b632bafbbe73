"""Consequence-blindness toys: does a predictor shape its output to make *later* predictions easier?

    python -m experiments.consequence_blindness [--task linear|fib] [--out DIR] [--seeds N]
        [--steps N] [--publish]

Both tasks have triplets (x, z1, z2), a shared encoder y = f(x), a head ẑ1 = g1(y), and a second
head that sees only the first prediction, ẑ2 = g2(z1_in) — the future input is the model's own
earlier output, as in generation. Three training regimes differ only in what reaches g2 and
where gradients flow:

* ``teacher``      — z1_in = z1 (the true value): f and g1 are trained on z1 alone;
* ``fed_stopped``  — z1_in = sg(ẑ1): g2 learns from predictions, but nothing rewards g1 for
  the effect of its output on z2 — consequence-blind;
* ``fed_live``     — z1_in = ẑ1 with gradient: g1 and f are also optimized for z2 through their
  own output — *not* consequence-blind (the hidden incentive behind auto-induced
  distributional shift).

``--task linear`` (default): x ~ N(0, I_8), z1 = w·x + noise, z2 = u·x + noise with w ⟂ u.
Reported per regime: z1 and z2 held-out MSE, and how much the learned z1 predictor (the map
x → ẑ1) points along u, the direction only z2 cares about. A consequence-blind regime must
leave it at ~0; the live regime tilts it towards u, paying in z1 error to gain in z2 error.

``--task fib``: the encoded-channel toy. x ∈ {1, …, X} (one-hot), z1 = Fib(x), z2 = Fib(x+1),
both as standardised logarithms (see ``fib_targets``). g1 (an MLP on one-hot x) can compute z1
exactly; g2 is affine, too small to compute z2 from z1: in log space Fib is geometric up to
Binet's correction, log F(x+1) = log F(x) + log φ + ε(x) with ε alternating in sign and decaying
like φ^(−2x), and no affine map of z1 recovers ε. The question is whether g1 hides ε in its
*error* e = ẑ1 − z1 for g2 to read. Measured per regime and seed (``channel``): the z2 gain an
affine reader gets from ẑ1 instead of z1, a linear probe from e⊥ (e minus its affine fit on z1)
to ρ (the part of z2 no affine map of z1 gives) with a permutation p-value, and g1's cost
(z1 MSE). Defaults: 10 seeds, 4000 full-batch steps (about 20 s on 2 CPU cores).

Each run writes results.json, report.md (command, wall time, machine load) and a PNG to --out;
--publish also writes results/consequence_blindness_<task>.md and docs/figures/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from myojax.provenance import run_record

REGIMES = ("teacher", "fed_stopped", "fed_live")
sg = jax.lax.stop_gradient


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


def make_data(
    key: jax.Array, n: int, w: jax.Array, u: jax.Array, noise: float
) -> tuple[jax.Array, ...]:
    kx, k1, k2 = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, w.shape[0]))
    return (
        x,
        x @ w + noise * jax.random.normal(k1, (n,)),
        x @ u + noise * jax.random.normal(k2, (n,)),
    )


def loss(model: TwoHeads, regime: str, x: jax.Array, z1: jax.Array, z2: jax.Array) -> jax.Array:
    z1_hat = jax.vmap(model.predict_z1)(x)
    z1_in = {"teacher": z1, "fed_stopped": sg(z1_hat), "fed_live": z1_hat}[regime]
    z2_hat = jax.vmap(model.head2)(z1_in)
    return jnp.mean((z1_hat - z1) ** 2) + jnp.mean((z2_hat - z2) ** 2)


def train_regime(
    regime: str, seed: int, steps: int, dim: int = 8, hidden: int = 32, noise: float = 0.1
) -> dict:
    k_dirs, k_model, k_train, k_test = jax.random.split(jax.random.key(seed), 4)
    q, _ = jnp.linalg.qr(jax.random.normal(k_dirs, (dim, 2)))
    w, u = q[:, 0], q[:, 1]  # orthonormal: z1 carries no information about z2
    model = TwoHeads(dim, hidden, key=k_model)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model: TwoHeads, opt_state: optax.OptState, key: jax.Array):
        grads = eqx.filter_grad(loss)(model, regime, *make_data(key, 256, w, u, noise))
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state

    for key in jax.random.split(k_train, steps):
        model, opt_state = step(model, opt_state, key)
    x, z1, z2 = make_data(k_test, 4096, w, u, noise)
    z1_hat = jax.vmap(model.predict_z1)(x)
    z2_hat = jax.vmap(model.head2)(z1_hat)  # at test time the model always sees its own output
    # Least-squares linear summary of the learned map x -> ẑ1, projected on w and u.
    coef = jnp.linalg.lstsq(x, z1_hat - z1_hat.mean())[0]
    return {
        "regime": regime,
        "seed": seed,
        "z1_mse": float(jnp.mean((z1_hat - z1) ** 2)),
        "z2_mse": float(jnp.mean((z2_hat - z2) ** 2)),
        "along_w": float(coef @ w),
        "along_u": float(coef @ u),
    }


def run(seeds: int, steps: int, show: bool = False) -> dict:
    from tqdm import tqdm

    jobs = [(r, s) for s in range(seeds) for r in REGIMES]
    rows = [train_regime(r, s, steps) for r, s in tqdm(jobs, desc="linear", disable=not show)]
    summary = {}
    for regime in REGIMES:
        sel = [r for r in rows if r["regime"] == regime]
        summary[regime] = {
            key: [float(np.mean([r[key] for r in sel])), float(np.std([r[key] for r in sel]))]
            for key in ("z1_mse", "z2_mse", "along_w", "along_u")
        }
    return {"seeds": seeds, "steps": steps, "runs": rows, "summary": summary}


def report(results: dict) -> str:
    """The linear task's table (mean ± std over seeds)."""
    lines = [
        "| regime | z1 MSE | z2 MSE (fed own ẑ1) | ẑ1 map along w | ẑ1 map along u |",
        "|---|---|---|---|---|",
    ]
    for regime, e in results["summary"].items():
        cells = " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in e.values())
        lines.append(f"| {regime} | {cells} |")
    lines.append(f"\nmean ± std over {results['seeds']} seeds, {results['steps']} Adam steps each")
    return "\n".join(lines)


def plot_linear(results: dict, path: Path) -> None:
    plt = _pyplot()
    rows = results["runs"]
    keys = (
        ("z1_mse", "z1 MSE"),
        ("z2_mse", "z2 MSE (g2 fed own ẑ1)"),
        ("along_u", "ẑ1 map along u (z2-only direction)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for i, regime in enumerate(REGIMES):
            vals = [r[key] for r in rows if r["regime"] == regime]
            ax.scatter(np.full(len(vals), i), vals, s=18, alpha=0.7)
            ax.errorbar(i + 0.2, np.mean(vals), yerr=np.std(vals), fmt="ks", capsize=3)
        ax.set_xticks(range(len(REGIMES)), REGIMES)
        ax.set_title(title)
        ax.axhline(0, color="gray", lw=0.6)
    fig.suptitle(
        f"Linear consequence-blindness toy: seeds (dots), mean ± std (squares), "
        f"{results['seeds']} seeds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- the Fibonacci task


@dataclasses.dataclass(frozen=True)
class FibConfig:
    x_max: int = 12  # x ∈ {1, …, x_max}: beyond ~12 Binet's correction is below float32 noise
    hidden: int = 32
    steps: int = 4000
    lr: float = 3e-3
    seeds: int = 10
    permutations: int = 2000  # permutation null of the probe


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


def run_fib(cfg: FibConfig, show: bool = False) -> dict:
    rng = np.random.default_rng(0)
    x, z1, z2 = fib_targets(cfg.x_max)
    rows, errors = [], {}
    for i, regime in enumerate(REGIMES):
        if not show:
            print(f"[{i + 1}/{len(REGIMES)}] fib {regime}", file=sys.stderr)
        z1_hat, z2_hat = train_fib(regime, cfg, range(cfg.seeds))
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


def plot_fib(results: dict, path: Path) -> None:
    plt = _pyplot()
    x, rho, z1 = np.asarray(results["x"]), np.asarray(results["rho"]), np.asarray(results["z1"])
    colors = dict(zip(REGIMES, ("C0", "C1", "C3"), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    ax.plot(x, rho, "k-o", lw=1.5, label="ρ: z2 beyond any affine map of z1")
    ax.plot(x, rho / 2, "k:", lw=1, label="ρ/2 (optimal leak for g2 = identity)")
    for regime in REGIMES:
        for i, err in enumerate(np.asarray(results["errors"][regime])):
            ax.plot(
                x,
                affine_residual(z1, err),
                color=colors[regime],
                alpha=0.6,
                lw=1,
                label=f"e⊥, {regime}" if i == 0 else None,
            )
    ax.set_xlabel("x")
    ax.set_ylabel("standardised log units")
    ax.set_title("g1's error beyond an affine map of z1 (e⊥), per seed", fontsize=10)
    ax.legend(fontsize=7)
    panels = (
        ("z1_mse", "g1's cost: z1 MSE (log scale)"),
        ("gain", "channel: z2 gain of an affine reader"),
    )
    for ax, (metric, title) in zip(axes[1:], panels, strict=True):
        for i, regime in enumerate(REGIMES):
            vals = [r[metric] for r in results["runs"] if r["regime"] == regime]
            mean, lo, hi = results["summary"][regime][metric]
            ax.scatter(np.full(len(vals), i), vals, s=18, alpha=0.7, color=colors[regime])
            ax.errorbar(i + 0.2, mean, yerr=[[mean - lo], [hi - mean]], fmt="ks", capsize=3)
        ax.set_xticks(range(len(REGIMES)), REGIMES)
        ax.set_title(title, fontsize=10)
    axes[1].set_yscale("log")
    axes[2].axhline(0, color="gray", lw=0.6)
    fig.suptitle(
        f"Fibonacci encoded-channel toy, {results['config']['seeds']} seeds "
        "(dots; squares: mean, 95% bootstrap interval)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_fib(results: dict) -> str:
    cfg, s = results["config"], results["summary"]
    lines = [
        f"x ∈ {{1, …, {cfg['x_max']}}} one-hot; z1 = log Fib(x), z2 = log Fib(x+1), standardised "
        f"together; f: MLP(one-hot → {cfg['hidden']} → {cfg['hidden']}), g1 linear, g2 affine "
        f"scalar → scalar; full-batch Adam, lr {cfg['lr']} cosine, {cfg['steps']} steps; "
        f"{cfg['seeds']} seeds; probe null from {cfg['permutations']} permutations. Mean square of "
        f"ρ (the part of z2 no affine map of z1 gives): {results['rho_ms']:.5f}.",
        "",
        "| regime | z1 MSE | z2 MSE (g2 fed own ẑ1) | channel gain | probe ρ ~ e⊥: R² | slope "
        "| permutation p | seeds with p < 0.01 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for regime in REGIMES:
        cells = " | ".join(
            f"{m:.3g} [{lo:.3g}, {hi:.3g}]"
            for m, lo, hi in (s[regime][k] for k in FIB_METRICS[:-1])
        )
        ps = [r["p_value"] for r in results["runs"] if r["regime"] == regime]
        lines.append(
            f"| {regime} | {cells} | {np.median(ps):.3g} (median) | "
            f"{sum(p < 0.01 for p in ps)}/{len(ps)} |"
        )
    d = results["live_minus_stopped"]
    var_z1 = float(np.var(results["z1"]))
    for regime in REGIMES:
        runs = [r for r in results["runs"] if r["regime"] == regime]
        gave_up = [r["seed"] for r in runs if r["z1_mse"] > 0.1 * var_z1]
        lines.append(
            f"\n{regime}, per seed: z1 MSE "
            + " ".join(f"{r['z1_mse']:.3g}" for r in runs)
            + "; z2 MSE "
            + " ".join(f"{r['z2_mse']:.3g}" for r in runs)
            + "; g2 gain "
            + " ".join(f"{r['g2_gain']:.3g}" for r in runs)
            + "; channel gain "
            + " ".join(f"{r['gain']:.3g}" for r in runs)
            + f". Seeds where g1 gave up on z1 (z1 MSE > 10% of var z1 = {var_z1:.3g}): "
            + (", ".join(map(str, gave_up)) if gave_up else "none")
            + "."
        )
    lines += [
        "",
        "Mean [95% bootstrap interval over seeds]. Channel gain = z2 MSE of the best affine map "
        "from z1 minus that from ẑ1 (> 0: g1's output carries z2 information an affine g2 can "
        "read and the truth does not). Probe: least squares ρ ≈ slope·e⊥ + c, e⊥ = g1's error "
        "minus its affine fit on z1; permutation p over x. Where R² ≈ 0 the slope means nothing "
        "(in the blind regimes e is float32 rounding, z1 MSE ~1e-15).",
        "",
        "Paired by seed, fed_live minus fed_stopped: "
        f"z1 MSE {d['z1_mse'][0]:+.3g} [{d['z1_mse'][1]:+.3g}, {d['z1_mse'][2]:+.3g}], "
        f"z2 MSE {d['z2_mse'][0]:+.3g} [{d['z2_mse'][1]:+.3g}, {d['z2_mse'][2]:+.3g}], "
        f"channel gain {d['gain'][0]:+.3g} [{d['gain'][1]:+.3g}, {d['gain'][2]:+.3g}].",
        "",
        "Reference point: if g1 may shift its output by δ(x) and g2 is the identity plus a "
        "constant, the sum of the two squared errors δ² + (ρ − δ)² is smallest at δ = ρ/2, "
        f"i.e. z1 MSE = z2 MSE = mean ρ²/4 = {results['rho_ms'] / 4:.3g} (probe slope 2), "
        f"against z1 MSE 0 and z2 MSE = mean ρ² = {results['rho_ms']:.3g} for a g1 that does not "
        "leak.",
        "",
        "Why no mutual-information estimate between e and x: x takes "
        f"{cfg['x_max']} values and e is a deterministic function of x in every regime, so I(e; x) "
        "= H(e) is maximal as soon as the errors differ at all — float32 rounding noise in the "
        "blind regimes would count as 'information about x'. The probe asks the question that "
        "matters: is e aligned with the part of z2 that g2 cannot get from z1?",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _meta(argv: Sequence[str], wall_s: float, load_before: tuple[float, ...]) -> dict:
    return run_record("python -m experiments.consequence_blindness", argv, wall_s, load_before)


def full_report(task: str, results: dict, figure: str) -> str:
    meta = results["meta"]
    title = {
        "linear": "Consequence-blindness toy: linear task",
        "fib": "Consequence-blindness toy: Fibonacci encoded channel",
    }[task]
    body = report(results) if task == "linear" else report_fib(results)
    load = " / ".join(f"{v:.2f}" for v in meta["load_before"])
    load_after = " / ".join(f"{v:.2f}" for v in meta["load_after"])
    return "\n".join(
        [
            f"# {title}",
            "",
            "Generated by the command below; every number here is written by it.",
            "",
            f"Command: `{meta['command']}`  ",
            f"Wall time: {meta['wall_s']:.1f} s; machine load (1/5/15 min) before {load}, after "
            f"{load_after}; {meta['cpus']} CPUs; jax {meta['jax']} on {meta['backend']}; "
            f"{meta['date']}.",
            "",
            body,
            "",
            f"![{task}]({figure})",
            "",
        ]
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.consequence_blindness",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", default="linear", help="linear (default) or fib")
    p.add_argument("--out", help="output directory (default: runs/consequence_blindness[_fib])")
    p.add_argument("--seeds", type=int, help="training seeds per regime (linear: 5, fib: 10)")
    p.add_argument(
        "--steps", type=int, help="Adam steps per run (linear: 2000, fib: 4000 full-batch)"
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="also write results/consequence_blindness_<task>.md and the PNG to docs/figures/ "
        "(run from the repository root)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.task not in ("linear", "fib"):
        print(f"error: --task must be linear or fib, not {args.task!r}", file=sys.stderr)
        return 2
    if args.seeds is None:
        args.seeds = 5 if args.task == "linear" else FibConfig.seeds
    if args.seeds < 1 or (args.steps is not None and args.steps < 1):
        print("error: --seeds and --steps must be positive", file=sys.stderr)
        return 2
    if args.task == "fib" and args.seeds < 3:
        print("error: --task fib needs --seeds >= 3 (intervals over seeds)", file=sys.stderr)
        return 2
    show = sys.stderr.isatty()
    load_before, t0 = os.getloadavg(), time.time()
    if args.task == "linear":
        results = run(args.seeds, args.steps or 2000, show=show)
        default_out, figure = "runs/consequence_blindness", "consequence_blindness_linear.png"
    else:
        cfg = FibConfig(seeds=args.seeds, steps=args.steps or FibConfig.steps)
        results = run_fib(cfg, show=show)
        default_out, figure = "runs/consequence_blindness_fib", "consequence_blindness_fib.png"
    results["meta"] = _meta(argv, time.time() - t0, load_before)
    out = Path(args.out or default_out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (plot_linear if args.task == "linear" else plot_fib)(results, out / figure)
    (out / "report.md").write_text(full_report(args.task, results, figure))
    if args.publish:
        Path("docs/figures").mkdir(parents=True, exist_ok=True)
        shutil.copy(out / figure, Path("docs/figures") / figure)
        Path(f"results/consequence_blindness_{args.task}.md").write_text(
            full_report(args.task, results, f"../docs/figures/{figure}")
        )
    print(report(results) if args.task == "linear" else report_fib(results))
    print(f"wall time {results['meta']['wall_s']:.1f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
