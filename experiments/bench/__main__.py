"""Train-step benchmark: standard vs myopic vs myopic_kv, fast and reference attention, and peers.

    python -m experiments.bench [--json] [--batch-size 32 --seq-len 128 --d-model 256 --n-layers 4]
    python -m experiments.bench --peer torch --json          # with the PyTorch peer
    python -m experiments.bench --peer torch --sweep width --out results/core.md
    python -m experiments.bench --sweep width --from-json results/core-sweep-width.json \\
        --out results/core.md                                # redraw a sweep from its JSON
    python -m experiments.bench --peer torch --matmuls   # the step's matmuls alone, XLA vs torch
    python -m experiments.bench --preset gpt2-117m --compute-dtype bfloat16 --batch-size 8 \\
        --seq-len 1024 --json                                 # on a GPU: MFU at GPT-2 scale

Times the trainer's jitted, donated ``train_step`` for each gradient mode and attention
implementation (``--implementations fast,reference``), interleaved round by round with a
plain-JAX peer of the same model and optimizer, and reports the median and 10th-percentile step
time, tokens/s, MFU against the matmul peak measured in the same run, the ratios
myopic/standard and myopic_kv/standard per implementation, each runner's ratio to the JAX peer
and with ``--peer torch`` to an eager PyTorch implementation (``experiments.bench.timing``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence

from experiments import epilogue
from experiments.bench import report, timing
from myojax import cli
from myojax.config import ModelConfig
from myojax.model import train_flops_per_token, unrolled_up_to
from myojax.presets import MODEL_PRESETS
from myojax.provenance import command_line, write_section

PROG = "python -m experiments.bench"
MODEL_FLAGS = ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "compute_dtype")


def _parser():
    p = cli.parser(PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    cli.add_config_flags(p, ModelConfig, defaults=timing.DEFAULT_MODEL, only=MODEL_FLAGS)
    cli.add_config_flags(p, timing.BenchConfig, title="timing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--costs",
        action="store_true",
        help="only compile loss_and_grad per mode (layer scan unrolled) and print XLA's dot "
        "count, FLOPs and bytes per step",
    )
    p.add_argument(
        "--peer",
        choices=timing.PEERS,
        help="also time an eager PyTorch implementation of the same model and optimizer "
        "(experiments/bench/torch_peer.py; needs the [bench] extra) and report ratio_vs_torch",
    )
    p.add_argument(
        "--preset",
        choices=sorted(MODEL_PRESETS),
        help="take the model shape from a preset (model flags replace its fields), e.g. "
        "gpt2-117m on an accelerator",
    )
    p.add_argument(
        "--sweep",
        choices=tuple(report.SWEEP_VALUES),
        help="run the benchmark at each width (64-512) or sequence length (64-512) and write a "
        "markdown table and a PNG plot (--out)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="trace each mode's compiled step with jax.profiler (modes interleaved) and report "
        "XLA op time per category: matmuls, reductions, T×T elementwise, layout copies, ...",
    )
    p.add_argument(
        "--rolled",
        action="store_true",
        help="keep the layer scan rolled however shallow the stack (the default before the "
        "unroll of issue 14): a before/after comparison in the same session",
    )
    p.add_argument(
        "--matmuls",
        action="store_true",
        help="time each distinct matmul of one train step alone in XLA (and with --peer torch, "
        "in torch): whether a gap to the peer lies in the matmul kernels",
    )
    p.add_argument(
        "--out",
        help="markdown file to write the run's (or sweep's) table into, as a section replaced "
        "when the same configuration runs again; a sweep also writes a PNG and JSON beside it",
    )
    epilogue.add_from_json_flag(p, "a sweep's saved JSON (with --sweep and --out)")
    return p


def _model_config(args) -> ModelConfig:
    base = MODEL_PRESETS[args.preset] if args.preset else timing.DEFAULT_MODEL
    cfg = cli.config_from_args(base, args)
    if cfg.compute_dtype not in timing.COMPUTE_DTYPES:
        raise cli.UsageError(f"--compute-dtype must be one of {timing.COMPUTE_DTYPES}")
    return cfg


def _check(args) -> None:
    if (args.sweep or args.from_json) and not args.out:
        raise cli.UsageError("--sweep needs --out results/<name>.md")
    if args.from_json and not args.sweep:
        raise cli.UsageError("--from-json redraws a sweep: give --sweep width|seq")
    problem = timing.peer_problem(args.peer)
    if problem:
        raise cli.UsageError(problem)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    cfg, settings = _model_config(args), cli.config_from_args(timing.BenchConfig(), args)
    if args.costs:
        costs = timing.compiled_costs(cfg, settings.batch_size)
        formula = train_flops_per_token(cfg) * settings.batch_size * cfg.seq_len
        print(report.costs_text(costs, formula))
        return 0
    _check(args)
    command = command_line(PROG, argv)
    if args.from_json:
        saved = epilogue.load(args.from_json)
        report.write_sweep(
            args.sweep, report.saved_points(args.sweep, saved), args.out, saved["command"],
            save=False,
        )  # fmt: skip
        print(f"rewrote the {args.sweep} sweep in {args.out} from {args.from_json}")
        return 0
    rolled = unrolled_up_to(0) if args.rolled else contextlib.nullcontext()
    if args.profile:
        from experiments.bench.profile import report_profile

        with rolled:
            print(report_profile(cfg, settings.batch_size, args.out, command, args.rolled))
        return 0
    if args.matmuls:
        from experiments.bench.matmuls import report_matmuls

        peer = args.peer == "torch"
        print(report_matmuls(cfg, settings.batch_size, args.out, command, peer))
        return 0
    if args.sweep:
        configs = report.sweep_configs(args.sweep, cfg)
        points = timing.sweep(configs, settings, args.peer, f"sweep {args.sweep}")
        image = report.write_sweep(args.sweep, points, args.out, command)
        print(f"wrote the {args.sweep} sweep to {args.out} ({image.name} beside it)")
        return 0
    with rolled:
        result = timing.bench(cfg, settings, args.peer, progress=not args.json)
    result["command"] = command
    result["layer_scan"] = "rolled" if args.rolled else "default"
    if args.out:
        write_section(args.out, report.run_key(result), report.run_markdown(result, command))
    print(json.dumps(result, indent=2) if args.json else report.run_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
