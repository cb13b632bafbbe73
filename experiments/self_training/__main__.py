"""Self-training with a paired, powered design and an own-consequence condition
(``python -m experiments.self_training``).

A pilot on separate seeds measures the seed-to-seed sd of the held-out loss and sizes the
number of seeds by a power calculation. Then, per seed and gradient mode (standard, myopic),
from one initialisation and batch order: generation 0 on human text, generations 1.. on pools
mixing in the previous generation's samples, and the own-consequence condition (the model's own
samples, drawn during its training, in its batches) with its control (a frozen model's samples).

Writes results.json, self_training.png and report.md to --out; --publish also writes
results/self_training.md, results/self_training.json and docs/figures/self_training.png (run
from the repository root). --quick runs a tiny study to check the pipeline; its numbers are not
the published ones. --from-json rewrites the figure and page from a results.json, training
nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.self_training import run
from experiments.self_training.config import GridConfig
from experiments.self_training.page import PAGE
from myojax import cli


def _parser():
    p = cli.parser(run.PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", type=Path, default=Path("runs/self_training"), help="output directory")
    cli.add_config_flags(p, GridConfig, title="the study")
    p.add_argument("--quick", action="store_true", help=f"a tiny study: {run.quick_fields()}")
    epilogue.add_flags(p, "results/self_training.{md,json} and docs/figures/self_training.png")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.from_json:
        results = epilogue.load(args.from_json)
        if "meta" not in results or "losses" not in results:
            raise cli.UsageError(f"--from-json: {args.from_json} is not a self-training record")
        epilogue.finish(PAGE, results, args.out, publish=args.publish, write_results=False)
    else:
        cfg = cli.config_from_args(run.QUICK if args.quick else GridConfig(), args)
        results = run.run(cfg, argv)
        epilogue.finish(PAGE, results, args.out, publish=args.publish)
    m = results["meta"]
    print(f"wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
