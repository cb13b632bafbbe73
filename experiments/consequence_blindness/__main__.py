"""Consequence-blindness toys: does a predictor shape its output to make later predictions
easier?"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.consequence_blindness
from experiments import epilogue
from experiments.consequence_blindness import fib, linear
from experiments.consequence_blindness.page import TASKS, linear_table, page, report_fib
from myojax import cli
from myojax.provenance import run_record

PROG = "python -m experiments.consequence_blindness"


def _parser():
    doc = experiments.consequence_blindness.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument("--task", choices=TASKS, default="linear", help="which toy (default linear)")
    p.add_argument(
        "--out", type=Path, help="output directory (default: runs/consequence_blindness[_fib])"
    )
    cli.add_config_flags(p, linear.LinearConfig, title="training (linear defaults shown)")
    epilogue.add_flags(p, "results/consequence_blindness_<task>.{md,json} and its PNG")
    return p


def _run(task: str, args, argv: list[str]) -> dict:
    load_before, t0 = os.getloadavg(), time.time()
    if task == "linear":
        results = linear.run(cli.config_from_args(linear.LinearConfig(), args))
    elif args.rhos is not None:
        raise cli.UsageError("--rhos belongs to --task linear")
    else:
        results = fib.run_fib(cli.config_from_args(fib.FibConfig(), args))
    results["meta"] = run_record(PROG, argv, time.time() - t0, load_before)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    task = args.task
    out = args.out or Path("runs/consequence_blindness" + ("" if task == "linear" else "_fib"))
    if args.from_json:
        results = epilogue.load(args.from_json)
        epilogue.finish(page(task), results, out, publish=args.publish, write_results=False)
    else:
        results = _run(task, args, argv)
        epilogue.finish(page(task), results, out, publish=args.publish)
    print(linear_table(results) if task == "linear" else report_fib(results))
    print(f"wall time {results['meta']['wall_s']:.1f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
