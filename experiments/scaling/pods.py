"""Pod plans for the scaling study: which mesh, microbatch count and remat policy each run needs
on a given accelerator, its memory per device (``myojax.sharding.memory_plan``) and its wall
time from the FLOP count at a stated MFU.

    python -m experiments.scaling --preset gpt2 --dry-run --accelerator v4-32

Per run the search takes the least recomputation first (remat none, then dots, then full), then
the least sharding (FSDP over the fewest devices, the rest data-parallel: fewer all-gathers),
then the fewest microbatches, and returns the first configuration whose planned bytes fit the
device's memory less the planner's headroom.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from experiments.scaling import protocol
from experiments.scaling.protocol import StudyPreset
from myojax.config import ModelConfig
from myojax.model import train_flops_per_token
from myojax.sharding import MeshConfig
from myojax.sharding.memory_plan import GIB, MemoryPlan, make_plan


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A slice or node: its JAX devices, their memory and dense matmul peaks."""

    name: str
    devices: int  # JAX devices (TPU chips, GPUs)
    hbm_gib: float  # memory per device, GiB
    peak_bf16_tflops: float  # dense (no sparsity) bf16 peak per device
    note: str
    # Dense peak of float32 matmuls at JAX's default precision: one bf16 pass on TPU (the
    # bf16 peak), TF32 on NVIDIA GPUs (half the bf16 peak on H100).
    peak_float32_tflops: float

    def peak_tflops(self, compute_dtype: str) -> float:
        """Per-device peak for matmuls computed in ``compute_dtype``."""
        peaks = {"bfloat16": self.peak_bf16_tflops, "float32": self.peak_float32_tflops}
        if compute_dtype not in peaks:
            raise ValueError(f"no peak for compute dtype {compute_dtype!r} (know {sorted(peaks)})")
        return peaks[compute_dtype]


# Public specifications (Google Cloud TPU system-architecture pages for v4, v5e and v5p; the
# NVIDIA H100 Tensor Core GPU datasheet). TPU v4 and v5p slice names count TensorCores, two per
# chip (a chip is one JAX device, "megacore"); v5e names count chips (one TensorCore each).
ACCELERATORS: dict[str, Accelerator] = {
    a.name: a
    for a in (
        # TPU v4: 32 GiB HBM2 per chip, 275 TFLOP/s bf16 per chip; v4-32 = 16 chips.
        Accelerator("v4-32", 16, 32.0, 275.0, "TPU v4, 16 chips", 275.0),
        # TPU v5e: 16 GiB HBM2 per chip, 197 TFLOP/s bf16 per chip; v5e-64 = 64 chips.
        Accelerator("v5e-64", 64, 16.0, 197.0, "TPU v5e, 64 chips", 197.0),
        # TPU v5p: 95 GiB HBM2e per chip, 459 TFLOP/s bf16 per chip; v5p-128 = 64 chips.
        Accelerator("v5p-128", 64, 95.0, 459.0, "TPU v5p, 64 chips", 459.0),
        # H100 SXM5: 80 GB HBM3 (74.5 GiB), 989 TFLOP/s dense bf16 (1979 with sparsity),
        # 495 TFLOP/s dense TF32 (989 with sparsity).
        Accelerator("8xh100", 8, 80e9 / GIB, 989.0, "one node of 8 H100 SXM5 GPUs", 495.0),
    )
}


@dataclasses.dataclass(frozen=True)
class PodPlan:
    """How one run is laid out on an accelerator, and what it costs."""

    mesh: str
    microbatches: int
    remat: str
    plan: MemoryPlan  # the planner's bytes for exactly this layout
    hours: float  # predicted wall time at the stated MFU, recomputation included

    @property
    def fits(self) -> bool:
        return bool(self.plan.fits())


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _meshes(devices: int) -> list[str]:
    """``data=D,fsdp=F`` for every F dividing the device count, fewest FSDP devices first."""
    return [f"data={devices // f},fsdp={f}" for f in _divisors(devices)]


def recompute_fraction(config: ModelConfig, remat: str) -> float:
    """Extra hardware FLOPs of the backward pass's recomputation, as a fraction of the model
    FLOPs: ``full`` reruns every block's forward (its matmuls and attention), ``dots`` keeps
    the weight matmuls' outputs and reruns the attention products (which have batch
    dimensions)."""
    d, layers, t = config.d_model, config.n_layers, config.seq_len
    attention = 4 * layers * t * d  # forward FLOPs per token of scores and mixing
    blocks = 2 * layers * (4 * d * d + 2 * d * config.ff_dim) + attention  # weight matmuls
    extra = {"none": 0.0, "dots": attention, "full": blocks}[remat]
    return extra / train_flops_per_token(config)


@functools.cache
def _plan(
    config: ModelConfig, mesh: str, batch_size: int, microbatches: int, hbm_gib: float
) -> MemoryPlan:
    return make_plan(
        config,
        MeshConfig.parse(mesh),
        batch_size=batch_size,
        microbatches=microbatches,
        device_memory_gib=hbm_gib,
    )


def plan_run(
    config: ModelConfig, steps: int, batch_size: int, acc: Accelerator, mfu: float
) -> PodPlan | None:
    """The first layout that fits (module docstring's order), or None when none does."""
    if batch_size % acc.devices:
        raise ValueError(
            f"global batch {batch_size} does not split over the {acc.devices} devices of {acc.name}"
        )
    per_device = batch_size // acc.devices
    for remat in ("none", "dots", "full"):
        model = config.replace(remat=remat)
        for mesh in _meshes(acc.devices):
            for k in _divisors(per_device):
                plan = _plan(model, mesh, batch_size, k, acc.hbm_gib)
                if plan.fits():
                    return PodPlan(mesh, k, remat, plan, _hours(model, steps, batch_size, acc, mfu))
    return None


def _hours(config: ModelConfig, steps: int, batch_size: int, acc: Accelerator, mfu: float) -> float:
    flops = train_flops_per_token(config) * steps * batch_size * config.seq_len
    flops *= 1 + recompute_fraction(config, config.remat)
    peak = acc.peak_tflops(config.compute_dtype)
    return flops / (acc.devices * peak * 1e12 * mfu) / 3600


def pod_plan_rows(
    p: StudyPreset, modes: Sequence[str], acc: Accelerator, mfu: float
) -> list[tuple[protocol.RunSpec, PodPlan | None]]:
    """Every distinct run the study trains (the plain plan's ``protocol.plan_specs``: sweep,
    sizes, undertraining and transfer) with its layout, None where nothing fits."""
    return [
        (spec, plan_run(spec.model, spec.steps, p.batch_size, acc, mfu))
        for spec in protocol.plan_specs(p, modes)
    ]


def print_pod_plan(p: StudyPreset, modes: Sequence[str], accelerator: str, mfu: float) -> None:
    """Per run of the study: mesh, microbatches, remat, planned GiB per device, hours."""
    acc = ACCELERATORS[accelerator]
    peak = acc.peak_tflops(p.compute_dtype)
    print(
        f"\npod plan on {acc.name} ({acc.note}: {acc.hbm_gib:.1f} GiB and "
        f"{peak:g} TFLOP/s dense {p.compute_dtype} matmuls per device) at {mfu:.0%} MFU; "
        f"global batch {p.batch_size} = {p.batch_size // acc.devices} sequence(s) per device; "
        "memory from the planner (python -m myojax.sharding plan, within 25% of XLA: "
        "results/memory_plan.md) for the preset's float32 parameters, 10% headroom; hours "
        "= training FLOPs (+ remat recomputation) / (devices x peak x MFU), the peak of the "
        "preset's compute dtype at JAX's default matmul precision (TPU: bf16 passes; "
        "NVIDIA: TF32 for float32)"
    )
    print(
        f"{'mode':<10} {'role':<10} {'size':<12} {'lr':>8} {'mesh':<16} {'micro':>5} "
        f"{'remat':<5} {'GiB/dev':>8} {'of':>6} {'hours':>9}"
    )
    rows = pod_plan_rows(p, modes, acc, mfu)
    total, flops = 0.0, 0
    for spec, row in rows:
        flops += train_flops_per_token(spec.model) * spec.tokens
        lr = f"{spec.lr:g}" if spec.role == "sweep" else "best"
        head = f"{spec.mode:<10} {spec.role:<10} {spec.size.name:<12} {lr:>8}"
        if row is None:
            print(f"{head} does not fit on {acc.name} with any mesh, microbatch count or remat")
            continue
        total += row.hours
        print(
            f"{head} {row.mesh:<16} {row.microbatches:>5} {row.remat:<5} "
            f"{row.plan.total() / GIB:>8.2f} {acc.hbm_gib:>6.1f} {row.hours:>9.2f}"
        )
    unfit = sum(row is None for _, row in rows)
    print(
        f"total: {len(rows)} runs, {flops:.3e} training FLOPs (as the plan above), "
        f"{total:,.1f} hours on one {acc.name} ({total * acc.devices:,.0f} device-hours)"
        + (f"; {unfit} runs that fit nowhere are not counted" if unfit else "")
    )


def print_isoflop_pod_plan(design, accelerator: str, mfu: float) -> None:
    """Per (budget, size) of an isoFLOP design (``experiments.scaling.isoflop.Design``): mesh,
    microbatches, remat, planned GiB per device and hours, per mode and seed."""
    acc, p = ACCELERATORS[accelerator], design.preset.base
    runs_per = len(p.seeds) * 2  # modes x seeds
    print(f"\nisoFLOP pod plan on {acc.name} ({acc.note}) at {mfu:.0%} MFU, {runs_per} runs each")
    print(
        f"{'budget':>9} {'size':<10} {'N':>13} {'tokens':>15} {'mesh':<16} {'micro':>5} "
        f"{'remat':<5} {'GiB/dev':>8} {'hours':>8}"
    )
    total = 0.0
    for r in design.runs:
        config = protocol.model_config(p, r.size, "myopic")
        row = plan_run(config, r.steps, p.batch_size, acc, mfu)
        head = f"{r.budget:>9.2g} {r.size.name:<10} {r.non_embedding:>13,} {r.tokens:>15,}"
        if row is None:
            print(f"{head} does not fit on {acc.name}")
            continue
        total += row.hours * runs_per
        print(
            f"{head} {row.mesh:<16} {row.microbatches:>5} {row.remat:<5} "
            f"{row.plan.total() / GIB:>8.2f} {row.hours:>8.2f}"
        )
    print(f"total: {total:,.1f} hours on one {acc.name} (lr sweep not included)")
