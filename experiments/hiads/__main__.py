"""HI-ADS unit test: does a myopic learner come to cooperate with its own future self?"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.hiads
from experiments import epilogue
from experiments.hiads.analysis import run
from experiments.hiads.page import PAGE
from experiments.hiads.simulate import Config, default_settings
from myojax import cli
from myojax.provenance import run_record

PROG = "python -m experiments.hiads"


def _parser():
    doc = experiments.hiads.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument("--out", type=Path, default=Path("runs/hiads"), help="output directory")
    cli.add_config_flags(p, Config, only=("seeds", "agents", "steps"), title="run")
    names = [s.name for s in default_settings()]
    p.add_argument(
        "--only",
        type=cli.comma_list(names, "setting"),
        default=None,
        help="comma-separated setting names to run (default: all)",
    )
    epilogue.add_flags(p, "results/hiads.{md,json} and docs/figures/hiads.png")
    return p


def _config(args) -> Config:
    cfg = cli.config_from_args(Config(), args)
    if cfg.seeds < 2 or cfg.agents < 5 or cfg.steps < 100:
        raise cli.UsageError("need --seeds >= 2, --agents >= 5 and --steps >= 100")
    return dataclasses.replace(cfg, bins=min(200, cfg.steps // 10))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.from_json:
        results = epilogue.load(args.from_json)
        epilogue.finish(PAGE, results, args.out, publish=args.publish, write_results=False)
    else:
        cfg = _config(args)
        settings = tuple(s for s in default_settings() if args.only is None or s.name in args.only)
        load_before, t0 = os.getloadavg(), time.time()
        results = run(cfg, settings)
        results["meta"] = run_record(PROG, argv, time.time() - t0, load_before)
        epilogue.finish(PAGE, results, args.out, publish=args.publish)
    for row in results["rows"]:
        s = row["setting"]
        print(f"{s['name']:30s} {s['role']:8s} final {row['final_mean']:.3f} {row['verdict']}")
    print(f"wall time {results['meta']['wall_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
