"""Multi-host: starting the distributed runtime, which rows of a batch each process loads,
and the few host-level agreements the trainer needs (every process must stop, fail or save at
the same step).

``maybe_initialize_distributed`` must run before any other JAX call. Every helper here is a
no-op (no collective at all) in a single process.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jaxtyping import ArrayLike, Int, PyTree

from myojax.loss import Batch
from myojax.sharding.mesh import batch_sharding

# Explicit cluster description (any launcher; also what the localhost test uses).
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"  # host:port of process 0, e.g. 10.0.0.2:1234
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
# Force (1) or forbid (0) initialization when no explicit variables are set (TPU pods: 1).
ENV_FORCE = "MYOJAX_DISTRIBUTED"
# How many devices this process must drive (tpu/slurm/scaling.sbatch: the node's GPUs); a
# mismatch (JAX's SLURM detection handing each process one GPU, a CPU-only jaxlib) is an error.
ENV_LOCAL_DEVICES = "MYOJAX_LOCAL_DEVICES"
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

    Then, when ``MYOJAX_LOCAL_DEVICES`` is set, ``check_local_devices`` asserts that this
    process drives exactly that many devices.
    """
    env = os.environ if env is None else env
    up = _initialize(env, initialization_timeout)
    if up and jax.process_count() > 1:
        _watch_peers()
    check_local_devices(env)
    return up


# One process's failure, announced to the others through the coordination service's key-value
# store: without it the others wait in their next collective until JAX's heartbeat timeout
# (100 s) and the failed process itself waits at the 300 s shutdown barrier.
FAILURE_KEY = "myojax/failed"
PEER_POLL_S = 1.0  # the others stop within about this long after the announcement


def _client():
    from jax._src import distributed as jax_distributed

    return jax_distributed.global_state.client


def _whoami() -> str:
    return f"process {jax.process_index()} of {jax.process_count()} on {socket.gethostname()}"


def fail_everywhere(line: str, code: int) -> None:
    """Print ``line`` (this process's ``error:`` line), tell every other process that this one
    failed, and exit at once with ``code`` (no shutdown barrier). Returns (does nothing) in a
    single process: the caller exits normally."""
    if not jax.distributed.is_initialized() or jax.process_count() == 1:
        return
    message = f"{_whoami()} failed: {line.removeprefix('error: ')}"
    print(line, file=sys.stderr, flush=True)
    # Fails when another process announced first: that one stops everyone anyway.
    with contextlib.suppress(Exception):
        _client().key_value_set(FAILURE_KEY, message)
    if jax.process_index() == 0:  # the coordination service dies with this process
        time.sleep(2 * PEER_POLL_S)
    sys.stdout.flush()
    os._exit(code)


@functools.cache
def _watch_peers() -> None:
    """A daemon thread that ends this process, with one line naming the failed process, once
    another process announces its failure (``fail_everywhere``)."""
    client, me, stopping = _client(), jax.process_index(), threading.Event()
    atexit.register(stopping.set)  # runs before JAX's own shutdown (registered earlier)

    def watch() -> None:
        while not stopping.is_set():
            try:
                message = client.blocking_key_value_get(FAILURE_KEY, int(PEER_POLL_S * 1000))
            except Exception as e:
                if "DEADLINE_EXCEEDED" in str(e):
                    continue
                # Shut down (jax.distributed.shutdown cancels the call) or the coordination
                # service gone: JAX's own heartbeat ends this process in the latter case.
                return
            if message.startswith(f"process {me} "):
                return
            print(f"error: stopping {_whoami()}: {message}", file=sys.stderr, flush=True)
            os._exit(1)

    threading.Thread(target=watch, name="myojax-peer-watch", daemon=True).start()


def check_local_devices(env: Mapping[str, str]) -> None:
    """Raise unless ``jax.local_device_count()`` equals ``MYOJAX_LOCAL_DEVICES`` (when set)."""
    expected = env.get(ENV_LOCAL_DEVICES, "").strip()
    if not expected:
        return
    if not expected.isdigit() or int(expected) < 1:
        raise ValueError(f"{ENV_LOCAL_DEVICES} must be a positive integer, got {expected!r}")
    devices = jax.local_devices()
    if len(devices) != int(expected):
        raise ValueError(
            f"process {jax.process_index()} on {socket.gethostname()} drives {len(devices)} "
            f"{devices[0].platform} device(s), expected {ENV_LOCAL_DEVICES}={expected}: check "
            "JAX_LOCAL_DEVICE_IDS, CUDA_VISIBLE_DEVICES, JAX_PLATFORMS and the job's GPUs"
        )


def _initialize(env: Mapping[str, str], initialization_timeout: int) -> bool:
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


def global_batch(local_windows: Int[np.ndarray, "b T1"], mesh: Mesh) -> Batch:
    """This process's rows of a batch of windows -> the global batch, split over (data, fsdp);
    no cross-host copy."""
    return host_local_batch_to_global(Batch.from_windows(np.asarray(local_windows)), mesh)


def gather_ints(value: int) -> np.ndarray:
    """``value`` from every process, in process order (a host-level all-gather of one int)."""
    if jax.process_count() == 1:
        return np.array([value])
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.int32(value))).reshape(-1)


def sync(name: str) -> None:
    """Block until every process reaches the barrier ``name``."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
