"""Train-step benchmark: standard vs myopic vs myopic_kv on the same config and batch.

    python -m experiments.bench [--json] [--batch 32 --seq 128 --d-model 256 --layers 4]
    python -m experiments.bench --peer torch --json          # with the PyTorch peer
    python -m experiments.bench --peer torch --sweep width --out results/core.md
    python -m experiments.bench --peer torch --matmuls   # the step's matmuls alone, XLA vs torch
    python -m experiments.bench --preset gpt2-117m --dtype bfloat16 --batch 8  # accelerator

Times the trainer's jitted, donated ``train_step`` (``loss_and_grad`` + clipped AdamW update) for
each mode, after warm-up, interleaving the modes (and the peer) round by round so machine noise
hits them alike, and reports the median step time, tokens/s, MFU against the matmul peak measured
on this machine in the same run, the ratios myopic/standard and myopic_kv/standard, and with
``--peer torch`` each mode's ``ratio_vs_torch`` (torch step / myojax step; above 1 means myojax
is faster) against an eager PyTorch implementation of the same model and optimizer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from experiments import bench_report
from myojax.config import DTYPES, GRADIENT_MODES, ModelConfig
from myojax.loss import Batch, loss_and_grad
from myojax.model import GPT, count_params, train_flops_per_token, unrolled_up_to
from myojax.presets import MODEL_PRESETS
from myojax.progress import Progress
from myojax.provenance import environment, write_section
from myojax.train import compile_train_step, init_state


def measure_matmul_peak(n: int | None = None, repeats: int = 10, dtype=jnp.float32) -> float:
    """Best FLOP/s of an n×n matmul in ``dtype`` on the default device (n = 2048 on a CPU,
    8192 on an accelerator, where a smaller one does not fill the chip)."""
    n = n or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
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
        with unrolled_up_to(10**9):
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


# The benchmark's optimizer (and the torch peer's): global-norm clipping, then AdamW on every leaf.
LR, WEIGHT_DECAY, GRAD_CLIP = 3e-4, 0.1, 1.0
PEERS = ("torch",)
SWEEPS = tuple(bench_report.SWEEP_VALUES)


def _torch_runner(cfg: ModelConfig, windows) -> tuple[Callable[[], None], int, str]:
    """One eager PyTorch train step on ``windows`` as a thunk, its parameter count, and the
    torch version/threads (``experiments.torch_peer``; needs the ``[bench]`` extra)."""
    import numpy as np
    import torch

    from experiments import torch_peer

    torch.manual_seed(0)
    model = torch_peer.from_myojax(GPT(cfg, key=jax.random.key(0)))
    step = torch_peer.make_train_step(model, lr=LR, weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP)
    inputs, targets = torch_peer.batch_tensors(np.asarray(windows))
    info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    return (lambda: step(inputs, targets)), torch_peer.count_params(model), info


def bench(
    cfg: ModelConfig,
    batch_size: int,
    rounds: int,
    steps_per_round: int,
    peer: str | None = None,
    progress: bool = False,
) -> dict:
    """Median step time, tokens/s and MFU per mode (and of ``peer``), interleaved round by round.

    With ``peer="torch"`` each mode also gets ``ratio_vs_torch`` = torch step / myojax step
    (above 1: myojax is faster).
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    env_start = environment()
    peak = measure_matmul_peak(dtype=DTYPES[cfg.compute_dtype])
    data = jax.random.randint(jax.random.key(0), (batch_size, cfg.seq_len + 1), 0, cfg.vocab_size)
    batch = Batch.from_windows(data)
    optimizer = optax.chain(
        optax.clip_by_global_norm(GRAD_CLIP), optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    )
    runners: dict[str, Callable[[], None]] = {}
    state = {}
    for mode in GRADIENT_MODES:  # the trainer's own jitted, donating step
        step = compile_train_step(optimizer)
        state[mode] = init_state(cfg.replace(gradient_mode=mode), optimizer, jax.random.key(0))

        def run(mode=mode, step=step) -> None:
            state[mode], metrics = step(state[mode], batch)
            metrics["loss"].block_until_ready()

        runners[mode] = run
    peer_info = None
    if peer == "torch":
        runners["torch"], peer_params, peer_info = _torch_runner(cfg, data)
    for run in runners.values():  # compile and warm up
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu_times: dict[str, list[float]] = {name: [] for name in runners}
    bar = Progress(rounds, unit="round", desc="bench", quiet=not progress)
    for done in range(1, rounds + 1):
        for name, run in runners.items():
            for _ in range(steps_per_round):
                start, cpu_start = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
        bar.update(done, line=f"bench: round {done}/{rounds}")
    bar.close()
    n_non_emb = count_params(state["standard"].model, non_embedding=True)
    flops_tok = train_flops_per_token(cfg)
    tokens = batch_size * cfg.seq_len
    rows = {}
    for name in runners:
        med = statistics.median(times[name])
        rows[name] = {
            "step_ms": 1e3 * med,
            "step_ms_p10": 1e3 * sorted(times[name])[len(times[name]) // 10],
            # CPU time of all the process's threads during the step: less sensitive to other
            # processes' load than wall time (but it counts threads spinning while they wait).
            "cpu_ms": 1e3 * statistics.median(cpu_times[name]),
            "tokens_per_s": tokens / med,
            "mfu": flops_tok * tokens / med / peak,
        }
    peer_row = rows.pop("torch", None)
    if peer_row is not None:
        for row in rows.values():
            row["ratio_vs_torch"] = peer_row["step_ms"] / row["step_ms"]
    std = rows["standard"]["step_ms"]
    result = {
        "config": cfg.to_dict(),
        "batch_size": batch_size,
        "params": count_params(state["standard"].model),
        "params_non_embedding": n_non_emb,
        "samples_per_mode": len(times["standard"]),
        "device": str(jax.devices()[0]),
        "machine": platform.processor() or platform.machine(),
        "matmul_peak_gflops": peak / 1e9,
        "modes": rows,
        "ratio_myopic": rows["myopic"]["step_ms"] / std,
        "ratio_myopic_kv": rows["myopic_kv"]["step_ms"] / std,
    }
    if peer_row is not None:
        result["peer"] = {"name": peer, "runtime": peer_info, "params": peer_params, **peer_row}
    result["environment"] = {
        "start": env_start,
        "end_load_avg_1_5_15": environment()["load_avg_1_5_15"],
        "wall_s": time.perf_counter() - wall0,
        "process_cpu_s": time.process_time() - cpu0,
    }
    return result


def run_sweep(
    kind: str,
    cfg: ModelConfig,
    batch_size: int,
    rounds: int,
    steps_per_round: int,
    peer: str | None,
    out: str,
    command: str,
) -> int:
    """``bench`` at each point of the width or sequence-length sweep; writes ``out``'s section,
    a PNG and the raw JSON beside it."""
    configs = bench_report.sweep_configs(kind, cfg)
    bar = Progress(len(configs), unit="point", desc=f"sweep {kind}")
    points = []
    for done, (value, point_cfg) in enumerate(configs, 1):
        points.append((value, bench(point_cfg, batch_size, rounds, steps_per_round, peer)))
        bar.update(done, line=f"sweep {kind}: {value} done ({done}/{len(configs)})")
    bar.close()
    image = bench_report.write_sweep(kind, points, out, command)
    print(f"wrote the {kind} sweep to {out} ({image.name} beside it)")
    return 0


def run_profile(
    cfg: ModelConfig, batch_size: int, out: str | None, command: str, rolled: bool = False
) -> int:
    """Print (and with ``out`` write) the per-category op time of each mode's step."""
    from experiments import bench_profile

    wall0, cpu0 = time.perf_counter(), time.process_time()
    start = environment()
    result = bench_profile.profile(cfg, batch_size)
    provenance = (
        f"Measured {start['time']} on {start['cpu_count']} CPUs, jax {start['jax']}; load "
        f"average (1/5/15 min) {bench_report.load_text(start['load_avg_1_5_15'])} at start, "
        f"{bench_report.load_text(environment()['load_avg_1_5_15'])} at end; wall "
        f"{time.perf_counter() - wall0:.0f} s, process CPU {time.process_time() - cpu0:.0f} s"
    )
    shape = bench_report.shape_text(cfg.to_dict(), batch_size)
    shape += "; layer scan kept rolled (`--rolled`)" if rolled else ""
    text = bench_profile.profile_markdown(result, command, shape, provenance)
    print(text)
    if out:
        key = f"bench profile d{cfg.d_model} L{cfg.n_layers} T{cfg.seq_len} B{batch_size}"
        key += " rolled" if rolled else ""
        write_section(out, key, text)
    return 0


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
    p.add_argument(
        "--peer",
        choices=PEERS,
        help="also time an eager PyTorch implementation of the same model and optimizer "
        "(experiments/torch_peer.py; needs the [bench] extra) and report ratio_vs_torch",
    )
    p.add_argument(
        "--preset",
        choices=sorted(MODEL_PRESETS),
        help="take the model shape (vocab, seq, width, depth, heads) from a preset, e.g. "
        "gpt2-117m on an accelerator",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="compute dtype (parameters stay float32); MFU is against this dtype's matmul peak",
    )
    p.add_argument(
        "--sweep",
        choices=SWEEPS,
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
    return p


def _config(args: argparse.Namespace) -> ModelConfig:
    if args.preset:
        shape = MODEL_PRESETS[args.preset]
        return shape.replace(compute_dtype=args.dtype)
    return ModelConfig(
        vocab_size=args.vocab,
        seq_len=args.seq,
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
        compute_dtype=args.dtype,
    )


def _peer_problem(peer: str | None) -> str | None:
    """Why ``--peer`` cannot run here, or None."""
    if peer != "torch":
        return None
    try:
        import torch  # noqa: F401
    except ImportError:
        return "--peer torch needs PyTorch: pip install -e '.[bench]' (torch==2.13.0, CPU build)"
    if jax.default_backend() != "cpu":
        return "--peer torch times the CPU build of PyTorch: run it on a CPU backend"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = _config(args)
    if args.costs:
        costs = compiled_costs(cfg, args.batch)
        tokens = args.batch * args.seq
        formula = train_flops_per_token(cfg) * tokens
        print(f"per train-step loss_and_grad, layer scan unrolled; formula {formula:.3e} FLOPs")
        print(f"{'mode':<10} {'dot ops':>8} {'FLOPs':>10} {'bytes':>10}")
        for mode, c in costs.items():
            print(f"{mode:<10} {c['dot_ops']:>8} {c['flops']:>10.3e} {c['bytes_accessed']:>10.3e}")
        return 0
    problem = _peer_problem(args.peer)
    if problem is None and args.sweep and not args.out:
        problem = "--sweep needs --out results/<name>.md"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    command = bench_report.command_line(argv)
    if args.profile:
        with unrolled_up_to(0) if args.rolled else contextlib.nullcontext():
            return run_profile(cfg, args.batch, args.out, command, rolled=args.rolled)
    if args.matmuls:
        from experiments import bench_matmuls

        return bench_matmuls.main(cfg, args.batch, args.out, command, peer=args.peer == "torch")
    if args.sweep:
        return run_sweep(
            args.sweep, cfg, args.batch, args.rounds, args.steps, args.peer, args.out, command
        )
    with unrolled_up_to(0) if args.rolled else contextlib.nullcontext():
        result = bench(cfg, args.batch, args.rounds, args.steps, args.peer, progress=not args.json)
    result["command"] = command
    result["layer_scan"] = "rolled" if args.rolled else "default"
    if args.out:
        key = bench_report.run_key(result)
        write_section(args.out, key, bench_report.run_markdown(result, command))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"config: batch {args.batch} x seq {args.seq}, d_model {args.d_model}, "
        f"{args.layers} layers, "
        f"{args.heads} heads, vocab {args.vocab}; {result['params']:,} params; "
        f"{result['samples_per_mode']} timed steps per mode on {result['device']}"
    )
    print(f"measured {cfg.compute_dtype} matmul peak: {result['matmul_peak_gflops']:.1f} GFLOP/s")
    peer = result.get("peer")
    print(
        f"{'mode':<10} {'step ms':>9} {'tokens/s':>10} {'MFU':>7}" + ("  vs torch" if peer else "")
    )
    for mode, row in [*result["modes"].items(), *([("torch", peer)] if peer else [])]:
        vs = f"{row['ratio_vs_torch']:>9.3f}x" if "ratio_vs_torch" in row else ""
        speed = f"{row['step_ms']:>9.2f} {row['tokens_per_s']:>10,.0f} {row['mfu']:>7.1%}"
        print(f"{mode:<10} {speed}{vs}")
    if peer:
        print(
            f"torch peer: {peer['runtime']}, {peer['params']:,} params (torch step / myojax step)"
        )
    print(f"myopic/standard    = {result['ratio_myopic']:.3f}")
    print(f"myopic_kv/standard = {result['ratio_myopic_kv']:.3f}")
    env = result["environment"]
    print(
        f"load avg (1/5/15 min) {bench_report.load_text(env['start']['load_avg_1_5_15'])} at "
        f"start, {bench_report.load_text(env['end_load_avg_1_5_15'])} at end; "
        f"wall {env['wall_s']:.0f} s, "
        f"process CPU {env['process_cpu_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
