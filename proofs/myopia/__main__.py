"""Prove that myopic gradients are position-local for every sequence length at once, or report
where positions mix.

The per-position losses' gradients with respect to the residual stream (the layer probes) are
analysed by a sound abstract interpretation, with a symbolic T, of the backward program training
runs (jax.vjp, custom VJP rules included) and of the JVP program where one exists.

    python -m proofs.myopia --mode myopic            # exit 0: proven, certificate written
    python -m proofs.myopia --mode standard          # exit 1: causal only (reported)
    python -m proofs.myopia --mutant stop_k_only     # exit 1: first equation where positions mix
    python -m proofs.myopia --mode myopic --attention-impl reference   # the T×T formulation
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import jax

from myojax import cli
from myojax.config import GRADIENT_MODES, ModelConfig
from proofs.myopia import (
    DEFAULT_OUT,
    PROGRAMS,
    Target,
    load_mutants,
    prove,
    summary,
    write_certificate,
)

EXIT_STATUS = (
    "exit status: 0 myopic property proven; 1 not proven (positions mix, the diagonal route is "
    "missing, or the analysis refused: 'cannot analyse ...'); 2 usage error."
)
# The model's shape; the gradient mode is the target's (--mode), the dtypes come from --dtype.
MODEL_FLAGS = ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "remat", "attention_impl")


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m proofs.myopia", __doc__, epilog=EXIT_STATUS)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--mode", choices=GRADIENT_MODES, help="gradient mode of the model")
    target.add_argument("--mutant", help="a deliberately broken variant from tests/mutants.py")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON certificate (default: %(default)s, untracked; "
        "proofs/certificates holds the committed ones)",
    )
    p.add_argument("--no-write", action="store_true", help="print only, write no certificate")
    p.add_argument(
        "--program",
        choices=("all", *PROGRAMS),
        default="all",
        help="the derivative program to analyse: backward (jax.vjp, what training runs), jvp "
        "(where no custom VJP is), or all (default)",
    )
    p.add_argument(
        "--concrete-t",
        type=int,
        default=None,
        metavar="T",
        help="analyse one concrete T instead of a symbolic one (for timing)",
    )
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="param and compute dtype"
    )
    cli.add_config_flags(
        p, ModelConfig, only=MODEL_FLAGS, title="model (ModelConfig fields; --seq-len bounds T)"
    )
    return p


def _config(args: argparse.Namespace) -> ModelConfig:
    shape = cli.config_from_args(ModelConfig(), args)
    return shape.replace(
        gradient_mode=args.mode or "standard", param_dtype=args.dtype, compute_dtype=args.dtype
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.mutant is not None and args.mutant not in load_mutants():
        raise cli.UsageError(f"unknown mutant {args.mutant!r}; known: {sorted(load_mutants())}")
    target = Target(mode=args.mode, mutant=args.mutant)
    config = _config(args)
    with jax.enable_x64(args.dtype == "float64"):
        programs = tuple(PROGRAMS) if args.program == "all" else (args.program,)
        cert = prove(target, config, args.concrete_t, programs)
    print(summary(cert))
    if not args.no_write:
        print(f"certificate: {write_certificate(target, cert, args.out)}")
    return 0 if cert["verdict"]["myopic"] == "proven" else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
