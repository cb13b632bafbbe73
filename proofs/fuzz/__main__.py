"""Differential testing of proofs.position_dependency against numeric Jacobians on random
programs; prints (and with --record writes) the record of the run. Exit 0 iff no counterexample
was found and the run tested enough to mean something.

    python -m proofs.fuzz --programs 3000 --seed 1 --record proofs/fuzz_record.json   # long mode
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from myojax import cli, files
from myojax.provenance import command_line
from proofs.fuzz.runner import FuzzConfig, passed, run_and_record

PROG = "python -m proofs.fuzz"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser(PROG, __doc__)
    cli.add_config_flags(p, FuzzConfig, title="the run (FuzzConfig fields)")
    p.add_argument("--record", type=Path, default=None, help="JSON record to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = cli.config_from_args(FuzzConfig(), args)
    command = command_line(PROG, sys.argv[1:] if argv is None else argv)
    record = run_and_record(config, command)
    text = json.dumps(record, indent=2) + "\n"
    print(text, end="")
    if args.record is not None:
        files.write_text(args.record, text)
    return 0 if passed(record) else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
