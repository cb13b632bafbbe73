"""The Jacobian verifier's command, on fresh random models or a run's checkpoint.

Computes dL_t/d(delta^l_s) exactly in float64 and checks the gradient-mode guarantee
(``myojax.verify``). Exit 0 iff every expectation holds.

    python -m myojax.verify --gradient-mode myopic
    python -m myojax.verify --gradient-mode standard --expect myopic     # exit 1
    python -m myojax.verify --checkpoint runs/tiny-myopic
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from myojax import cli
from myojax.config import ModelConfig
from myojax.verify import Problem, check, checkpoint_problem, random_problems

# The fresh models' shape: small enough to verify in seconds.
FRESH = ModelConfig(vocab_size=64, seq_len=16, d_model=32, n_layers=2, n_heads=4)


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.verify", __doc__)
    p.add_argument(
        "--expect",
        choices=("myopic", "none"),
        help="myopic: past cross-position gradients must be exactly 0 (default for myopic modes); "
        "none: only causality, non-vacuity and reference agreement (default for standard)",
    )
    p.add_argument("--checkpoint", metavar="DIR", help="verify a trained run directory instead")
    p.add_argument("--seeds", type=int, default=2, help="number of random models to check")
    p.add_argument("--chunk", type=int, default=16, help="rows per batched VJP")
    cli.add_config_flags(
        p,
        ModelConfig,
        defaults=FRESH,
        title="fresh models (ModelConfig fields; --seq-len also "
        "caps a checkpoint's verified sequence)",
    )
    return p


def _problems(args: argparse.Namespace) -> list[Problem]:
    if args.checkpoint:
        return [checkpoint_problem(args.checkpoint, args.seq_len or FRESH.seq_len)]
    if args.gradient_mode is None:
        raise cli.UsageError("give --gradient-mode MODE or --checkpoint DIR")
    return random_problems(cli.config_from_args(FRESH, args), args.seeds)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ok = True
    for name, model, tokens, targets, batch in _problems(args):
        start = time.perf_counter()
        report = check(model, tokens, targets, expect=args.expect, batch=batch, chunk=args.chunk)
        cfg = model.config
        print(
            f"== {name}: mode={cfg.gradient_mode} expect={report.expect} T={report.seq_len} "
            f"L={cfg.n_layers} D={cfg.d_model} H={cfg.n_heads} ({time.perf_counter() - start:.1f}s)"
        )
        print(report.table())
        for failure in report.failures:
            print(f"FAIL {failure}")
        ok &= report.passed
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
