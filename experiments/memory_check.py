"""The memory planner checked against XLA: per-device bytes of the real sharded train step.

    python -m experiments.memory_check      # gpt2 sizes x meshes -> results/memory_plan.md
    python -m experiments.memory_check --sizes gpt2-117m --meshes fsdp=32 --out /tmp/plan.md
    python -m experiments.memory_check --from-json     # redraw the page from its saved JSON

For every case (model size, mesh, microbatches, remat) a subprocess with
``--xla_force_host_platform_device_count`` simulated CPU devices builds the trainer's own
sharded train step (``myojax.train.step.compile_train_step``: AdamW, FSDP shardings, donated
state) from abstract shapes only — ``jax.eval_shape`` and ``ShapeDtypeStruct``s carrying
``NamedSharding``s, no parameter is ever allocated — lowers and compiles it, and reads XLA's
``memory_analysis()`` of the per-device program. Its peak, ``arguments + outputs - aliased +
temporaries``, is compared with ``myojax.sharding.memory_plan.make_plan`` for the same mesh,
batch, microbatches and remat (``python -m myojax.sharding plan``). The planner must agree within
``TOLERANCE`` in every case. The model is the scaling study's gpt2 configuration
(``experiments.scaling.protocol``: muP, float32, T = 1024, vocabulary 50257) at its global batch.

Caveat: XLA:CPU is not XLA:TPU / XLA:GPU. Buffer assignment and the SPMD partitioner are shared,
but fusion decisions (hence temporaries) differ by backend; the check bounds the planner's
model of what the program holds, not a TPU's exact allocation.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from myojax.sharding.rules import DEFAULT_MIN_SHARD_SIZE

TOLERANCE = 0.25
DEVICES = 32
SIZES = ("gpt2-117m", "gpt2-345m", "gpt2-762m", "gpt2-1.5b")
MESHES = ("fsdp=32", "data=4,fsdp=8")
OUT = Path("results/memory_plan.md")


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

    @property
    def label(self) -> str:
        control = "" if self.fsdp_gather else " (control: no per-layer gather)"
        return f"{self.size} {self.mesh} K={self.microbatches} remat={self.remat}{control}"


def default_cases(batch_size: int) -> list[Case]:
    """Every gpt2 size on both meshes with 2 sequences per device per microbatch (16 per device
    at batch 512 on 32 devices: 8 microbatches) and full remat, the configuration a 16-32 GiB
    accelerator needs; on gpt2-117m also the other remat policies and no accumulation, which
    exercise the planner's other terms."""
    k = batch_size // DEVICES // 2
    cases = [Case(s, m, batch_size, k, "full") for s in SIZES for m in MESHES]
    cases[1:1] = [
        Case("gpt2-117m", "fsdp=32", batch_size, k, "none"),
        Case("gpt2-117m", "fsdp=32", batch_size, k, "dots"),
        Case("gpt2-117m", "fsdp=32", batch_size, 1, "full"),
        Case("gpt2-117m", "fsdp=32", batch_size, k, "full", fsdp_gather=False),
    ]
    return cases


def model_config(size: str, remat: str) -> Any:
    from experiments.scaling.protocol import STUDY_PRESETS, model_config
    from myojax.config import ModelConfig

    if size == "tiny":  # a small CPU-test shape: sharded matrices, several layers, a real head
        return ModelConfig(
            vocab_size=512, seq_len=128, d_model=64, n_layers=3, n_heads=4, remat=remat
        )
    p = STUDY_PRESETS["gpt2"]
    (s,) = [s for s in p.sizes if s.name == size]
    return model_config(p, s, "myopic").replace(remat=remat)


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

    model_cfg = model_config(case.size, case.remat)
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
        model_config(case.size, case.remat if remat is None else remat),
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


def _worker(spec: str) -> None:
    case = Case(**json.loads(spec))
    t0, c0 = time.perf_counter(), time.process_time()
    memory = xla_memory(case)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "xla": memory,
                "compile_wall_s": time.perf_counter() - t0,
                "compile_cpu_s": time.process_time() - c0,
                "max_rss_gib": usage.ru_maxrss / 2**20,  # Linux: KiB
                "load_after": os.getloadavg(),
            }
        )
    )


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


GIB = 2**30


def _load_line(meta: dict[str, Any]) -> str:
    from myojax.provenance import load_summary

    def env(load: Any) -> dict[str, Any]:
        return {"load_avg_1_5_15": load, "cpu_count": meta["cpu_count"], "time": meta["date"]}

    return load_summary(env(meta["load_end"]), env(meta["load_start"]))


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Memory planner vs XLA",
        "",
        f"Written by `{meta['command']}` on {meta['date']} ({meta['wall_s']:.0f} s wall, "
        f"{meta['cpu_s']:.0f} s CPU in the compile subprocesses; JAX {meta['jax']}; "
        f"{_load_line(meta)}).",
        "",
        f"Per-device bytes of one training step of the scaling study's gpt2 models (muP, float32, "
        f"T = {meta['seq_len']}, vocabulary {meta['vocab']}, global batch {meta['batch_size']}) "
        f"on {DEVICES} simulated CPU devices. **XLA** is `compiled.memory_analysis()` of the "
        "trainer's own sharded, donated train step built from abstract shapes (nothing "
        "allocated): arguments + outputs - aliased + temporaries. **Planner** is "
        "`python -m myojax.sharding plan` for the same mesh, batch, microbatches (K) and remat. "
        f"The planner must be within {TOLERANCE:.0%} of XLA in every case. XLA:CPU shares buffer "
        "assignment and SPMD partitioning with TPU and GPU but not their fusions, so this bounds "
        "the planner's model, not a TPU's exact allocation.",
        "",
        "| size | mesh | K | remat | seqs/device/microbatch | XLA args (state) GiB | "
        "planner state GiB | XLA temp GiB | XLA peak GiB | planner GiB | planner/XLA | "
        "within 25% | compile s (wall / CPU) | compile RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["case"]
        per = c["batch_size"] // DEVICES // c["microbatches"]
        control = "" if c.get("fsdp_gather", True) else " (control: no per-layer gather)"
        head = (
            f"| {c['size']}{control} | {c['mesh']} | {c['microbatches']} | {c['remat']} | {per} |"
        )
        if "error" in r:
            lines.append(f"{head} not compiled here: {r['error']} | | | | | | | | |")
            continue
        x, p = r["xla"], r["compare"]
        lines.append(
            f"{head} {x['argument'] / GIB:.3f} | {p['planner_state'] / GIB:.3f} | "
            f"{x['temp'] / GIB:.3f} | {x['peak'] / GIB:.3f} | {p['planner_total'] / GIB:.3f} | "
            f"{p['ratio']:.2f} | {'yes' if p['agrees'] else '**NO**'} | "
            f"{r['compile_wall_s']:.0f} / {r['compile_cpu_s']:.0f} | {r['max_rss_gib']:.1f} |"
        )
    controls = [r for r in rows if "error" not in r and not r["case"].get("fsdp_gather", True)]
    done = [r for r in rows if "error" not in r and r["case"].get("fsdp_gather", True)]
    ok = sum(r["compare"]["agrees"] for r in done)
    failed = [r for r in rows if "error" in r]
    lines += [
        "",
        f"**{ok} of {len(done)} compiled cases agree within {TOLERANCE:.0%}**"
        + (f"; {len(failed)} case(s) could not be compiled here." if failed else "."),
        "",
        *(
            f"Negative control: the same step traced without its mesh, so the model does not "
            f"gather each layer's weights where it uses them: XLA then splits attention heads "
            f"and replicates the batch, {r['xla']['peak'] / GIB:.1f} GiB per device against the "
            f"planner's {r['compare']['planner_total'] / GIB:.1f} GiB "
            f"({'caught' if not r['compare']['agrees'] else '**not caught**'} by the check)."
            for r in controls
        ),
        "",
        "XLA args are the parameters, AdamW moments and the token batch of one device; the "
        "planner's state column is parameters + AdamW moments. The planner's model of the "
        "rest (gradients, the accumulator, FSDP gather buffers, activations per remat policy) "
        "is in `myojax/sharding/memory_plan.py`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.memory_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated gpt2 sizes")
    parser.add_argument("--meshes", default=";".join(MESHES), help="';'-separated meshes")
    parser.add_argument("--out", type=Path, default=OUT, help=f"markdown table (default {OUT})")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per compile")
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="redraw --out from the JSON beside it (--out with .json) without compiling anything",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        _worker(args.worker)
        return 0
    if args.from_json:
        saved = args.out.with_suffix(".json")
        if not saved.is_file():
            parser.error(f"--from-json: {saved} does not exist (run without --from-json first)")
        doc = json.loads(saved.read_text())
        args.out.write_text(render(doc["rows"], doc["meta"]))
        print(f"wrote {args.out} from {saved}")
        return 0
    from experiments.scaling.protocol import STUDY_PRESETS

    p = STUDY_PRESETS["gpt2"]
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    meshes = [m.strip() for m in args.meshes.split(";") if m.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad or not sizes or not meshes:
        parser.error(f"--sizes must be from {SIZES}, got {args.sizes!r}")
    cases = [c for c in default_cases(p.batch_size) if c.size in sizes and c.mesh in meshes]
    command = "python -m experiments.memory_check " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    import jax

    from myojax.progress import Progress

    t0 = time.perf_counter()
    load_start = os.getloadavg()
    rows = []
    bar = Progress(len(cases), 0, None, unit="case", desc="memory check")
    for i, case in enumerate(cases):
        result = measure_in_subprocess(case, DEVICES, args.timeout)
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
    meta = {
        "command": command.strip(),
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows, meta))
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
