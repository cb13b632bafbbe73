"""Device mesh, FSDP / data-parallel partition rules, sharded init and train steps, multi-host.

The mesh has two axes: ``data`` (pure data parallelism: parameters replicated) and ``fsdp``
(fully sharded data parallelism: parameters, gradients and optimizer state sharded, gathered
layer by layer inside the step). The batch is split over both axes, so every device sees
``global_batch / (data * fsdp)`` sequences.

Everything here is explicit: partition rules are pure functions of a leaf's path and shape,
turned into ``NamedSharding``s on a concrete mesh, and every ``jax.jit`` gets ``in_shardings``,
``out_shardings`` and donation. State is created sharded (``jit`` with ``out_shardings``), so no
host ever materializes a full copy.

Multi-host: ``maybe_initialize_distributed`` must run before any other JAX call; each process then
feeds only its own rows of the batch (``process_batch_indices`` / ``host_local_batch_to_global``).

``python -m myojax.sharding plan ...`` prints the per-device memory plan (see
``myojax.memory_plan``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
from jaxtyping import ArrayLike, PyTree

DATA: str = "data"
FSDP: str = "fsdp"
MESH_AXES: tuple[str, str] = (DATA, FSDP)
BATCH_AXES: tuple[str, str] = (DATA, FSDP)  # the batch dimension is split over both axes
# Leaves with fewer elements stay replicated: gathering them costs more latency than it saves.
DEFAULT_MIN_SHARD_SIZE: int = 2**16
# Pytree attribute names whose leaves carry a leading stacked-layer axis (scanned over).
STACKED_NAMES: tuple[str, ...] = ("blocks",)

State = TypeVar("State")
Metrics = TypeVar("Metrics")


# --------------------------------------------------------------------------------------------
# Mesh configuration


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


# --------------------------------------------------------------------------------------------
# Partition rules (pure functions of path and shape)


def fsdp_partition_spec(
    shape: Sequence[int],
    fsdp_size: int,
    *,
    stacked: bool = False,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
) -> PartitionSpec:
    """Shard the largest dimension divisible by ``fsdp_size`` over ``fsdp``; else replicate.

    A ``stacked`` leaf's leading axis indexes scanned layers and is never sharded: ``lax.scan``
    slices one layer per iteration, and slicing a sharded axis would make every device fetch
    (or XLA gather) the whole stack each step. Sharding a feature axis instead lets each
    iteration all-gather exactly one layer.
    """
    if fsdp_size == 1 or math.prod(shape) < min_shard_size:
        return PartitionSpec()
    first = 1 if stacked else 0
    candidates = [i for i in range(first, len(shape)) if shape[i] % fsdp_size == 0]
    if not candidates:
        return PartitionSpec()
    axis = max(candidates, key=lambda i: (shape[i], -i))  # largest; first on ties
    return PartitionSpec(*([None] * axis + [FSDP]))


def is_stacked_path(path: Sequence[Any], stacked_names: Sequence[str] = STACKED_NAMES) -> bool:
    """Whether a leaf lives under a stacked-layer field (e.g. ``GPT.blocks``, or Adam's
    ``mu.blocks``, whose tree mirrors the parameters)."""
    for key in path:
        name = getattr(key, "name", getattr(key, "key", None))
        if name in stacked_names:
            return True
    return False


def _check_array_leaf(path: Sequence[Any], leaf: object) -> tuple[int, ...]:
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        raise TypeError(
            f"state leaf at {jax.tree_util.keystr(tuple(path))} is {type(leaf).__name__}, not an "
            f"array; sharded state must be a pytree of arrays (mark Python values as static "
            f"fields, e.g. eqx.field(static=True))"
        )
    return tuple(leaf.shape)


def partition_specs(
    tree: PyTree,
    fsdp_size: int,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> PyTree[PartitionSpec]:
    """A ``PartitionSpec`` for every array leaf of ``tree`` (arrays or ``ShapeDtypeStruct``s).

    Works for any state: parameters, Adam moments (same tree under ``mu`` / ``nu``), step
    counters (scalars: replicated).
    """

    def spec(path: Sequence[Any], leaf: object) -> PartitionSpec:
        shape = _check_array_leaf(path, leaf)
        return fsdp_partition_spec(
            shape,
            fsdp_size,
            stacked=is_stacked_path(path, stacked_names),
            min_shard_size=min_shard_size,
        )

    return jax.tree_util.tree_map_with_path(spec, tree)


def state_shardings(
    tree: PyTree,
    mesh: Mesh,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> PyTree[NamedSharding]:
    """``NamedSharding``s on ``mesh`` for every array leaf of ``tree`` (FSDP over ``fsdp``,
    replicated over ``data``)."""
    specs = partition_specs(
        tree, mesh.shape[FSDP], min_shard_size=min_shard_size, stacked_names=stacked_names
    )
    return jax.tree.map(
        lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )


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


def abstract_state(tree: PyTree, shardings: PyTree[NamedSharding]) -> PyTree[jax.ShapeDtypeStruct]:
    """``ShapeDtypeStruct``s carrying target shardings: the restore target for orbax, which
    then reads each device's shard directly onto the (possibly different) mesh."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


# --------------------------------------------------------------------------------------------
# Sharded creation and train steps


def create_sharded_state(
    init_fn: Callable[[jax.Array], State],
    key: jax.Array,
    mesh: Mesh,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> tuple[State, PyTree[NamedSharding]]:
    """Run ``init_fn(key)`` already sharded and return ``(state, shardings)``.

    Shapes come from ``jax.eval_shape`` (no allocation); the init is then jitted with
    ``out_shardings`` so every device computes only its own shard. With JAX's partitionable
    threefry (the default) the values equal those of an unsharded init.
    """
    shapes = jax.eval_shape(init_fn, key)
    shardings = state_shardings(
        shapes, mesh, min_shard_size=min_shard_size, stacked_names=stacked_names
    )
    state = jax.jit(init_fn, in_shardings=replicated(mesh), out_shardings=shardings)(key)
    return state, shardings


def shard_train_step(
    step_fn: Callable[[State, Any], tuple[State, Metrics]],
    mesh: Mesh,
    state_shardings: PyTree[NamedSharding],
    batch_sharding: PyTree[NamedSharding] | NamedSharding,
    *,
    donate: bool = True,
) -> Callable[[State, Any], tuple[State, Metrics]]:
    """Jit a pure ``step(state, batch) -> (state, metrics)`` for the mesh.

    State keeps its shardings across steps (``out_shardings`` = ``in_shardings``), so there is
    no resharding between steps; metrics come back replicated (cheap scalars, readable on
    every host). ``donate`` lets XLA update the state in place: the caller must not reuse the
    state it passed in.
    """
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch_sharding),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,) if donate else (),
    )


# --------------------------------------------------------------------------------------------
# Multi-host

# Explicit cluster description (any launcher; also what the localhost test uses).
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"  # host:port of process 0, e.g. 10.0.0.2:1234
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
# Force (1) or forbid (0) initialization when no explicit variables are set (TPU pods: 1).
ENV_FORCE = "MYOJAX_DISTRIBUTED"
_SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_STEP_NODELIST",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_LOCALID",
)


def maybe_initialize_distributed(
    env: Mapping[str, str] | None = None, *, initialization_timeout: int = 300
) -> bool:
    """Call ``jax.distributed.initialize`` when this process is one of several; return whether
    the distributed runtime is up. Must run before any other JAX call.

    Decided from the environment, first match wins:

    * already initialized -> True;
    * ``MYOJAX_DISTRIBUTED=0`` -> never initialize (single process);
    * ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0) with ``JAX_NUM_PROCESSES`` and
      ``JAX_PROCESS_ID`` -> initialize with exactly these (``JAX_LOCAL_DEVICE_IDS``, optional,
      is read by JAX itself);
    * a SLURM step with ``SLURM_NTASKS`` > 1 (``srun``) -> JAX's SLURM auto-detection;
    * a multi-host TPU (``TPU_WORKER_HOSTNAMES`` lists several hosts) or
      ``MYOJAX_DISTRIBUTED=1`` (what ``tpu/launch.sh`` sets on pods) -> JAX's auto-detection
      (TPU metadata server, SLURM, Open MPI, Kubernetes);
    * otherwise -> False (single process).
    """
    env = os.environ if env is None else env
    if jax.distributed.is_initialized():
        return True
    force = env.get(ENV_FORCE, "").strip()
    if force not in ("", "0", "1"):
        raise ValueError(f"{ENV_FORCE} must be 0 or 1, got {force!r}")
    if force == "0":
        return False
    if env.get(ENV_COORDINATOR):
        missing = [v for v in (ENV_NUM_PROCESSES, ENV_PROCESS_ID) if not env.get(v)]
        if missing:
            raise ValueError(
                f"{ENV_COORDINATOR} is set but {' and '.join(missing)} is not; set all three "
                f"(coordinator host:port, process count, this process's id)"
            )
        try:
            num_processes, process_id = int(env[ENV_NUM_PROCESSES]), int(env[ENV_PROCESS_ID])
        except ValueError as err:
            raise ValueError(f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be integers") from err
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"{ENV_PROCESS_ID}={process_id} must be in [0, {ENV_NUM_PROCESSES}={num_processes})"
            )
        jax.distributed.initialize(
            coordinator_address=env[ENV_COORDINATOR],
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=initialization_timeout,
        )
        return True
    partial = [v for v in (ENV_NUM_PROCESSES, ENV_PROCESS_ID) if env.get(v)]
    if partial:
        raise ValueError(
            f"{' and '.join(partial)} set without {ENV_COORDINATOR}; set the coordinator's "
            f"host:port too (or unset them to rely on cluster auto-detection)"
        )
    slurm = all(v in env for v in _SLURM_VARS) and int(env["SLURM_NTASKS"]) > 1
    tpu_pod = "," in env.get("TPU_WORKER_HOSTNAMES", "")
    if slurm or tpu_pod or force == "1":
        jax.distributed.initialize(initialization_timeout=initialization_timeout)
        return True
    return False


def is_main_process() -> bool:
    """Process 0 alone writes logs, metrics and reports."""
    return jax.process_index() == 0


def process_batch_indices(global_batch_size: int, sharding: NamedSharding) -> np.ndarray:
    """Rows of the global batch this process must load, in the order that
    ``host_local_batch_to_global`` places them on its devices.

    Processes get disjoint rows; rows replicated on several of this process's devices
    (the ``data``/``fsdp`` split of a batch never replicates, but a custom sharding may)
    appear once.
    """
    index_map = sharding.addressable_devices_indices_map((global_batch_size,))
    starts: dict[int, int] = {}
    for index in index_map.values():
        rows = index[0]
        start, stop, _ = rows.indices(global_batch_size)
        starts[start] = stop
    return np.concatenate([np.arange(s, starts[s]) for s in sorted(starts)])


def _local_batch_shards(sharding: NamedSharding) -> int:
    """How many distinct blocks of batch rows this process's devices hold."""
    probe = (sharding.mesh.size,)  # divisible by any split of the mesh axes
    index_map = sharding.addressable_devices_indices_map(probe)
    return len({index[0].indices(probe[0])[0] for index in index_map.values()})


def host_local_batch_to_global(
    batch: PyTree[ArrayLike], mesh: Mesh, sharding: NamedSharding | None = None
) -> PyTree[jax.Array]:
    """Assemble a global, batch-sharded array from each process's own rows (no cross-host copy).

    Every process passes its local rows (``process_batch_indices`` says which); the global
    batch size is the local one times the number of processes the batch spans.
    """
    sharding = batch_sharding(mesh) if sharding is None else sharding

    def one(leaf: ArrayLike) -> jax.Array:
        local = np.asarray(leaf)
        if local.ndim == 0:
            raise ValueError("batch leaves need a leading batch dimension")
        local_shards = _local_batch_shards(sharding)
        if local.shape[0] % local_shards:
            raise ValueError(
                f"process {jax.process_index()} holds {local_shards} batch shards, but its local "
                f"batch has {local.shape[0]} rows; the local batch must be a multiple of "
                f"{local_shards}"
            )
        return jax.make_array_from_process_local_data(sharding, local)

    return jax.tree.map(one, batch)


if __name__ == "__main__":
    from myojax.memory_plan import main

    raise SystemExit(main())
