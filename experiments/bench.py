"""Train-step benchmark: standard vs myopic vs myopic_kv on the same config and batch.

    python -m experiments.bench [--json] [--batch 32 --seq 128 --d-model 256 --layers 4]

Times the trainer's jitted, donated ``train_step`` (``loss_and_grad`` + AdamW update) for each mode,
after warm-up, interleaving the modes round by round so machine noise hits them alike, and
reports the median step time, tokens/s, MFU against the float32 matmul peak measured on this
machine in the same run, and the ratios myopic/standard and myopic_kv/standard.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import platform
import statistics
import sys
import time
import unittest.mock
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import Batch, loss_and_grad
from myojax.model import GPT, count_params, train_flops_per_token
from myojax.train import compile_train_step, init_state


def measure_matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 FLOP/s of an n×n matmul on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    mm = jax.jit(jnp.matmul)
    mm(a, b).block_until_ready()
    best = min(_timed(lambda: mm(a, b).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compiled_costs(
    cfg: ModelConfig, batch_size: int, modes: Sequence[str] = GRADIENT_MODES
) -> dict[str, dict[str, float]]:
    """Per mode: dot ops, FLOPs and bytes accessed of one compiled ``loss_and_grad`` step.

    XLA's ``cost_analysis()`` counts a while loop's body once, not once per iteration, and the
    model scans over its layers: the scanned program's figures are one layer plus the head
    whatever ``n_layers`` is. So this compiles a variant with every ``lax.scan`` fully unrolled
    (the same operations, one copy per layer) and reports its per-step figures.
    """
    data = jax.random.randint(jax.random.key(0), (batch_size, cfg.seq_len + 1), 0, cfg.vocab_size)
    batch = Batch.from_windows(data)
    out = {}
    for mode in modes:
        params, static = eqx.partition(
            GPT(cfg.replace(gradient_mode=mode), key=jax.random.key(0)), eqx.is_array
        )
        step = lambda p, b, s=static: loss_and_grad(eqx.combine(p, s), b)
        with _unrolled_scans():
            compiled = jax.jit(step).lower(params, batch).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        text = compiled.as_text()
        out[mode] = {
            "dot_ops": text.count(" dot("),
            "flops": float(cost["flops"]),
            "bytes_accessed": float(cost["bytes accessed"]),
            "while_loops": text.count(" while("),  # 0: nothing is counted once for many
        }
    return out


def _unrolled_scans() -> contextlib.AbstractContextManager:
    """Trace with ``jax.lax.scan(..., unroll=True)`` (the model looks ``jax.lax.scan`` up at call
    time), so the compiled step has no loop for the cost analysis to undercount."""
    return unittest.mock.patch.object(jax.lax, "scan", functools.partial(jax.lax.scan, unroll=True))


def bench(cfg: ModelConfig, batch_size: int, rounds: int, steps_per_round: int) -> dict:
    peak = measure_matmul_peak()
    data = jax.random.randint(jax.random.key(0), (batch_size, cfg.seq_len + 1), 0, cfg.vocab_size)
    batch = Batch.from_windows(data)
    optimizer = optax.adamw(3e-4, weight_decay=0.1)
    state = {}
    for mode in GRADIENT_MODES:  # the trainer's own jitted, donating step
        step = compile_train_step(optimizer)
        train_state = init_state(cfg.replace(gradient_mode=mode), optimizer, jax.random.key(0))
        for _ in range(3):  # compile and warm up
            train_state, metrics = step(train_state, batch)
        metrics["loss"].block_until_ready()
        state[mode] = [step, train_state]
    times: dict[str, list[float]] = {m: [] for m in GRADIENT_MODES}
    for _ in range(rounds):
        for mode in GRADIENT_MODES:
            step, train_state = state[mode]
            for _ in range(steps_per_round):
                start = time.perf_counter()
                train_state, metrics = step(train_state, batch)
                metrics["loss"].block_until_ready()
                times[mode].append(time.perf_counter() - start)
            state[mode][1] = train_state
    n_non_emb = count_params(state["standard"][1].model, non_embedding=True)
    flops_tok = train_flops_per_token(cfg)
    tokens = batch_size * cfg.seq_len
    rows = {}
    for mode in GRADIENT_MODES:
        med = statistics.median(times[mode])
        rows[mode] = {
            "step_ms": 1e3 * med,
            "step_ms_p10": 1e3 * sorted(times[mode])[len(times[mode]) // 10],
            "tokens_per_s": tokens / med,
            "mfu": flops_tok * tokens / med / peak,
        }
    std = rows["standard"]["step_ms"]
    return {
        "config": cfg.to_dict(),
        "batch_size": batch_size,
        "params": count_params(state["standard"][1].model),
        "params_non_embedding": n_non_emb,
        "samples_per_mode": len(times["standard"]),
        "device": str(jax.devices()[0]),
        "machine": platform.processor() or platform.machine(),
        "matmul_peak_gflops": peak / 1e9,
        "modes": rows,
        "ratio_myopic": rows["myopic"]["step_ms"] / std,
        "ratio_myopic_kv": rows["myopic_kv"]["step_ms"] / std,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--costs",
        action="store_true",
        help="only compile loss_and_grad per mode (layer scan unrolled) and print XLA's dot "
        "count, FLOPs and bytes per step",
    )
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds over the modes")
    p.add_argument("--steps", type=int, default=5, help="timed steps per mode per round")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = ModelConfig(
        vocab_size=args.vocab,
        seq_len=args.seq,
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
    )
    if args.costs:
        costs = compiled_costs(cfg, args.batch)
        tokens = args.batch * args.seq
        formula = train_flops_per_token(cfg) * tokens
        print(f"per train-step loss_and_grad, layer scan unrolled; formula {formula:.3e} FLOPs")
        print(f"{'mode':<10} {'dot ops':>8} {'FLOPs':>10} {'bytes':>10}")
        for mode, c in costs.items():
            print(f"{mode:<10} {c['dot_ops']:>8} {c['flops']:>10.3e} {c['bytes_accessed']:>10.3e}")
        return 0
    result = bench(cfg, args.batch, args.rounds, args.steps)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"config: batch {args.batch} x seq {args.seq}, d_model {args.d_model}, "
        f"{args.layers} layers, "
        f"{args.heads} heads, vocab {args.vocab}; {result['params']:,} params; "
        f"{result['samples_per_mode']} timed steps per mode on {result['device']}"
    )
    print(f"measured float32 matmul peak: {result['matmul_peak_gflops']:.1f} GFLOP/s")
    print(f"{'mode':<10} {'step ms':>9} {'tokens/s':>10} {'MFU':>7}")
    for mode, row in result["modes"].items():
        print(f"{mode:<10} {row['step_ms']:>9.2f} {row['tokens_per_s']:>10,.0f} {row['mfu']:>7.1%}")
    print(f"myopic/standard    = {result['ratio_myopic']:.3f}")
    print(f"myopic_kv/standard = {result['ratio_myopic_kv']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
