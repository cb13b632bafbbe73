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

from experiments.precaching.task import LaggedSineTask, lagged_sines
from experiments.precaching.training import Schedule, train
from myojax.analysis.probes import regression_probe
from myojax.bootstrap import mean_t_interval
from myojax.config import ModelConfig
from myojax.heads import LinearInput, LinearReadout, Transformer
from myojax.loss import Batch, batch_losses, huber
from myojax.provenance import load_summary

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
    modes: tuple[str, ...] = ("standard", "myopic", "myopic_kv")
    seeds: int = 3
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    steps: int = 600
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


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (p, mode): loss mean ± 95% interval over seeds, trivial losses, mean probe R²."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["p"], r["mode"]), []).append(r)
    out = {}
    for (p, mode), rows in groups.items():
        out[f"p={p} {mode}"] = {
            "p": p,
            "mode": mode,
            "seeds": len(rows),
            "loss": mean_t_interval([r["loss"] for r in rows]),
            "loss_per_seed": [r["loss"] for r in rows],
            "trivial_zero": float(np.mean([r["trivial"]["zero"] for r in rows])),
            "trivial_x_n": float(np.mean([r["trivial"]["x_n"] for r in rows])),
            "r2": np.mean([r["probes"]["r2"] for r in rows], axis=0).tolist(),
            "control_r2": np.mean([r["probes"]["control_r2"] for r in rows], axis=0).tolist(),
        }
    return out


def plot(summary: dict[str, Any], settings: SineSettings, path: Path) -> None:
    """One heatmap (site × lag, mean R² over seeds) per mode and p."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(e["mode"] for e in summary.values()))
    ps = list(settings.ps)
    fig, axes = plt.subplots(
        len(modes), len(ps), figsize=(3.2 * len(ps), 1.5 + 1.8 * len(modes)), squeeze=False
    )
    sites = ["embed"] + [f"L{i + 1}" for i in range(settings.n_layers)]
    image = None
    for row, mode in enumerate(modes):
        for col, p in enumerate(ps):
            ax = axes[row][col]
            entry = summary.get(f"p={p} {mode}")
            ax.set_xticks([]), ax.set_yticks([])
            if entry is None:
                ax.axis("off")
                continue
            image = ax.imshow(
                np.asarray(entry["r2"]), vmin=0, vmax=1, cmap="viridis", aspect="auto"
            )
            ax.set_yticks(range(len(sites)), sites)
            ax.set_xticks(range(0, settings.probe_lags + 1, 2))
            ax.set_title(f"{mode}, p={p} ({entry['seeds']} seeds)", fontsize=9)
            if row == len(modes) - 1:
                ax.set_xlabel("lag i of sin(k·x_{n-i})")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="held-out R²")
    fig.subplots_adjust(hspace=0.7, wspace=0.35)
    fig.suptitle("Probe R² from the residual stream at n (mean over seeds)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    .png and .md to ``out``."""
    import json
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
        (out / "precaching_sine.json").write_text(json.dumps(results, indent=2))
        render(results, out)
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


def render(results: dict[str, Any], out: Path) -> None:
    """The plots and the markdown section from a results dict (also from a saved JSON, with
    the summary recomputed from its runs)."""
    runs = sorted(results["runs"], key=lambda r: (r["p"], r["mode"], r["seed"]))
    results = {**results, "summary": summarize(runs)}
    settings = SineSettings(
        **{
            **results["settings"],
            "ps": tuple(results["settings"]["ps"]),
            "modes": tuple(results["settings"]["modes"]),
        }
    )
    plot(results["summary"], settings, out / "precaching_sine.png")
    if any("->" in r["mode"] for r in results["runs"]):
        plot_switches(results, out / "precaching_sine_switch.png")
    (out / "precaching_sine.md").write_text(report(results))


def plot_switches(results: dict[str, Any], path: Path) -> None:
    """Training loss (50-step means, over seeds) of the switched runs and their references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["settings"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for mode in ("standard", "myopic", "standard->myopic", "myopic->standard"):
        rows = [r for r in results["runs"] if r["p"] == s["switch_p"] and r["mode"] == mode]
        if rows:
            curve = np.mean([r["train_loss_curve"] for r in rows], axis=0)
            ax.plot(np.arange(len(curve)) * 50, curve, label=mode, ls="--" if "->" in mode else "-")
    ax.axvline(s["steps"] // 2, color="gray", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step (switch at the vertical line)")
    ax.set_ylabel("training Huber loss")
    ax.set_title(f"Breadcrumbs vs pre-caching, p = {s['switch_p']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def switch_summary(results: dict[str, Any]) -> list[str]:
    """The breadcrumbs section: losses around the switch and the share of the advantage kept."""
    s, summary = results["settings"], results["summary"]
    p = s["switch_p"]
    get = lambda mode: summary.get(f"p={p} {mode}")
    std, myo, s2m, m2s = (
        get(m) for m in ("standard", "myopic", "standard->myopic", "myopic->standard")
    )
    if None in (std, myo, s2m, m2s):
        return []
    half = s["steps"] // 2
    lines = [
        "",
        f"### Breadcrumbs versus pre-caching (p = {p}, mode switched at step {half} of "
        f"{s['steps']})",
        "",
        "| run | held-out Huber | training loss just before the switch | at the end |",
        "|---|---|---|---|",
    ]
    for mode in ("standard", "myopic", "standard->myopic", "myopic->standard"):
        rows = [r for r in results["runs"] if r["p"] == p and r["mode"] == mode]
        before = np.mean([r["train_loss_curve"][half // 50 - 1] for r in rows])
        end = np.mean([r["train_loss_curve"][-1] for r in rows])
        e = get(mode)
        lines.append(
            f"| {mode} | {e['loss'][0]:.4f} ± {e['loss'][1]:.4f} | {before:.4f} | {end:.4f} |"
        )
    gap = myo["loss"][0] - std["loss"][0]
    if gap > 0:
        kept = (myo["loss"][0] - s2m["loss"][0]) / gap
        gained = (myo["loss"][0] - m2s["loss"][0]) / gap
        lines += [
            "",
            f"Standard's advantage over myopic at p = {p}: {gap:.4f} (held-out Huber). A model "
            f"trained standard and then myopic keeps {100 * kept:.0f}% of it; one trained myopic "
            f"and then standard recovers {100 * gained:.0f}% (means over seeds; the share that "
            "is lost after the switch is what needs the gradient through attention).",
        ]
    else:
        lines += [
            "",
            f"At p = {p} standard is not better than myopic ({gap:+.4f}): no advantage"
            " to attribute.",
        ]
    return [*lines, "", "![switch curves](precaching_sine_switch.png)"]


def report(results: dict[str, Any]) -> str:
    s, summary, env = results["settings"], results["summary"], results["environment"]
    first = min(s["probe_lags"], s["seq_len"] // 2)
    lines = [
        "## The lagged-sine task",
        "",
        f"Command: `{results['command']}`; wall {results['wall_s']:.0f} s, process CPU "
        f"{results['cpu_s']:.0f} s; {load_summary(env, results.get('environment_start'))}. "
        f"Runs finished: "
        f"{len(results['runs'])} of {results.get('runs_planned', len(results['runs']))}.",
        "",
        f"Task: T = {s['seq_len']}, y_n = z_n·Σ_(i=1..{s['n_lags']}) sin({s['freq']:g}·x_(n−i)) "
        f"+ (1 − z_n)·x_n. Model: {s['n_layers']} layers, d_model {s['d_model']}, "
        f"{s['n_heads']} heads, ReLU, linear input and readout, Huber loss; {s['steps']} steps × "
        f"batch {s['batch_size']}, lr {s['lr']}, {s['seeds']} seeds. Held-out Huber loss on "
        f"{s['eval_sequences']} fresh sequences, mean ± 95% t-interval over seeds; the trivial "
        "predictors (0 and x_n) on the same sequences.",
        "",
        "| p | mode | held-out Huber | per seed | predict 0 | predict x_n "
        "| max R² of sin(k·x_(n−i)), i = 1..lags, last layer |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary.values():
        last = np.asarray(e["r2"])[-1, 1 : s["n_lags"] + 1]
        lines.append(
            f"| {e['p']} | {e['mode']} | {e['loss'][0]:.4f} ± {e['loss'][1]:.4f} "
            f"| {', '.join(f'{v:.4f}' for v in e['loss_per_seed'])} "
            f"| {e['trivial_zero']:.4f} | {e['trivial_x_n']:.4f} | {last.max():.2f} |"
        )
    lines += [
        "",
        f"Probe R² (held-out sequences, positions n ≥ {first}) from the residual stream at n to "
        f"sin({s['freq']:g}·x_(n−i)), by site (rows: embedding, after each layer) and lag i = "
        f"0..{s['probe_lags']}, mean over seeds; the shuffled-label control's largest mean R² "
        "is given per entry.",
        "",
    ]
    for key, e in summary.items():
        r2 = np.asarray(e["r2"])
        control = float(np.max(e["control_r2"]))
        lines.append(f"- {key}: control max R² {control:.3f}")
        for site, row in zip(["embed"] + [f"L{i + 1}" for i in range(s["n_layers"])], r2):
            lines.append(f"  - {site}: " + " ".join(f"{v:.2f}" for v in row))
    lines += ["", "![lagged-sine probes](precaching_sine.png)", *switch_summary(results), ""]
    return "\n".join(lines)
