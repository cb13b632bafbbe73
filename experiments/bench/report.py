"""Markdown, text and plots for ``python -m experiments.bench``: one run's table, and the width /
sequence-length sweeps (``--sweep width|seq --out results/core.md``).

Each report is a section of the ``--out`` markdown file between ``<!-- begin KEY -->`` and
``<!-- end KEY -->`` markers, replaced in place when the same command runs again, so a results
file can hold several generated sections beside hand-written text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from myojax import files
from myojax.config import ModelConfig
from myojax.provenance import write_section

SWEEP_VALUES: dict[str, tuple[int, ...]] = {
    "width": (64, 128, 256, 512),
    "seq": (64, 128, 256, 512),
}
MODES = ("standard", "myopic", "myopic_kv")


def _provenance(result: dict) -> str:
    env = result["environment"]
    start = env["start"]
    return (
        f"{start['time']} on {start['cpu_count']} CPUs ({result['machine']}, {result['device']}), "
        f"jax {start['jax']}; load average (1/5/15 min) {load_text(start['load_avg_1_5_15'])} at "
        f"start, {load_text(env['end_load_avg_1_5_15'])} at end; wall {env['wall_s']:.0f} s, "
        f"process CPU {env['process_cpu_s']:.0f} s"
    )


def load_text(load) -> str:
    return "n/a" if load is None else " / ".join(f"{x:.1f}" for x in load)


def shape_text(cfg: dict, batch: int) -> str:
    return (
        f"batch {batch} × seq {cfg['seq_len']}, d_model {cfg['d_model']}, {cfg['n_layers']} "
        f"layers, {cfg['n_heads']} heads, vocab {cfg['vocab_size']}, {cfg['compute_dtype']}"
    )


def run_markdown(result: dict, command: str) -> str:
    """One benchmark run: every runner's median and p10 step time, tokens/s, MFU, its ratio to
    each peer and to its implementation's standard, and the myopic ratios."""
    peer, jax_peer = result.get("peer"), result["jax_peer"]
    lines = [
        f"```bash\n{command}\n```",
        "",
        f"{shape_text(result['config'], result['batch_size'])}; {result['params']:,} params"
        + f" (plain-JAX peer: {jax_peer['params']:,}"
        + (f"; torch peer: {peer['params']:,}, {peer['runtime']})" if peer else ")")
        + ("; layer scan kept rolled (`--rolled`)" if result.get("layer_scan") == "rolled" else "")
        + f"; {result['samples_per_mode']} interleaved timed steps each, median and 10th "
        f"percentile; float matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s measured in "
        "the run.",
        f"Measured {_provenance(result)}.",
        "",
        "| runner | step ms | p10 ms | CPU ms | tokens/s | MFU | JAX peer ms / this | "
        "torch ms / this | ratio to standard |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["modes"].values():
        name = row["mode"] + ("" if row["impl"] == "fast" else f" ({row['impl']})")
        vs = f"{row['ratio_vs_torch']:.3f}" if "ratio_vs_torch" in row else "—"
        lines.append(
            f"| myojax {name} | {_speed_cells(row)} | {row['ratio_vs_jax']:.3f} | {vs} | "
            f"{row['ratio_to_standard']:.3f} |"
        )
    lines.append(f"| plain JAX | {_speed_cells(jax_peer)} | 1 | — | — |")
    if peer:
        lines.append(f"| torch eager | {_speed_cells(peer)} | — | 1 | — |")
    ratios = "; ".join(
        f"{impl}: myopic {r['myopic']:.3f}, myopic_kv {r['myopic_kv']:.3f}"
        for impl, r in result["ratios"].items()
    )
    lines += ["", f"Median step time over standard's, per implementation — {ratios}."]
    return "\n".join(lines)


def _speed_cells(row: dict) -> str:
    return (
        f"{row['step_ms']:.1f} | {row['step_ms_p10']:.1f} | {row['cpu_ms']:.0f} | "
        f"{row['tokens_per_s']:,.0f} | {row['mfu']:.1%}"
    )


def run_key(result: dict) -> str:
    cfg = result["config"]
    return (
        f"bench d{cfg['d_model']} L{cfg['n_layers']} T{cfg['seq_len']} B{result['batch_size']} "
        f"{cfg['compute_dtype']}"
        + (" vs torch" if "peer" in result else "")
        + (" rolled" if result.get("layer_scan") == "rolled" else "")
    )


SWEPT_FIELD = {"width": "d_model", "seq": "seq_len"}


def sweep_configs(kind: str, cfg: ModelConfig) -> list[tuple[int, ModelConfig]]:
    return [(v, cfg.replace(**{SWEPT_FIELD[kind]: v})) for v in SWEEP_VALUES[kind]]


def saved_points(kind: str, saved: dict[str, Any]) -> list[tuple[int, dict]]:
    """A saved sweep's (value, result) points, the value read from each point's config."""
    return [(point["config"][SWEPT_FIELD[kind]], point) for point in saved["points"]]


def sweep_markdown(kind: str, points: list[tuple[int, dict]], command: str, image: str) -> str:
    first = points[0][1]
    has_peer = "peer" in first
    label = {"width": "d_model", "seq": "seq len"}[kind]
    head = [
        f"```bash\n{command}\n```",
        "",
        f"Base shape: {shape_text(first['config'], first['batch_size'])}, with {label} varied; "
        f"{first['samples_per_mode']} interleaved timed steps per runner and point, median. "
        "Ratios vs torch are torch step / myojax step (above 1: myojax faster); MFU against "
        "the float matmul peak measured at each point. Each row's load average (1 min) is at "
        "the start and end of that point.",
        "",
    ]
    cols = [label, "params", "standard ms"]
    if has_peer:
        cols += ["torch ms", "standard vs torch", "myopic vs torch", "myopic_kv vs torch"]
    cols += ["myopic / std", "myopic_kv / std", "MFU std"]
    if has_peer:
        cols += ["MFU torch"]
    cols += ["load 1 min", "wall s"]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for value, r in points:
        m = r["modes"]
        cells = [str(value), f"{r['params']:,}", f"{m['standard']['step_ms']:.1f}"]
        if has_peer:
            cells += [f"{r['peer']['step_ms']:.1f}"]
            cells += [f"{m[mode]['ratio_vs_torch']:.3f}" for mode in MODES]
        cells += [f"{r['ratio_myopic']:.3f}", f"{r['ratio_myopic_kv']:.3f}"]
        cells += [f"{m['standard']['mfu']:.1%}"]
        if has_peer:
            cells += [f"{r['peer']['mfu']:.1%}"]
        env = r["environment"]
        cells += [
            f"{env['start']['load_avg_1_5_15'][0]:.1f}→{env['end_load_avg_1_5_15'][0]:.1f}",
            f"{env['wall_s']:.0f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    start, end = points[0][1]["environment"]["start"], points[-1][1]["environment"]
    tail = [
        "",
        f"From {start['time']} on {start['cpu_count']} CPUs, jax {start['jax']}; load average "
        f"(1/5/15 min) {load_text(start['load_avg_1_5_15'])} at the start, "
        f"{load_text(end['end_load_avg_1_5_15'])} at the end.",
        "",
        f"![{kind} sweep]({image})",
    ]
    return "\n".join(head + rows + tail)


def sweep_plot(kind: str, points: list[tuple[int, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [v for v, _ in points]
    has_peer = "peer" in points[0][1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode in MODES:
        if has_peer:
            left.plot(xs, [r["modes"][mode]["ratio_vs_torch"] for _, r in points], "o-", label=mode)
        right.plot(xs, [r["modes"][mode]["mfu"] * 100 for _, r in points], "o-", label=mode)
    if has_peer:
        right.plot(xs, [r["peer"]["mfu"] * 100 for _, r in points], "k--", label="torch eager")
        left.axhline(1.0, color="grey", lw=0.8)
        left.set_ylabel("torch step / myojax step")
        left.legend()
    else:
        left.plot(xs, [r["ratio_myopic"] for _, r in points], "o-", label="myopic / standard")
        left.plot(xs, [r["ratio_myopic_kv"] for _, r in points], "o-", label="myopic_kv / standard")
        left.axhline(1.0, color="grey", lw=0.8)
        left.legend()
    xlabel = {"width": "d_model", "seq": "sequence length"}[kind]
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel(xlabel)
    right.set_ylabel("MFU (%)")
    right.legend()
    fig.suptitle(f"train step vs {xlabel}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep_json(out: str | Path, kind: str) -> Path:
    """Where the sweep's raw results live: beside ``out``, ``<stem>-sweep-<kind>.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}-sweep-{kind}.json")


def write_sweep(
    kind: str, points: list[tuple[int, dict]], out: str | Path, command: str, *, save: bool = True
) -> Path:
    """The sweep's section of ``out``, its PNG and (with ``save``) its raw JSON, beside ``out``."""
    saved = sweep_json(out, kind)
    image = saved.with_suffix(".png")
    sweep_plot(kind, points, image)
    if save:
        files.write_json(saved, {"command": command, "points": [r for _, r in points]})
    write_section(
        Path(out), f"bench sweep {kind}", sweep_markdown(kind, points, command, image.name)
    )
    return image


def costs_text(costs: dict[str, dict[str, float]], formula_flops: float) -> str:
    """``--costs``: XLA's dot count, FLOPs and bytes of one step per mode."""
    lines = [
        f"per train-step loss_and_grad, layer scan unrolled; formula {formula_flops:.3e} FLOPs",
        f"{'mode':<10} {'dot ops':>8} {'FLOPs':>10} {'bytes':>10}",
    ]
    for mode, c in costs.items():
        lines.append(
            f"{mode:<10} {c['dot_ops']:>8} {c['flops']:>10.3e} {c['bytes_accessed']:>10.3e}"
        )
    return "\n".join(lines)


def run_text(result: dict) -> str:
    """One run as the terminal table: per-runner step time (median, p10), tokens/s, MFU, the
    ratios to the peers and the myopic ratios."""
    cfg, peer, env = result["config"], result.get("peer"), result["environment"]
    lines = [
        f"config: batch {result['batch_size']} x seq {cfg['seq_len']}, d_model {cfg['d_model']}, "
        f"{cfg['n_layers']} layers, {cfg['n_heads']} heads, vocab {cfg['vocab_size']}; "
        f"{result['params']:,} params; "
        f"{result['samples_per_mode']} timed steps per runner on {result['device']}",
        f"measured {cfg['compute_dtype']} matmul peak: {result['matmul_peak_gflops']:.1f} GFLOP/s",
        f"{'runner':<20} {'step ms':>9} {'p10 ms':>9} {'tokens/s':>10} {'MFU':>7}  vs jax"
        + ("  vs torch" if peer else ""),
    ]
    runners = [*result["modes"].items(), ("jax", result["jax_peer"])]
    for name, row in [*runners, *([("torch", peer)] if peer else [])]:
        vs = f"{row['ratio_vs_jax']:>7.3f}x" if "ratio_vs_jax" in row else ""
        vs += f"{row['ratio_vs_torch']:>9.3f}x" if "ratio_vs_torch" in row else ""
        speed = (
            f"{row['step_ms']:>9.2f} {row['step_ms_p10']:>9.2f} {row['tokens_per_s']:>10,.0f} "
            f"{row['mfu']:>7.1%}"
        )
        lines.append(f"{name:<20} {speed}{vs}")
    if peer:
        lines.append(
            f"torch peer: {peer['runtime']}, {peer['params']:,} params (peer step / myojax step)"
        )
    for impl, r in result["ratios"].items():
        lines.append(
            f"{impl:<10} myopic/standard = {r['myopic']:.3f}, myopic_kv/standard = "
            f"{r['myopic_kv']:.3f}"
        )
    lines.append(
        f"load avg (1/5/15 min) {load_text(env['start']['load_avg_1_5_15'])} at "
        f"start, {load_text(env['end_load_avg_1_5_15'])} at end; wall {env['wall_s']:.0f} s, "
        f"process CPU {env['process_cpu_s']:.0f} s"
    )
    return "\n".join(lines)
