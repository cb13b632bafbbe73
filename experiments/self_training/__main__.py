"""Train on self-generated text over generations (``python -m experiments.self_training``).

Generation 0 trains on human text (the embedded Shakespeare, bytes). Generation k+1 trains a
fresh model on a pool of windows of which a fraction MIX was sampled from generation k (same
mode, seed and mix) and the rest is human text. For every model: loss on held-out human text
(held-out works), loss on its own samples, and the drift of its samples from held-out human
text (unigram/bigram KL, entropy, repetition and distinct-n rates).

Writes results.json, self_training.png and report.md to --out (plus every model's pool,
samples and record under --out/<mode>/seed<s>/...); --publish also writes
results/self_training.md, results/self_training.json and docs/figures/self_training.png (run
from the repository root). --quick runs a small grid (2 seeds, 4 generations, shorter
training) to check the pipeline; its numbers are not the published ones. --from-json rewrites
the plot and the page (with --publish, the results page) from a results.json, or from the
results.partial.json an interrupted run left, training nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.self_training import run
from experiments.self_training.grid import GridConfig
from experiments.self_training.report import PAGE
from myojax import cli


def _parser():
    p = cli.parser(run.PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", type=Path, default=Path("runs/self_training"), help="output directory")
    cli.add_config_flags(p, GridConfig, title="the grid")
    p.add_argument("--quick", action="store_true", help=f"a small grid: {run.quick_fields()}")
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
        results = run.run(cfg, args.out, argv)
        epilogue.finish(PAGE, results, args.out, publish=args.publish)
    m = results["meta"]
    print(f"wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
