"""Issue 30's day-one defects of tpu/ that only a cluster could show, checked through the
commands the scripts' --dry-run prints (cloud and SLURM tools are recording stubs, as in
tests/test_tpu_scripts.py): Python >= 3.11 on the workers, data that reaches every host and a
launch that refuses to start without it, and a SLURM job that drives every GPU of its node."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.test_tpu_scripts import ROOT, TPU, _dry, _run, make_stubs

TPU_ARGS = ["--name", "my-tpu", "--zone", "us-central2-b", "--bucket", "gs://my-bucket/myojax"]
SBATCH = TPU / "slurm" / "scaling.sbatch"


@pytest.fixture
def stubs(tmp_path: Path) -> tuple[dict[str, str], Path]:
    return make_stubs(tmp_path)


def _remote(cmd: list[str]) -> str:
    return cmd[-1].removeprefix("--command=")


def _job(remote: str) -> list[str]:
    """The experiment's words inside launch.sh's remote command."""
    inner = remote.split("bash -c ", 1)[1].split(" > logs/", 1)[0]
    (job,) = shlex.split(inner)
    return shlex.split(job.split(" && ", 1)[1].split("; status=", 1)[0])


def test_setup_installs_python_311_or_later_with_uv(stubs) -> None:
    """Defect 1: the TPU runtimes ship Python 3.10; the venv must not come from their python3."""
    env, calls = stubs
    cmds = _dry("setup.sh", *TPU_ARGS, env=env, calls=calls)
    remote = _remote(cmds[2])
    assert "python3 -m venv" not in remote
    assert "curl -LsSf https://astral.sh/uv/install.sh | sh" in remote
    assert "$HOME/.local/bin/uv venv --quiet --python 3.12 venv;" in remote
    assert "uv pip install --quiet --python venv/bin/python 'jax[tpu]>=0.10,<0.11'" in remote
    assert "data" not in remote.split("installed on")[1]  # no --data: nothing staged
    other = _dry("setup.sh", *TPU_ARGS, "--python", "3.13", env=env, calls=calls)
    assert "--python 3.13 venv;" in _remote(other[2])
    old = _run(TPU / "setup.sh", *TPU_ARGS, "--python", "3.10", "--dry-run", env=env)
    assert old.returncode == 2 and "must be 3.11 or later" in old.stderr


def test_setup_stages_shards_and_checks_their_hashes(stubs) -> None:
    """Defect 2: no script brought token shards to the workers."""
    env, calls = stubs
    cmds = _dry("setup.sh", *TPU_ARGS, "--data", "gs://my-bucket/shards/gpt2", env=env, calls=calls)
    remote = _remote(cmds[2])
    assert "gcloud storage rsync --recursive gs://my-bucket/shards/gpt2 data;" in remote
    assert (
        "venv/bin/python -c 'import sys; from myojax.data.pipeline import load_data; "
        'load_data(sys.argv[1])\' "$HOME/data"' in remote
    )
    bad = _run(TPU / "setup.sh", *TPU_ARGS, "--data", "/local/shards", "--dry-run", env=env)
    assert bad.returncode == 2 and "must look like gs://BUCKET/PATH" in bad.stderr


def test_launch_requires_data_for_gpt2(stubs) -> None:
    """Defect 2: launch.sh said "started" and every worker then exited for lack of --data."""
    env, calls = stubs
    args = [*TPU_ARGS, "--run", "scale-01"]
    refused = _run(TPU / "launch.sh", *args, "--dry-run", env=env)
    assert refused.returncode == 2 and "--preset gpt2 needs --data DIR" in refused.stderr
    assert not calls.exists()
    (cmd,) = _dry("launch.sh", *args, "--data", "~/data", env=env, calls=calls)
    job = _job(_remote(cmd))
    assert job[:2] == ["../venv/bin/python", "-m"]
    assert job[job.index("--data") + 1] == "$HOME/data"  # the worker's home, expanded there
    assert '--data "$HOME"/data' in _remote(cmd)
    (after,) = _dry("launch.sh", *args, "--", "--data", "/disk/shards", env=env, calls=calls)
    assert _job(_remote(after))[-2:] == ["--data", "/disk/shards"]
    (smoke,) = _dry("launch.sh", *args, "--preset", "smoke", env=env, calls=calls)
    assert "--data" not in _job(_remote(smoke))  # smoke brings its own corpus


def _in_job(env: dict[str, str], calls: Path, **slurm: str) -> dict[str, str]:
    """``env`` inside a job: SLURM's variables, and scontrol naming the allocation's nodes."""
    scontrol = calls.parent / "bin" / "scontrol"
    scontrol.write_text('#!/bin/sh\nprintf "node-001\\nnode-002\\n"\n')
    base = {"SLURM_JOB_ID": "777", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "node-[001-002]"}
    return {**env, **base, "SLURM_GPUS_ON_NODE": "8", "SLURM_CPUS_PER_TASK": "16", **slurm}


def _sbatch(env: dict[str, str], *args: str) -> list[str]:
    result = _run(SBATCH, "--dry-run", "--out", "/shared/runs/s1", *args, env=env)
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("+ ")]
    return shlex.split(line[2:])


def test_slurm_drives_every_gpu_of_the_node(stubs) -> None:
    """Defect 5: one task per node got only GPU SLURM_LOCALID from JAX's SLURM detection; srun
    did not inherit --cpus-per-task; nothing kept a GPU job off the CPU or raised JAX's 75%
    preallocation."""
    env, calls = stubs
    words = _sbatch(
        {**env, "PYTHON": "/opt/venv/bin/python"}, "--", "--data", "/d", "--steps", "10"
    )
    assert not calls.exists()
    assert words[:6] == [
        "JAX_COORDINATOR_ADDRESS=gpu-001:22345",
        "JAX_NUM_PROCESSES=2",
        "JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7",
        "MYOJAX_LOCAL_DEVICES=8",  # asserted by maybe_initialize_distributed
        "JAX_PLATFORMS=cuda",
        "XLA_PYTHON_CLIENT_MEM_FRACTION=0.92",
    ]
    assert words[6:13] == [
        "srun",
        "--kill-on-bad-exit=1",
        "--cpus-per-task=16",
        "--export=ALL",
        "bash",
        "-c",
        'export JAX_PROCESS_ID="$SLURM_PROCID"; exec "$@"',
    ]
    assert words[14:] == [
        "/opt/venv/bin/python",
        *("-m", "experiments.scaling", "--preset", "gpt2", "--out", "/shared/runs/s1"),
        *("--data", "/d", "--steps", "10"),
    ]
    inside = _in_job(env, calls, SLURM_GPUS_ON_NODE="4", SLURM_CPUS_PER_TASK="32")
    words = _sbatch(inside, "--mem-fraction", ".95", "--preset", "smoke")
    assert words[0] == "JAX_COORDINATOR_ADDRESS=node-001:20777"
    assert "JAX_LOCAL_DEVICE_IDS=0,1,2,3" in words and "MYOJAX_LOCAL_DEVICES=4" in words
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION=.95" in words and "--cpus-per-task=32" in words
    assert "JAX_LOCAL_DEVICE_IDS=0,1" in _sbatch(inside, "--gpus", "2", "--", "--data=/d")
    no_data = _run(SBATCH, "--dry-run", "--out", "/x", env=inside)
    assert no_data.returncode == 2 and "--preset gpt2 needs -- --data DIR" in no_data.stderr


@pytest.mark.parametrize(
    ("extra", "args", "message"),
    [
        ({"SLURM_GPUS_ON_NODE": ""}, [], "GPUs per node unknown"),
        ({"SLURM_CPUS_PER_TASK": ""}, [], "request --cpus-per-task"),
        ({}, ["--mem-fraction", "1.5"], "--mem-fraction must be in (0, 1)"),
        ({}, ["--gpus", "eight"], "GPUs per node unknown"),
    ],
)
def test_slurm_refuses_an_unknown_gpu_or_cpu_count(
    extra: dict[str, str], args: list[str], message: str, stubs
) -> None:
    env, calls = stubs
    argv = ["--dry-run", "--out", "/x", "--preset", "smoke", *args]
    result = _run(SBATCH, *argv, env=_in_job(env, calls, **extra))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    outside = _run(SBATCH, "--out", "/x", "--preset", "smoke", env=env)
    assert outside.returncode == 2 and "not inside a SLURM job" in outside.stderr


def test_cuda_extra_installs_a_cuda_jaxlib_of_the_pinned_version() -> None:
    """Defect 5: nothing installed a CUDA jaxlib, so a GPU node ran the CPU one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (cuda,) = project["optional-dependencies"]["cuda"]
    jax_pin = next(d for d in project["dependencies"] if d.startswith("jax>="))
    assert re.fullmatch(r"jax\[cuda1[23]\]" + re.escape(jax_pin.removeprefix("jax")), cuda)
    assert "pip install -e '.[cuda]'" in SBATCH.read_text()


RECOVER_ARGS = [*TPU_ARGS, "--run", "scale-01", "--data", "~/data"]


def _verbs(cmds: list[list[str]]) -> list[str]:
    """Each printed gcloud command as 'resource verb' (e.g. 'queued-resources delete')."""
    return [" ".join(c[3:5]) for c in cmds if c[0] == "gcloud"]


def test_recover_recreates_a_preempted_node_and_relaunches_the_same_run(stubs) -> None:
    """Defect 7: a preempted spot VM or suspended queued resource stays down; rerunning
    launch.sh did not recover. recover.sh deletes, recreates, sets up and relaunches."""
    env, calls = stubs
    args = [*RECOVER_ARGS, "--queued", "--spot", "--stage", "gs://my-bucket/shards/gpt2"]
    cmds = _dry("recover.sh", *args, "--", "--n-boot", "100", env=env, calls=calls)
    verbs = _verbs(cmds)
    assert verbs[:4] == [
        "queued-resources describe",  # the state query (taken as PREEMPTED in a dry run)
        "queued-resources delete",
        "queued-resources create",
        "queued-resources describe",  # create.sh --wait polls until ACTIVE
    ]
    assert verbs[4:] == ["tpu-vm scp", *["tpu-vm ssh"] * (len(verbs) - 5)]
    delete, create = cmds[1], cmds[2]
    assert "--force" in delete and "--quiet" in delete  # no prompt on an unattended recovery
    assert "--spot" in create and "--accelerator-type=v4-32" in create
    install = next(c for c in cmds if c[3:5] == ["tpu-vm", "ssh"])
    assert "gs://my-bucket/shards/gpt2" in _remote(install)  # shards staged again
    job = _job(_remote(cmds[-1]))
    assert job[job.index("--out") + 1] == "/mnt/myojax-bucket/myojax/scale-01"  # the same run
    assert job[-2:] == ["--n-boot", "100"]
    vm = _dry("recover.sh", *RECOVER_ARGS, env=env, calls=calls)
    assert _verbs(vm)[:3] == ["tpu-vm describe", "tpu-vm delete", "tpu-vm create"]


def _state_stub(env: dict[str, str], calls: Path, state: str | None) -> dict[str, str]:
    """gcloud answering a describe with ``state`` (None: no such node) and recording the rest."""
    bin_dir = calls.parent / "state-bin"
    bin_dir.mkdir(exist_ok=True)
    answer = "exit 1" if state is None else f"echo {state}; exit 0"
    (bin_dir / "gcloud").write_text(
        f'#!/bin/sh\necho "gcloud $*" >> "{calls}"\n'
        f'case "$*" in *" describe "*) {answer} ;; esac\nexit 0\n'
    )
    (bin_dir / "gcloud").chmod(0o755)
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}"}


@pytest.mark.parametrize(
    ("state", "deletes", "creates"),
    [("READY", False, False), ("PREEMPTED", True, True), (None, False, True)],
)
def test_recover_acts_on_the_nodes_state(stubs, state, deletes, creates) -> None:
    """A READY node (hosts restarted) is only set up and relaunched; a PREEMPTED one is deleted
    and recreated; one gcloud does not know is created."""
    env, calls = stubs
    result = _run(TPU / "recover.sh", *RECOVER_ARGS, env=_state_stub(env, calls, state))
    assert result.returncode == 0, result.stderr
    called = calls.read_text().splitlines()
    assert any(" tpu-vm delete " in c for c in called) == deletes
    assert any(" tpu-vm create " in c for c in called) == creates
    assert " tpu-vm ssh " in called[-1] and "scale-01" in called[-1]  # relaunched last
