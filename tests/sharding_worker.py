"""Subprocess side of tests/test_sharding.py: runs JAX with several (host-platform CPU) devices,
or as one of several processes, and prints one JSON result line.

Kept out of the pytest process because the device count and the distributed runtime are fixed
at JAX start-up. Commands:

* ``meshes``    — 8 devices: 5 AdamW steps on meshes 1x1 (one device), 1x8, 2x4, 8x1 and the
                  4-device reference of the multi-host run; losses, shardings, donation.
* ``multihost`` — one of two processes (2 devices each) joined through
                  ``jax.distributed`` on 127.0.0.1; per-host data; writes an orbax checkpoint.
* ``restore``   — one process restores that checkpoint onto a different mesh.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

TINY = dict(vocab_size=256, seq_len=16, d_model=32, n_layers=2, n_heads=4)
MIN_SHARD_SIZE = 1024  # tiny model: weight matrices sharded, biases and LayerNorms replicated
STEPS = 5
BATCH = 8
LR = 1e-2
MULTIHOST_MESH = "data=1,fsdp=4"  # fsdp spans both processes: each holds half of every matrix
RESTORE_MESH = "data=2,fsdp=4"


def _setup_jax(n_devices: int) -> None:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # Compile time dominates these tiny runs; XLA's optimizations only cost time here.
    jax.config.update("jax_disable_most_optimizations", True)


def global_batch(step: int) -> np.ndarray:
    """The global batch of ``step``: every process can build it; each loads only its rows."""
    rng = np.random.default_rng(1000 + step)
    # Arithmetic progressions mod V: learnable, so the loss moves and the trajectory is a real test.
    start = rng.integers(0, TINY["vocab_size"], size=(BATCH, 1))
    stride = rng.integers(1, 4, size=(BATCH, 1))
    positions = np.arange(TINY["seq_len"] + 1)[None, :]
    return ((start + stride * positions) % TINY["vocab_size"]).astype(np.int32)


def _optimizer():
    import optax

    return optax.adamw(LR, weight_decay=0.1)


def _init(key, mode: str = "standard"):
    """(model, AdamW state); one module-level function so its compiled init is reused."""
    from myojax import GPT, ModelConfig

    model = GPT(ModelConfig(**TINY, gradient_mode=mode), key=key)
    return model, _optimizer().init(model)


def _with_mode(tree, mode: str):
    """The same leaves under the tree structure of ``mode``: the gradient mode is static
    config (part of the treedef), parameters do not depend on it."""
    import jax

    shapes = jax.eval_shape(functools.partial(_init, mode=mode), jax.random.key(0))
    structure = jax.tree.structure(shapes)
    return jax.tree.unflatten(structure, jax.tree.leaves(tree))


def _train(mesh, mode: str, *, per_host: bool = False) -> dict:
    import equinox as eqx
    import jax

    from myojax import Batch, loss_and_grad
    from myojax.sharding import (
        batch_sharding,
        check_batch_size,
        create_sharded_state,
        host_local_batch_to_global,
        process_batch_indices,
        shard_train_step,
    )

    optimizer = _optimizer()

    def step(state, batch):
        model, opt_state = state
        loss, grads = loss_and_grad(model, batch)
        updates, opt_state = optimizer.update(grads, opt_state, model)
        return (eqx.apply_updates(model, updates), opt_state), {"loss": loss}

    state, shardings = create_sharded_state(
        _init, jax.random.key(0), mesh, min_shard_size=MIN_SHARD_SIZE
    )
    state, shardings = _with_mode(state, mode), _with_mode(shardings, mode)
    # Copies, not views: a live NumPy view of a buffer would block its donation.
    init_params = None if per_host else [np.array(x, copy=True) for x in jax.tree.leaves(state[0])]
    bs = batch_sharding(mesh)
    check_batch_size(BATCH, mesh)
    train_step = shard_train_step(step, mesh, shardings, bs)
    rows = process_batch_indices(BATCH, bs)

    def load(s: int):
        windows = global_batch(s)[rows]  # this process's rows only
        return host_local_batch_to_global(Batch.from_windows(windows), mesh, bs)

    losses, donated = [], None
    for s in range(STEPS):
        old = state
        state, metrics = train_step(state, load(s))
        if donated is None:
            donated = all(x.is_deleted() for x in jax.tree.leaves(old))
        losses.append(float(metrics["loss"]))
    return {
        "losses": losses,
        "rows": rows.tolist(),
        "donated": donated,
        "state": state,
        "shardings": shardings,
        "init_params": init_params,
    }


def _describe(tree) -> dict[str, list]:
    """leaf path -> [spec, shard shape, global shape] of the leaves' actual shardings."""
    import jax

    out = {}
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        spec = tuple(x.sharding.spec) if hasattr(x.sharding, "spec") else None
        out[jax.tree_util.keystr(path)] = [
            repr(spec),
            list(x.sharding.shard_shape(x.shape)),
            list(x.shape),
        ]
    return out


def cmd_meshes() -> dict:
    _setup_jax(8)
    import jax

    from myojax.sharding import MeshConfig, make_mesh

    devices = jax.devices()
    assert len(devices) == 8, devices
    meshes = {
        "1x1": make_mesh(MeshConfig(1, 1), devices[:1]),
        "1x8": make_mesh(MeshConfig.parse("data=1,fsdp=8")),
        "2x4": make_mesh(MeshConfig.parse("data=2,fsdp=4")),
        "8x1": make_mesh(MeshConfig.parse("data=-1")),
        "4dev": make_mesh(MeshConfig.parse(MULTIHOST_MESH), devices[:4]),
    }
    result: dict = {"losses": {}, "shardings": {}, "donated": {}, "init_equal": {}, "seconds": {}}
    reference = None
    for name, mesh in meshes.items():
        # The multi-host run trains in myopic mode only.
        for mode in ("myopic",) if name == "4dev" else ("standard", "myopic"):
            start = time.perf_counter()
            run = _train(mesh, mode)
            result["seconds"][f"{mode}/{name}"] = round(time.perf_counter() - start, 2)
            result["losses"][f"{mode}/{name}"] = run["losses"]
            result["donated"][f"{mode}/{name}"] = run["donated"]
            if reference is None:
                reference = run["init_params"]
            result["init_equal"][f"{mode}/{name}"] = all(
                np.array_equal(a, b) for a, b in zip(reference, run["init_params"], strict=True)
            )
            if name not in result["shardings"]:
                result["shardings"][name] = {
                    "actual": _describe(run["state"]),
                    "planned": _describe_planned(run["shardings"]),
                }
    return result


def _describe_planned(shardings) -> dict[str, str]:
    import jax

    flat = jax.tree_util.tree_flatten_with_path(shardings)[0]
    return {jax.tree_util.keystr(p): repr(tuple(s.spec)) for p, s in flat}


def _eval_and_norm(state, mesh) -> tuple[float, float]:
    import jax
    import jax.numpy as jnp

    from myojax import Batch, mean_loss
    from myojax.sharding import batch_sharding, host_local_batch_to_global, process_batch_indices

    bs = batch_sharding(mesh)
    windows = global_batch(STEPS)[process_batch_indices(BATCH, bs)]
    batch = host_local_batch_to_global(Batch.from_windows(windows), mesh, bs)
    rep = jax.sharding.NamedSharding(mesh, jax.P())
    loss = jax.jit(mean_loss, out_shardings=rep)(state[0], batch)
    sq = jax.jit(
        lambda t: sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(t)),
        out_shardings=rep,
    )(state)
    return float(loss), float(sq)


def _pin_gloo_to_loopback() -> None:
    """Make gloo bind 127.0.0.1 rather than whatever the host name resolves to, so the test
    never uses a real network interface. JAX has no public knob for this; if the private hook
    moves, gloo falls back to its default (the host name)."""
    from jax._src import xla_bridge

    make = getattr(xla_bridge._jax, "make_gloo_tcp_collectives", None)
    if make is not None:
        xla_bridge._jax.make_gloo_tcp_collectives = functools.partial(make, hostname="127.0.0.1")


def cmd_multihost(process_id: int, num_processes: int, port: int, ckpt: str) -> dict:
    _setup_jax(2)
    os.environ["JAX_COORDINATOR_ADDRESS"] = f"127.0.0.1:{port}"
    os.environ["JAX_NUM_PROCESSES"] = str(num_processes)
    os.environ["JAX_PROCESS_ID"] = str(process_id)
    import jax
    import orbax.checkpoint as ocp

    from myojax.sharding import MeshConfig, is_main_process, make_mesh, maybe_initialize_distributed

    _pin_gloo_to_loopback()

    assert maybe_initialize_distributed(initialization_timeout=60)
    assert jax.process_count() == num_processes and jax.process_index() == process_id
    assert jax.local_device_count() == 2 and jax.device_count() == 2 * num_processes
    mesh = make_mesh(MeshConfig.parse(MULTIHOST_MESH))
    run = _train(mesh, "myopic", per_host=True)
    state = run["state"]
    w = state[0].blocks.w_qkv
    local_shapes = [list(s.data.shape) for s in w.addressable_shards]
    eval_loss, sq = _eval_and_norm(state, mesh)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(ckpt, "state"), state)
    checkpointer.wait_until_finished()
    checkpointer.close()
    out = {
        "process": process_id,
        "main": is_main_process(),
        "losses": run["losses"],
        "rows": run["rows"],
        "w_qkv_local_shards": local_shapes,
        "w_qkv_fully_addressable": w.is_fully_addressable,
        "eval_loss": eval_loss,
        "sum_sq": sq,
    }
    jax.distributed.shutdown()
    return out


def cmd_restore(ckpt: str) -> dict:
    _setup_jax(8)
    import jax
    import orbax.checkpoint as ocp

    from myojax.sharding import (
        MeshConfig,
        abstract_state,
        make_mesh,
        state_shardings,
    )

    mesh = make_mesh(MeshConfig.parse(RESTORE_MESH))
    shapes = jax.eval_shape(functools.partial(_init, mode="myopic"), jax.random.key(0))
    shardings = state_shardings(shapes, mesh, min_shard_size=MIN_SHARD_SIZE)
    target = abstract_state(shapes, shardings)
    checkpointer = ocp.StandardCheckpointer()
    state = checkpointer.restore(os.path.join(ckpt, "state"), target)
    checkpointer.close()
    same = all(
        x.sharding.is_equivalent_to(s, x.ndim)
        for x, s in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True)
    )
    eval_loss, sq = _eval_and_norm(state, mesh)
    return {
        "eval_loss": eval_loss,
        "sum_sq": sq,
        "shardings_match": same,
        "w_qkv_spec": repr(tuple(state[0].blocks.w_qkv.sharding.spec)),
        "mesh": dict(mesh.shape),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("meshes")
    m = sub.add_parser("multihost")
    m.add_argument("--process-id", type=int, required=True)
    m.add_argument("--num-processes", type=int, default=2)
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--ckpt", required=True)
    r = sub.add_parser("restore")
    r.add_argument("--ckpt", required=True)
    args = p.parse_args(argv)
    if args.cmd == "meshes":
        out = cmd_meshes()
    elif args.cmd == "multihost":
        out = cmd_multihost(args.process_id, args.num_processes, args.port, args.ckpt)
    else:
        out = cmd_restore(args.ckpt)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
