"""Sharding: the device mesh, FSDP / data-parallel partition rules, multi-host helpers and the
per-device memory plan.

- ``mesh``: ``MeshConfig`` (``"data=2,fsdp=4"``), ``make_mesh`` and the batch / replicated
  shardings;
- ``rules``: partition specs as pure functions of a leaf's path and shape, sharded state creation
  and the sharded, donated train-step jit;
- ``distributed``: ``jax.distributed`` start-up, per-process batch rows, the global batch and
  host-level agreement;
- ``memory_plan``: bytes per device (the command: ``python -m myojax.sharding plan``).
"""

from jax.sharding import Mesh

from myojax.sharding.distributed import (
    ENV_COORDINATOR,
    ENV_FORCE,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    gather_ints,
    global_batch,
    host_local_batch_to_global,
    is_main_process,
    maybe_initialize_distributed,
    process_batch_indices,
    sync,
)
from myojax.sharding.mesh import (
    BATCH_AXES,
    DATA,
    FSDP,
    MESH_AXES,
    MeshConfig,
    batch_sharding,
    check_batch_size,
    in_mesh,
    make_mesh,
    mesh_sizes,
    replicated,
)
from myojax.sharding.rules import (
    DEFAULT_MIN_SHARD_SIZE,
    STACKED_NAMES,
    abstract_state,
    create_sharded_state,
    fsdp_partition_spec,
    is_stacked_path,
    partition_specs,
    shard_train_step,
    state_shardings,
)

__all__ = [
    "BATCH_AXES",
    "DATA",
    "DEFAULT_MIN_SHARD_SIZE",
    "ENV_COORDINATOR",
    "ENV_FORCE",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "FSDP",
    "MESH_AXES",
    "STACKED_NAMES",
    "Mesh",
    "MeshConfig",
    "abstract_state",
    "batch_sharding",
    "check_batch_size",
    "create_sharded_state",
    "fsdp_partition_spec",
    "gather_ints",
    "global_batch",
    "host_local_batch_to_global",
    "in_mesh",
    "is_main_process",
    "is_stacked_path",
    "make_mesh",
    "maybe_initialize_distributed",
    "mesh_sizes",
    "partition_specs",
    "process_batch_indices",
    "replicated",
    "shard_train_step",
    "state_shardings",
    "sync",
]
