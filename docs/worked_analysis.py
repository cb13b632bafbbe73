"""A worked analysis of a standard and a myopic run, top to bottom (CI runs it on tiny runs).

    python docs/worked_analysis.py --standard runs/std --myopic runs/myo   # your two runs
    python docs/worked_analysis.py --tiny /tmp/worked                      # trains two tiny ones

1. restore both runs (``myojax.analysis.runs.open_run``);
2. compare their held-out losses per position and per token class, with paired bootstrap
   intervals (``myojax.analysis.compare.compare_runs``, the engine of ``python -m
   myojax.compare``);
3. probe the residual stream at position s for the token at s + k (``capture`` for the streams,
   ``classification_probe`` for a ridge probe onto the byte class of the future token, with its
   shuffled-label control): pre-caching shows up as future tokens decodable beyond chance;
4. open the myopic run in TransformerLens and read one attention pattern from its hook
   (``blocks.0.attn.hook_pattern``), checked against myojax's own capture.

The two runs should differ only in gradient mode (``--mode``); the comparison says so if not.
Needs the ``[hf]`` extra for step 4 (torch, transformer-lens).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from myojax import evaluation, train
from myojax.analysis.capture import capture
from myojax.analysis.compare import byte_class, compare_runs
from myojax.analysis.lens import CAPTURE_HOOKS, hooked_transformer
from myojax.analysis.probes import classification_probe
from myojax.analysis.runs import Run, open_run
from myojax.data import pipeline
from myojax.train.presets import RUN_PRESETS
from myojax.train.track import TrackerSpec

TINY_MODEL = dict(seq_len=16, d_model=32, n_layers=2, n_heads=2)
TINY_TRAIN = dict(steps=30, batch_size=8, warmup_steps=3, log_interval=10, eval_interval=30)
PROBE_OFFSETS = (1, 2, 4)  # k: the token at s + k, probed from the stream at s


def train_tiny(out: Path) -> tuple[Path, Path]:
    """Two tiny byte-level runs on the embedded corpus, identical but for the gradient mode."""
    model_cfg, train_cfg = RUN_PRESETS["tiny"]
    dirs = []
    for mode in ("standard", "myopic"):
        run_dir = out / mode
        train.run(
            train_cfg.replace(**TINY_TRAIN, out=str(run_dir)),
            model_cfg.replace(**TINY_MODEL, gradient_mode=mode),
            progress=False,
            tracker=TrackerSpec("none"),
        )
        dirs.append(run_dir)
    return dirs[0], dirs[1]


def compare(standard: Path, myopic: Path) -> None:
    report = compare_runs(standard, myopic, max_sequences=64, resamples=200)
    print(f"\n## 2. Losses, myopic - standard ({report['sequences']} held-out windows)")
    print(report["verdict"])
    o = report["overall"]
    print(f"overall: {o['loss_a']:.4f} -> {o['loss_b']:.4f}, diff {o['diff']:+.4f}")
    by_pos = report["by_position"]
    for t in (0, len(by_pos["diff"]) // 2, len(by_pos["diff"]) - 1):
        ci = f"[{by_pos['ci95_low'][t]:+.4f}, {by_pos['ci95_high'][t]:+.4f}]"
        print(f"position {t:>3}: diff {by_pos['diff'][t]:+.4f} 95% CI {ci}")
    for name, row in report["by_class"].items():
        print(f"class {name:<11} ({row['share']:.0%} of tokens): diff {row['diff']:+.4f}")


def heldout(run: Run, n: int = 64) -> np.ndarray:
    """``n`` held-out windows of seq_len + 1 tokens (a fixed seed)."""
    data = pipeline.load_data(run.config["train"]["data"])
    (windows,) = evaluation.heldout_windows(
        data.val, seq_len=run.model_config.seq_len, batch_size=n, num_batches=1, seed=0
    )
    return np.asarray(windows)


def probe(run: Run, windows: np.ndarray) -> None:
    inputs, targets = windows[:, :-1], windows[:, 1:]
    acts = capture(run.model, jnp.asarray(inputs), jnp.asarray(targets))
    stream = np.asarray(acts.resid_out[:, -1])  # [B, T, D]: the last layer's output
    mode = run.model_config.gradient_mode
    for k in PROBE_OFFSETS:
        t = inputs.shape[1] - k  # positions s with a token at s + k inside the window
        labels = byte_class(inputs[:, k:])  # [B, t]: the byte class of the token at s + k
        result = classification_probe(stream[:, :t], labels, n_classes=6, seed=0)
        print(
            f"{mode:<8} k={k}: accuracy {result.accuracy:.3f}, shuffled control "
            f"{result.control_accuracy:.3f}, majority class {result.chance:.3f}"
        )


def attention(run: Run, windows: np.ndarray) -> None:
    import torch

    tokens = windows[:1, :-1]
    lens = hooked_transformer(run.model)
    with torch.no_grad():
        _, cache = lens.run_with_cache(torch.as_tensor(tokens.astype(np.int64)))
    hook = CAPTURE_HOOKS["attn_probs"].format(l=0)
    pattern = cache[hook][0, 0].numpy()  # [T, S] of head 0
    ours = np.asarray(capture(run.model, jnp.asarray(tokens), jnp.asarray(tokens)).attn_probs)
    last = pattern[-1]
    top = np.argsort(-last)[:3]
    text = bytes(tokens[0].astype(np.uint8)).decode("latin-1").replace("\n", "\\n")
    print(f"text: {text!r}")
    print(f"{hook}, head 0, last query: top keys {top.tolist()} weights {last[top].round(3)}")
    print(f"max |TransformerLens - myojax capture| = {np.abs(pattern - ours[0, 0, 0]).max():.2e}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--standard", type=Path, help="a standard run directory")
    p.add_argument("--myopic", type=Path, help="a myopic run directory")
    p.add_argument("--tiny", type=Path, help="train two tiny runs here and analyse them")
    args = p.parse_args(argv)
    if args.tiny is not None:
        standard, myopic = train_tiny(args.tiny)
    elif args.standard and args.myopic:
        standard, myopic = args.standard, args.myopic
    else:
        p.error("give --standard and --myopic, or --tiny DIR")
    runs = open_run(standard), open_run(myopic)
    print("## 1. Runs")
    for run in runs:
        print(f"{run.path} step {run.step}: mode {run.model_config.gradient_mode}")
    compare(standard, myopic)
    windows = heldout(runs[0])
    print("\n## 3. Probes: byte class of the token at s + k from the last layer's stream at s")
    for run in runs:
        probe(run, windows)
    print("\n## 4. One attention pattern in TransformerLens (the myopic run)")
    attention(runs[1], windows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
