"""Measured per-step cost of each size of a study preset, and the preset's projected CPU time.

    python -m experiments.scaling.costs                 # cpu preset -> results/scaling-costs-cpu.md
    python -m experiments.scaling.costs --preset cpu-large --steps 10 --out /tmp/costs
    python -m experiments.scaling.costs --preset cpu-isoflop   # the isoFLOP design's sizes
    python -m experiments.scaling.costs --from-json results/scaling-costs-cpu.json   # redraw

For each size: the process CPU time and wall time of compiling the train step, and of --steps
further steps (one batch of the preset's shape, myopic mode); then the whole preset's projected
CPU time (``experiments.scaling.step_costs``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.scaling import isoflop, protocol, records, step_costs
from myojax import cli
from myojax.provenance import command_line

PROG = "python -m experiments.scaling.costs"


def build_parser():
    p = cli.parser(PROG, __doc__)
    p.add_argument(
        "--preset",
        choices=[
            *protocol.STUDY_PRESETS,
            *(n for n, i in isoflop.PRESETS.items() if not i.budgets),
        ],
        default="cpu",
        help="the study preset whose sizes are measured (default: cpu)",
    )
    p.add_argument("--steps", type=int, default=30, help="timed steps per size (default 30)")
    p.add_argument(
        "--per-run-s", type=float, default=1.0, help="fixed CPU seconds per run (default 1.0)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="directory for scaling-costs-PRESET.md and .json (default: results)",
    )
    epilogue.add_from_json_flag(p, "a scaling-costs-PRESET.json; the page goes to --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.from_json:
        obj = epilogue.load(args.from_json)
        page = step_costs.page(step_costs.from_json(obj).preset)
        epilogue.finish(page, obj, args.out, write_results=False)
        print(f"wrote {args.out / page.local_page} from {args.from_json}")
        return 0
    if args.steps < 1:
        raise cli.UsageError("--steps must be >= 1")
    if args.preset in isoflop.PRESETS:  # the sizes the isoFLOP design currently picks
        ip = isoflop.PRESETS[args.preset]
        design = isoflop.design(ip, isoflop.cost_model(isoflop.recorded_costs(ip)))
        p = isoflop.measurement_preset(design)
    else:
        p = protocol.STUDY_PRESETS[args.preset]
    say = lambda row: print(json.dumps(records.to_json(row)), flush=True)
    doc = step_costs.measure_preset(p, args.steps, args.per_run_s, command_line(PROG, argv), say)
    epilogue.finish(step_costs.page(p.name), records.to_json(doc), args.out)
    print(step_costs.render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
