"""Export a trained run as a Hugging Face GPT-2 checkpoint (``myojax.analysis.export``).

    python -m myojax.export runs/tiny --out runs/tiny-hf [--step N] [--check]

Writes ``config.json`` and ``model.safetensors`` for ``transformers.GPT2LMHeadModel``, with muP's
multipliers folded into the weights; ``--check`` loads the export with transformers and prints
the largest logit difference from myojax on held-out corpus text. Needs the ``[hf]`` extra
(``pip install -e ".[hf]"``). Set MYOJAX_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from myojax.analysis.export import CONFIG_FILE, WEIGHTS_FILE, export_gpt2, transformers_logits
from myojax.analysis.runs import cli_main, open_run
from myojax.data import load_data

CHECK_TOLERANCE = 1e-4


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m myojax.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of myojax.train")
    p.add_argument("--out", required=True, help="directory to write the export into")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in --out")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"reload with transformers; fail if logits differ by more than {CHECK_TOLERANCE}",
    )
    return p


def main(argv: list[str] | None = None) -> Path:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        ours = {p.name for p in out.iterdir()} <= {CONFIG_FILE, WEIGHTS_FILE}
        if not (ours and args.overwrite):
            parser.error(
                f"--out {out} is not empty"
                + (" (pass --overwrite to replace the export)" if ours else "")
            )

    def work() -> Path:
        run = open_run(args.run_dir, args.step)
        meta = {"run_dir": str(run.path.resolve()), "step": run.step}
        export_gpt2(run.model, out, metadata=meta)
        print(f"wrote {out / CONFIG_FILE} and {out / WEIGHTS_FILE} ({run.path} step {run.step})")
        if args.check:
            seq_len = run.model_config.seq_len
            val = load_data(run.config["train"]["data"]).val[0]
            tokens = np.asarray(val[: 4 * seq_len], np.int32).reshape(4, seq_len)
            ours = np.asarray(jax.vmap(run.model)(tokens))
            diff = float(np.abs(transformers_logits(out, tokens) - ours).max())
            print(
                f"check: GPT2LMHeadModel logits vs myojax on 4x{seq_len} held-out tokens: "
                f"max |diff| = {diff:.2e} (tolerance {CHECK_TOLERANCE})"
            )
            if not diff <= CHECK_TOLERANCE:
                raise ValueError(f"export check failed: max |diff| {diff:.2e}")
        return out

    return cli_main(work)


if __name__ == "__main__":
    main(sys.argv[1:])
