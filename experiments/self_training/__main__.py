"""Train tiny byte-level GPTs on their own text over generations, and with their own
predictions fed back into their inputs (``python -m experiments.self_training``).

Generations: generation 0 trains on human text (the embedded Shakespeare, bytes); generation
k+1 trains a fresh model on the same pool with a fraction MIX of its windows replaced by
samples of generation k (same mode, seed and mix). Every model of a seed starts from the same
weights and reads its pool in the same order, so generations, mixes and modes are compared
within a seed; the page reports each paired contrast, the mode × generation interaction, their
95% intervals and the smallest effect the seeds can detect.

Fed (runs by default; --fed-fraction 0 skips it): models trained on generation 0's pool with
a second pass in which a fraction of the input positions receive the model's own predicted
distribution; ``blind`` stops the gradient through those predictions, ``aware`` lets it flow,
so only ``aware`` is trained for the consequences of its outputs on its own later inputs.

Writes results.json, self_training.png and report.md to --out (with every model's pool,
samples and record under --out/<mode>/seed<s>/...); --publish also writes
results/self_training.{md,json} and docs/figures/self_training.png (run from the repository
root). --pilot FILE takes a smaller earlier run's results.json and records the power
calculation (the seeds each primary contrast needs for --target-effect) on the page. --quick
runs a small grid to check the pipeline. --from-json rewrites the plot and the page from a
results.json (or an interrupted run's results.partial.json), training nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.self_training import run
from experiments.self_training.config import GridConfig
from experiments.self_training.report import PAGE
from myojax import cli


def _parser():
    p = cli.parser(run.PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", type=Path, default=Path("runs/self_training"), help="output directory")
    cli.add_config_flags(p, GridConfig, title="the study")
    p.add_argument("--quick", action="store_true", help=f"a small grid: {run.quick_fields()}")
    p.add_argument(
        "--pilot",
        type=Path,
        default=None,
        metavar="FILE",
        help="a pilot run's results.json: record the power calculation from its seed variance",
    )
    epilogue.add_flags(p, "results/self_training.{md,json} and docs/figures/self_training.png")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.from_json:
        results = epilogue.load(args.from_json)
        if "meta" not in results:
            raise cli.UsageError(f"--from-json: {args.from_json} has no run record (meta)")
        results = run.rewritten(results, argv)
        epilogue.finish(PAGE, results, args.out, publish=args.publish, write_results=False)
    else:
        cfg = cli.config_from_args(run.QUICK if args.quick else GridConfig(), args)
        pilot = None if args.pilot is None else epilogue.load(args.pilot)
        results = run.run(cfg, args.out, argv, pilot)
        epilogue.finish(PAGE, results, args.out, publish=args.publish)
    m = results["meta"]
    print(f"wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
