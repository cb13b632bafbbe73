"""Compare two runs' held-out losses per position and per token class (``myojax.analysis.compare``).

    python -m myojax.compare runs/tiny runs/tiny-myopic [--split val] [--out DIR]

Evaluates both runs on the same windows of the split, prints the mean difference
loss(B) − loss(A) overall, by position and by class of the predicted token, with 95% bootstrap
intervals over sequences, and writes ``compare.json`` and ``compare.png`` to ``--out``. When the
runs differ only in gradient mode, the difference is the myopia gap broken down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from myojax import cli
from myojax.analysis import compare as cmp
from myojax.files import write_json


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.compare", __doc__)
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


def _print(report: dict[str, Any]) -> None:
    a, b, o = report["run_a"], report["run_b"], report["overall"]
    print(f"A = {a['path']} step {a['step']}; B = {b['path']} step {b['step']}; ", end="")
    print(f"{report['split']} split")
    print(report["verdict"])
    print(
        f"overall: loss A {o['loss_a']:.4f}, B {o['loss_b']:.4f}, B − A {o['diff']:+.4f} "
        f"[{o['ci95'][0]:+.4f}, {o['ci95'][1]:+.4f}] over {report['sequences']} sequences"
    )
    print(f"by {report['class_kind']}:")
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
            f"t={i}: {pos['diff'][i]:+.3f} [{pos['ci95_low'][i]:+.3f}, {pos['ci95_high'][i]:+.3f}]"
            for i in picks
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_sequences < 2 or args.resamples < 100:
        parser.error("--max-sequences must be >= 2 and --resamples >= 100")
    report = cmp.compare_runs(
        args.run_a,
        args.run_b,
        step_a=args.step_a,
        step_b=args.step_b,
        split=args.split,
        max_sequences=args.max_sequences,
        resamples=args.resamples,
        command="python -m myojax.compare " + " ".join(sys.argv[1:] if argv is None else argv),
    )
    name_a, name_b = Path(args.run_a).name, Path(args.run_b).name
    out = Path(args.out or f"runs/compare-{name_a}-vs-{name_b}")
    write_json(out / "compare.json", report)
    a, b = report["run_a"], report["run_b"]
    cmp.plot_differences(
        report,
        str(out / "compare.png"),
        title=f"B = {name_b} (step {b['step']}) − A = {name_a} (step {a['step']}), "
        f"{args.split} split, {report['sequences']} sequences; {report['verdict']}",
    )
    _print(report)
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
