"""The memory planner's cases checked against XLA: each case's sharded train step compiled from
abstract shapes in a subprocess with simulated CPU devices, and XLA's per-device memory
analysis compared with ``myojax.sharding.memory_plan``."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from experiments.memory_plan_page import DEVICES, GIB, TOLERANCE
from myojax.sharding.rules import DEFAULT_MIN_SHARD_SIZE

SIZES = ("gpt2-117m", "gpt2-345m", "gpt2-762m", "gpt2-1.5b")
MESHES = ("fsdp=32", "data=4,fsdp=8")


@dataclasses.dataclass(frozen=True)
class Case:
    size: str  # a gpt2 size of the study, or "tiny" (a small CPU-test model)
    mesh: str
    batch_size: int
    microbatches: int
    remat: str
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE
    # False: the negative control, the step traced without its mesh, so the model does not
    # gather its weights (myojax.model.gathered) and XLA partitions as it likes.
    fsdp_gather: bool = True
    # ModelConfig.attention_impl: the fast path (the default) or the reference formulation.
    attention_impl: str = "fast"

    @property
    def label(self) -> str:
        control = "" if self.fsdp_gather else " (control: no per-layer gather)"
        return (
            f"{self.size} [{self.attention_impl}] {self.mesh} K={self.microbatches} "
            f"remat={self.remat}{control}"
        )


def default_cases(batch_size: int, implementations: tuple[str, ...] = ("fast",)) -> list[Case]:
    """Every gpt2 size on both meshes with 2 sequences per device per microbatch (16 per device
    at batch 512 on 32 devices: 8 microbatches) and full remat, the configuration a 16-32 GiB
    accelerator needs; on gpt2-117m also the other remat policies and no accumulation, which
    exercise the planner's other terms. Each case once per attention implementation, side by
    side."""
    k = batch_size // DEVICES // 2
    cases = [Case(s, m, batch_size, k, "full") for s in SIZES for m in MESHES]
    cases[1:1] = [
        Case("gpt2-117m", "fsdp=32", batch_size, k, "none"),
        Case("gpt2-117m", "fsdp=32", batch_size, k, "dots"),
        Case("gpt2-117m", "fsdp=32", batch_size, 1, "full"),
        Case("gpt2-117m", "fsdp=32", batch_size, k, "full", fsdp_gather=False),
    ]
    return [dataclasses.replace(c, attention_impl=impl) for c in cases for impl in implementations]


def model_config(size: str, remat: str, attention_impl: str = "fast") -> Any:
    from experiments.scaling.protocol import STUDY_PRESETS, model_config
    from myojax.config import ModelConfig

    if size == "tiny":  # a small CPU-test shape: sharded matrices, several layers, a real head
        return ModelConfig(
            vocab_size=512, seq_len=128, d_model=64, n_layers=3, n_heads=4, remat=remat,
            attention_impl=attention_impl,
        )  # fmt: skip
    p = STUDY_PRESETS["gpt2"]
    (s,) = [s for s in p.sizes if s.name == size]
    return model_config(p, s, "myopic").replace(remat=remat, attention_impl=attention_impl)


def xla_memory(case: Case) -> dict[str, int]:
    """XLA's per-device memory analysis of the sharded train step of ``case`` (abstract shapes
    only); needs as many JAX devices as the mesh."""
    import equinox as eqx
    import jax

    from myojax import sharding as shd
    from myojax.loss import Batch
    from myojax.model import GPT
    from myojax.mup import lr_multipliers
    from myojax.train.config import TrainConfig
    from myojax.train.optim import make_optimizer
    from myojax.train.step import compile_train_step, init_state, train_step

    model_cfg = model_config(case.size, case.remat, case.attention_impl)
    train_cfg = TrainConfig(
        steps=10,
        warmup_steps=1,
        batch_size=case.batch_size,
        microbatches=case.microbatches,
        mesh=case.mesh,
        min_shard_size=case.min_shard_size,
    )
    mesh = shd.make_mesh(shd.MeshConfig.parse(case.mesh))
    train_cfg.microbatch_size(mesh.size)
    key = jax.random.key(0)
    abstract_model = eqx.filter_eval_shape(GPT, model_cfg, key=key)
    optimizer = make_optimizer(train_cfg, abstract_model, lr_multipliers(model_cfg))
    shapes = jax.eval_shape(lambda k: init_state(model_cfg, optimizer, k), key)
    shardings = shd.state_shardings(shapes, mesh, min_shard_size=train_cfg.min_shard_size)
    state = shd.abstract_state(shapes, shardings)
    tokens = jax.ShapeDtypeStruct(
        (case.batch_size, model_cfg.seq_len), "int32", sharding=shd.batch_sharding(mesh)
    )
    if case.fsdp_gather:
        step = compile_train_step(optimizer, mesh, shardings, case.microbatches)
    else:
        plain = functools.partial(train_step, optimizer=optimizer, microbatches=case.microbatches)
        step = shd.shard_train_step(plain, mesh, shardings, shd.batch_sharding(mesh))
    stats = step.lower(state, Batch(tokens, tokens)).compile().memory_analysis()
    fields = ("argument", "output", "alias", "temp", "generated_code")
    out = {f: int(getattr(stats, f"{f}_size_in_bytes")) for f in fields}
    out["peak"] = out["argument"] + out["output"] - out["alias"] + out["temp"]
    return out


def planned(case: Case, remat: str | None = None) -> Any:
    from myojax.sharding import MeshConfig
    from myojax.sharding.memory_plan import make_plan

    return make_plan(
        model_config(case.size, case.remat if remat is None else remat, case.attention_impl),
        MeshConfig.parse(case.mesh),
        name=case.size,
        batch_size=case.batch_size,
        microbatches=case.microbatches,
        min_shard_size=case.min_shard_size,
    )


def measure_in_subprocess(case: Case, devices: int, timeout: float) -> dict[str, Any]:
    """Compile ``case`` in a fresh process with ``devices`` simulated CPU devices."""
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    cmd = [sys.executable, "-m", "experiments.memory_check", "--worker", json.dumps(vars_(case))]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"compile did not finish in {timeout:.0f} s"}
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["subprocess_wall_s"] = time.perf_counter() - t0
    return result


def vars_(case: Case) -> dict[str, Any]:
    return dataclasses.asdict(case)


def worker(spec: str) -> dict[str, Any]:
    """The subprocess's side: compile the case ``spec`` (JSON) and measure it."""
    case = Case(**json.loads(spec))
    t0, c0 = time.perf_counter(), time.process_time()
    memory = xla_memory(case)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "xla": memory,
        "compile_wall_s": time.perf_counter() - t0,
        "compile_cpu_s": time.process_time() - c0,
        "max_rss_gib": usage.ru_maxrss / 2**20,  # Linux: KiB
        "load_after": os.getloadavg(),
    }


def compare(case: Case, xla: dict[str, int]) -> dict[str, Any]:
    plan = planned(case)
    total = plan.total(case.remat)
    return {
        "planner_total": total,
        "planner_state": plan.params + plan.optimizer,
        "planner_activations": plan.activations[case.remat],
        "xla_peak": xla["peak"],
        "ratio": total / xla["peak"],
        "agrees": abs(total / xla["peak"] - 1) <= TOLERANCE,
    }


def run_cases(cases: list[Case], timeout: float) -> list[dict[str, Any]]:
    """Every case compiled in its own subprocess and compared with the planner."""
    from myojax.progress import Progress

    rows = []
    bar = Progress(len(cases), 0, None, unit="case", desc="memory check")
    for i, case in enumerate(cases):
        result = measure_in_subprocess(case, DEVICES, timeout)
        row = {"case": vars_(case), **result}
        if "error" not in result:
            row["compare"] = compare(case, result["xla"])
            msg = (
                f"{case.label}: XLA {result['xla']['peak'] / GIB:.2f} GiB, planner "
                f"{row['compare']['planner_total'] / GIB:.2f} GiB "
                f"(x{row['compare']['ratio']:.2f}), compile {result['compile_wall_s']:.0f} s"
            )
        else:
            msg = f"{case.label}: {result['error']}"
        bar.update(i + 1, line=msg)
        rows.append(row)
    bar.close()
    return rows


def run_meta(rows: list[dict[str, Any]], command: str, t0: float, load_start) -> dict[str, Any]:
    """The run record the page prints: command, date, wall and CPU time, load, the study's gpt2
    shape."""
    import jax

    from experiments.scaling.protocol import STUDY_PRESETS

    p = STUDY_PRESETS["gpt2"]
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": sum(r.get("compile_cpu_s", 0.0) for r in rows),
        "load_start": tuple(round(x, 1) for x in load_start),
        "load_end": tuple(round(x, 1) for x in os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "seq_len": p.seq_len,
        "vocab": p.vocab_size,
        "batch_size": p.batch_size,
    }
