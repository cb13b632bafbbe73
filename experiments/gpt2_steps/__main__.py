"""Real optimizer steps at GPT-2 small's shape on this CPU, on a simulated 2-device mesh."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.gpt2_steps
from experiments import epilogue
from experiments.gpt2_steps import run
from myojax import cli
from myojax.provenance import command_line

PROG = "python -m experiments.gpt2_steps"
REPORT = Path("results/gpt2_steps.md")


def _parser() -> argparse.ArgumentParser:
    doc = experiments.gpt2_steps.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument("--steps", type=int, default=5, help="optimizer steps per mode (>= 5)")
    p.add_argument("--out", type=Path, default=Path("runs/gpt2-steps"), help="run dirs")
    p.add_argument("--report", type=Path, default=REPORT, help=f"the page (default {REPORT})")
    epilogue.add_from_json_flag(p, "the JSON a run wrote beside its page")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    page = run.page(args.report)
    if args.from_json:
        epilogue.finish(
            page, epilogue.load(args.from_json), args.report.parent, write_results=False
        )
        print(f"wrote {args.report} from {args.from_json}")
        return 0
    if args.steps < 5:
        raise cli.UsageError(f"--steps must be >= 5, got {args.steps}")
    if args.worker:  # the training subprocess of run.train_in_subprocess
        print(json.dumps(run.worker(args.out, args.steps)))
        return 0
    t0, load_start = time.perf_counter(), os.getloadavg()
    result = run.train_in_subprocess(args.out, args.steps)
    meta = run.run_meta(command_line(PROG, argv), t0, load_start)
    doc = {"meta": meta, **result, "verdicts": run.verdicts(result)}
    epilogue.finish(page, doc, args.report.parent)
    print(f"wrote {args.report} ({meta['wall_s']:.0f} s)")
    return 0 if all(doc["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
