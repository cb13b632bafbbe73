"""The memory planner checked against XLA: per-device bytes of the real sharded train step."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import experiments.memory_check
from experiments import epilogue
from experiments.memory_check import check
from experiments.memory_plan_page import page
from myojax import cli
from myojax.provenance import command_line

PROG = "python -m experiments.memory_check"
OUT = Path("results/memory_plan.md")


def _parser() -> argparse.ArgumentParser:
    doc = experiments.memory_check.__doc__
    p = cli.parser(PROG, doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1])
    p.add_argument("--sizes", default=",".join(check.SIZES), help="comma-separated gpt2 sizes")
    p.add_argument("--meshes", default=";".join(check.MESHES), help="';'-separated meshes")
    p.add_argument("--out", type=Path, default=OUT, help=f"markdown table (default {OUT})")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per compile")
    p.add_argument(
        "--implementations",
        default="fast",
        help="comma-separated ModelConfig.attention_impl values, each case once per value "
        "(fast,reference: the two side by side)",
    )
    epilogue.add_from_json_flag(p, "the JSON a run wrote beside its page")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _cases(args) -> list[check.Case]:
    from experiments.scaling.protocol import STUDY_PRESETS
    from myojax.config import ATTENTION_IMPLS

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    meshes = [m.strip() for m in args.meshes.split(";") if m.strip()]
    impls = tuple(i.strip() for i in args.implementations.split(",") if i.strip())
    if [s for s in sizes if s not in check.SIZES] or not sizes or not meshes:
        raise cli.UsageError(f"--sizes must be from {check.SIZES}, got {args.sizes!r}")
    if not impls or [i for i in impls if i not in ATTENTION_IMPLS]:
        raise cli.UsageError(f"--implementations must be from {ATTENTION_IMPLS}")
    batch_size = STUDY_PRESETS["gpt2"].batch_size
    cases = check.default_cases(batch_size, impls)
    return [c for c in cases if c.size in sizes and c.mesh in meshes]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.worker is not None:  # the compile subprocess of measure_in_subprocess
        print(json.dumps(check.worker(args.worker)))
        return 0
    if args.from_json:
        doc = epilogue.load(args.from_json)
        epilogue.finish(page(args.out), doc, args.out.parent, write_results=False)
        print(f"wrote {args.out} from {args.from_json}")
        return 0
    cases = _cases(args)
    t0, load_start = time.perf_counter(), os.getloadavg()
    rows = check.run_cases(cases, args.timeout)
    meta = check.run_meta(rows, command_line(PROG, argv), t0, load_start)
    epilogue.finish(page(args.out), {"meta": meta, "rows": rows}, args.out.parent)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
