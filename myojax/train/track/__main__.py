"""Rebuild a run's tracker log from its metrics.jsonl (for runs trained before trackers, or to
switch tracker).

    python -m myojax.train.track RUN_DIR [RUN_DIR ...] --to tensorboard|wandb

The log lands in RUN_DIR/tensorboard or RUN_DIR/wandb (offline), replacing any earlier one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from myojax import cli
from myojax.train.track import TRACKER_DIRS, TRACKERS, TrackerSpec, rebuild


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.train.track", __doc__)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to convert")
    p.add_argument("--to", choices=TRACKERS[:2], default="tensorboard", help="tracker to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for run_dir in args.run_dirs:
        n, steps = rebuild(Path(run_dir), TrackerSpec(args.to))
        where = Path(run_dir) / TRACKER_DIRS[args.to]
        span = f"steps {steps[0]}..{steps[-1]}" if steps else "no steps"
        print(f"{run_dir}: {n} rows ({span}) written to {where}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
