"""Timing the trainer's train step: standard vs myopic vs myopic_kv on the same config and batch.

Times the trainer's jitted, donated ``train_step`` (``loss_and_grad`` + clipped AdamW update) for
each mode and attention implementation (``ModelConfig.attention_impl``: the fast path and the
reference formulation), after warm-up, interleaving every runner (and the peers) round by round
so machine noise hits them alike, and reports the median and 10th-percentile step time,
tokens/s, MFU against the matmul peak measured on this machine in the same run, the ratios
myopic/standard and myopic_kv/standard per implementation, each runner's ``ratio_vs_jax``
against a plain-JAX peer (``experiments.bench.jax_peer``: the framework's overhead) and, with
``peer="torch"``, ``ratio_vs_torch`` (torch step / myojax step; above 1 means myojax is faster)
against an eager PyTorch implementation of the same model and optimizer
(``experiments.bench.torch_peer``).
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from myojax.config import ATTENTION_IMPLS, DTYPES, GRADIENT_MODES, ModelConfig
from myojax.loss import Batch, loss_and_grad
from myojax.model import GPT, count_params, train_flops_per_token, unrolled_up_to
from myojax.progress import Progress
from myojax.provenance import environment
from myojax.train import compile_train_step, init_state

# The benchmark's optimizer (and the torch peer's): global-norm clipping, then AdamW on every leaf.
LR, WEIGHT_DECAY, GRAD_CLIP = 3e-4, 0.1, 1.0
PEERS = ("torch",)
# The model the benchmark times unless told otherwise (flags and presets replace its fields).
DEFAULT_MODEL = ModelConfig(vocab_size=256, seq_len=128, d_model=256, n_layers=4, n_heads=4)
COMPUTE_DTYPES = ("float32", "bfloat16")  # MFU needs this dtype's measured matmul peak


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """How much to time: the batch and the interleaved rounds."""

    batch_size: int = dataclasses.field(default=32, metadata={"help": "sequences per train step"})
    rounds: int = dataclasses.field(
        default=10, metadata={"help": "interleaved rounds over the modes"}
    )
    steps: int = dataclasses.field(default=5, metadata={"help": "timed steps per mode per round"})
    implementations: tuple[str, ...] = dataclasses.field(
        default=ATTENTION_IMPLS,
        metadata={"help": "attention implementations to time, the first one the headline"},
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "rounds", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        unknown = [i for i in self.implementations if i not in ATTENTION_IMPLS]
        if unknown or not self.implementations:
            raise ValueError(f"--implementations must be some of {','.join(ATTENTION_IMPLS)}")


def runner_name(mode: str, impl: str, headline: str) -> str:
    """A myojax runner's key: the mode for the headline implementation, else mode/impl."""
    return mode if impl == headline else f"{mode}/{impl}"


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


def peer_problem(peer: str | None) -> str | None:
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


def _torch_runner(cfg: ModelConfig, windows) -> tuple[Callable[[], None], int, str]:
    """One eager PyTorch train step on ``windows`` as a thunk, its parameter count, and the
    torch version/threads (``experiments.bench.torch_peer``; needs the ``[bench]`` extra)."""
    import numpy as np
    import torch

    from experiments.bench import torch_peer

    torch.manual_seed(0)
    model = torch_peer.from_myojax(GPT(cfg, key=jax.random.key(0)))
    step = torch_peer.make_train_step(model, lr=LR, weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP)
    inputs, targets = torch_peer.batch_tensors(np.asarray(windows))
    info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    return (lambda: step(inputs, targets)), torch_peer.count_params(model), info


def _jax_runner(cfg: ModelConfig, windows) -> tuple[Callable[[], None], int]:
    """One step of the plain-JAX peer (``experiments.bench.jax_peer``) as a thunk, and its
    parameter count."""
    from experiments.bench import jax_peer

    params = jax_peer.from_myojax(GPT(cfg, key=jax.random.key(0)))
    n_params = jax_peer.count_params(params)
    step = jax_peer.make_train_step(
        cfg, params, lr=LR, weight_decay=WEIGHT_DECAY, grad_clip=GRAD_CLIP
    )
    return (lambda: step(windows).block_until_ready()), n_params


def _mode_runners(
    cfg: ModelConfig, batch: Batch, implementations: Sequence[str]
) -> tuple[dict[str, Callable[[], None]], dict]:
    """A thunk per gradient mode and implementation running the trainer's own jitted, donating
    step (``runner_name`` keys), and the states they update."""
    optimizer = optax.chain(
        optax.clip_by_global_norm(GRAD_CLIP), optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    )
    runners: dict[str, Callable[[], None]] = {}
    state = {}
    for impl in implementations:
        for mode in GRADIENT_MODES:
            name = runner_name(mode, impl, implementations[0])
            step = compile_train_step(optimizer)
            model_cfg = cfg.replace(gradient_mode=mode, attention_impl=impl)
            state[name] = init_state(model_cfg, optimizer, jax.random.key(0))

            def run(name=name, step=step) -> None:
                state[name], metrics = step(state[name], batch)
                metrics["loss"].block_until_ready()

            runners[name] = run
    return runners, state


def _interleaved_times(
    runners: dict[str, Callable[[], None]], settings: BenchConfig, progress: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds of every timed step, per runner, after a warm-up."""
    for run in runners.values():  # compile and warm up
        for _ in range(3):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu_times: dict[str, list[float]] = {name: [] for name in runners}
    bar = Progress(settings.rounds, unit="round", desc="bench", quiet=not progress)
    for done in range(1, settings.rounds + 1):
        for name, run in runners.items():
            for _ in range(settings.steps):
                start, cpu_start = time.perf_counter(), time.process_time()
                run()
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
        bar.update(done, line=f"bench: round {done}/{settings.rounds}")
    bar.close()
    return times, cpu_times


def bench(
    cfg: ModelConfig, settings: BenchConfig, peer: str | None = None, progress: bool = False
) -> dict:
    """Median and p10 step time, tokens/s and MFU per mode and implementation, and of the peers
    (the plain-JAX one always, ``peer="torch"`` too), interleaved round by round.

    Every myojax row gets ``ratio_vs_jax`` (and with the torch peer ``ratio_vs_torch``) = peer
    step / myojax step (above 1: myojax is faster) and ``ratio_to_standard`` within its
    implementation; ``ratio_myopic``/``ratio_myopic_kv`` are the headline implementation's,
    ``ratios`` every implementation's.
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    env_start = environment()
    peak = measure_matmul_peak(dtype=DTYPES[cfg.compute_dtype])
    batch_size, impls = settings.batch_size, settings.implementations
    data = jax.random.randint(jax.random.key(0), (batch_size, cfg.seq_len + 1), 0, cfg.vocab_size)
    runners, state = _mode_runners(cfg, Batch.from_windows(data), impls)
    runners["jax"], jax_params = _jax_runner(cfg, data)
    peer_info = None
    if peer == "torch":
        runners["torch"], peer_params, peer_info = _torch_runner(cfg, data)
    times, cpu_times = _interleaved_times(runners, settings, progress)
    rows = {name: _row(times[name], cpu_times[name], cfg, batch_size, peak) for name in runners}
    jax_row, peer_row = rows.pop("jax"), rows.pop("torch", None)
    ratios = {impl: {} for impl in impls}
    for impl in impls:
        std = rows[runner_name("standard", impl, impls[0])]["step_ms"]
        for mode in GRADIENT_MODES:
            row = rows[runner_name(mode, impl, impls[0])]
            row.update(impl=impl, mode=mode, ratio_to_standard=row["step_ms"] / std)
            row["ratio_vs_jax"] = jax_row["step_ms"] / row["step_ms"]
            if peer_row is not None:
                row["ratio_vs_torch"] = peer_row["step_ms"] / row["step_ms"]
            if mode != "standard":
                ratios[impl][mode] = row["ratio_to_standard"]
    headline = state["standard"].model
    result = {
        "config": cfg.to_dict(),
        "batch_size": batch_size,
        "params": count_params(headline),
        "params_non_embedding": count_params(headline, non_embedding=True),
        "samples_per_mode": len(times["standard"]),
        "device": str(jax.devices()[0]),
        "machine": platform.processor() or platform.machine(),
        "matmul_peak_gflops": peak / 1e9,
        "modes": rows,
        "ratio_myopic": ratios[impls[0]]["myopic"],
        "ratio_myopic_kv": ratios[impls[0]]["myopic_kv"],
        "ratios": ratios,
        "jax_peer": {"name": "jax", "params": jax_params, **jax_row},
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


def _row(
    times: list[float], cpu_times: list[float], cfg: ModelConfig, batch_size: int, peak: float
) -> dict[str, float]:
    """One runner's median and p10 step time, CPU time, tokens/s and MFU."""
    med = statistics.median(times)
    tokens = batch_size * cfg.seq_len
    return {
        "step_ms": 1e3 * med,
        "step_ms_p10": 1e3 * sorted(times)[len(times) // 10],
        # CPU time of all the process's threads during the step: less sensitive to other
        # processes' load than wall time (but it counts threads spinning while they wait).
        "cpu_ms": 1e3 * statistics.median(cpu_times),
        "tokens_per_s": tokens / med,
        "mfu": train_flops_per_token(cfg) * tokens / med / peak,
    }


def sweep(
    configs: Sequence[tuple[int, ModelConfig]], settings: BenchConfig, peer: str | None, desc: str
) -> list[tuple[int, dict]]:
    """``bench`` at each (value, config) point of a sweep."""
    bar = Progress(len(configs), unit="point", desc=desc)
    points = []
    for done, (value, point_cfg) in enumerate(configs, 1):
        points.append((value, bench(point_cfg, settings, peer)))
        bar.update(done, line=f"{desc}: {value} done ({done}/{len(configs)})")
    bar.close()
    return points
