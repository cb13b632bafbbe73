"""Sample text from a trained run (KV-cache decoding, ``myojax.analysis.sampling``).

    python -m myojax.sample runs/tiny --prompt "ROMEO:" --max-new-tokens 60 --num-samples 3

Decodes with the run's tokenizer (bytes for the embedded corpus).
"""

from __future__ import annotations

import argparse
import sys

import jax

from myojax import cli
from myojax.analysis.runs import open_run, sample_text


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.sample", __doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of myojax.train")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--prompt", required=True, help="text to continue (at least one token)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="tokens to generate (default: fill the context, seq_len - prompt tokens + 1)",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus: smallest set of mass p")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--num-samples", type=int, default=1, help="samples, run as one batch")
    return p


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    checks = {
        "--num-samples must be >= 1": args.num_samples >= 1,
        "--seed must be >= 0": args.seed >= 0,
        "--temperature must be >= 0": args.temperature >= 0,
        "--top-k must be >= 1": args.top_k is None or args.top_k >= 1,
        "--top-p must be in (0, 1]": args.top_p is None or 0 < args.top_p <= 1,
        "--max-new-tokens must be >= 1": args.max_new_tokens is None or args.max_new_tokens >= 1,
    }
    for message, ok in checks.items():
        if not ok:
            parser.error(message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    run = open_run(args.run_dir, args.step)
    texts = sample_text(
        run,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        key=jax.random.key(args.seed),
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        num_samples=args.num_samples,
    )
    print(
        f"# {run.path} step {run.step} ({run.model_config.gradient_mode}, "
        f"{run.model_config.parametrization}); temperature {args.temperature}, top_k "
        f"{args.top_k}, top_p {args.top_p}, seed {args.seed}",
        flush=True,
    )
    for i, text in enumerate(texts):
        print(f"--- sample {i}\n{text}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
