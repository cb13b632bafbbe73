"""Export a trained run as a Hugging Face GPT-2 checkpoint (``myojax.analysis.export``) or a
TransformerLens ``HookedTransformer`` (``myojax.analysis.lens``).

    python -m myojax.export runs/tiny --out runs/tiny-hf [--step N] [--check]
    python -m myojax.export runs/tiny --out runs/tiny-tl --format transformer-lens --check

``hf`` writes ``config.json`` and ``model.safetensors`` for ``transformers.GPT2LMHeadModel``;
``transformer-lens`` writes ``transformer_lens.pt`` (``myojax.analysis.lens.load_lens`` reads
it back as a ``HookedTransformer``). muP's multipliers are folded into the weights; ``--check``
reloads the export and prints the largest logit difference from myojax on held-out corpus text.
Needs the ``[hf]`` extra (``pip install -e ".[hf]"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from myojax import cli
from myojax.analysis.export import (
    CHECK_TOLERANCE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_export,
    export_run,
)
from myojax.analysis.lens import LENS_FILE, check_lens, export_lens_run
from myojax.analysis.runs import open_run

FORMATS = ("hf", "transformer-lens")


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.export", __doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of myojax.train")
    p.add_argument("--out", required=True, help="directory to write the export into")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--format", choices=FORMATS, default="hf", help="what to export as")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in --out")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"reload the export; fail if logits differ by more than {CHECK_TOLERANCE}",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    written = {CONFIG_FILE, WEIGHTS_FILE} if args.format == "hf" else {LENS_FILE}
    if out.exists() and any(out.iterdir()):
        ours = {p.name for p in out.iterdir()} <= written
        if not (ours and args.overwrite):
            parser.error(
                f"--out {out} is not empty"
                + (" (pass --overwrite to replace the export)" if ours else "")
            )
    run = open_run(args.run_dir, args.step)
    export, check, model_class = (
        (export_run, check_export, "GPT2LMHeadModel")
        if args.format == "hf"
        else (export_lens_run, check_lens, "HookedTransformer")
    )
    export(run, out)
    names = " and ".join(str(out / name) for name in sorted(written))
    print(f"wrote {names} ({run.path} step {run.step})")
    if args.check:
        diff, seq_len = check(run, out)
        print(
            f"check: {model_class} logits vs myojax on 4x{seq_len} held-out tokens: "
            f"max |diff| = {diff:.2e} (tolerance {CHECK_TOLERANCE})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
