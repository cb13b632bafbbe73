"""The seed's claims about value non-myopia, measured on a finished scaling study's models.

    python -m experiments.lm_myopia --study runs/scaling-cpu --publish
    python -m experiments.lm_myopia --from-json results/lm_myopia.json --publish   # redraw

Reads the study's size runs (standard and myopic, every size and seed) and writes, to --out
(default STUDY/lm_myopia) and with --publish into the repository: lm_myopia.json, the page
lm_myopia.md (results/; another preset: lm_myopia-PRESET.md), its figures (docs/figures/) and,
for the cpu study, the README paragraph. Three measurements: the sacrifice map (myopic −
standard loss per position and class of the predicted token, the share of tokens myopic
predicts better, trends over sizes), future-token probes (the token at s + k, k = 1..8, from
the stream at s, every layer, shuffled-label controls) and the mode switch at one size (its
runs are trained once and cached in STUDY/lm_myopia/). Takes minutes on the cpu study.
"""

from __future__ import annotations

import os

# Many small ridge solves: multithreaded BLAS gains nothing at these sizes and, on a shared
# machine, its spinning threads cost ten times the CPU. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.lm_myopia import analysis, page, records
from experiments.lm_myopia.study import StudyError
from myojax import cli
from myojax.provenance import command_line


def _parser():
    p = cli.parser(page.PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--study", type=Path, help="a finished scaling study's --out directory")
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default STUDY/lm_myopia)"
    )
    p.add_argument("--n-boot", type=int, default=400, help="bootstrap resamples per level")
    p.add_argument("--probe-sequences", type=int, default=128, help="test windows the probes read")
    p.add_argument(
        "--switch-size",
        default=None,
        help="the size whose runs are switched halfway (default: the middle of the ladder; "
        "'none': no switch)",
    )
    epilogue.add_flags(p, "results/lm_myopia.json, its page, figures and README paragraph")
    return p


def _options(args) -> analysis.Options:
    if args.n_boot < 10:
        raise cli.UsageError(f"--n-boot must be >= 10, got {args.n_boot}")
    if args.probe_sequences < 8:
        raise cli.UsageError(f"--probe-sequences must be >= 8, got {args.probe_sequences}")
    switch = "" if (args.switch_size or "").lower() == "none" else args.switch_size
    return analysis.Options(args.n_boot, args.probe_sequences, switch)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.from_json:
        obj = epilogue.load(args.from_json)
        try:
            preset = records.from_json(obj).preset
        except ValueError as e:
            raise cli.UsageError(f"--from-json: {e}") from None
        out = args.out or args.from_json.parent
        epilogue.finish(page.page_for(preset), obj, out, publish=args.publish, write_results=False)
        return 0
    if args.study is None:
        raise cli.UsageError("give --study DIR (a finished study) or --from-json FILE")
    options = _options(args)
    try:
        results = analysis.analyse(
            args.study, command=command_line(page.PROG, argv), options=options
        )
    except StudyError as e:
        raise cli.UsageError(str(e)) from None
    obj = records.to_json(results)
    out = args.out or args.study / "lm_myopia"
    written = epilogue.finish(page.page_for(results.preset), obj, out, publish=args.publish)
    print(f"wrote {written[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
