"""The muP learning-rate transfer sweeps: every learning rate of the grid trained side by side
under ``vmap`` per (parametrization, mode, width), cached; the best learning rate per width; the
plot."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from myojax import files, mup
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.loss import Batch, mean_loss
from myojax.model import GPT
from myojax.train import TrainConfig, TrainState, init_state, make_optimizer, train_step


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    widths: tuple[int, ...] = (16, 32, 64, 128)
    log2_lrs: tuple[int, ...] = (-10, -9, -8, -7, -6, -5, -4, -3)
    parametrizations: tuple[str, ...] = ("sp", "mup")
    modes: tuple[str, ...] = ("standard", "myopic")
    base_width: int = 16
    head_dim: int = 8
    n_layers: int = 2
    seq_len: int = 64
    batch_size: int = 8
    steps: int = 120
    warmup_steps: int = 12
    weight_decay: float = 0.0
    eval_batches: int = 4
    seed: int = 0

    def model_config(self, parametrization: str, mode: str, width: int) -> ModelConfig:
        base = ModelConfig(
            seq_len=self.seq_len,
            d_model=self.base_width,
            n_heads=self.base_width // self.head_dim,
            n_layers=self.n_layers,
            gradient_mode=mode,
            parametrization=parametrization,  # type: ignore[arg-type]
            base_width=self.base_width,
        )
        return mup.with_width(base, width, head_dim=self.head_dim)

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=1.0,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            eval_batches=self.eval_batches,
            seed=self.seed,
        )


QUICK = TransferConfig(  # a smoke run: one mode, 4 learning rates, 30 steps
    log2_lrs=(-9, -7, -5, -3),
    modes=("standard",),
    seq_len=32,
    steps=30,
    warmup_steps=3,
    eval_batches=2,
)


def sweep(
    cfg: TransferConfig,
    parametrization: str,
    mode: str,
    width: int,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Final held-out loss for every learning rate of the grid (NaN/inf -> inf)."""
    model_cfg = cfg.model_config(parametrization, mode, width)
    train_cfg = cfg.train_config()
    data = pipeline.load_data(pipeline.EMBEDDED)
    init_key, train_seed, eval_seed = jax.random.key(cfg.seed), cfg.seed + 1, cfg.seed + 2
    window = dict(seq_len=model_cfg.seq_len, batch_size=cfg.batch_size)
    train_iter = pipeline.batch_iterator(
        pipeline.window_dataset(data.train, num_batches=cfg.steps, seed=train_seed, **window)
    )
    eval_ds = pipeline.window_dataset(
        data.val, num_batches=cfg.eval_batches, seed=eval_seed, **window
    )
    eval_batches = [Batch.from_windows(jnp.asarray(eval_ds[i])) for i in range(len(eval_ds))]

    # lr = 1 here; each grid value scales the whole update (schedule, multipliers, decay).
    abstract_model = eqx.filter_eval_shape(GPT, model_cfg, key=init_key)
    unit_opt = make_optimizer(train_cfg, abstract_model, mup.lr_multipliers(model_cfg))
    lrs = jnp.asarray([2.0**k for k in cfg.log2_lrs], jnp.float32)

    def opt_for(lr: jax.Array) -> optax.GradientTransformation:
        return optax.chain(unit_opt, optax.scale(lr))

    state = init_state(model_cfg, opt_for(jnp.float32(1.0)), init_key)
    states = jax.tree.map(
        lambda a: jnp.broadcast_to(a, (len(lrs), *a.shape)), state
    )  # the same init for every lr

    @eqx.filter_jit
    def step(states: TrainState, batch: Batch) -> tuple[TrainState, jax.Array]:
        def one(s: TrainState, lr: jax.Array) -> tuple[TrainState, jax.Array]:
            s, metrics = train_step(s, batch, opt_for(lr))
            return s, metrics["loss"]

        return jax.vmap(one)(states, lrs)

    @eqx.filter_jit
    def held_out(states: TrainState, batch: Batch) -> jax.Array:
        return jax.vmap(lambda s: mean_loss(s.model, batch))(states)

    t0 = time.perf_counter()
    for i, windows in enumerate(train_iter):
        states, losses = step(states, Batch.from_windows(jnp.asarray(windows)))
        if (i + 1) % max(1, cfg.steps // 5) == 0:
            best = float(jnp.nanmin(jnp.where(jnp.isfinite(losses), losses, jnp.nan)))
            log(
                f"    step {i + 1}/{cfg.steps}: best train loss {best:.3f} "
                f"({time.perf_counter() - t0:.0f}s)"
            )
    val = sum(held_out(states, b) for b in eval_batches) / len(eval_batches)
    return [float(v) if math.isfinite(float(v)) else math.inf for v in np.asarray(val)]


def run(
    cfg: TransferConfig, out: Path, log: Callable[[str], None] = print
) -> dict[str, list[float]]:
    """All sweeps, cached per (parametrization, mode, width) in ``out/transfer.json``."""
    path = out / "transfer.json"
    settings = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()
    }
    runs: dict[str, list[float]] = {}
    saved = files.read_json(path)
    if saved is not None:
        if saved.get("settings") == settings:
            runs = saved["runs"]
        else:
            log(f"{path} was made with other settings; starting over")
    jobs = [(p, m, w) for p in cfg.parametrizations for m in cfg.modes for w in cfg.widths]
    t_start = time.perf_counter()
    for i, (p, m, w) in enumerate(jobs, 1):
        name = f"{p}/{m}/{w}"
        if name in runs:
            log(f"[{i}/{len(jobs)}] {name}: cached")
            continue
        log(f"[{i}/{len(jobs)}] {name}: {len(cfg.log2_lrs)} learning rates x {cfg.steps} steps")
        t0 = time.perf_counter()
        runs[name] = sweep(cfg, p, m, w, log)
        best = cfg.log2_lrs[int(np.argmin(runs[name]))]
        log(
            f"[{i}/{len(jobs)}] {name}: done in {time.perf_counter() - t0:.0f}s, best lr 2^{best} "
            f"(val {min(runs[name]):.3f}; total {time.perf_counter() - t_start:.0f}s)"
        )
        # atomic: an interrupted sweep never leaves a torn cache
        files.write_json(path, {"settings": settings, "runs": runs})
    return runs


def optima(cfg: TransferConfig, runs: dict[str, list[float]]) -> dict[str, dict[str, object]]:
    """Per (parametrization, mode): best log2 lr per width and its spread in grid steps."""
    out = {}
    for p in cfg.parametrizations:
        for m in cfg.modes:
            best = {w: cfg.log2_lrs[int(np.argmin(runs[f"{p}/{m}/{w}"]))] for w in cfg.widths}
            out[f"{p}/{m}"] = {
                "best_log2_lr": {str(w): b for w, b in best.items()},
                "best_lr": {str(w): 2.0**b for w, b in best.items()},
                "best_val_loss": {str(w): min(runs[f"{p}/{m}/{w}"]) for w in cfg.widths},
                "spread_grid_steps": max(best.values()) - min(best.values()),
            }
    return out


def plot(cfg: TransferConfig, runs: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = cfg.parametrizations, cfg.modes
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(4.5 * len(cols), 3.4 * len(rows)), squeeze=False, sharey=True
    )
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(cfg.widths)))
    finite = [v for vs in runs.values() for v in vs if math.isfinite(v)]
    lo = min(finite)
    for r, p in enumerate(rows):
        for c, m in enumerate(cols):
            ax = axes[r][c]
            for w, color in zip(cfg.widths, colors):
                losses = np.asarray(runs[f"{p}/{m}/{w}"])
                ax.plot(
                    cfg.log2_lrs,
                    np.where(np.isfinite(losses), losses, np.nan),
                    marker="o",
                    ms=3,
                    color=color,
                    label=f"width {w}",
                )
                k = int(np.argmin(losses))
                ax.plot(cfg.log2_lrs[k], losses[k], marker="*", ms=10, color=color)
            ax.set_title(f"{p.upper()}, {m}", fontsize=10)
            ax.set_xlabel("log2 learning rate")
            ax.set_ylim(lo - 0.05, lo + 1.5)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel("held-out loss (nats/byte)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(
        f"learning-rate transfer: {cfg.n_layers} layers, head dim {cfg.head_dim}, "
        f"base width {cfg.base_width}, {cfg.steps} steps x {cfg.batch_size}x{cfg.seq_len} "
        "tokens (stars: optimum)",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
