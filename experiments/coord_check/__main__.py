"""muP coordinate check: do activation scales stay put as width grows?"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.coord_check
from experiments.coord_check import check
from myojax import cli

PROG = "python -m experiments.coord_check"


def _parser():
    doc = experiments.coord_check.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument(
        "--quick", action="store_true", help="widths 32, 64, 256, 2 seeds, a short batch (~1 min)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/coord_check"),
        help="output directory: cache, verdict.json, PNGs (default runs/coord_check)",
    )
    only = ("widths", "seeds", "lr", "gradient_mode")
    cli.add_config_flags(p, check.CoordCheckConfig, only=only, title="overrides")
    p.add_argument("--plot", type=Path, help="also write the value plot here (a committed figure)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cc = cli.config_from_args(check.QUICK if args.quick else check.CoordCheckConfig(), args)
    t0 = time.perf_counter()
    result = check.run(cc, args.out)
    vs = check.verdicts(result)
    mup_ok, sp_blows_up, lines = check.judge(cc, vs)
    print(
        f"\nwidest/narrowest ratio (width {max(cc.widths)} / {min(cc.widths)}) after each step; "
        f"muP values must stay in [{1 / cc.tolerance:.2f}, {cc.tolerance}] (logits: <= "
        f"{cc.tolerance}, inside by t={cc.steps}), SP logits must reach >= {cc.blowup}:"
    )
    print("\n".join(lines))
    if args.plot:
        check.plot(cc, result, args.plot, "value")
    wall = round(time.perf_counter() - t0, 1)
    check.write_outputs(cc, result, vs, (mup_ok, sp_blows_up), args.out, wall)
    print(
        f"\nmuP: {'PASS' if mup_ok else 'FAIL'}   SP negative control (logits blow up): "
        f"{'yes' if sp_blows_up else 'NO'}   ({wall}s; plots in {args.out})"
    )
    return 0 if mup_ok and sp_blows_up else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
