"""Decoding throughput of ``myojax.generate`` (KV cache) against recomputing the full forward for
every new token, for the tiny and small presets at batch 1 and 16.

    python -m experiments.decode_throughput [--repeats 5] [--out results/decode_throughput.md]
    python -m experiments.decode_throughput --from-json results/decode_throughput.json

Each configuration decodes from an 8-token corpus prompt to the end of the context
(seq_len - 7 new tokens), sampling at temperature 1. The first call (compilation) is timed
apart; the figure is the median of ``--repeats`` timed calls. Models are freshly initialised:
decoding cost does not depend on the weights. The recompute baseline is one jitted
``lax.scan`` that runs the whole fixed-length buffer through the model at every step
(``experiments.bench.decode``). Writes the page and its JSON beside it (``--out`` with .json).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.bench import decode
from myojax import cli
from myojax.provenance import command_line

PROG = "python -m experiments.decode_throughput"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = cli.parser(PROG, __doc__)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per configuration")
    p.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    p.add_argument("--out", type=Path, default=Path("results/decode_throughput.md"))
    epilogue.add_from_json_flag(p, "the JSON a run wrote beside its page")
    args = p.parse_args(argv)
    page = decode.page(args.out)
    if args.from_json:
        epilogue.finish(page, epilogue.load(args.from_json), args.out.parent, write_results=False)
        print(f"wrote {args.out} from {args.from_json}")
        return 0
    record = decode.run(args.presets, args.batches, args.repeats, command_line(PROG, argv))
    epilogue.finish(page, record, args.out.parent)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
