"""The memory plan's command: bytes per device of training a model preset on a mesh
(``myojax.sharding.memory_plan``; ``jax.eval_shape``, nothing allocated).

    python -m myojax.sharding plan --preset gpt2-1.5b --mesh fsdp=32 --device-memory 32
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from myojax import cli
from myojax.config import ModelConfig
from myojax.presets import MODEL_PRESETS, model_preset
from myojax.sharding.memory_plan import format_plan, make_plan
from myojax.sharding.mesh import MeshConfig
from myojax.sharding.rules import DEFAULT_MIN_SHARD_SIZE


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m myojax.sharding", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="per-device memory plan (jax.eval_shape, nothing allocated)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--preset", required=True, choices=sorted(MODEL_PRESETS))
    p.add_argument("--mesh", default="", help="e.g. data=2,fsdp=4 (missing axes are 1)")
    p.add_argument("--num-devices", type=int, default=None, help="needed when an axis is -1")
    p.add_argument("--device-memory", type=float, default=None, metavar="GiB")
    p.add_argument("--headroom", type=float, default=0.1, help="fraction kept free for XLA")
    p.add_argument("--batch-size", type=int, default=None, help="global; default 1 per device")
    p.add_argument(
        "--microbatches", type=int, default=1, help="gradient accumulation steps per update"
    )
    p.add_argument("--min-shard-size", type=int, default=DEFAULT_MIN_SHARD_SIZE)
    cli.add_config_flags(
        p, ModelConfig, title="model (ModelConfig fields; the preset's values apply unless given)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = make_plan(
        cli.config_from_args(model_preset(args.preset), args),
        MeshConfig.parse(args.mesh),
        name=args.preset,
        n_devices=args.num_devices,
        batch_size=args.batch_size,
        microbatches=args.microbatches,
        device_memory_gib=args.device_memory,
        headroom=args.headroom,
        min_shard_size=args.min_shard_size,
    )
    print(format_plan(plan))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
