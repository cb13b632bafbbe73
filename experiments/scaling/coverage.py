"""Coverage of the study's intervals on simulated studies with a known answer.

    python -m experiments.scaling.coverage            # writes results/scaling-coverage.{md,json}
    python -m experiments.scaling.coverage --studies 200 --out /tmp/cov   # a quicker look
    python -m experiments.scaling.coverage --from-json results/scaling-coverage.json   # redraw

Per regime of seed, sequence and noise variation: the fraction of simulated studies whose 95%
intervals hold the true gaps and slope, for the study's method and the plain percentile
bootstrap (``experiments.scaling.interval_coverage``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.scaling import interval_coverage, records
from myojax import cli
from myojax.provenance import command_line

PROG = "python -m experiments.scaling.coverage"


def build_parser():
    p = cli.parser(PROG, __doc__)
    p.add_argument(
        "--studies", type=int, default=1000, help="simulated studies per regime (default 1000)"
    )
    p.add_argument(
        "--n-boot", type=int, default=200, help="bootstrap replicates per level (default 200)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="directory for scaling-coverage.md/.json (default: results)",
    )
    epilogue.add_from_json_flag(p, "a scaling-coverage.json; the page goes to --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    page = interval_coverage.page()
    if args.from_json:
        obj = epilogue.load(args.from_json)
        interval_coverage.from_json(obj)  # one clear error if it is not a coverage study
        epilogue.finish(page, obj, args.out, write_results=False)
        print(f"wrote {args.out / page.local_page} from {args.from_json}")
        return 0
    if args.studies < 10 or args.n_boot < 10:
        raise cli.UsageError("--studies and --n-boot must be >= 10")
    command = command_line(PROG, argv)
    doc = interval_coverage.coverage_study(args.studies, args.n_boot, command)
    epilogue.finish(page, records.to_json(doc), args.out)
    print(interval_coverage.render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
