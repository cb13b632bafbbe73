"""Plots and the results page of the self-training grid, written from its results alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import epilogue
from experiments.self_training.grid import records_by_cell
from myojax.data import corpus

FIGURE = "self_training.png"

# (record key, panel title, the human floor key or None)
PANELS: tuple[tuple[str, str, str | None], ...] = (
    ("val_loss", "held-out human loss (nats/byte)", None),
    ("self_loss", "loss on own samples (nats/byte)", None),
    ("unigram_kl", "unigram KL(human ‖ sample)", "unigram_kl"),
    ("bigram_kl", "bigram KL(human ‖ sample)", "bigram_kl"),
    ("bigram_kl_rev", "bigram KL(sample ‖ human)", "bigram_kl_rev"),
    ("bigram_entropy", "bigram entropy (nats)", "bigram_entropy"),
    ("repetition_8", "8-gram repetition rate within a row", "repetition_8"),
    ("distinct_4", "distinct-4", "distinct_4"),
)
TABLE_KEYS = (
    "val_loss",
    "self_loss",
    "unigram_kl",
    "bigram_kl",
    "unigram_entropy",
    "bigram_entropy",
    "repetition_8",
    "distinct_4",
)


def held_out_halves() -> tuple[str, str]:
    """Which held-out works make up the first and the second half of the held-out bytes (the
    grid takes its loss windows and its floor sample from the first, its drift reference from
    the second), as ``"Title (n bytes), …"``."""
    # Corpus.val is the validation and the test works together, in the corpus's order.
    works = [w for w in corpus.load().provenance["works"] if w["split"] in ("validation", "test")]
    half = sum(w["length"] for w in works) // 2
    first, second, start = [], [], 0
    for w in works:
        end = start + w["length"]
        if start < half:
            first.append(f"{w['title']} ({min(end, half) - start} bytes)")
        if end > half:
            second.append(f"{w['title']} ({end - max(start, half)} bytes)")
        start = end
    return ", ".join(first), ", ".join(second)


def series(results: dict[str, Any], key: str) -> dict[tuple[str, float], np.ndarray]:
    """(mode, mix) -> array [generations, seeds] of ``key`` (seeds in seed order)."""
    cells = records_by_cell(results["records"])
    gens = results["config"]["generations"]
    out = {}
    for mode in results["config"]["modes"]:
        for mix in results["config"]["mixes"]:
            rows = []
            for g in range(gens):
                recs = sorted(cells[(mode, mix, g)], key=lambda r: r["seed"])
                rows.append([r[key] for r in recs])
            out[(mode, mix)] = np.asarray(rows, np.float64)
    return out


def plot(results: dict[str, Any], folder: Path) -> list[str]:
    """The metrics over generations, one panel each; returns the file written in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    colours = dict(zip(cfg["mixes"], ["tab:green", "tab:orange", "tab:red", "tab:purple"]))
    styles = dict(zip(cfg["modes"], ["-", "--", ":"]))
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    gens = np.arange(cfg["generations"])
    for ax, (key, title, floor_key) in zip(axes.flat, PANELS):
        for (mode, mix), v in series(results, key).items():
            ax.plot(
                gens,
                v.mean(1),
                styles[mode],
                color=colours[mix],
                marker="o",
                ms=3,
                label=f"mix {mix:g}, {mode}",
            )
            ax.fill_between(gens, v.min(1), v.max(1), color=colours[mix], alpha=0.12)
        if floor_key is not None:
            ax.axhline(results["floor"][floor_key], color="grey", ls=":", label="human sample")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
        ax.set_xticks(gens)
    axes.flat[0].legend(fontsize=7)
    axes.flat[2].legend(handles=[axes.flat[2].get_lines()[-1]], fontsize=7, loc="upper left")
    fig.suptitle(
        "Training on self-generated text: mean over seeds, band = min–max over "
        f"{cfg['seeds']} seeds; mix = fraction of sampled windows in the pool",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(Path(folder) / FIGURE, dpi=100)
    plt.close(fig)
    return [FIGURE]


def _band(v: np.ndarray, digits: int = 3) -> str:
    return f"{v.mean():.{digits}f} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


def _direction(diff: np.ndarray) -> str:
    """Plain words for paired per-seed differences."""
    if np.all(diff > 0):
        return "higher in every seed"
    if np.all(diff < 0):
        return "lower in every seed"
    return "not consistent across seeds"


def _direction_summary(
    all_series: dict[str, dict], floor: dict[str, float], modes: list[str], hi: float, G: int
) -> str:
    """Which way the samples of the most self-fed models moved, in words, from the numbers."""
    ent = [all_series["bigram_entropy"][(m, hi)] for m in modes]
    dist = [all_series["distinct_4"][(m, hi)] for m in modes]
    rep = max(float(all_series["repetition_8"][(m, hi)].max()) for m in modes)
    noisier = all(np.all(v[G] > v[0]) and np.all(v[G] > floor["bigram_entropy"]) for v in ent)
    noisier &= all(np.all(v[G] > v[0]) for v in dist)
    narrower = all(np.all(v[G] < v[0]) for v in ent) and all(np.all(v[G] < v[0]) for v in dist)
    if noisier:
        return (
            f"In short: with mix {hi:g} the samples drift towards noisier, more varied bytes "
            f"(bigram entropy and distinct-4 rise from generation 0 to {G} in every seed and "
            "mode, further above the human sample), not towards the repetitive, narrowed "
            "text of model collapse: the 8-gram repetition rate stays at or below "
            f"{rep:.3f}."
        )
    if narrower:
        return (
            f"In short: with mix {hi:g} the samples narrow (bigram entropy and distinct-4 fall "
            f"from generation 0 to {G} in every seed and mode); 8-gram repetition rate at most "
            f"{rep:.3f}."
        )
    return (
        f"In short: the direction of the drift with mix {hi:g} (bigram entropy, distinct-4) "
        "is not the same in every seed and mode; see the table and the plots."
    )


def _escape(text: str) -> str:
    """One line of sampled text for a code block: ⏎ for newlines, other control bytes as
    escapes, backquotes made harmless."""
    text = text.replace("\n", "⏎").replace("`", "'")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _header(results: dict[str, Any]) -> list[str]:
    """Title, how the page was written, and the run record."""
    meta = results["meta"]
    load_b = ", ".join(f"{x:.1f}" for x in meta["load_before"])
    load_a = ", ".join(f"{x:.1f}" for x in meta["load_after"])
    n_models = len(results["records"])
    return [
        "# Training on self-generated text over generations",
        "",
        "Written by `python -m experiments.self_training --publish`; every number below comes "
        "from that run"
        + (
            f" (the page itself rewritten from its results file by {meta['page_rewritten']})."
            if "page_rewritten" in meta
            else "."
        ),
        "",
        f"- command: `{meta['command']}`"
        + (f" (interrupted; this page covers {meta['partial']})" if "partial" in meta else ""),
        f"- wall time {meta['wall_s']:.0f} s, process CPU time {meta['cpu_s']:.0f} s, "
        f"{n_models} models; load average (1, 5, 15 min) before {load_b}, after {load_a} on "
        f"{meta['cpus']} CPUs (a shared machine: wall time depends on the load, CPU time "
        "less so); JAX "
        f"{meta['jax']} on {meta['backend']}; {meta['date']}",
        "",
    ]


def _setup(results: dict[str, Any], figure_prefix: str) -> list[str]:
    """What was trained and measured, and the figure."""
    cfg = results["config"]
    G = cfg["generations"] - 1
    epochs = cfg["steps"] * cfg["batch_size"] / cfg["pool_windows"]
    first_half, second_half = held_out_halves()
    return [
        "## Setup",
        "",
        f"Byte-level GPT of {results['params']} parameters, d_model {cfg['d_model']}, "
        f"{cfg['n_layers']} layers, "
        f"{cfg['n_heads']} heads, context {cfg['seq_len']}. Every model is trained from "
        f"scratch for {cfg['steps']} AdamW steps of {cfg['batch_size']} windows "
        f"(lr {cfg['lr']}, warmup and cosine decay) drawn from a pool of "
        f"{cfg['pool_windows']} windows of {cfg['seq_len'] + 1} bytes ({epochs:g} epochs). "
        "Generation 0's pool is random windows of the human training works. Generation k+1's "
        f"pool holds round(mix × {cfg['pool_windows']}) windows sampled from generation k "
        "(same mode, seed and mix) and human windows for the rest, for mix in "
        f"{', '.join(f'{m:g}' for m in cfg['mixes'])}; modes "
        f"{', '.join(cfg['modes'])}; {cfg['seeds']} seeds; generations 0–{G}. A sampled "
        "window is one human byte followed by "
        f"{cfg['seq_len']} bytes sampled at temperature {cfg['temperature']:g} "
        "(`myojax.generate`). A seed fixes the initialisation, data order and sampling keys "
        "of every cell, whatever the mode, so standard and myopic are paired.",
        "",
        "Measured for every model: the loss on "
        f"{cfg['eval_windows']} fixed windows of the first half of the held-out works "
        f"({first_half}); the loss on {cfg['metric_rows']} of its own samples (every target "
        f"a sampled byte); and the drift of those {cfg['metric_rows']} × {cfg['seq_len']} "
        "sampled bytes from as many bytes of the second half of the held-out works "
        f"({second_half}) (`myojax.analysis.text_stats.drift`: n-gram KL with add-½ "
        "smoothing over the n-grams either sample contains, plug-in entropies, the fraction "
        "of 8-grams that repeat earlier in the same row, distinct 4-grams over all 4-grams). "
        "All of these depend on the sample size, so the *human sample* row (and the dotted "
        "line in the plots) gives each statistic for a human sample of the same shape from "
        "the first half: how far one Shakespeare play is from others by the same measure. "
        "It is a scale, not a floor: a model trained on all the training works can sit "
        "closer to the reference than one other play does.",
        "",
        f"![metrics over generations]({figure_prefix}{FIGURE})",
        "",
    ]


def _last_generation(results: dict[str, Any], all_series: dict[str, Any]) -> list[str]:
    """The table of every metric at the last generation, and the human sample's."""
    cfg, floor = results["config"], results["floor"]
    G = cfg["generations"] - 1
    lines = [
        f"## Generation {G} (mean [min, max] over seeds)",
        "",
        "| mode | mix | " + " | ".join(TABLE_KEYS) + " |",
        "|---|---|" + "---|" * len(TABLE_KEYS),
    ]
    first_mix = cfg["mixes"][0]
    for mode in cfg["modes"]:
        gen0 = [_band(all_series[k][(mode, first_mix)][0]) for k in TABLE_KEYS]
        lines.append(f"| {mode} | generation 0 | " + " | ".join(gen0) + " |")
        for mix in cfg["mixes"]:
            cells = [_band(all_series[k][(mode, mix)][G]) for k in TABLE_KEYS]
            lines.append(f"| {mode} | {mix:g} | " + " | ".join(cells) + " |")
    human = [f"{floor[k]:.3f}" if k in floor else "–" for k in TABLE_KEYS]
    lines += ["| human sample | – | " + " | ".join(human) + " |", ""]
    return lines


def _what_happened(results: dict[str, Any], all_series: dict[str, Any]) -> list[str]:
    """The changes over generations per mode and mix, then the comparisons."""
    cfg = results["config"]
    G = cfg["generations"] - 1
    lines = ["## What happened", ""]
    for mode in cfg["modes"]:
        for key, what in (
            ("val_loss", "held-out human loss"),
            ("self_loss", "loss on own samples"),
            ("bigram_kl", "bigram KL(human ‖ sample)"),
            ("bigram_entropy", "bigram entropy of the samples"),
            ("distinct_4", "distinct-4 of the samples"),
        ):
            s = all_series[key]
            parts = []
            for mix in cfg["mixes"]:
                change = s[(mode, mix)][G] - s[(mode, mix)][0]
                parts.append(f"mix {mix:g}: {_band(change)} ({_direction(change)})")
            lines.append(
                f"- **{mode}**, {what}, change from generation 0 to {G}: " + "; ".join(parts) + "."
            )
    return lines + _comparisons(results, all_series)


def _comparisons(results: dict[str, Any], all_series: dict[str, Any]) -> list[str]:
    """Mode against mode and mix against mix at the last generation, the samples against the
    human sample, and the direction summary."""
    cfg, floor = results["config"], results["floor"]
    G = cfg["generations"] - 1
    first_mode = cfg["modes"][0]
    lines: list[str] = []
    if len(cfg["modes"]) > 1:
        other = cfg["modes"][1]
        lines.append("")
        for key, what in (("val_loss", "held-out loss"), ("bigram_kl", "bigram KL")):
            s = all_series[key]
            parts = []
            for mix in cfg["mixes"]:
                diff = s[(other, mix)][G] - s[(first_mode, mix)][G]
                parts.append(f"mix {mix:g}: {_band(diff)} ({_direction(diff)})")
            lines.append(
                f"- {other} minus {first_mode}, {what} at generation {G}, paired by seed: "
                + "; ".join(parts)
                + "."
            )
    mixes_sorted = sorted(cfg["mixes"])
    lo, hi = mixes_sorted[0], mixes_sorted[-1]
    for mode in cfg["modes"]:
        v = all_series["val_loss"]
        diff = v[(mode, hi)][G] - v[(mode, lo)][G]
        lines.append(
            f"- {mode}: held-out loss at generation {G}, mix {hi:g} minus mix {lo:g}, "
            f"paired by seed: {_band(diff)} ({_direction(diff)})."
        )
    for mode in cfg["modes"]:
        for key, what in (("bigram_entropy", "bigram entropy"), ("distinct_4", "distinct-4")):
            v = all_series[key][(mode, hi)]
            if v[G].min() > floor[key] or v[G].max() < floor[key]:
                side = "above" if v[G].min() > floor[key] else "below"
                where = f"{side} the human sample's {floor[key]:.3f} in every seed"
            else:
                where = f"seeds on both sides of the human sample's {floor[key]:.3f}"
            lines.append(
                f"- {mode}, mix {hi:g}: {what} of the samples {_band(v[0])} at generation 0 "
                f"and {_band(v[G])} at generation {G}, {where}."
            )
    lines += ["", _direction_summary(all_series, floor, cfg["modes"], hi, G)]
    lines += [
        "",
        "Mix 0 retrains on fresh human windows every generation: its spread over "
        "generations is the run-to-run noise against which the other curves are read.",
        "",
        "## Samples (seed 0, first sampled rows; ⏎ marks a newline)",
        "",
    ]
    return lines


def _samples(results: dict[str, Any]) -> list[str]:
    """Seed 0's first sampled rows at generation 0 and at the last generation."""
    cfg = results["config"]
    G = cfg["generations"] - 1
    lines: list[str] = []
    by = {(r["mode"], r["seed"], r["mix"], r["generation"]): r for r in results["records"]}
    for mode in cfg["modes"][:1]:
        for mix, gen in [(None, 0)] + [(m, G) for m in cfg["mixes"]]:
            r = by[(mode, 0, mix, gen)]
            label = "generation 0" if gen == 0 else f"generation {G}, mix {mix:g}"
            lines += [f"{mode}, {label}:", "", "```"]
            lines += [_escape(t) for t in r["examples"]]
            lines += ["```", ""]
    return lines


def _caveats(results: dict[str, Any]) -> list[str]:
    """What the run does not show."""
    cfg = results["config"]
    lines: list[str] = []
    lines += [
        "## What this does not show",
        "",
        f"- These are tiny byte-level models ({results['params']} parameters) trained for "
        f"{cfg['steps']} steps: far from converged, so a generation's samples differ from "
        "human text mostly by what the model has not learned yet. The drift measured here is "
        "the compounding of underfitting errors over generations, not the tail-loss of a "
        "well-fitted model that the model-collapse literature studies.",
        "- Bytes, not words: KL, entropy, repetition and distinct-n are over byte n-grams, "
        f"measured on {cfg['metric_rows']} rows of {cfg['seq_len']} bytes; the human-sample "
        "row is their sampling floor.",
        "- Each generation trains from scratch on a pool of fixed size; fine-tuning the "
        "previous model, accumulating data across generations, or filtering samples could "
        "behave differently and were not run.",
        f"- {cfg['seeds']} seed(s): the bands are the min–max over seeds, not confidence "
        "intervals; differences inside them are not evidence.",
        "- Myopic training stops gradients through the past positions of attention; with "
        "teacher forcing its forward is that of the standard model. Any standard/myopic gap "
        "here is a gap in what the two learn from the same data, not a test of whether "
        "myopic models resist their own distribution shift: no model here is rewarded for, "
        "or able to see, the effect of its samples on its successor's data.",
        "",
    ]
    return lines


def report(results: dict[str, Any], figure_prefix: str) -> str:
    """The results page (figure links start with ``figure_prefix``)."""
    all_series = {k: series(results, k) for k in TABLE_KEYS}
    return "\n".join(
        _header(results)
        + _setup(results, figure_prefix)
        + _last_generation(results, all_series)
        + _what_happened(results, all_series)
        + _samples(results)
        + _caveats(results)
    )


PAGE = epilogue.report_page("self_training", report, plot)
