"""myojax.sharding: mesh specs and partition rules in-process; multi-device and multi-process
behaviour in subprocesses (tests/sharding_worker.py), so this process keeps its single device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import AbstractMesh
from jax.sharding import PartitionSpec as P

from myojax import Batch
from myojax.model import GPT
from myojax.presets import model_preset as preset
from myojax.sharding import (
    MeshConfig,
    batch_sharding,
    check_batch_size,
    fsdp_partition_spec,
    host_local_batch_to_global,
    is_main_process,
    make_mesh,
    maybe_initialize_distributed,
    partition_specs,
    process_batch_indices,
)

WORKER = Path(__file__).with_name("sharding_worker.py")
RTOL = 1e-5
MESHES = ("1x8", "2x4", "8x1")
MODES = ("standard", "myopic")
SUBPROCESS_TIMEOUT_S = 300


# --------------------------------------------------------------------------------------------
# Mesh specs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data=2,fsdp=4", MeshConfig(2, 4)),
        (" fsdp = 32 ", MeshConfig(1, 32)),
        ("data=-1", MeshConfig(-1, 1)),
        ("fsdp=-1,data=2", MeshConfig(2, -1)),
        ("", MeshConfig(-1, 1)),
    ],
)
def test_parse(text: str, expected: MeshConfig) -> None:
    assert MeshConfig.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data=2;fsdp=4", "AXIS=SIZE"),
        ("data=two", "AXIS=SIZE"),
        ("tensor=2", "unknown axis 'tensor'"),
        ("data=2,data=4", "given twice"),
        ("data=-1,fsdp=-1", "at most one mesh axis may be -1"),
        ("fsdp=0", "positive integer or -1"),
        ("data=-3", "positive integer or -1"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MeshConfig.parse(text)


def test_resolve() -> None:
    assert MeshConfig(-1, 4).resolve(32) == (8, 4)
    assert MeshConfig(2, -1).resolve(8) == (2, 4)
    assert MeshConfig().resolve(8) == (8, 1)
    with pytest.raises(ValueError, match="product of the axis sizes must equal the device count"):
        MeshConfig(2, 4).resolve(16)
    with pytest.raises(ValueError, match="not divisible by the fixed axis size 3"):
        MeshConfig(-1, 3).resolve(8)


def test_make_mesh_checks_device_count() -> None:
    one = jax.devices()[:1]
    mesh = make_mesh(MeshConfig(), one)
    assert dict(mesh.shape) == {"data": 1, "fsdp": 1}
    with pytest.raises(ValueError, match="has 2 devices but 1 are available"):
        make_mesh(MeshConfig(data=2), one)


def test_batch_must_divide_over_data_and_fsdp() -> None:
    mesh = AbstractMesh((2, 4), ("data", "fsdp"))
    assert check_batch_size(16, mesh) == 2
    with pytest.raises(ValueError, match=r"12 is not divisible by data\*fsdp = 2\*4 = 8"):
        check_batch_size(12, mesh)


# --------------------------------------------------------------------------------------------
# Partition rules


def test_fsdp_rule() -> None:
    assert fsdp_partition_spec((256, 32), 8, min_shard_size=0) == P("fsdp")
    assert fsdp_partition_spec((50257, 1600), 32, min_shard_size=0) == P(None, "fsdp")
    assert fsdp_partition_spec((4, 4), 4, min_shard_size=0) == P("fsdp")  # ties: first axis
    assert fsdp_partition_spec((7, 9), 4, min_shard_size=0) == P()  # nothing divisible
    assert fsdp_partition_spec((1024, 1024), 1) == P()  # no fsdp axis to shard over
    assert fsdp_partition_spec((64,), 4, min_shard_size=1000) == P()  # small: replicated
    assert fsdp_partition_spec((), 4, min_shard_size=0) == P()  # scalars
    # The stacked (scanned) layer axis is never sharded, even when it is the largest.
    assert fsdp_partition_spec((64, 32), 8, stacked=True, min_shard_size=0) == P(None, "fsdp")
    assert fsdp_partition_spec((64, 3), 8, stacked=True, min_shard_size=0) == P()


def test_gpt2_xl_rules_shard_every_matrix_but_never_the_layer_axis() -> None:
    import optax

    config = preset("gpt2-1.5b")
    params = jax.eval_shape(lambda: GPT(config, key=jax.random.key(0)))
    opt_state = jax.eval_shape(optax.adamw(1e-3).init, params)
    specs = partition_specs((params, opt_state), 32)
    model_specs, opt_specs = specs
    assert model_specs.wte == P(None, "fsdp")  # 50257 is odd: shard d_model
    assert model_specs.blocks.w_qkv == P(None, None, "fsdp")
    assert model_specs.blocks.w_proj == P(None, "fsdp")
    assert model_specs.lnf_gain == P()  # 1600 elements: replicated
    for path, spec in jax.tree_util.tree_flatten_with_path(
        model_specs.blocks, is_leaf=lambda x: isinstance(x, P)
    )[0]:
        assert spec and spec[0] is None and "fsdp" in spec, (path, spec)
    # Adam's moments mirror the parameters; the step count is replicated.
    adam = opt_specs[0]
    assert adam.mu == model_specs and adam.nu == model_specs
    assert adam.count == P()


def test_partition_specs_reject_non_array_leaves() -> None:
    with pytest.raises(TypeError, match=r"state leaf at \['step'\] is int, not an array"):
        partition_specs({"step": 3}, 4)


# --------------------------------------------------------------------------------------------
# Multi-host helpers (single process; the real multi-process run is below)


def test_single_process_helpers() -> None:
    mesh = make_mesh(MeshConfig(), jax.devices()[:1])
    bs = batch_sharding(mesh)
    np.testing.assert_array_equal(process_batch_indices(4, bs), np.arange(4))
    windows = np.arange(4 * 5, dtype=np.int32).reshape(4, 5)
    batch = host_local_batch_to_global(Batch.from_windows(windows), mesh)
    assert batch.inputs.sharding == bs and batch.inputs.shape == (4, 4)
    np.testing.assert_array_equal(np.asarray(batch.targets), windows[:, 1:])
    assert is_main_process()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1"}, "JAX_NUM_PROCESSES and JAX_PROCESS_ID"),
        (
            {
                "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": "2",
            },
            r"JAX_PROCESS_ID=2 must be in \[0, JAX_NUM_PROCESSES=2\)",
        ),
        (
            {
                "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1",
                "JAX_NUM_PROCESSES": "x",
                "JAX_PROCESS_ID": "0",
            },
            "must be integers",
        ),
        ({"MYOJAX_DISTRIBUTED": "yes"}, "MYOJAX_DISTRIBUTED must be 0 or 1"),
        ({"JAX_PROCESS_ID": "1"}, "JAX_PROCESS_ID set without JAX_COORDINATOR_ADDRESS"),
    ],
)
def test_maybe_initialize_distributed_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        maybe_initialize_distributed(env)


def test_maybe_initialize_distributed_single_process() -> None:
    assert maybe_initialize_distributed({}) is False
    assert (
        maybe_initialize_distributed(
            {"MYOJAX_DISTRIBUTED": "0", "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1"}
        )
        is False
    )
    # A one-task SLURM step is a single process.
    slurm = dict(
        SLURM_JOB_ID="1",
        SLURM_STEP_NODELIST="n1",
        SLURM_NTASKS="1",
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
    )
    assert maybe_initialize_distributed(slurm) is False


# --------------------------------------------------------------------------------------------
# Subprocess runs


def _clean_env() -> dict[str, str]:
    """This environment minus anything that would make a worker join a real cluster."""
    drop = (
        "JAX_COORDINATOR",
        "JAX_NUM_PROCESSES",
        "JAX_PROCESS_ID",
        "JAX_LOCAL_DEVICE_IDS",
        "MYOJAX_DISTRIBUTED",
        "SLURM_",
        "TPU_WORKER",
        "XLA_FLAGS",
        "JAX_PLATFORMS",
    )
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _parse(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError("worker printed no RESULT line")


def _run_workers(argvs: list[list[str]], timeout_s: float) -> list[dict]:
    """Run worker processes concurrently; kill them all if any fails or the deadline passes."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *argv],
            env=_clean_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for argv in argvs
    ]
    deadline = time.monotonic() + timeout_s
    outputs: list[str | None] = [None] * len(procs)
    try:
        while any(o is None for o in outputs):
            for i, proc in enumerate(procs):
                if outputs[i] is not None or proc.poll() is None:
                    continue
                outputs[i] = proc.stdout.read() if proc.stdout else ""
                if proc.returncode != 0:
                    raise AssertionError(
                        f"worker {argvs[i]} exited with {proc.returncode}:\n{outputs[i][-4000:]}"
                    )
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {argvs} still running after {timeout_s} s: killed")
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
    return [_parse(o or "") for o in outputs]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The 8-device run and the two-process run side by side (compiles are single-threaded,
    so this halves the wall time on two cores), then the single-process restore."""
    ckpt = str(tmp_path_factory.mktemp("multihost_ckpt"))
    port = _free_port()
    meshes, *workers = _run_workers(
        [["meshes"]]
        + [
            ["multihost", "--process-id", str(i), "--port", str(port), "--ckpt", ckpt]
            for i in range(2)
        ],
        SUBPROCESS_TIMEOUT_S,
    )
    restored = _run_workers([["restore", "--ckpt", ckpt]], SUBPROCESS_TIMEOUT_S)[0]
    return {"meshes": meshes, "workers": workers, "restored": restored}


@pytest.fixture(scope="module")
def meshes(runs: dict) -> dict:
    return runs["meshes"]


@pytest.fixture(scope="module")
def multihost(runs: dict) -> dict:
    return runs


def _assert_close(actual: list[float], expected: list[float]) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape == (5,)
    rel = np.max(np.abs(a - e) / np.abs(e))
    assert rel <= RTOL, f"relative difference {rel:.2e} > {RTOL}: {actual} vs {expected}"


@pytest.mark.parametrize("mesh", MESHES)
@pytest.mark.parametrize("mode", MODES)
def test_mesh_matches_single_device(meshes: dict, mode: str, mesh: str) -> None:
    _assert_close(meshes["losses"][f"{mode}/{mesh}"], meshes["losses"][f"{mode}/1x1"])
    # Created sharded, yet the same initial values as on one device (partitionable threefry).
    assert meshes["init_equal"][f"{mode}/{mesh}"]
    # The state passed to the jitted step was donated (updated in place).
    assert meshes["donated"][f"{mode}/{mesh}"]


def test_modes_really_differ(meshes: dict) -> None:
    """Otherwise the per-mode comparison above would be vacuous."""
    standard, myopic = meshes["losses"]["standard/1x1"], meshes["losses"]["myopic/1x1"]
    assert standard[0] == myopic[0]  # identical forward pass at initialization
    assert max(abs(a - b) for a, b in zip(standard[1:], myopic[1:])) > 1e-4


def test_parameters_really_sharded(meshes: dict) -> None:
    fsdp8 = meshes["shardings"]["1x8"]["actual"]
    # [spec, shard shape, global shape] of the arrays the step returned.
    assert fsdp8["[0].blocks.w_qkv"] == ["(None, None, 'fsdp')", [2, 32, 12], [2, 32, 96]]
    assert fsdp8["[0].blocks.w_proj"] == ["(None, 'fsdp')", [2, 16, 32], [2, 128, 32]]
    assert fsdp8["[0].wte"] == ["('fsdp',)", [32, 32], [256, 32]]
    assert fsdp8["[1][0].mu.blocks.w_fc"] == ["(None, None, 'fsdp')", [2, 32, 16], [2, 32, 128]]
    assert fsdp8["[0].blocks.b_qkv"] == ["()", [2, 96], [2, 96]]  # small: replicated
    assert fsdp8["[1][0].count"] == ["()", [], []]
    assert meshes["shardings"]["2x4"]["actual"]["[0].blocks.w_qkv"][1] == [2, 32, 24]
    for leaf, (spec, _, _) in meshes["shardings"]["8x1"]["actual"].items():
        assert spec == "()", leaf  # pure data parallelism: everything replicated
    for name, sh in meshes["shardings"].items():
        # The step kept exactly the planned shardings (no silent resharding).
        assert {k: v[0] for k, v in sh["actual"].items()} == sh["planned"], name
        for leaf, (spec, _, _shape) in sh["actual"].items():
            if ".blocks." in leaf and spec != "()":
                assert not spec.startswith("('fsdp'"), (name, leaf)  # never the layer axis


def test_two_processes_match_single_process(meshes: dict, multihost: dict) -> None:
    p0, p1 = multihost["workers"]
    assert p0["main"] and not p1["main"]
    # Each process fed its own, disjoint half of the global batch.
    assert sorted(p0["rows"] + p1["rows"]) == list(range(8)) and not set(p0["rows"]) & set(
        p1["rows"]
    )
    # Parameters span both processes: each holds only its shards.
    assert not p0["w_qkv_fully_addressable"]
    assert p0["w_qkv_local_shards"] == [[2, 32, 24], [2, 32, 24]]
    for worker in (p0, p1):
        _assert_close(worker["losses"], meshes["losses"]["myopic/4dev"])


def test_checkpoint_from_two_processes_restores_on_other_mesh(multihost: dict) -> None:
    p0, p1 = multihost["workers"]
    restored = multihost["restored"]
    assert restored["mesh"] == {"data": 2, "fsdp": 4}  # written on data=1,fsdp=4 by 2 processes
    assert restored["shardings_match"]
    assert restored["w_qkv_spec"] == "(None, None, 'fsdp')"
    assert p0["sum_sq"] == p1["sum_sq"]
    np.testing.assert_allclose(restored["sum_sq"], p0["sum_sq"], rtol=1e-6)
    np.testing.assert_allclose(restored["eval_loss"], p0["eval_loss"], rtol=RTOL)
