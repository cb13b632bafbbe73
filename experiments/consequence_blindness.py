"""Consequence-blindness toy: does a predictor shape its output to make *later* predictions easier?

    python -m experiments.consequence_blindness [--out DIR] [--seeds N] [--steps N]

Triplets (x, z1, z2): x ~ N(0, I_d), z1 = w·x + noise, z2 = u·x + noise with w ⟂ u. A shared
encoder y = f(x) feeds a head ẑ1 = g1(y); the second head sees only the first prediction,
ẑ2 = g2(z1_in) — the future input is the model's own earlier output, as in generation. Three
training regimes differ only in what reaches g2 and where gradients flow:

* ``teacher``      — z1_in = z1 (the true value): f and g1 are trained on z1 alone;
* ``fed_stopped``  — z1_in = sg(ẑ1): g2 learns from predictions, but nothing rewards g1 for
  the effect of its output on z2 — consequence-blind;
* ``fed_live``     — z1_in = ẑ1 with gradient: g1 and f are also optimized for z2 through their
  own output — *not* consequence-blind (the hidden incentive behind auto-induced
  distributional shift).

Reported per regime: z1 and z2 held-out MSE, and how much the learned z1 predictor (the map
x → ẑ1) points along u, the direction only z2 cares about. A consequence-blind regime must
leave it at ~0; the live regime tilts it towards u, paying in z1 error to gain in z2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

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


def run(seeds: int, steps: int) -> dict:
    rows = [train_regime(r, s, steps) for s in range(seeds) for r in REGIMES]
    summary = {}
    for regime in REGIMES:
        sel = [r for r in rows if r["regime"] == regime]
        summary[regime] = {
            key: [float(np.mean([r[key] for r in sel])), float(np.std([r[key] for r in sel]))]
            for key in ("z1_mse", "z2_mse", "along_w", "along_u")
        }
    return {"seeds": seeds, "steps": steps, "runs": rows, "summary": summary}


def report(results: dict) -> str:
    lines = [
        "| regime | z1 MSE | z2 MSE (fed own ẑ1) | ẑ1 map along w | ẑ1 map along u |",
        "|---|---|---|---|---|",
    ]
    for regime, e in results["summary"].items():
        cells = " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in e.values())
        lines.append(f"| {regime} | {cells} |")
    lines.append(f"\nmean ± std over {results['seeds']} seeds, {results['steps']} Adam steps each")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m experiments.consequence_blindness",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/consequence_blindness")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args(argv)
    if args.seeds < 1 or args.steps < 1:
        print("error: --seeds and --steps must be positive", file=sys.stderr)
        return 2
    results = run(args.seeds, args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (out / "report.md").write_text("# Consequence-blindness toy\n\n" + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
