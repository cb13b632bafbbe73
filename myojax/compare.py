"""Compare two runs' held-out losses per position and per token class (``myojax.analysis.compare``).

    python -m myojax.compare runs/tiny runs/tiny-myopic [--split val] [--out DIR]

Evaluates both runs on the same windows of the split, prints the mean difference
loss(B) − loss(A) overall, by position and by class of the predicted token, with 95% bootstrap
intervals over sequences, and writes ``compare.json`` and ``compare.png`` to ``--out``. When the
runs differ only in gradient mode, the difference is the myopia gap broken down. Set
MYOJAX_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from myojax.analysis import compare as cmp
from myojax.analysis.runs import cli_main, open_run, tokenizer_name
from myojax.data import load_data
from myojax.provenance import environment

SPLITS = ("train", "val", "test")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m myojax.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    p.add_argument("run_b", metavar="RUN_B", help="run compared against it (B − A)")
    p.add_argument(
        "--split", default="val", help="data split (default val; test where the data has one)"
    )
    p.add_argument("--step-a", type=int, default=None, help="step of RUN_A (default: latest)")
    p.add_argument("--step-b", type=int, default=None, help="step of RUN_B (default: latest)")
    p.add_argument("--max-sequences", type=int, default=512, help="evaluation windows (512)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (2000)")
    p.add_argument("--out", default=None, help="output dir (default runs/compare-A-vs-B)")
    return p


def _splits(data: Any) -> dict[str, tuple]:
    return {s: getattr(data, s) for s in SPLITS if getattr(data, s, None)}


def _classes(data: Any, targets: np.ndarray, vocab: int, tokenizer: str) -> tuple:
    if tokenizer == "byte":
        return cmp.byte_class(targets), cmp.BYTE_CLASSES, "byte class of the predicted token"
    counts = np.zeros(vocab, np.int64)
    for arr in data.train:
        counts += np.bincount(np.asarray(arr), minlength=vocab)[:vocab]
    names = tuple(name for _, name in cmp.FREQUENCY_BUCKETS)
    return cmp.frequency_bucket(targets, counts), names, "training-frequency rank of the token"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_sequences < 2 or args.resamples < 100:
        parser.error("--max-sequences must be >= 2 and --resamples >= 100")

    def work() -> dict[str, Any]:
        start = time.perf_counter()
        a, b = open_run(args.run_a, args.step_a), open_run(args.run_b, args.step_b)
        for key in ("data",):
            if a.config["train"][key] != b.config["train"][key]:
                raise ValueError(f"the runs were trained on different data ({key} differs)")
        if (a.model_config.seq_len, a.model_config.vocab_size) != (
            b.model_config.seq_len,
            b.model_config.vocab_size,
        ):
            raise ValueError("the runs differ in seq_len or vocab_size: losses are not comparable")
        data = load_data(a.config["train"]["data"])
        splits = _splits(data)
        if args.split not in splits:
            parser.error(
                f"--split {args.split!r} is not available for {a.config['train']['data']!r} "
                f"(available: {', '.join(splits)})"
            )
        windows = cmp.eval_windows(splits[args.split], a.model_config.seq_len, args.max_sequences)
        losses_a = cmp.sequence_losses(a.model, windows)
        losses_b = cmp.sequence_losses(b.model, windows)
        tok = tokenizer_name(a.config)
        classes, names, class_kind = _classes(data, windows[:, 1:], a.model_config.vocab_size, tok)
        report = cmp.loss_differences(losses_a, losses_b, classes, names, resamples=args.resamples)
        diffs = cmp.config_differences(a.config, b.config)
        only_mode = [d.split(":")[0] for d in diffs] == ["model.gradient_mode"]
        verdict = (
            f"the runs differ only in gradient mode ({a.model_config.gradient_mode} vs "
            f"{b.model_config.gradient_mode}): B − A is the myopia gap broken down"
            if only_mode
            else "the runs differ in: " + ("; ".join(diffs) or "nothing (same config)")
        )
        out = Path(args.out or f"runs/compare-{a.path.name}-vs-{b.path.name}")
        out.mkdir(parents=True, exist_ok=True)
        report = {
            "command": "python -m myojax.compare "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "run_a": {"path": str(a.path), "step": a.step},
            "run_b": {"path": str(b.path), "step": b.step},
            "split": args.split,
            "class_kind": class_kind,
            "config_differences": diffs,
            "only_gradient_mode_differs": only_mode,
            "verdict": verdict,
            "interval": cmp.__doc__.split("Intervals are ")[1].split("\n\n")[0].replace("\n", " "),
            **report,
            "wall_s": time.perf_counter() - start,
            "environment": environment(),
        }
        (out / "compare.json").write_text(json.dumps(report, indent=1) + "\n")
        o = report["overall"]
        cmp.plot_differences(
            report,
            str(out / "compare.png"),
            title=f"B = {b.path.name} (step {b.step}) − A = {a.path.name} (step {a.step}), "
            f"{args.split} split, {report['sequences']} sequences; {verdict}",
        )
        print(f"A = {a.path} step {a.step}; B = {b.path} step {b.step}; {args.split} split")
        print(verdict)
        print(
            f"overall: loss A {o['loss_a']:.4f}, B {o['loss_b']:.4f}, B − A {o['diff']:+.4f} "
            f"[{o['ci95'][0]:+.4f}, {o['ci95'][1]:+.4f}] over {report['sequences']} sequences"
        )
        print(f"by {class_kind}:")
        for name, c in report["by_class"].items():
            print(
                f"  {name:<12} {c['share']:6.1%}  A {c['loss_a']:.3f}  B {c['loss_b']:.3f}  "
                f"B − A {c['diff']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]"
            )
        pos = report["by_position"]
        t = len(pos["diff"])
        picks = sorted({0, 1, 3, t // 4, t // 2, t - 1})
        print(
            "by position: "
            + ", ".join(
                f"t={i}: {pos['diff'][i]:+.3f} "
                f"[{pos['ci95_low'][i]:+.3f}, {pos['ci95_high'][i]:+.3f}]"
                for i in picks
            )
        )
        print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
        return report

    return cli_main(work)


if __name__ == "__main__":
    main(sys.argv[1:])
