"""The device mesh: a ``(data, fsdp)`` grid of all devices of all processes, and the
shardings every jit in myojax uses for batches and replicated values.

``data`` is pure data parallelism (parameters replicated); ``fsdp`` is fully sharded data
parallelism (parameters, gradients and optimizer state sharded, gathered layer by layer inside
the step). The batch is split over both axes, so every device sees
``global_batch / (data * fsdp)`` sequences.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA: str = "data"
FSDP: str = "fsdp"
MESH_AXES: tuple[str, str] = (DATA, FSDP)
BATCH_AXES: tuple[str, str] = (DATA, FSDP)  # the batch dimension is split over both axes


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Axis sizes of the device mesh; exactly one may be -1 ("all remaining devices").

    The default puts every device on ``data`` (plain data parallelism).
    """

    data: int = -1
    fsdp: int = 1

    def __post_init__(self) -> None:
        sizes = {DATA: self.data, FSDP: self.fsdp}
        for name, size in sizes.items():
            if not isinstance(size, int) or isinstance(size, bool) or (size < 1 and size != -1):
                raise ValueError(
                    f"mesh axis {name!r} must be a positive integer or -1, got {size!r}"
                )
        if list(sizes.values()).count(-1) > 1:
            raise ValueError("at most one mesh axis may be -1 (fill with the remaining devices)")

    @classmethod
    def parse(cls, text: str) -> MeshConfig:
        """Parse ``"data=2,fsdp=4"``; axes left out have size 1 (``""`` is the default config)."""
        text = text.strip()
        if not text:
            return cls()
        sizes: dict[str, int] = {}
        for item in text.split(","):
            match = re.fullmatch(r"\s*([A-Za-z_]+)\s*=\s*(-?\d+)\s*", item)
            if match is None:
                raise ValueError(
                    f"bad mesh spec {text!r}: expected comma-separated AXIS=SIZE items such as "
                    f"'data=2,fsdp=4' (axes: {', '.join(MESH_AXES)}); could not read {item!r}"
                )
            name, size = match.group(1), int(match.group(2))
            if name not in MESH_AXES:
                raise ValueError(
                    f"bad mesh spec {text!r}: unknown axis {name!r}; axes are {MESH_AXES}"
                )
            if name in sizes:
                raise ValueError(f"bad mesh spec {text!r}: axis {name!r} given twice")
            sizes[name] = size
        return cls(**{name: sizes.get(name, 1) for name in MESH_AXES})

    def resolve(self, n_devices: int) -> tuple[int, int]:
        """Concrete ``(data, fsdp)`` sizes for ``n_devices``; the product must match exactly."""
        if n_devices < 1:
            raise ValueError(f"need at least one device, got {n_devices}")
        sizes = [self.data, self.fsdp]
        if -1 in sizes:
            known = math.prod(s for s in sizes if s != -1)
            if n_devices % known:
                raise ValueError(
                    f"mesh {self}: {n_devices} devices are not divisible by the fixed axis size "
                    f"{known}, so the -1 axis cannot be filled"
                )
            sizes = [n_devices // known if s == -1 else s for s in sizes]
        if math.prod(sizes) != n_devices:
            raise ValueError(
                f"mesh data={sizes[0]},fsdp={sizes[1]} has {math.prod(sizes)} devices but "
                f"{n_devices} are available; the product of the axis sizes must equal the "
                f"device count (use -1 on one axis to fill)"
            )
        return sizes[0], sizes[1]

    def __str__(self) -> str:
        return f"data={self.data},fsdp={self.fsdp}"


def make_mesh(cfg: MeshConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ``("data", "fsdp")`` mesh over ``devices`` (default: all devices of all processes).

    Device order comes from ``jax.make_mesh`` (topology-aware on TPU). On multi-slice TPU the
    ``data`` axis spans the slices (slow DCN links carry only the gradient all-reduce).
    """
    devices = list(jax.devices() if devices is None else devices)
    data, fsdp = cfg.resolve(len(devices))
    axis_types = (AxisType.Auto, AxisType.Auto)  # shardings come from jit, not from types
    n_slices = len({getattr(d, "slice_index", 0) for d in devices})
    if n_slices > 1:
        if data % n_slices:
            raise ValueError(
                f"mesh {cfg}: {n_slices} TPU slices require the data axis ({data}) to be a "
                f"multiple of the slice count"
            )
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_hybrid_device_mesh(
            (data // n_slices, fsdp), (n_slices, 1), devices
        )
        return Mesh(grid, MESH_AXES, axis_types=axis_types)
    return jax.make_mesh((data, fsdp), MESH_AXES, axis_types, devices=devices)


def mesh_sizes(mesh: Mesh) -> tuple[int, int]:
    return mesh.shape[DATA], mesh.shape[FSDP]


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over ``("data", "fsdp")``, the rest replicated.

    A sharding prefix: one value serves every leaf of a ``Batch``.
    """
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Sequences per device; raises if the batch does not split evenly over the mesh."""
    shards = math.prod(mesh.shape[a] for a in BATCH_AXES)
    if global_batch_size % shards:
        data, fsdp = mesh_sizes(mesh)
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by data*fsdp = "
            f"{data}*{fsdp} = {shards}, the number of batch shards of the mesh"
        )
    return global_batch_size // shards


def in_mesh(fn: Callable, mesh: Mesh) -> Callable:
    """``fn`` traced under ``mesh``, so the model gathers each layer's weights where it uses
    them (``myojax.model.gathered``: FSDP) instead of letting XLA split heads and replicate the
    batch."""

    @functools.wraps(fn)
    def traced_in_mesh(*args: Any) -> Any:
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args)

    return traced_in_mesh
