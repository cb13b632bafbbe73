"""The muP coordinate check's runs and verdicts: a few Adam steps per width and
parametrization, activation scales per step, the widest/narrowest ratios judged against the
band, and the plots."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Int, PyTree

from myojax import files, mup
from myojax.config import GradientModeName, ModelConfig
from myojax.loss import Batch, loss_and_grad
from myojax.model import GPT

PARAMETRIZATIONS = ("sp", "mup")
PER_LAYER = ("attn_logits", "attn_out", "mlp_out", "residual")
STATS = ("value", "update")


@dataclasses.dataclass(frozen=True)
class CoordCheckConfig:
    widths: tuple[int, ...] = dataclasses.field(
        default=(64, 128, 256, 512, 1024), metadata={"help": "widths (d_model) compared"}
    )
    parametrizations: tuple[str, ...] = PARAMETRIZATIONS
    steps: int = 4
    seeds: int = dataclasses.field(default=3, metadata={"help": "seeds averaged per width"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate"})
    base_width: int = 64  # m = 1 at the narrowest width
    head_dim: int = 32
    n_layers: int = 2
    batch_size: int = 8
    seq_len: int = 64
    gradient_mode: GradientModeName = dataclasses.field(
        default="standard", metadata={"help": "attention gradient mode"}
    )
    tolerance: float = 1.25  # allowed widest/narrowest ratio (and its inverse) under muP
    blowup: float = 2.0  # SP's logits must grow at least this much (negative control)

    def model_config(self, parametrization: str, width: int) -> ModelConfig:
        base = ModelConfig(
            seq_len=self.seq_len,
            d_model=self.base_width,
            n_heads=self.base_width // self.head_dim,
            n_layers=self.n_layers,
            gradient_mode=self.gradient_mode,  # type: ignore[arg-type]
            parametrization=parametrization,  # type: ignore[arg-type]
            base_width=self.base_width,
        )
        return mup.with_width(base, width, head_dim=self.head_dim)


QUICK = CoordCheckConfig(  # the test-suite version: 3 widths (8x), 2 seeds, a short batch
    widths=(32, 64, 256), seeds=2, base_width=32, head_dim=16, batch_size=4, seq_len=32
)


def adam_with_lr_multipliers(
    lr: float, labels: PyTree, multipliers: Mapping[str, float] | None
) -> optax.GradientTransformation:
    """Plain Adam (no clipping, no decay: both would blur the width scaling) with per-label
    learning-rate multipliers applied to the updates via ``optax.multi_transform``."""
    if multipliers is None:
        return optax.adam(lr)
    mup.check_multipliers(multipliers)
    scales = {label: optax.scale(float(multipliers.get(label, 1.0))) for label in mup.LABELS}
    # Labels are an eqx.Module (callable), so wrap them: optax would call a callable tree.
    return optax.chain(optax.adam(lr), optax.multi_transform(scales, lambda _: labels))


def fixed_batch(batch_size: int, seq_len: int, seed: int = 0) -> Batch:
    """One batch of windows from the embedded corpus at seeded offsets."""
    from myojax.data.corpus import load

    train = load().train
    starts = np.random.default_rng(seed).integers(0, len(train) - seq_len - 1, batch_size)
    windows = np.stack([train[s : s + seq_len + 1] for s in starts]).astype(np.int32)
    return Batch.from_windows(jnp.asarray(windows))


def _stats(model: GPT, init: GPT, inputs: Int[Array, "B T"]) -> dict[str, Array]:
    """``value:NAME`` = mean |x|, ``update:NAME`` = mean |x - x_0| over the batch (and positions,
    features); per-layer activations keep their layer axis [L]."""
    acts, acts0 = (jax.vmap(m.activations)(inputs) for m in (model, init))
    out = {}
    for name, a in acts.items():
        axes = tuple(i for i in range(a.ndim) if not (i == 1 and name in PER_LAYER))
        out[f"value:{name}"] = jnp.mean(jnp.abs(a), axis=axes)
        out[f"update:{name}"] = jnp.mean(jnp.abs(a - acts0[name]), axis=axes)
    return out


def trace_runs(
    config: ModelConfig, lr: float, steps: int, batch: Batch, seeds: int
) -> dict[str, np.ndarray]:
    """Seed-averaged statistics after each Adam step t = 1..steps: ``STAT:NAME`` -> [steps],
    per-layer activations split into ``STAT:NAME/l``. Seeds train side by side under ``vmap``
    (one compilation per width)."""
    from myojax.mup import param_labels  # the trainer's labels, so both agree on roles

    keys = jax.random.split(jax.random.key(0), seeds)
    init = eqx.filter_vmap(lambda k: GPT(config, key=k))(keys)
    labels = param_labels(GPT(config, key=keys[0]))
    opt = adam_with_lr_multipliers(lr, labels, mup.lr_multipliers(config))

    def one_step(model: GPT, opt_state: optax.OptState, init: GPT) -> tuple:
        _, grads = loss_and_grad(model, batch)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
        return model, opt_state, _stats(model, init, batch.inputs)

    step = eqx.filter_jit(eqx.filter_vmap(one_step))
    opt_state = eqx.filter_vmap(lambda m: opt.init(eqx.filter(m, eqx.is_array)))(init)
    model, history = init, []
    for _ in range(steps):
        model, opt_state, stats = step(model, opt_state, init)
        history.append(stats)
    out: dict[str, np.ndarray] = {}
    for name in history[0]:
        series = np.stack([np.asarray(h[name]) for h in history]).mean(axis=1)  # over seeds
        if series.ndim == 1:
            out[name] = series
        else:
            for layer in range(series.shape[1]):
                out[f"{name}/{layer}"] = series[:, layer]
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise FloatingPointError(f"non-finite activations at width {config.d_model}")
    return out


Result = dict[str, dict[int, dict[str, np.ndarray]]]  # [parametrization][width][stat:name]


def run(
    cc: CoordCheckConfig, out: Path | None = None, log: Callable[[str], None] = print
) -> Result:
    """All runs; with ``out``, finished (parametrization, width) runs are cached and skipped."""
    cache_path = out / "coord_check.json" if out is not None else None
    settings = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cc).items()
    }
    cache: dict[str, dict[str, list[float]]] = {}
    saved = files.read_json(cache_path) if cache_path is not None else None
    if saved is not None:
        if saved.get("settings") == settings:
            cache = saved["runs"]
        else:
            log(f"{cache_path} was made with other settings; starting over")
    batch = fixed_batch(cc.batch_size, cc.seq_len)
    jobs = [(p, w) for p in cc.parametrizations for w in cc.widths]
    t_start = time.perf_counter()
    for i, (p, w) in enumerate(jobs, 1):
        name = f"{p}/{w}"
        if name in cache:
            log(f"[{i}/{len(jobs)}] {name}: cached")
            continue
        t0 = time.perf_counter()
        stats = trace_runs(cc.model_config(p, w), cc.lr, cc.steps, batch, cc.seeds)
        cache[name] = {k: v.tolist() for k, v in stats.items()}
        log(
            f"[{i}/{len(jobs)}] {name} ({cc.seeds} seeds): {time.perf_counter() - t0:.1f}s "
            f"(total {time.perf_counter() - t_start:.0f}s)"
        )
        if cache_path is not None:  # atomic: an interrupted run never leaves a torn cache
            files.write_json(cache_path, {"settings": settings, "runs": cache})
    return {
        p: {w: {k: np.asarray(v) for k, v in cache[f"{p}/{w}"].items()} for w in cc.widths}
        for p in cc.parametrizations
    }


@dataclasses.dataclass(frozen=True)
class Verdict:
    parametrization: str
    stat: str  # "value" or "update"
    activation: str
    ratios: tuple[float, ...]  # widest / narrowest, per step t = 1..steps

    def within(self, tol: float) -> bool:
        return all(1 / tol <= r <= tol for r in self.ratios)

    def logits_ok(self, tol: float) -> bool:
        """Logits may start small (never large) but must be within the band by the last step."""
        return all(r <= tol for r in self.ratios) and 1 / tol <= self.ratios[-1] <= tol


def verdicts(result: Result) -> list[Verdict]:
    out = []
    for p, by_width in result.items():
        lo, hi = min(by_width), max(by_width)
        for key in by_width[lo]:
            stat, name = key.split(":", 1)
            ratios = by_width[hi][key] / by_width[lo][key]
            out.append(Verdict(p, stat, name, tuple(float(r) for r in ratios)))
    return out


def judge(cc: CoordCheckConfig, vs: list[Verdict]) -> tuple[bool, bool, list[str]]:
    """(muP passes, SP's logits blow up, report lines)."""
    steps = " ".join(f"t={t:<5d}" for t in range(1, cc.steps + 1))
    lines = [f"{'param':5s} {'stat':6s} {'activation':16s} {steps}  verdict"]
    mup_ok, sp_blows_up = True, False
    for v in sorted(
        vs, key=lambda v: (v.parametrization != "mup", v.stat != "value", v.activation)
    ):
        if v.parametrization == "mup":
            if v.activation == "logits":
                ok = v.logits_ok(cc.tolerance)
            else:
                ok = v.within(cc.tolerance)
            if v.stat == "value":  # the verdict; ``update`` rows are diagnostics
                mup_ok &= ok
            word = (
                ("stable" if ok else "UNSTABLE")
                if v.stat == "value"
                else ("flat" if ok else "(not flat)")
            )
        else:
            grows = min(v.ratios) >= cc.blowup
            word = "blows up" if grows else ("stable" if v.within(cc.tolerance) else "drifts")
            if (v.stat, v.activation) == ("value", "logits"):
                sp_blows_up = grows
        lines.append(
            f"{v.parametrization:5s} {v.stat:6s} {v.activation:16s} "
            + " ".join(f"{r:7.2f}" for r in v.ratios)
            + f"  {word}"
        )
    return mup_ok, sp_blows_up, lines


def plot(cc: CoordCheckConfig, result: Result, path: Path, stat: str = "value") -> None:
    """One row per parametrization, one panel per step; log-log mean |x| against width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = list(result)
    fig, axes = plt.subplots(
        len(ps),
        cc.steps,
        figsize=(3.0 * cc.steps + 1.5, 2.8 * len(ps)),
        squeeze=False,
        sharey="row",
    )
    widths = np.array(cc.widths)
    names = [k.split(":", 1)[1] for k in result[ps[0]][cc.widths[0]] if k.startswith(stat + ":")]
    cmap = plt.get_cmap("tab20")
    for row, p in enumerate(ps):
        for t in range(1, cc.steps + 1):
            ax = axes[row][t - 1]
            for j, name in enumerate(names):
                ys = [result[p][w][f"{stat}:{name}"][t - 1] for w in cc.widths]
                ax.loglog(widths, ys, marker="o", ms=3, color=cmap(j % 20), label=name)
            ax.set_title(f"{p.upper()}: after step {t}", fontsize=9)
            ax.set_xticks(widths, [str(w) for w in widths], fontsize=7)
            ax.minorticks_off()
            ax.grid(alpha=0.3)
            if row == len(ps) - 1:
                ax.set_xlabel("width (d_model)")
            if t == 1:
                ax.set_ylabel("mean |x_t|" if stat == "value" else "mean |x_t - x_0|")
    axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(
        f"coordinate check ({stat}): Adam lr={cc.lr}, base width {cc.base_width}, head dim "
        f"{cc.head_dim}, {cc.n_layers} layers, {cc.seeds} seeds, mode {cc.gradient_mode}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_outputs(
    cc: CoordCheckConfig,
    result: Result,
    vs: list[Verdict],
    verdict: tuple[bool, bool],
    out: Path,
    wall_s: float,
) -> None:
    """The value and update plots and ``verdict.json`` (the ratios and the two verdicts)."""
    mup_ok, sp_blows_up = verdict
    for stat in STATS:
        plot(cc, result, out / f"coord_check_{stat}.png", stat)
    summary = {
        "mup_stable": bool(mup_ok),
        "sp_logits_blow_up": bool(sp_blows_up),
        "wall_s": wall_s,
        "settings": dataclasses.asdict(cc),
        "ratios": {f"{v.parametrization}/{v.stat}:{v.activation}": v.ratios for v in vs},
    }
    files.write_json(out / "verdict.json", summary)
