"""muP learning-rate transfer: is the best learning rate the same at every width?"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.mup_transfer
from experiments.mup_transfer import sweep
from myojax import cli, files

PROG = "python -m experiments.mup_transfer"


def _parser():
    doc = experiments.mup_transfer.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: standard mode only, 4 learning rates, 30 steps (~2 min)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/mup_transfer"),
        help="output directory (default runs/mup_transfer)",
    )
    p.add_argument("--plot", type=Path, help="also write the plot here (a committed figure)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = sweep.QUICK if args.quick else sweep.TransferConfig()
    t0 = time.perf_counter()
    runs = sweep.run(cfg, args.out)
    best = sweep.optima(cfg, runs)
    sweep.plot(cfg, runs, args.out / "mup_transfer.png")
    if args.plot:
        sweep.plot(cfg, runs, args.plot)
    wall = round(time.perf_counter() - t0, 1)
    optimum = {"settings": dataclasses.asdict(cfg), "wall_s": wall, "optima": best}
    files.write_json(args.out / "optimum.json", optimum)
    print(f"\nbest learning rate per width (log2), spread in grid steps; {wall}s:")
    print(f"{'param/mode':18s} " + " ".join(f"{w:>6d}" for w in cfg.widths) + "  spread")
    for name, b in best.items():
        print(
            f"{name:18s} "
            + " ".join(f"{b['best_log2_lr'][str(w)]:>6d}" for w in cfg.widths)
            + f"  {b['spread_grid_steps']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
