"""Where two runs' losses differ: per position in the sequence and per class of the predicted
token, with bootstrap intervals over sequences (the library of ``python -m myojax.compare``).

Both runs are evaluated on the same held-out windows of ``seq_len + 1`` tokens, cut the one way
held-out windows are cut (``myojax.evaluation.heldout_windows``: uniformly random windows, fixed
by ``WINDOW_SEED`` whatever the runs). The difference reported is always ``loss(B) − loss(A)``
per token, so a positive value means run B predicts worse. Token classes: for byte-level runs
the byte class of the *target* (letter, space, digit, punctuation, newline, other); for BPE runs
the target's frequency rank in the training split (top 100, 100–1k, 1k–10k, rarer). When the
runs differ only in gradient mode this is the myopia gap broken down.

Intervals are 95% percentile bootstrap intervals over sequences (paired: the same resampled
sequences for both runs). They cover the sampling of evaluation text, not seed-to-seed
variation between training runs; compare several seeds for that.
"""

from __future__ import annotations

import string
import time
from pathlib import Path
from typing import Any

import numpy as np

from myojax import evaluation
from myojax.analysis.runs import Run, open_run, tokenizer_name
from myojax.data import pipeline
from myojax.provenance import environment

BYTE_CLASSES = ("letter", "space", "digit", "punctuation", "newline", "other")
FREQUENCY_BUCKETS = ((100, "top-100"), (1000, "100-1k"), (10_000, "1k-10k"), (None, "rarer"))
# Run settings that say where or how a run was laid out, not what was trained.
_LAYOUT_FIELDS = {"out", "mesh", "min_shard_size"}
SPLITS = ("train", "val", "test")
WINDOW_SEED = 0  # the compared windows: the same for every pair of runs
EVAL_BATCH = 64  # windows per evaluated batch (the logits of one batch at a time)


def byte_class(tokens: np.ndarray) -> np.ndarray:
    """Index into ``BYTE_CLASSES`` of every byte."""
    table = np.full(256, BYTE_CLASSES.index("other"), np.int64)
    for chars, name in (
        (string.ascii_letters, "letter"),
        (" ", "space"),
        (string.digits, "digit"),
        (string.punctuation, "punctuation"),
        ("\n", "newline"),
    ):
        table[[ord(c) for c in chars]] = BYTE_CLASSES.index(name)
    return table[np.asarray(tokens)]


def frequency_bucket(tokens: np.ndarray, train_counts: np.ndarray) -> np.ndarray:
    """Index into ``FREQUENCY_BUCKETS`` of every token, by its frequency rank in training."""
    rank = np.empty_like(train_counts)
    rank[np.argsort(-train_counts, kind="stable")] = np.arange(train_counts.size)
    edges = [limit for limit, _ in FREQUENCY_BUCKETS if limit is not None]
    return np.searchsorted(edges, rank[np.asarray(tokens)], side="right")


def _bootstrap_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of n sequences is drawn in each resample [R, n]."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nanpercentile(samples, 2.5, axis=0), np.nanpercentile(samples, 97.5, axis=0)


def loss_differences(
    losses_a: np.ndarray,
    losses_b: np.ndarray,
    classes: np.ndarray,
    class_names: tuple[str, ...],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean ``B − A`` overall, per position and per class, each with a 95% paired bootstrap
    interval over sequences. ``classes`` [N, T] indexes ``class_names``."""
    diff = losses_b - losses_a
    n, k = diff.shape[0], len(class_names)
    w = _bootstrap_weights(n, resamples, seed)
    per_pos = w @ diff / n  # [R, T]
    lo, hi = _interval(per_pos)
    overall = per_pos.mean(axis=1)
    onehot = classes[..., None] == np.arange(k)  # [N, T, K]
    sums = np.einsum("ntk,nt->nk", onehot, diff)
    counts = onehot.sum(axis=1).astype(np.float64)
    total = counts.sum(axis=0)
    present = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample may miss a rare class
        per_class = np.full((resamples, k), np.nan)
        per_class[:, present] = (w @ sums[:, present]) / (w @ counts[:, present])  # [R, K]
    c_lo, c_hi = np.full(k, np.nan), np.full(k, np.nan)
    if present.any():
        c_lo[present], c_hi[present] = _interval(per_class[:, present])
    by_class = {}
    for j, name in enumerate(class_names):
        if total[j] == 0:
            continue
        mask = onehot[..., j]
        by_class[name] = {
            "tokens": int(total[j]),
            "share": float(total[j] / diff.size),
            "loss_a": float(losses_a[mask].mean()),
            "loss_b": float(losses_b[mask].mean()),
            "diff": float(sums[:, j].sum() / total[j]),
            "ci95": [float(c_lo[j]), float(c_hi[j])],
        }
    return {
        "sequences": n,
        "positions": diff.shape[1],
        "bootstrap_resamples": resamples,
        "overall": {
            "loss_a": float(losses_a.mean()),
            "loss_b": float(losses_b.mean()),
            "diff": float(diff.mean()),
            "ci95": [float(v[0]) for v in _interval(overall[:, None])],
        },
        "by_position": {
            "loss_a": losses_a.mean(axis=0).tolist(),
            "loss_b": losses_b.mean(axis=0).tolist(),
            "diff": diff.mean(axis=0).tolist(),
            "ci95_low": lo.tolist(),
            "ci95_high": hi.tolist(),
        },
        "by_class": by_class,
    }


def config_differences(config_a: dict[str, Any], config_b: dict[str, Any]) -> list[str]:
    """``section.field: a -> b`` for every setting the runs differ in (layout excluded)."""
    diffs = []
    for section in ("train", "model"):
        a, b = config_a.get(section, {}), config_b.get(section, {})
        for key in sorted(set(a) | set(b)):
            if key not in _LAYOUT_FIELDS and a.get(key) != b.get(key):
                diffs.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return diffs


def plot_differences(report: dict[str, Any], path: str, *, title: str) -> None:
    """Per-position difference with its band, and per-class differences with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = report["by_position"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=(3, 2))
    t = np.arange(len(pos["diff"]))
    ax1.axhline(0, color="grey", lw=0.8)
    ax1.fill_between(t, pos["ci95_low"], pos["ci95_high"], alpha=0.3, label="95% bootstrap")
    ax1.plot(t, pos["diff"], lw=1.5, label="mean over sequences")
    ax1.set(xlabel="position in the sequence", ylabel="loss(B) − loss(A)  [nats/token]")
    ax1.legend(fontsize=8)
    names = list(report["by_class"])
    cls = [report["by_class"][c] for c in names]
    mean = np.array([c["diff"] for c in cls])
    err = np.abs(np.array([c["ci95"] for c in cls]).T - mean)
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.bar(names, mean, yerr=err, capsize=3, color="tab:orange")
    ax2.set_xticks(range(len(names)), [f"{n}\n{c['share']:.0%}" for n, c in zip(names, cls)])
    ax2.set(ylabel="loss(B) − loss(A)", xlabel="class of the predicted token (share of tokens)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def available_splits(data: pipeline.TokenData) -> dict[str, tuple[np.ndarray, ...]]:
    """The data's non-empty splits by name (``SPLITS``)."""
    return {s: getattr(data, s) for s in SPLITS if getattr(data, s, None)}


def token_classes(
    data: pipeline.TokenData, targets: np.ndarray, vocab: int, tokenizer: str
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Class index of every target, the class names and what the classes are: byte classes
    for byte-level runs, training-frequency buckets otherwise."""
    if tokenizer == "byte":
        return byte_class(targets), BYTE_CLASSES, "byte class of the predicted token"
    counts = np.zeros(vocab, np.int64)
    for arr in data.train:
        counts += np.bincount(np.asarray(arr), minlength=vocab)[:vocab]
    names = tuple(name for _, name in FREQUENCY_BUCKETS)
    return frequency_bucket(targets, counts), names, "training-frequency rank of the token"


def _check_comparable(a: Run, b: Run) -> None:
    if a.config["train"]["data"] != b.config["train"]["data"]:
        raise ValueError("the runs were trained on different data (data differs)")
    shape_a = (a.model_config.seq_len, a.model_config.vocab_size)
    if shape_a != (b.model_config.seq_len, b.model_config.vocab_size):
        raise ValueError("the runs differ in seq_len or vocab_size: losses are not comparable")


def _verdict(a: Run, b: Run, diffs: list[str]) -> tuple[bool, str]:
    only_mode = [d.split(":")[0] for d in diffs] == ["model.gradient_mode"]
    if only_mode:
        return True, (
            f"the runs differ only in gradient mode ({a.model_config.gradient_mode} vs "
            f"{b.model_config.gradient_mode}): B − A is the myopia gap broken down"
        )
    return False, "the runs differ in: " + ("; ".join(diffs) or "nothing (same config)")


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    step_a: int | None = None,
    step_b: int | None = None,
    split: str = "val",
    max_sequences: int = 512,
    resamples: int = 2000,
    command: str = "",
) -> dict[str, Any]:
    """The report of ``python -m myojax.compare``: both runs (at their latest or given step) on
    the same ``max_sequences`` windows of ``split``, ``loss_differences`` by position and token
    class, what the runs' configurations differ in, and provenance (``command``, wall time,
    environment)."""
    start = time.perf_counter()
    a, b = open_run(run_a, step_a), open_run(run_b, step_b)
    _check_comparable(a, b)
    data = pipeline.load_data(a.config["train"]["data"])
    splits = available_splits(data)
    if split not in splits:
        raise ValueError(
            f"--split {split!r} is not available for {a.config['train']['data']!r} "
            f"(available: {', '.join(splits)})"
        )
    (windows,) = evaluation.heldout_windows(
        splits[split],
        seq_len=a.model_config.seq_len,
        batch_size=max_sequences,
        num_batches=1,
        seed=WINDOW_SEED,
    )
    losses_a, losses_b = (
        evaluation.token_losses(run.model, evaluation.in_batches(windows, EVAL_BATCH)).astype(
            np.float64
        )
        for run in (a, b)
    )
    classes, names, class_kind = token_classes(
        data, windows[:, 1:], a.model_config.vocab_size, tokenizer_name(a.config)
    )
    diffs = config_differences(a.config, b.config)
    only_mode, verdict = _verdict(a, b, diffs)
    return {
        "command": command,
        "run_a": {"path": str(a.path), "step": a.step},
        "run_b": {"path": str(b.path), "step": b.step},
        "split": split,
        "class_kind": class_kind,
        "config_differences": diffs,
        "only_gradient_mode_differs": only_mode,
        "verdict": verdict,
        "interval": __doc__.split("Intervals are ")[1].split("\n\n")[0].replace("\n", " "),
        **loss_differences(losses_a, losses_b, classes, names, resamples=resamples),
        "wall_s": time.perf_counter() - start,
        "environment": environment(),
    }
