"""tpu/ launch scripts: syntax, shellcheck, --help, and the exact --dry-run commands.

Cloud tools are replaced by stubs on PATH that record any call, so a dry run that tried to
touch the cloud fails the test instead of touching it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TPU = ROOT / "tpu"
SCRIPTS = [
    *sorted(p for p in TPU.glob("*.sh") if p.name != "lib.sh"),
    TPU / "slurm" / "scaling.sbatch",
]
ALL_SHELL = [*SCRIPTS, TPU / "lib.sh"]
STUBS = ("gcloud", "gsutil", "gcsfuse", "srun", "sbatch", "scontrol")
LOC = ["--zone=us-central2-b"]
MOUNT = "/mnt/myojax-bucket"


@pytest.fixture
def stub_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    return make_stubs(tmp_path)


def make_stubs(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose cloud tools only record that they were called."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TPU_", "GCP_", "MYOJAX_", "SLURM_", "JAX_"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["TMPDIR"] = str(tmp_path)
    return env, calls


def _run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args], env=env, cwd=ROOT, text=True, capture_output=True, timeout=30
    )


def _worker_tools(tmp_path: Path, env: dict[str, str], mounted: str | None) -> dict[str, str]:
    """A worker's mount tools, stubbed: sudo runs its command, gcsfuse records its arguments
    and "mounts" its bucket, findmnt reports that bucket (or nothing when not mounted)."""
    bin_dir, state = tmp_path / "worker-bin", tmp_path / "mounted"
    bin_dir.mkdir(exist_ok=True)
    if mounted is not None:
        state.write_text(mounted + "\n")
    stubs = {
        "sudo": 'exec "$@"',
        "gcsfuse": f'echo "gcsfuse $*" >> "{tmp_path}/gcsfuse.log"\n'
        f'echo "${{@: -2:1}}" > "{state}"',
        "findmnt": f'[ -s "{state}" ] || exit 1\ncat "{state}"',
        "umount": f'echo "umount $*" >> "{tmp_path}/gcsfuse.log"\nrm -f "{state}"',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}


def _dry(script: str, *args: str, env: dict[str, str], calls: Path) -> list[list[str]]:
    """The commands a dry run prints, each split back into its words."""
    result = _run(TPU / script, "--dry-run", *args, env=env)  # first: ARGS may follow "--"
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), f"dry run called a cloud tool: {calls.read_text()}"
    return [shlex.split(line[2:]) for line in result.stdout.splitlines() if line.startswith("+ ")]


def test_bash_syntax() -> None:
    for script in ALL_SHELL:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


def test_strict_mode_and_executable() -> None:
    for script in SCRIPTS:
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "\nset -euo pipefail\n" in text, script
        assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (Debian/Ubuntu: apt-get install -y shellcheck)",
)
def test_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "--external-sources", *map(str, ALL_SHELL)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script: Path, stub_path: tuple[dict[str, str], Path]) -> None:
    env, calls = stub_path
    result = _run(script, "--help", env=env)
    assert result.returncode == 0 and "Usage:" in result.stdout and "--dry-run" in result.stdout
    assert not calls.exists()


def test_create(stub_path: tuple[dict[str, str], Path]) -> None:
    env, calls = stub_path
    assert _dry(
        "create.sh", "--name", "my-tpu", "--zone", "us-central2-b", env=env, calls=calls
    ) == [
        [
            "gcloud",
            "compute",
            "tpus",
            "tpu-vm",
            "create",
            "my-tpu",
            *LOC,
            "--accelerator-type=v4-32",
            "--version=tpu-ubuntu2204-base",
        ]
    ]
    queued = _dry(
        "create.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--project",
        "p-1",
        "--type",
        "v5litepod-16",
        "--version",
        "v2-alpha-tpuv5-lite",
        "--queued",
        "--spot",
        "--wait",
        env=env,
        calls=calls,
    )
    assert queued == [
        [
            "gcloud",
            "compute",
            "tpus",
            "queued-resources",
            "create",
            "my-tpu",
            *LOC,
            "--project=p-1",
            "--node-id=my-tpu",
            "--accelerator-type=v5litepod-16",
            "--runtime-version=v2-alpha-tpuv5-lite",
            "--spot",
        ],
        [
            "gcloud",
            "compute",
            "tpus",
            "queued-resources",
            "describe",
            "my-tpu",
            *LOC,
            "--project=p-1",
            "--format=value(state.state)",
        ],
    ]


def test_setup(stub_path: tuple[dict[str, str], Path]) -> None:
    env, calls = stub_path
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    archive = f"{env['TMPDIR']}/myojax-{sha}.tar.gz"
    cmds = _dry(
        "setup.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--bucket",
        "gs://my-bucket/myojax/",
        env=env,
        calls=calls,
    )
    assert len(cmds) == 4
    assert cmds[0] == [
        "git",
        "-C",
        str(ROOT),
        "archive",
        "--format=tar.gz",
        f"--output={archive}",
        sha,
    ]
    assert cmds[1] == [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "scp",
        archive,
        "my-tpu:myojax.tar.gz",
        *LOC,
        "--worker=all",
    ]
    assert cmds[2][:8] == [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "ssh",
        "my-tpu",
        *LOC,
        "--worker=all",
    ]
    remote = cmds[2][8].removeprefix("--command=")
    assert "pip install --quiet --python venv/bin/python 'jax[tpu]>=0.10,<0.11' -e myojax" in remote
    assert not Path(archive).exists()  # nothing was archived
    subprocess.run(["bash", "-n", "-c", remote], check=True)
    assert cmds[3][:8] == cmds[2][:8]
    mount = cmds[3][8].removeprefix("--command=")
    subprocess.run(["bash", "-n", "-c", mount], check=True)
    assert "apt-get install -y -qq gcsfuse" in mount
    assert (
        f'src="$(findmnt -n -o SOURCE --mountpoint {MOUNT} || true)"; '
        f'if [[ -n "$src" && "$src" != my-bucket ]]; then'
    ) in mount
    assert f"gcsfuse --implicit-dirs --rename-dir-limit=1000000 my-bucket {MOUNT}; fi" in mount
    assert f"probe={MOUNT}/myojax/.myojax-mount-check-$(hostname);" in mount
    assert mount.endswith(
        f'echo "$(hostname): gs://my-bucket mounted on {MOUNT}, {MOUNT}/myojax writable"'
    )


def _setup_mount_command(env: dict[str, str], calls: Path, mnt: Path) -> str:
    cmds = _dry(
        "setup.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--bucket",
        "gs://my-bucket/myojax",
        "--mount",
        str(mnt),
        env=env,
        calls=calls,
    )
    return cmds[3][8].removeprefix("--command=")


def test_setup_mount_on_worker(stub_path: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """Run setup's mount command as a worker would: mount once, keep it on rerun, check it."""
    env, calls = stub_path
    mnt = tmp_path / "mnt" / "myojax-bucket"
    mount = _setup_mount_command(env, calls, mnt)
    worker = _worker_tools(tmp_path, env, mounted=None)
    gcsfuse_log = tmp_path / "gcsfuse.log"

    def on_worker() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", mount],
            cwd=tmp_path,
            env=worker,
            text=True,
            capture_output=True,
            timeout=30,
        )

    first = on_worker()
    assert first.returncode == 0, first.stderr
    assert gcsfuse_log.read_text() == (
        f"gcsfuse --implicit-dirs --rename-dir-limit=1000000 my-bucket {mnt}\n"
    )
    assert (mnt / "myojax").is_dir() and not list((mnt / "myojax").iterdir())  # probe removed
    assert f"gs://my-bucket mounted on {mnt}, {mnt}/myojax writable" in first.stdout

    again = on_worker()  # idempotent: the live mount of the same bucket is kept
    assert again.returncode == 0, again.stderr
    assert gcsfuse_log.read_text().count("gcsfuse") == 1

    (tmp_path / "mounted").write_text("other-bucket\n")
    other = on_worker()
    assert other.returncode == 1
    assert f"{mnt} already mounts other-bucket, not my-bucket" in other.stderr
    assert gcsfuse_log.read_text().count("gcsfuse") == 1

    (tmp_path / "mounted").write_text("my-bucket\n")
    (mnt / "myojax").rmdir()
    (mnt / "myojax").write_text("not a directory")
    broken = on_worker()
    assert broken.returncode == 1 and "cannot write and read back" in broken.stderr
    assert not calls.exists()


def test_launch_dry_run_and_remote_command(
    stub_path: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, calls = stub_path
    args = [
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--bucket",
        "gs://my-bucket/myojax/",
        "--run",
        "scale-01",
        "--data",
        "~/data",  # the worker's home: expanded there
    ]
    experiment = ["--", "--steps", "1000", "--note", "it's two words; $HOME"]
    cmds = _dry("launch.sh", *args, *experiment, env=env, calls=calls)
    assert len(cmds) == 1
    assert cmds[0][:8] == [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "ssh",
        "my-tpu",
        *LOC,
        "--worker=all",
    ]
    remote = cmds[0][8].removeprefix("--command=")
    assert remote.startswith(
        f'[[ "$(findmnt -n -o SOURCE --mountpoint {MOUNT})" == my-bucket ]] && ls {MOUNT} '
        f'> /dev/null || {{ echo "$(hostname): gs://my-bucket is not mounted on {MOUNT} '
        f'(or the mount died): run tpu/setup.sh" >&2; exit 1; }}; mkdir -p logs && '
        "MYOJAX_DISTRIBUTED=1 nohup setsid bash -c 'cd myojax && ../venv/bin/python -m "
        f"experiments.scaling --preset gpt2 --out {MOUNT}/myojax/scale-01 "
        '--data "$HOME"/data --steps 1000 --note '
    )
    assert remote.endswith(
        "; status=$?; cd; gcloud storage cp logs/scale-01.log "
        "gs://my-bucket/myojax/scale-01/logs/$(hostname).log || true; exit $status' "
        "> logs/scale-01.log 2>&1 < /dev/null & "
        'echo "$(hostname): started scale-01 (log ~/logs/scale-01.log)"'
    )
    assert "--out gs://" not in remote

    # Run the remote command as a worker would (stub python, gcloud and the mount tools, the
    # bucket "mounted" on a temporary directory): the arguments must arrive unchanged,
    # detached, and the log must be copied to the bucket afterwards.
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (cmd,) = _dry("launch.sh", *args, "--mount", str(mnt), *experiment, env=env, calls=calls)
    remote = cmd[8].removeprefix("--command=")
    home = tmp_path / "home"
    (home / "myojax").mkdir(parents=True)
    (home / "venv" / "bin").mkdir(parents=True)
    argv_file = home / "argv"
    python = home / "venv" / "bin" / "python"
    python.write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$MYOJAX_DISTRIBUTED" "$PWD" "$@" > '
        f'"{argv_file}.tmp"\nmv "{argv_file}.tmp" "{argv_file}"\necho training\n'
    )
    python.chmod(0o755)
    worker_env = {**_worker_tools(tmp_path, env, mounted=None), "HOME": str(home)}
    # Not mounted: the worker refuses and starts nothing.
    refused = subprocess.run(
        ["bash", "-c", remote], cwd=home, env=worker_env, timeout=30, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert f"gs://my-bucket is not mounted on {mnt} (or the mount died)" in refused.stderr
    assert not (home / "logs").exists() and not calls.exists()
    (tmp_path / "mounted").write_text("other-bucket\n")
    assert (
        subprocess.run(
            ["bash", "-c", remote], cwd=home, env=worker_env, timeout=30, capture_output=True
        ).returncode
        == 1
    )
    (tmp_path / "mounted").write_text("my-bucket\n")
    subprocess.run(
        ["bash", "-c", remote],
        cwd=home,
        env=worker_env,
        check=True,
        timeout=30,
        capture_output=True,
    )
    deadline = time.monotonic() + 20
    while not (calls.exists() and "storage cp" in calls.read_text()):
        assert time.monotonic() < deadline, "detached job did not finish"
        time.sleep(0.05)
    lines = argv_file.read_text().splitlines()
    assert lines[0] == "1" and lines[1] == str(home / "myojax")
    assert lines[2:] == [
        "-m",
        "experiments.scaling",
        "--preset",
        "gpt2",
        "--out",
        f"{mnt}/myojax/scale-01",
        "--data",
        f"{home}/data",
        "--steps",
        "1000",
        "--note",
        "it's two words; $HOME",
    ]
    assert "training" in (home / "logs" / "scale-01.log").read_text()
    host = socket.gethostname()
    assert calls.read_text().strip() == (
        f"gcloud storage cp logs/scale-01.log gs://my-bucket/myojax/scale-01/logs/{host}.log"
    )


def test_logs_fetch_delete(stub_path: tuple[dict[str, str], Path]) -> None:
    env, calls = stub_path
    assert _dry(
        "logs.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--run",
        "scale-01",
        env=env,
        calls=calls,
    ) == [
        [
            "gcloud",
            "compute",
            "tpus",
            "tpu-vm",
            "ssh",
            "my-tpu",
            *LOC,
            "--worker=0",
            "--command=tail -n 100 -F logs/scale-01.log",
        ]
    ]
    assert _dry(
        "logs.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--run",
        "scale-01",
        "--worker",
        "all",
        "--no-follow",
        "--lines",
        "5",
        env=env,
        calls=calls,
    )[0][-2:] == ["--worker=all", "--command=tail -n 5 logs/scale-01.log"]
    assert _dry(
        "fetch.sh",
        "--bucket",
        "gs://my-bucket/myojax",
        "--run",
        "scale-01",
        "--dest",
        "out dir",
        env=env,
        calls=calls,
    ) == [
        ["mkdir", "-p", "out dir/scale-01"],
        [
            "gcloud",
            "storage",
            "rsync",
            "--recursive",
            "--exclude=(^|.*/)checkpoints/.*",
            "gs://my-bucket/myojax/scale-01",
            "out dir/scale-01",
        ],
    ]
    assert not (ROOT / "out dir").exists()
    assert _dry(
        "delete.sh", "--name", "my-tpu", "--zone", "us-central2-b", env=env, calls=calls
    ) == [["gcloud", "compute", "tpus", "tpu-vm", "delete", "my-tpu", *LOC]]
    assert _dry(
        "delete.sh",
        "--name",
        "my-tpu",
        "--zone",
        "us-central2-b",
        "--queued",
        "--yes",
        env=env,
        calls=calls,
    ) == [
        [
            "gcloud",
            "compute",
            "tpus",
            "queued-resources",
            "delete",
            "my-tpu",
            *LOC,
            "--force",
            "--quiet",
        ]
    ]


def test_env_defaults(stub_path: tuple[dict[str, str], Path]) -> None:
    env, calls = stub_path
    env = {**env, "TPU_NAME": "env-tpu", "TPU_ZONE": "europe-west4-a", "GCP_PROJECT": "p-2"}
    assert _dry("delete.sh", env=env, calls=calls) == [
        [
            "gcloud",
            "compute",
            "tpus",
            "tpu-vm",
            "delete",
            "env-tpu",
            "--zone=europe-west4-a",
            "--project=p-2",
        ]
    ]


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("create.sh", ["--name", "My_TPU", "--zone", "z"], "TPU name 'My_TPU' must be"),
        ("create.sh", ["--name", "t"], "no zone"),
        ("create.sh", ["--name", "t", "--zone", "z", "--wait"], "--wait applies to --queued"),
        ("create.sh", ["--name", "t", "--zone", "z", "--type", "big"], "accelerator type"),
        ("launch.sh", ["--name", "t", "--zone", "z", "--run", "r"], "must look like gs://"),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "bkt/x", "--run", "r"],
            "must look like gs://",
        ),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt/a b", "--run", "r"],
            "must look like gs://",
        ),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt/a/../b", "--run", "r"],
            "may not hold '.' or '..'",
        ),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt", "--run", "r", "--mount", "mnt"],
            "mount point 'mnt' must be an absolute path",
        ),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt", "--run", "a b"],
            "run name 'a b'",
        ),
        (
            "launch.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt", "--steps", "3"],
            "unknown option '--steps'",
        ),
        ("logs.sh", ["--name", "t", "--zone", "z", "--run", "r", "--worker", "x"], "--worker"),
        ("setup.sh", ["--name", "t", "--zone", "z"], "must look like gs://"),
        (
            "setup.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt", "--mount", "/mnt/"],
            "mount point '/mnt/' must be",
        ),
        (
            "setup.sh",
            ["--name", "t", "--zone", "z", "--bucket", "gs://bkt", "--ref", "no-such-ref"],
            "not a commit",
        ),
        ("slurm/scaling.sbatch", ["--out", "gs://bkt/runs/s1"], "is a URL"),
        ("delete.sh", ["--name"], "option --name needs a value"),
    ],
)
def test_errors(
    script: str, args: list[str], message: str, stub_path: tuple[dict[str, str], Path]
) -> None:
    env, calls = stub_path
    result = _run(TPU / script, *args, "--dry-run", env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not calls.exists()
