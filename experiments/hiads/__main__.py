"""HI-ADS unit test: does a myopic learner come to cooperate with its own future self?"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.hiads
from experiments import epilogue
from experiments.hiads.analysis import Row, excesses, run
from experiments.hiads.page import PAGE
from experiments.hiads.settings import Config, default_settings
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
    if (cfg.seeds is not None and cfg.seeds < 2) or (cfg.agents is not None and cfg.agents < 2):
        raise cli.UsageError("need --seeds >= 2 and --agents >= 2")
    if cfg.steps is not None and cfg.steps < 20:
        raise cli.UsageError("need --steps >= 20")
    return cfg


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
        try:
            results = run(cfg, settings)
        except ValueError as e:
            raise cli.UsageError(str(e)) from None
        results["meta"] = run_record(PROG, argv, time.time() - t0, load_before)
        epilogue.finish(PAGE, results, args.out, publish=args.publish)
    for e in excesses([Row.from_json(r) for r in results["rows"]]):
        print(
            f"{e.row.setting.name:34s} excess {e.mean:+.3f} [{e.lo:+.3f}, {e.hi:+.3f}] {e.verdict}"
        )
    print(f"wall time {results['meta']['wall_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
