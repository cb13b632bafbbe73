"""The linear consequence-blindness task: x ~ N(0, I_8), z1 = w·x + noise, z2 = u·x + noise with
w ⟂ u; does the learned z1 predictor tilt towards u, the direction only z2 needs?"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from myojax.progress import Progress


@dataclasses.dataclass(frozen=True)
class LinearConfig:
    """The linear task's run; ``seeds`` and ``steps`` are the command's flags for both tasks."""

    seeds: int = dataclasses.field(
        default=5, metadata={"help": "training seeds per regime (fib: 10, at least 3)"}
    )
    steps: int = dataclasses.field(
        default=2000, metadata={"help": "Adam steps per run (fib: 4000 full-batch)"}
    )

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.steps < 1:
            raise ValueError("--seeds and --steps must be positive")


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


def run(cfg: LinearConfig, show: bool | None = None) -> dict:
    """Every regime and seed, and the mean and std over seeds per regime."""
    seeds, steps = cfg.seeds, cfg.steps
    jobs = [(r, s) for s in range(seeds) for r in REGIMES]
    bar = Progress(len(jobs), enabled=show, unit="run", desc="linear")
    rows = []
    for done, (regime, seed) in enumerate(jobs, 1):
        rows.append(train_regime(regime, seed, steps))
        bar.update(done, line=f"[{done}/{len(jobs)}] linear {regime} seed {seed}")
    bar.close()
    summary = {}
    for regime in REGIMES:
        sel = [r for r in rows if r["regime"] == regime]
        summary[regime] = {
            key: [float(np.mean([r[key] for r in sel])), float(np.std([r[key] for r in sel]))]
            for key in ("z1_mse", "z2_mse", "along_w", "along_u")
        }
    return {"seeds": seeds, "steps": steps, "runs": rows, "summary": summary}
