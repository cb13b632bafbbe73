"""The lagged-sine task (Wu, Morris & Levine 2024): losses and pre-caching probes per gradient
mode, and breadcrumbs versus pre-caching (a gradient-mode switch mid-training).

Model: ``myojax.heads.Transformer`` with a ``LinearInput`` ([x_n, z_n] plus learned positions),
ReLU blocks and a width-1 ``LinearReadout``, trained with the Huber loss by myojax's own train
step. Probes: ridge regressions (``myojax.analysis.probes``) from the residual stream at
position n (embedding and after every layer) to sin(freq·x_{n−i}) for i = 0..probe_lags, R² on
held-out sequences, with a shuffled-label control.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import epilogue
from experiments.precaching.sine_page import PAGE, summarize
from experiments.precaching.task import LaggedSineTask, lagged_sines
from experiments.precaching.training import Schedule, train
from myojax.analysis.probes import regression_probe
from myojax.config import ModelConfig
from myojax.heads import LinearInput, LinearReadout, Transformer
from myojax.loss import Batch, batch_losses, huber

LOSS = huber(1.0)


@dataclasses.dataclass(frozen=True)
class SineSettings:
    # The reduced default (see results/precaching_sine.md): frequency 2 keeps sin(k·x) mostly
    # nonlinear in x (a linear probe of x explains ~15% of its variance, against 85% at k = 1,
    # so a probe for sin(k·x_s) is not a probe for x_s) while still having low-degree components
    # that give gradient signal from the start; 3 lags and T = 24 fit a loaded CPU's budget.
    seq_len: int = 24
    n_lags: int = 3
    freq: float = 2.0
    ps: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    modes: tuple[str, ...] = dataclasses.field(
        default=("standard", "myopic", "myopic_kv"), metadata={"help": "gradient modes"}
    )
    seeds: int = dataclasses.field(default=3, metadata={"help": "seeds per configuration"})
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    steps: int = dataclasses.field(default=600, metadata={"help": "training steps per run"})
    batch_size: int = 32
    lr: float = 3e-3
    eval_sequences: int = 512
    probe_sequences: int = 128
    probe_lags: int = 8
    switch_p: float = 0.3  # breadcrumbs: the p at which the mode is switched mid-training
    breadcrumbs: bool = True

    @staticmethod
    def full() -> SineSettings:
        """The published configuration (an accelerator's budget: batch 512, ~58k steps)."""
        return SineSettings(
            seq_len=64,
            n_lags=10,
            freq=10.0,
            d_model=128,
            steps=58_000,
            batch_size=512,
            lr=1e-3,
            probe_lags=20,
        )

    def quick(self) -> SineSettings:
        """A smoke run: one seed, p = 0.3, a few steps."""
        return dataclasses.replace(
            self, seeds=1, steps=60, ps=(0.3,), probe_sequences=32, eval_sequences=64
        )

    def task(self, p: float) -> LaggedSineTask:
        return LaggedSineTask(seq_len=self.seq_len, n_lags=self.n_lags, freq=self.freq, p=p)

    def model_config(self, mode: str) -> ModelConfig:
        return ModelConfig(
            vocab_size=None,
            seq_len=self.seq_len,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            activation="relu",
            gradient_mode=mode,
        )

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.steps, self.batch_size, self.lr, max(1, self.steps // 20))


def build(config: ModelConfig, *, key: jax.Array) -> Transformer:
    k_in, k_out, k_blocks = jax.random.split(key, 3)
    return Transformer.init(
        config,
        LinearInput.init(config, 2, key=k_in),
        LinearReadout.init(config, 1, key=k_out),
        key=k_blocks,
    )


def trivial_losses(batch: Batch) -> dict[str, float]:
    """Huber losses of predicting 0 and of predicting x_n (right whenever z_n = 0)."""
    y = batch.targets.reshape(-1, 1)
    x = batch.inputs[..., :1].reshape(-1, 1)
    return {
        "zero": float(jnp.mean(LOSS(jnp.zeros_like(y), y))),
        "x_n": float(jnp.mean(LOSS(x, y))),
    }


def probe_sites(
    model: Transformer, batch: Batch, settings: SineSettings, seed: int
) -> dict[str, Any]:
    """R² [site, lag] (and the shuffled control) of probes to sin(freq·x_{n−i})."""
    acts = jax.vmap(model.activations)(batch.inputs)
    sites = [acts["embedding"]] + [acts["residual"][:, i] for i in range(settings.n_layers)]
    first = min(settings.probe_lags, settings.seq_len // 2)  # positions with every lag defined
    x = batch.inputs[..., 0]
    targets = np.asarray(lagged_sines(x, settings.freq, settings.probe_lags))[:, first:]
    r2, control = [], []
    for site in sites:
        probe = regression_probe(np.asarray(site)[:, first:], targets, seed=seed)
        r2.append(probe.r2.tolist())
        control.append(probe.control_r2.tolist())
    return {"r2": r2, "control_r2": control}


def run_one(
    settings: SineSettings,
    p: float,
    mode: str,
    seed: int,
    *,
    switch: tuple[int, str] | None = None,
    show: bool = False,
) -> dict[str, Any]:
    task = settings.task(p)
    k_train, k_eval, k_probe = jax.random.split(jax.random.key(seed), 3)  # same data per mode
    t0, c0 = time.perf_counter(), time.process_time()
    label = mode if switch is None else f"{mode}->{switch[1]}"
    model, losses = train(
        settings.model_config(mode),
        build,
        LOSS,
        task.sample,
        settings.schedule,
        k_train,
        switch=switch,
        desc=f"p={p} {label} seed {seed}",
        show=show,
    )
    eval_batch = task.sample(k_eval, settings.eval_sequences)
    held_out = float(jnp.mean(batch_losses(model, eval_batch, LOSS)))
    probes = probe_sites(model, task.sample(k_probe, settings.probe_sequences), settings, seed)
    return {
        "p": p,
        "mode": label,
        "seed": seed,
        "loss": held_out,
        "trivial": trivial_losses(eval_batch),
        "train_loss_curve": [float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)],
        "probes": probes,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def jobs(settings: SineSettings) -> list[tuple[float, str, tuple[int, str] | None]]:
    """(p, mode, switch) for every run of one seed."""
    out = [(p, mode, None) for p in settings.ps for mode in settings.modes]
    if settings.breadcrumbs:
        half = settings.steps // 2
        out += [
            (settings.switch_p, "standard", (half, "myopic")),
            (settings.switch_p, "myopic", (half, "standard")),
        ]
    return out


def run_all(
    settings: SineSettings,
    out: Path,
    *,
    command: str,
    show: bool = False,
    log: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Every (seed, p, mode) run and the breadcrumb switches; writes precaching_sine.json,
    .png and .md to ``out`` after every run."""
    import sys

    from myojax.provenance import environment

    out.mkdir(parents=True, exist_ok=True)
    start, cpu0 = time.perf_counter(), time.process_time()
    env_start = environment()
    from concurrent.futures import ThreadPoolExecutor

    def one(seed: int, p: float, mode: str, switch: tuple[int, str] | None) -> dict[str, Any]:
        row = run_one(settings, p, mode, seed, switch=switch, show=show and workers == 1)
        if log:
            print(
                f"seed {seed} p={p} {row['mode']:<18} held-out Huber {row['loss']:.4f} "
                f"(zero {row['trivial']['zero']:.4f}, x_n {row['trivial']['x_n']:.4f}) "
                f"{row['wall_s']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        return row

    # Configuration-major (every seed of one configuration before the next), the most telling
    # first, so that an interrupted run still has whole configurations to report.
    todo = [(seed, *job) for job in priority(jobs(settings)) for seed in range(settings.seeds)]
    runs: list[dict[str, Any]] = []
    lock = threading.Lock()

    def write() -> dict[str, Any]:
        # seed order, not completion order: the report lists the losses per seed
        ordered = sorted(runs, key=lambda r: (r["p"], r["mode"], r["seed"]))
        results = {
            "settings": dataclasses.asdict(settings),
            "command": command,
            "wall_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu0,
            "environment_start": env_start,
            "environment": environment(),
            "runs_planned": len(todo),
            "runs": ordered,
            "summary": summarize(ordered),
        }
        epilogue.finish(PAGE, results, out)
        return results

    def done(job: tuple) -> None:
        row = one(*job)
        with lock:  # every finished run is on disk at once (partial results survive a kill)
            runs.append(row)
            write()

    # Threads: JAX releases the GIL while XLA computes, so runs overlap on several cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(done, todo))
    return write()


def priority(todo: list[tuple]) -> list[tuple]:
    """p = 1 and p = 0.3 first (where lags matter), then the switches, then the rest."""
    rank = lambda job: (job[2] is not None, {1.0: 0, 0.3: 1}.get(job[0], 2))
    return sorted(todo, key=lambda job: (rank(job)[1] if job[2] is None else 1.5, rank(job)))
