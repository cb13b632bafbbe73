"""``TrainConfig``: everything about a run except the model; frozen and validated on
construction, with errors that name the field."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from myojax.sharding.mesh import MeshConfig
from myojax.sharding.rules import DEFAULT_MIN_SHARD_SIZE


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything about a run except the model. Validated on construction."""

    steps: int = _field(300, "optimizer steps")
    batch_size: int = _field(32, "global batch size in sequences (split across processes)")
    microbatches: int = _field(
        1,
        "gradient accumulation: split each device's share of the batch into this many "
        "microbatches, run one at a time (mean gradient, one update); must divide it",
    )
    lr: float = _field(3e-3, "peak learning rate")
    warmup_steps: int = _field(30, "linear warmup from 0 to lr")
    min_lr_ratio: float = _field(0.1, "cosine decay ends at lr * min_lr_ratio at the last step")
    weight_decay: float = _field(0.1, "AdamW decoupled weight decay (hidden matrices, readout)")
    grad_clip: float = _field(1.0, "clip the global gradient norm to this; 0 disables")
    beta1: float = _field(0.9, "Adam beta1")
    beta2: float = _field(0.95, "Adam beta2")
    eps: float = _field(1e-8, "Adam epsilon")
    log_interval: int = _field(10, "write a metrics row every this many steps")
    eval_interval: int = _field(
        100, "evaluate on held-out data every this many steps (and at the end)"
    )
    eval_batches: int = _field(8, "held-out batches per evaluation (the same windows each time)")
    checkpoint_interval: int = _field(
        100, "save a checkpoint every this many steps (and at the end)"
    )
    checkpoint_minutes: float = _field(
        0.0,
        "also save when this many minutes have passed since the last save (0: by steps only); "
        "for long runs on machines that can be preempted",
    )
    keep: int = _field(3, "keep the last this many checkpoints")
    seed: int = _field(0, "root PRNG seed (init and data)")
    data: str = _field(
        "shakespeare",
        "'shakespeare' (embedded, bytes), a built registry corpus ('pycode') or a token-shard "
        "directory",
    )
    disjoint_windows: bool = _field(
        False,
        "train on a seeded permutation of non-overlapping windows (no training token read "
        "twice; refused if the run needs more windows than the split holds)",
    )
    out: str = _field("runs/run", "run directory (config, metrics, checkpoints)")
    mesh: str = _field(
        "data=-1",
        "device mesh over all devices of all processes, e.g. "
        "'data=2,fsdp=4'; one axis may be -1 (fill)",
    )
    min_shard_size: int = _field(
        DEFAULT_MIN_SHARD_SIZE, "FSDP: state leaves with fewer elements stay replicated"
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v, t = getattr(self, f.name), hints[f.name]
            if t is float and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
            elif not isinstance(v, t) or (isinstance(v, bool) and t is not bool):
                raise ValueError(f"TrainConfig.{f.name} must be {t.__name__}, got {v!r}")
        for name in (
            "steps",
            "batch_size",
            "microbatches",
            "log_interval",
            "eval_interval",
            "eval_batches",
            "checkpoint_interval",
            "keep",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        try:
            MeshConfig.parse(self.mesh)
        except ValueError as e:
            raise ValueError(f"TrainConfig.mesh: {e}") from None
        if self.batch_size % self.microbatches:
            raise ValueError(
                f"TrainConfig.microbatches ({self.microbatches}) must divide "
                f"TrainConfig.batch_size ({self.batch_size})"
            )
        if self.min_shard_size < 0:
            raise ValueError(f"TrainConfig.min_shard_size must be >= 0, got {self.min_shard_size}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"TrainConfig.warmup_steps must be in [0, steps={self.steps}), "
                f"got {self.warmup_steps}"
            )
        checks = {
            "lr": 0 < self.lr < math.inf,
            "min_lr_ratio": 0 <= self.min_lr_ratio <= 1,
            "weight_decay": 0 <= self.weight_decay < math.inf,
            "grad_clip": 0 <= self.grad_clip < math.inf,
            "beta1": 0 <= self.beta1 < 1,
            "beta2": 0 <= self.beta2 < 1,
            "eps": 0 < self.eps < math.inf,
            "seed": self.seed >= 0,
            "checkpoint_minutes": 0 <= self.checkpoint_minutes < math.inf,
            "data": bool(self.data),
            "out": bool(self.out),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name} has invalid value {getattr(self, name)!r}")

    def microbatch_size(self, n_devices: int) -> int:
        """Sequences per device in one microbatch on ``n_devices``; raises (naming the fields)
        when the batch does not split evenly over the mesh and then into microbatches."""
        data, fsdp = MeshConfig.parse(self.mesh).resolve(n_devices)
        per_device, rest = divmod(self.batch_size, data * fsdp)
        if rest:
            raise ValueError(
                f"TrainConfig.batch_size ({self.batch_size}) must be divisible by the mesh's "
                f"data*fsdp = {data}*{fsdp} = {data * fsdp} devices"
            )
        if per_device % self.microbatches:
            raise ValueError(
                f"TrainConfig.microbatches ({self.microbatches}) must divide the per-device "
                f"batch: batch_size {self.batch_size} / data*fsdp {data * fsdp} = {per_device} "
                "sequences per device"
            )
        return per_device // self.microbatches

    def replace(self, **changes: object) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
