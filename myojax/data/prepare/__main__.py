"""Text files -> pre-tokenized token shards (``myojax.data.prepare``).

    python -m myojax.data.prepare a.txt b.txt --val heldout.txt --out DIR [--tokenizer gpt2]

Every input file is one document; held-out documents go to the ``val`` split whole. A non-empty
``DIR`` is refused (new shards beside old ones would be read as one dataset) unless
``--overwrite``, which first removes the old shards and their sidecars.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from myojax import cli
from myojax.data.prepare import DEFAULT_SHARD_TOKENS, prepare


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("python -m myojax.data.prepare", __doc__)
    p.add_argument("train", nargs="+", type=Path, help="training text files (UTF-8)")
    p.add_argument(
        "--val",
        nargs="+",
        type=Path,
        required=True,
        help="held-out text files (UTF-8), each kept whole",
    )
    p.add_argument("--out", type=Path, required=True, help="output shard directory")
    p.add_argument(
        "--tokenizer",
        default="byte",
        help="'byte' (vocab 256) or a tiktoken encoding such as 'gpt2'",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards already in --out (otherwise a non-empty --out is refused)",
    )
    p.add_argument(
        "--shard-tokens",
        type=int,
        default=DEFAULT_SHARD_TOKENS,
        help="maximum tokens per shard file",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    written = prepare(
        args.train,
        args.val,
        args.out,
        tokenizer=args.tokenizer,
        shard_tokens=args.shard_tokens,
        overwrite=args.overwrite,
    )
    for split, paths in written.items():
        n = sum(json.loads(p.with_suffix(".json").read_text())["num_tokens"] for p in paths)
        print(f"{split}: {len(paths)} shard(s), {n} tokens in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
