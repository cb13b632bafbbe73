"""The generations grid: train, sample, mix, retrain; measure every model.

One *training* is a fresh model trained for ``steps`` steps of ``batch_size`` windows drawn,
epoch by epoch in a seeded shuffled order, from a fixed *pool* of ``pool_windows`` windows of
``seq_len + 1`` tokens. Generation 0's pool is human text only. Generation k+1's pool holds
``round(mix * pool_windows)`` windows sampled from generation k (same mode, seed and mix) and
human windows for the rest, so every generation sees the same number of windows and epochs and
the mix fraction is exact, both in the pool and in the windows the optimizer sees.

A sampled window is one human byte (the prompt, the first byte of a random human training
window) followed by ``seq_len`` tokens sampled at temperature 1 with ``myojax.generate``.

Keys: everything a model needs (init, data order, human windows, prompts, sampling) comes from
``(seed, generation, mix)`` and never from the gradient mode, so a standard and a myopic model
of the same cell start from the same weights and data and differ only in the mode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import grain
import jax
import jax.numpy as jnp
import numpy as np

from myojax import evaluation
from myojax.analysis import text_stats
from myojax.analysis.sampling import generate
from myojax.config import ModelConfig
from myojax.data import corpus
from myojax.data.pipeline import window_dataset
from myojax.files import write_json
from myojax.loss import to_batch
from myojax.model import GPT, count_params
from myojax.mup import lr_multipliers
from myojax.progress import Progress
from myojax.train.config import TrainConfig
from myojax.train.optim import make_optimizer
from myojax.train.step import compile_train_step, init_state

PROMPT_LEN = 1  # human bytes before the sampled continuation of each sampled window
_SINGLE = grain.sharding.ShardOptions(0, 1)  # one process reads every row


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """The whole grid, one flag per field. The defaults are the published run (see
    results/self_training.md)."""

    seeds: int = dataclasses.field(default=3, metadata={"help": "seeds"})
    generations: int = dataclasses.field(
        default=5, metadata={"help": "generations including generation 0 (human text only)"}
    )
    mixes: tuple[float, ...] = dataclasses.field(
        default=(0.0, 0.5, 1.0), metadata={"help": "fractions of sampled windows in a pool"}
    )
    modes: tuple[str, ...] = dataclasses.field(
        default=("standard", "myopic"), metadata={"help": "gradient modes"}
    )
    d_model: int = dataclasses.field(default=32, metadata={"help": "residual width"})
    n_layers: int = dataclasses.field(default=2, metadata={"help": "transformer blocks"})
    n_heads: int = dataclasses.field(default=4, metadata={"help": "attention heads"})
    seq_len: int = dataclasses.field(
        default=64, metadata={"help": "context length (a window is seq_len + 1 bytes)"}
    )
    steps: int = dataclasses.field(default=240, metadata={"help": "training steps per model"})
    batch_size: int = dataclasses.field(default=32, metadata={"help": "windows per step"})
    lr: float = dataclasses.field(
        default=1e-2, metadata={"help": "peak learning rate (warmup and cosine decay)"}
    )
    pool_windows: int = dataclasses.field(
        default=1536,
        metadata={
            "help": "windows in each generation's pool (steps * batch_size / pool_windows epochs)"
        },
    )
    metric_rows: int = dataclasses.field(
        default=256, metadata={"help": "sampled rows the drift metrics and self-loss use"}
    )
    eval_windows: int = dataclasses.field(
        default=256, metadata={"help": "held-out human windows for the held-out loss"}
    )
    temperature: float = dataclasses.field(default=1.0, metadata={"help": "sampling temperature"})

    def __post_init__(self) -> None:
        if self.seeds < 1 or self.generations < 2:
            raise ValueError("need seeds >= 1 and generations >= 2")
        if not self.mixes or any(not 0.0 <= m <= 1.0 for m in self.mixes):
            raise ValueError(f"mix fractions must lie in [0, 1], got {self.mixes}")
        if len(set(self.mixes)) != len(self.mixes) or len(set(self.modes)) != len(self.modes):
            raise ValueError("mixes and modes must not repeat")
        if self.eval_windows % self.batch_size or self.metric_rows % 8:
            raise ValueError("eval_windows must be a multiple of batch_size, metric_rows of 8")
        self.model_config("standard")  # validate the shape now
        for mode in self.modes:
            self.model_config(mode)
        self.train_config()

    def model_config(self, mode: str) -> ModelConfig:
        return ModelConfig(
            vocab_size=256,
            seq_len=self.seq_len,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            gradient_mode=mode,
        )

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=max(1, self.steps // 10),
            eval_batches=self.eval_windows // self.batch_size,
        )

    def n_sampled(self, mix: float) -> int:
        return round(mix * self.pool_windows)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- data ---------------------------------------------------------------------------------


def human_windows(
    tokens: np.ndarray, n: int, seq_len: int, seed: int
) -> np.ndarray:  # uint8 [n, T+1]
    """``n`` random windows of ``seq_len + 1`` bytes (the trainer's grain pipeline)."""
    if n == 0:
        return np.zeros((0, seq_len + 1), np.uint8)
    ds = window_dataset(
        [tokens], seq_len=seq_len, batch_size=n, num_batches=1, seed=seed, shard=_SINGLE
    )
    return np.asarray(ds[0], np.uint8)


def build_pool(sampled: np.ndarray, human: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sampled and human windows in one pool, shuffled; returns (pool, is_sampled)."""
    pool = np.concatenate([sampled, human]).astype(np.uint8)
    is_sampled = np.concatenate([np.ones(len(sampled), bool), np.zeros(len(human), bool)])
    order = np.random.default_rng(seed).permutation(len(pool))
    return pool[order], is_sampled[order]


def batch_indices(pool_size: int, steps: int, batch_size: int, seed: int) -> grain.MapDataset:
    """Batches of pool indices: ``ceil(steps * batch_size / pool_size)`` epochs, shuffled
    across epochs with grain; batch ``i`` is element ``i``."""
    epochs = -(-steps * batch_size // pool_size)
    ds = grain.MapDataset.range(pool_size).repeat(epochs).shuffle(seed=seed)
    return ds.batch(batch_size, drop_remainder=True)


def _seed(key: jax.Array) -> int:
    return int(jax.random.bits(key, dtype=jnp.uint32))


# -- training, sampling, measuring ---------------------------------------------------------


@dataclasses.dataclass
class Trainers:
    """One optimizer and one jitted train step per gradient mode, built once for the grid."""

    cfg: GridConfig
    steps: dict[str, Callable] = dataclasses.field(default_factory=dict)
    optimizers: dict[str, Any] = dataclasses.field(default_factory=dict)

    def for_mode(self, mode: str) -> tuple[Any, Callable]:
        if mode not in self.steps:
            model_cfg = self.cfg.model_config(mode)
            abstract = eqx.filter_eval_shape(GPT, model_cfg, key=jax.random.key(0))
            opt = make_optimizer(self.cfg.train_config(), abstract, lr_multipliers(model_cfg))
            self.optimizers[mode], self.steps[mode] = opt, compile_train_step(opt)
        return self.optimizers[mode], self.steps[mode]


def train_on_pool(
    cfg: GridConfig,
    trainers: Trainers,
    mode: str,
    pool: np.ndarray,
    is_sampled: np.ndarray,
    key: jax.Array,
) -> tuple[GPT, dict[str, Any]]:
    """A fresh model trained on batches drawn from ``pool``; also counts the sampled and human
    windows the optimizer actually saw."""
    optimizer, step_fn = trainers.for_mode(mode)
    init_key, order_key = jax.random.split(key)
    state = init_state(cfg.model_config(mode), optimizer, init_key)
    batches = batch_indices(len(pool), cfg.steps, cfg.batch_size, _seed(order_key))
    seen_sampled = 0
    losses = []
    for i in range(cfg.steps):
        idx = np.asarray(batches[i])
        seen_sampled += int(is_sampled[idx].sum())
        state, metrics = step_fn(state, to_batch(pool[idx].astype(np.int32)))
        losses.append(metrics["loss"])
    losses = [float(x) for x in jax.device_get(losses)]
    seen = cfg.steps * cfg.batch_size
    return state.model, {
        "train_loss_first": losses[0],
        "train_loss_last": float(np.mean(losses[-max(1, cfg.steps // 10) :])),
        "windows_seen_sampled": seen_sampled,
        "windows_seen_human": seen - seen_sampled,
    }


def sample_windows(
    model: GPT, prompts: np.ndarray, key: jax.Array, cfg: GridConfig, chunk: int
) -> tuple[np.ndarray, float]:
    """Prompt byte + ``seq_len`` sampled tokens per prompt (uint8 ``[n, T+1]``) and the
    sampling wall time; generated in chunks of ``chunk`` rows so one shape compiles once."""
    out, t0 = [], time.perf_counter()
    for c, start in enumerate(range(0, len(prompts), chunk)):
        p = prompts[start : start + chunk]
        pad = chunk - len(p)
        p_full = np.concatenate([p, np.repeat(p[:1], pad, axis=0)]) if pad else p
        gen = generate(
            model,
            p_full.astype(np.int32),
            cfg.seq_len,
            key=jax.random.fold_in(key, c),
            temperature=cfg.temperature,
        )
        tokens = np.asarray(gen.tokens)[: len(p)]
        out.append(np.concatenate([p, tokens], axis=1).astype(np.uint8))
    return np.concatenate(out), time.perf_counter() - t0


def measure(
    model: GPT, samples: np.ndarray, eval_windows: list[np.ndarray], reference: np.ndarray
) -> dict[str, Any]:
    """Held-out human loss, loss on the model's own samples (its first ``metric_rows``, every
    target a sampled token), and the drift of the sampled bytes (prompt excluded)."""
    own = samples.astype(np.int32)
    return {
        "val_loss": evaluation.evaluate(model, eval_windows)["val_loss"],
        "self_loss": evaluation.evaluate(model, [own])["val_loss"],
        **text_stats.drift(samples[:, PROMPT_LEN:], reference),
    }


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _cell_key(seed: int, generation: int, mix_index: int | None) -> jax.Array:
    key = jax.random.fold_in(jax.random.key(seed), generation)
    return key if mix_index is None else jax.random.fold_in(key, 1 + mix_index)


def run_grid(
    cfg: GridConfig,
    out: Path,
    *,
    progress: bool | None = None,
    meta: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run every (mode, seed, mix, generation) cell; write each cell's pool, samples and record
    under ``out/<mode>/seed<s>/…`` and return all records and the human floor.

    After each seed, ``out/results.partial.json`` holds the seeds finished so far (``config``
    says how many, ``meta()`` the run record so far), so an interrupted grid still leaves a
    complete, smaller grid behind."""
    data = corpus.load()
    T = cfg.seq_len
    trainers = Trainers(cfg)
    # Fixed for the whole grid: held-out windows for the loss, and two disjoint held-out human
    # samples shaped like the metric rows (the reference, and a floor for every drift metric).
    val = data.val
    half = len(val) // 2
    (eval_all,) = evaluation.heldout_windows(
        [val[:half]], seq_len=T, batch_size=cfg.eval_windows, num_batches=1, seed=1
    )
    eval_windows = evaluation.in_batches(eval_all, cfg.batch_size)
    reference = human_windows(val[half:], cfg.metric_rows, T, seed=2)[:, PROMPT_LEN:]
    floor_rows = human_windows(val[:half], cfg.metric_rows, T, seed=3)[:, PROMPT_LEN:]
    floor = text_stats.drift(floor_rows, reference)

    n_cells = cfg.seeds * len(cfg.modes) * (1 + len(cfg.mixes) * (cfg.generations - 1))
    bar = Progress(n_cells, enabled=progress, unit="model", desc="self-training")
    params = count_params(GPT(cfg.model_config("standard"), key=jax.random.key(0)))
    done, records = 0, []
    chunk = cfg.metric_rows
    for seed in range(cfg.seeds):
        for mode in cfg.modes:
            # parent[mix] = (samples path, samples) of the previous generation of that mix
            parent: dict[float, tuple[Path | None, np.ndarray]] = {}
            for gen in range(cfg.generations):
                cells = [(None, 0.0)] if gen == 0 else list(enumerate(cfg.mixes))
                for mix_index, mix in cells:
                    cell_dir = out / mode / f"seed{seed}"
                    cell_dir /= "gen0" if gen == 0 else f"mix{mix:g}/gen{gen}"
                    cell_dir.mkdir(parents=True, exist_ok=True)
                    k_pool, k_human, k_train, k_prompt, k_sample = jax.random.split(
                        _cell_key(seed, gen, mix_index), 5
                    )
                    n_s = 0 if gen == 0 else cfg.n_sampled(mix)
                    if gen == 0:
                        sampled, source = np.zeros((0, T + 1), np.uint8), None
                    else:
                        source, parent_samples = parent[mix]
                        sampled = parent_samples[:n_s]
                    human = human_windows(
                        data.train, cfg.pool_windows - n_s, T, seed=_seed(k_human)
                    )
                    pool, is_sampled = build_pool(sampled, human, _seed(k_pool))
                    np.save(cell_dir / "pool.npy", pool)
                    np.save(cell_dir / "pool_is_sampled.npy", is_sampled)
                    t0, c0 = time.perf_counter(), time.process_time()
                    model, train_rec = train_on_pool(cfg, trainers, mode, pool, is_sampled, k_train)
                    train_wall = time.perf_counter() - t0
                    # Samples: enough for the next generation's pools and for the metrics.
                    need = max(
                        [cfg.metric_rows]
                        + ([cfg.n_sampled(m) for m in cfg.mixes] if gen == 0 else [n_s])
                    )
                    if gen == cfg.generations - 1:
                        need = cfg.metric_rows
                    prompts = human_windows(data.train, need, T, seed=_seed(k_prompt))[
                        :, :PROMPT_LEN
                    ]
                    samples, sample_wall = sample_windows(model, prompts, k_sample, cfg, chunk)
                    np.save(cell_dir / "samples.npy", samples)
                    rec = {
                        "mode": mode,
                        "seed": seed,
                        "generation": gen,
                        "mix": None if gen == 0 else mix,
                        "dir": str(cell_dir),
                        "pool_sampled": int(is_sampled.sum()),
                        "pool_human": int((~is_sampled).sum()),
                        "trained_on_samples_of": None if source is None else str(source),
                        "trained_on_sha256": None if gen == 0 else _sha(sampled),
                        **train_rec,
                        **measure(model, samples[: cfg.metric_rows], eval_windows, reference),
                        "train_wall_s": train_wall,
                        "sample_wall_s": sample_wall,
                        "cpu_s": time.process_time() - c0,
                        "examples": [bytes(r).decode("utf-8", "replace") for r in samples[:2]],
                    }
                    write_json(cell_dir / "record.json", rec)
                    records.append(rec)
                    done += 1
                    bar.update(
                        done,
                        postfix={"val": f"{rec['val_loss']:.3f}"},
                        line=f"[{done}/{n_cells}] {mode} seed {seed} gen {gen} mix "
                        f"{rec['mix']} val_loss {rec['val_loss']:.3f} self_loss "
                        f"{rec['self_loss']:.3f} unigram_kl {rec['unigram_kl']:.4f}",
                    )
                    new_parent = (cell_dir / "samples.npy", samples)
                    if gen == 0:
                        parent = {m: new_parent for m in cfg.mixes}
                    else:
                        parent[mix] = new_parent
        partial = {
            "config": dataclasses.replace(cfg, seeds=seed + 1).to_dict(),
            "params": params,
            "floor": floor,
            "records": records,
        }
        if meta is not None:
            partial["meta"] = meta() | {"partial": f"{seed + 1} of {cfg.seeds} seeds"}
        write_json(out / "results.partial.json", partial)
    bar.close()
    return {"config": cfg.to_dict(), "params": params, "floor": floor, "records": records}


def records_by_cell(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """(mode, mix, generation) -> one record per seed; generation 0 (shared by every mix) is
    listed under each mix so every curve starts from it."""
    mixes = sorted({r["mix"] for r in records if r["mix"] is not None})
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        for mix in mixes if r["generation"] == 0 else [r["mix"]]:
            cells.setdefault((r["mode"], mix, r["generation"]), []).append(r)
    return cells
