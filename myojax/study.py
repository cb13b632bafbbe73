"""The scaling-study protocol: model ladders, token budgets, runs, analysis, report, plots.

Protocol (docs/scaling.md), for each gradient mode separately:

1. muP learning-rate sweep on the base-width proxy; the best lr by held-out loss is the mode's.
2. Every size trains with its mode's lr (muP transfers it across width), the same seed, data
   order and held-out windows, for a token budget D(N) = D_ref · (N / N_ref)^β.
3. Each trained model is restored from its orbax checkpoint and evaluated on one fixed set of
   held-out sequences: mean, per-position and per-sequence loss.
4. L(N) = E + A·N^(−α) is fitted per mode (``myojax.scaling_laws``) with a paired bootstrap
   over held-out sequences; gaps (myopic − standard), their trend per decade of N and the fits'
   extrapolations to the GPT-2 sizes get the same bootstrap intervals.

Everything that lands in ``report.md`` and the plots is computed from ``results.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from myojax import scaling_laws as sl
from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import Batch, per_position_loss
from myojax.model import GPT
from myojax.model_presets import GPT2_SHAPES
from myojax.model_presets import preset as gpt2_preset

SCHEMA_VERSION = 1
RESULT_FILE = "study_result.json"  # per run directory: written once the run is evaluated
EVAL_SEED = 20240601  # the held-out windows: one fixed set for every run of every study


# ----------------------------------------------------------------------------------------------
# Presets


@dataclasses.dataclass(frozen=True)
class Size:
    """One rung of the ladder: a named transformer shape."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """A ladder of sizes and everything about how each is trained and evaluated.

    Token budget: D(N) = ``ref_tokens`` · (N / N_proxy)^``budget_exponent`` (N = non-embedding
    parameters), rounded up to whole steps. β = 1 is Chinchilla's fixed tokens-per-parameter;
    β < 1 trains larger models on relatively fewer tokens (what a CPU budget allows).
    """

    name: str
    sizes: tuple[Size, ...]
    proxy: Size  # base-width proxy for the lr sweep; muP base_width = proxy.d_model
    lrs: tuple[float, ...]
    seq_len: int
    batch_size: int
    vocab_size: int
    ref_tokens: int
    budget_exponent: float
    warmup_frac: float
    eval_batches: int
    n_boot: int
    data: str
    description: str
    seed: int = 0
    param_dtype: str = "float32"
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if len(self.sizes) < 3:
            raise ValueError(f"preset {self.name}: a 3-parameter fit needs >= 3 sizes")
        if len(self.lrs) < 2 or sorted(self.lrs) != list(self.lrs):
            raise ValueError(f"preset {self.name}: lrs must be >= 2 increasing values")
        for s in (*self.sizes, self.proxy):
            if (
                s.d_model % s.n_heads
                or s.d_model // s.n_heads != self.proxy.d_model // self.proxy.n_heads
            ):
                raise ValueError(
                    f"preset {self.name}: size {s.name} must keep the proxy's head "
                    "dimension (muP's width family)"
                )

    @property
    def base_width(self) -> int:
        return self.proxy.d_model

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


def _ladder(widths: Sequence[int], n_layers: int, head_dim: int) -> tuple[Size, ...]:
    return tuple(Size(f"w{d}", n_layers, d, d // head_dim) for d in widths)


_CPU_SIZES = _ladder((32, 48, 80, 112), n_layers=2, head_dim=16)
_SMOKE_SIZES = _ladder((16, 32, 48), n_layers=1, head_dim=16)
_GPT2_SIZES = tuple(Size(name, *GPT2_SHAPES[name]) for name in GPT2_SHAPES)

PRESETS: dict[str, StudyPreset] = {
    "cpu": StudyPreset(
        name="cpu",
        sizes=_CPU_SIZES,
        proxy=_CPU_SIZES[0],
        lrs=(2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2),
        seq_len=64,
        batch_size=32,
        vocab_size=256,
        ref_tokens=200 * 32 * 64,
        budget_exponent=0.5,
        warmup_frac=0.1,
        eval_batches=8,
        n_boot=300,
        data="shakespeare",
        description="2-layer byte-level GPTs, widths 32-112 (head dim 16), embedded Shakespeare; "
        "about 12 CPU-minutes (results/scaling.md has the measured wall time)",
    ),
    "smoke": StudyPreset(
        name="smoke",
        sizes=_SMOKE_SIZES,
        proxy=_SMOKE_SIZES[0],
        lrs=(4e-3, 1.6e-2),  # 2 values only: the smoke preset tests plumbing, not science
        seq_len=32,
        batch_size=8,
        vocab_size=256,
        ref_tokens=12 * 8 * 32,
        budget_exponent=0.0,
        warmup_frac=0.1,
        eval_batches=4,
        n_boot=40,
        data="shakespeare",
        description="1-layer widths 16-48, 12 steps each: end-to-end plumbing test (minutes)",
    ),
    "gpt2": StudyPreset(
        name="gpt2",
        sizes=_GPT2_SIZES,
        proxy=Size("proxy-w256", 12, 256, 4),
        lrs=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3),
        seq_len=1024,
        batch_size=512,
        vocab_size=50257,
        ref_tokens=0,
        budget_exponent=1.0,
        warmup_frac=0.02,
        eval_batches=8,
        n_boot=1000,
        data="",
        description="GPT-2 shapes 117M-1.5B on token shards (--data), 20 tokens per "
        "non-embedding parameter (Chinchilla's ratio), muP proxy at width 256",
    ),
}
GPT2_TOKENS_PER_PARAM = 20


def param_counts(cfg: ModelConfig) -> tuple[int, int]:
    """(total, non-embedding) parameters of ``myojax.model.GPT`` from its shapes, in closed form.

    Non-embedding excludes wte and wpe, like ``count_params(non_embedding=True)``.
    """
    d, f, layers = cfg.d_model, cfg.ff_dim, cfg.n_layers
    block = 4 * d * d + 2 * d * f + 9 * d + f  # qkv+out+fc+proj matrices; 2 LNs, 4 biases
    non_embedding = layers * block + 2 * d + (0 if cfg.tie_embeddings else d * cfg.vocab_size)
    return non_embedding + (cfg.vocab_size + cfg.seq_len) * d, non_embedding


def model_config(p: StudyPreset, size: Size, mode: str) -> ModelConfig:
    if mode not in GRADIENT_MODES:
        raise ValueError(f"unknown gradient mode {mode!r}; modes are {GRADIENT_MODES}")
    base = gpt2_preset("gpt2-117m") if p.name == "gpt2" else ModelConfig()
    return base.replace(
        vocab_size=p.vocab_size,
        seq_len=p.seq_len,
        d_model=size.d_model,
        n_layers=size.n_layers,
        n_heads=size.n_heads,
        gradient_mode=mode,
        parametrization="mup",
        base_width=p.base_width,
        param_dtype=p.param_dtype,
        compute_dtype=p.compute_dtype,
    )


def token_budget(p: StudyPreset, non_embedding: int) -> tuple[int, int]:
    """(steps, tokens) for a model of ``non_embedding`` parameters under the preset's rule."""
    n_ref = param_counts(model_config(p, p.proxy, "standard"))[1]
    ref = p.ref_tokens if p.ref_tokens > 0 else GPT2_TOKENS_PER_PARAM * n_ref
    tokens = ref * (non_embedding / n_ref) ** p.budget_exponent
    steps = max(1, math.ceil(tokens / p.tokens_per_step))
    return steps, steps * p.tokens_per_step


def train_flops_per_token(cfg: ModelConfig) -> float:
    """Training FLOPs per token: 3 × forward, forward = 2N (matmuls) + 2·D·V (readout)
    + 4·L·T·D (attention scores and mixing over the full window, causal mask not discounted)."""
    _, n = param_counts(cfg)
    return 3 * (
        2 * n + 2 * cfg.d_model * cfg.vocab_size + 4 * cfg.n_layers * cfg.seq_len * cfg.d_model
    )


# ----------------------------------------------------------------------------------------------
# The plan


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run. ``role`` is "sweep" (proxy, lr grid) or "size" (a ladder rung)."""

    mode: str
    role: str
    size: Size
    lr: float
    steps: int
    tokens: int
    model: ModelConfig

    @property
    def name(self) -> str:
        return f"{self.size.name}-lr{self.lr:.3g}"

    def run_dir(self, out: Path) -> Path:
        return out / "runs" / self.mode / self.name


def sweep_specs(p: StudyPreset, modes: Sequence[str]) -> list[RunSpec]:
    cfgs = {m: model_config(p, p.proxy, m) for m in modes}
    steps, tokens = token_budget(p, param_counts(cfgs[modes[0]])[1])
    return [RunSpec(m, "sweep", p.proxy, lr, steps, tokens, cfgs[m]) for m in modes for lr in p.lrs]


def size_specs(p: StudyPreset, mode: str, lr: float) -> list[RunSpec]:
    specs = []
    for size in p.sizes:
        cfg = model_config(p, size, mode)
        steps, tokens = token_budget(p, param_counts(cfg)[1])
        specs.append(RunSpec(mode, "size", size, lr, steps, tokens, cfg))
    return specs


def same_run(a: RunSpec, b: RunSpec) -> bool:
    """True when two specs train the identical model (e.g. the best sweep run is size 0)."""
    return (a.mode, a.lr, a.steps, a.model) == (b.mode, b.lr, b.steps, b.model)


def n_runs(p: StudyPreset, modes: Sequence[str]) -> int:
    """Distinct runs of the whole study (one size run coincides with a sweep run when the proxy
    is the smallest size)."""
    reused = 1 if p.proxy in p.sizes else 0
    return len(modes) * (len(p.lrs) + len(p.sizes) - reused)


def train_config(
    p: StudyPreset, spec: RunSpec, run_dir: Path, data: str, mesh: str | None = None
) -> Any:
    from myojax.train import TrainConfig

    extra = {} if mesh is None else {"mesh": mesh}
    if extra and "mesh" not in {f.name for f in dataclasses.fields(TrainConfig)}:
        raise ValueError("this myojax.train.TrainConfig has no mesh field; drop --mesh")
    return TrainConfig(
        **extra,
        steps=spec.steps,
        batch_size=p.batch_size,
        lr=spec.lr,
        warmup_steps=min(spec.steps - 1, max(1, round(p.warmup_frac * spec.steps))),
        log_interval=max(1, spec.steps // 10),
        eval_interval=spec.steps,
        eval_batches=1,
        checkpoint_interval=max(1, spec.steps // 4),
        keep=1,
        seed=p.seed,
        data=data,
        out=str(run_dir),
    )


# ----------------------------------------------------------------------------------------------
# Evaluation on the fixed held-out set


@jax.jit
def _sequence_losses(model: GPT, windows: Int[Array, "B T1"]) -> Float[Array, "B T"]:
    batch = Batch.from_windows(windows)
    return jax.vmap(per_position_loss, in_axes=(None, 0, 0))(model, batch.inputs, batch.targets)


def heldout_windows(p: StudyPreset, data: str) -> list[np.ndarray]:
    """The study's held-out windows: a fixed seed, independent of the runs' training seeds."""
    from myojax.data import pipeline

    tokens = pipeline.load_data(data)
    ds = pipeline.window_dataset(
        tokens.val,
        seq_len=p.seq_len,
        batch_size=p.batch_size,
        num_batches=p.eval_batches,
        seed=EVAL_SEED,
    )
    return [ds[i] for i in range(len(ds))]


def evaluate_heldout(model: GPT, windows: Sequence[np.ndarray]) -> dict[str, Any]:
    """Mean loss, per-position mean loss and per-sequence mean loss over ``windows``."""
    losses_MxT = np.concatenate(
        [np.asarray(_sequence_losses(model, jnp.asarray(w))) for w in windows]
    )
    return {
        "val_loss": float(losses_MxT.mean()),
        "val_loss_per_position": losses_MxT.mean(axis=0).tolist(),
        "val_loss_per_sequence": losses_MxT.mean(axis=1).tolist(),
    }


# ----------------------------------------------------------------------------------------------
# Executing one run (train or resume, restore, evaluate) and its bookkeeping


def load_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a half-written file: the run is redone from its checkpoints
    return result if isinstance(result, dict) and "status" in result else None


def write_json(path: Path, obj: Any) -> None:
    """Atomic write (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def execute(
    p: StudyPreset,
    spec: RunSpec,
    out: Path,
    data: str,
    windows: Sequence[np.ndarray],
    *,
    write: bool,
    progress: bool | None = None,
    mesh: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run, restore its final checkpoint, evaluate it; cached on disk.

    Returns the run's result with ``status`` "ok", "diverged" (non-finite loss: recorded, not
    raised) or "interrupted" (a signal stopped training; rerunning resumes it).
    """
    from myojax import checkpoint, train

    run_dir = spec.run_dir(out)
    cached = load_result(run_dir)
    if cached is not None:
        return {**cached, "skipped": True}
    t0 = time.perf_counter()
    total, non_emb = param_counts(spec.model)
    row: dict[str, Any] = {
        "mode": spec.mode,
        "role": spec.role,
        "size": spec.size.name,
        "d_model": spec.size.d_model,
        "n_layers": spec.size.n_layers,
        "params": total,
        "non_embedding_params": non_emb,
        "tokens": spec.tokens,
        "steps": spec.steps,
        "lr": spec.lr,
        "run_dir": str(run_dir.relative_to(out)),
    }
    prior_wall = float(_read_json(run_dir / "study_wall.json", {}).get("wall_s", 0.0))
    try:
        final = train.run(train_config(p, spec, run_dir, data, mesh), spec.model, progress=progress)
    except train.NonFiniteLoss as e:
        row.update(status="diverged", error=str(e), wall_s=prior_wall + time.perf_counter() - t0)
        if write:
            write_json(run_dir / RESULT_FILE, row)
        return row
    if final["preempted"]:
        if write:
            write_json(
                run_dir / "study_wall.json", {"wall_s": prior_wall + time.perf_counter() - t0}
            )
        return {**row, "status": "interrupted"}
    cfg, model = checkpoint.restore(run_dir)
    if cfg != spec.model:
        raise RuntimeError(f"{run_dir}: restored config differs from the planned one")
    ev = evaluate_heldout(model, windows)
    status = "ok" if math.isfinite(ev["val_loss"]) else "diverged"
    row.update(
        status=status,
        final_step=final["step"],
        train_loss=final["loss"],
        **ev,
        wall_s=prior_wall + time.perf_counter() - t0,
    )
    if write:
        write_json(run_dir / RESULT_FILE, row)
    return row


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def best_lr(rows: Sequence[dict[str, Any]]) -> tuple[float, bool]:
    """(lr with the lowest held-out loss among finished sweep runs, whether it is an edge lr)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise RuntimeError(f"every sweep run of mode {rows[0]['mode']} diverged; lower the lrs")
    best = min(ok, key=lambda r: r["val_loss"])
    lrs = sorted(r["lr"] for r in rows)
    return best["lr"], best["lr"] in (lrs[0], lrs[-1])


# ----------------------------------------------------------------------------------------------
# Analysis: a pure function of the run rows


def analyze(
    p: StudyPreset,
    modes: Sequence[str],
    runs: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Fits per mode, per-size gaps against ``standard``, gap trend and extrapolations."""
    rng = np.random.default_rng(seed)
    sizes = [s.name for s in p.sizes]
    table = {(r["mode"], r["size"]): r for r in runs if r["role"] == "size" and r["status"] == "ok"}
    n_items = {len(r["val_loss_per_sequence"]) for r in table.values()}
    if len(n_items) > 1:
        raise ValueError(f"runs were evaluated on different held-out sets (sizes {n_items})")
    out: dict[str, Any] = {
        "level": level,
        "n_boot": p.n_boot,
        "fits": {},
        "gaps": {},
        "extrapolation": {},
        "bootstrap": "paired over held-out sequences",
    }
    if not n_items:
        return out
    idx = sl.bootstrap_indices(rng, n_items.pop(), p.n_boot)
    extrap_names = list(GPT2_SHAPES)
    extrap_n = np.array([param_counts(gpt2_preset(n))[1] for n in extrap_names], float)
    boots: dict[str, dict[str, Any]] = {}
    for mode in modes:
        names = [s for s in sizes if (mode, s) in table]
        rows = [table[mode, s] for s in names]
        n = np.array([r["non_embedding_params"] for r in rows], float)
        per_item = np.array([r["val_loss_per_sequence"] for r in rows])
        mean_boot = sl.resampled_means(per_item, idx)
        lo, hi = sl.interval(mean_boot, level)
        entry: dict[str, Any] = {
            "sizes": names,
            "n": n.tolist(),
            "loss": per_item.mean(axis=1).tolist(),
            "loss_ci": [lo.tolist(), hi.tolist()],
        }
        if len(names) >= 3:
            fit = sl.fit_power_law(n, per_item.mean(axis=1))
            params = sl.bootstrap_fits(n, per_item, idx, point=fit)
            plo, phi = sl.interval(params, level)
            pred = sl.predict(params, extrap_n)
            elo, ehi = sl.interval(pred, level)
            entry.update(
                fit=fit.to_dict(),
                fit_ci={
                    k: [float(plo[i]), float(phi[i])] for i, k in enumerate(("E", "A", "alpha"))
                },
            )
            out["extrapolation"][mode] = {
                "sizes": extrap_names,
                "n": extrap_n.tolist(),
                "loss": fit.predict(extrap_n).tolist(),
                "ci": [elo.tolist(), ehi.tolist()],
            }
            boots[mode] = {"params": params, "fit": fit}
        boots.setdefault(mode, {})["per_item"] = dict(zip(names, per_item))
        out["fits"][mode] = entry
    if "standard" in modes:
        for mode in (m for m in modes if m != "standard"):
            common = [s for s in sizes if (mode, s) in table and ("standard", s) in table]
            if not common:
                continue
            d_items = np.array(
                [boots[mode]["per_item"][s] - boots["standard"]["per_item"][s] for s in common]
            )
            n = np.array([table[mode, s]["non_embedding_params"] for s in common], float)
            gap_boot = sl.resampled_means(d_items, idx)
            glo, ghi = sl.interval(gap_boot, level)
            gap = {
                "sizes": common,
                "n": n.tolist(),
                "gap": d_items.mean(axis=1).tolist(),
                "ci": [glo.tolist(), ghi.tolist()],
                "relative": (
                    d_items.mean(axis=1)
                    / np.array([table["standard", s]["val_loss"] for s in common])
                ).tolist(),
            }
            if len(common) >= 2:
                slope_boot = sl.trend_slope(n, gap_boot)
                slo, shi = sl.interval(slope_boot, level)
                gap["trend_per_decade"] = float(sl.trend_slope(n, d_items.mean(axis=1)))
                gap["trend_ci"] = [float(slo), float(shi)]
            if "params" in boots.get(mode, {}) and "params" in boots["standard"]:
                pred_gap = sl.predict(boots[mode]["params"], extrap_n) - sl.predict(
                    boots["standard"]["params"], extrap_n
                )
                xlo, xhi = sl.interval(pred_gap, level)
                point = boots[mode]["fit"].predict(extrap_n) - boots["standard"]["fit"].predict(
                    extrap_n
                )
                gap["extrapolated"] = {
                    "sizes": extrap_names,
                    "n": extrap_n.tolist(),
                    "gap": point.tolist(),
                    "ci": [xlo.tolist(), xhi.tolist()],
                }
            out["gaps"][mode] = gap
    return out


# ----------------------------------------------------------------------------------------------
# The whole study


@dataclasses.dataclass
class StopFlag:
    """Set by a signal handler; checked between runs."""

    signum: int | None = None


def run_study(
    p: StudyPreset,
    modes: Sequence[str],
    out: Path,
    *,
    data: str,
    write: bool,
    stop: StopFlag,
    say: Callable[[str], None],
    bar: Any = None,
    progress: bool | None = None,
    mesh: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """All runs of the study, in protocol order; returns (run rows, finished).

    ``finished`` is False when a signal stopped it: everything done so far is on disk and
    rerunning resumes. ``bar`` (optional) gets ``update(1, trained=...)`` per run.
    """
    windows = heldout_windows(p, data)
    rows: list[dict[str, Any]] = []

    def do(spec: RunSpec) -> dict[str, Any] | None:
        if stop.signum is not None:
            return None
        row = execute(p, spec, out, data, windows, write=write, progress=progress, mesh=mesh)
        if row["status"] == "interrupted":
            stop.signum = stop.signum or 15
            return None
        msg = "done before" if row.get("skipped") else f"{row['wall_s']:.0f}s"
        loss = f"{row['val_loss']:.4f}" if row["status"] == "ok" else row["status"].upper()
        say(f"[{spec.mode}] {spec.role} {spec.name}: held-out loss {loss} ({msg})")
        skipped = bool(row.pop("skipped", False))
        if bar is not None:
            bar.update(1, trained=not skipped)
        return row

    for mode in modes:
        sweep = [r for s in sweep_specs(p, [mode]) if (r := do(s)) is not None]
        if stop.signum is not None:
            return rows + sweep, False
        rows += sweep
        lr, edge = best_lr(sweep)
        say(f"[{mode}] best lr {lr:g}" + (" (at the edge of the grid)" if edge else ""))
        for spec in size_specs(p, mode, lr):
            reused = next((r for r in sweep if same_run(spec, _spec_of(p, r))), None)
            if reused is not None:
                rows.append(
                    {**reused, "role": "size", "size": spec.size.name, "same_run_as_sweep": True}
                )
                continue
            row = do(spec)
            if row is None:
                return rows, False
            rows.append(row)
    return rows, True


def _spec_of(p: StudyPreset, row: dict[str, Any]) -> RunSpec:
    size = p.proxy if row["role"] == "sweep" else next(s for s in p.sizes if s.name == row["size"])
    cfg = model_config(p, size, row["mode"])
    return RunSpec(row["mode"], row["role"], size, row["lr"], row["steps"], row["tokens"], cfg)


def environment() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": load,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def results_document(
    p: StudyPreset,
    modes: Sequence[str],
    runs: list[dict[str, Any]],
    analysis: dict[str, Any],
    *,
    command: str,
    wall_s: float,
    env_start: dict[str, Any],
    data: str,
    trained: int,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results.json document. ``invocations`` keeps every command that contributed (a
    resumed study took several), with its wall time, load and how many runs it trained."""
    invocation = {
        "command": command,
        "wall_s": wall_s,
        "runs_trained": trained,
        "environment_start": env_start,
        "environment_end": environment(),
    }
    invocations = (previous or {}).get("invocations", []) + [invocation]
    sweeps = {}
    for mode in modes:
        rs = sorted(
            (r for r in runs if r["mode"] == mode and r["role"] == "sweep"), key=lambda r: r["lr"]
        )
        if rs:
            lr, edge = best_lr(rs)
            sweeps[mode] = {
                "lrs": [r["lr"] for r in rs],
                "val_loss": [r.get("val_loss") if r["status"] == "ok" else None for r in rs],
                "status": [r["status"] for r in rs],
                "best_lr": lr,
                "best_at_edge": edge,
            }
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": p.name,
        "description": p.description,
        "modes": list(modes),
        "command": command,
        "data": data,
        "protocol": {
            "sizes": [dataclasses.asdict(s) for s in p.sizes],
            "proxy": dataclasses.asdict(p.proxy),
            "base_width": p.base_width,
            "lrs": list(p.lrs),
            "seq_len": p.seq_len,
            "batch_size": p.batch_size,
            "token_rule": {
                "formula": "D(N) = ref_tokens * (N / N_proxy) ** exponent, rounded up to whole steps",
                "ref_tokens": p.ref_tokens or f"{GPT2_TOKENS_PER_PARAM} * N_proxy",
                "exponent": p.budget_exponent,
            },
            "warmup_frac": p.warmup_frac,
            "seed": p.seed,
            "eval_seed": EVAL_SEED,
            "eval_sequences": p.eval_batches * p.batch_size,
            "n_boot": p.n_boot,
            "fit": "L(N) = E + A N^-alpha; Huber(delta=1e-3) on log L; L-BFGS-B from a grid",
        },
        "wall_s": wall_s,
        "environment_start": env_start,
        "environment_end": invocation["environment_end"],
        "invocations": invocations,
        "runs": runs,
        "sweeps": sweeps,
        "analysis": analysis,
    }


def runs_fingerprint(runs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the analysis depends on: used to make a rerun with nothing new a no-op."""
    return sorted(
        (r["mode"], r["role"], r["size"], r["lr"], r["status"], r.get("val_loss")) for r in runs
    )


def iter_rows(doc: dict[str, Any], role: str) -> Iterator[dict[str, Any]]:
    return (r for r in doc["runs"] if r["role"] == role)
