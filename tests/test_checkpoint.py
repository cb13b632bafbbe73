"""myojax.checkpoint: restore for analysis in a fresh process (myojax and plain orbax), keep-last-K,
corrupt latest step -> fall back to the previous good one (moved aside, never deleted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from myojax import checkpoint as ckpt
from myojax.train import run
from myojax.train.presets import RUN_PRESETS as PRESETS


def configs(out: Path, **train: object):
    model_cfg = PRESETS["tiny"][0].replace(
        seq_len=16, d_model=16, n_layers=2, n_heads=2, tie_embeddings=False, gradient_mode="myopic"
    )
    fields = dict(
        steps=12,
        batch_size=4,
        warmup_steps=2,
        log_interval=4,
        eval_interval=12,
        eval_batches=1,
        checkpoint_interval=3,
        keep=3,
        out=str(out),
    )
    return PRESETS["tiny"][1].replace(**{**fields, **train}), model_cfg


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    final = run(*configs(out), progress=False)
    assert final["step"] == 12
    return out


def steps_on_disk(out: Path) -> list[int]:
    return sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())


def test_keeps_last_k(run_dir):
    assert steps_on_disk(run_dir) == [6, 9, 12]


def test_restore_in_fresh_process_via_myojax_and_plain_orbax(run_dir, tmp_path):
    config, model = ckpt.restore(run_dir)
    assert config.gradient_mode == "myopic" and not config.tie_embeddings
    expected = tmp_path / "expected.npz"
    np.savez(
        expected,
        wte=np.asarray(model.wte),
        w_qkv=np.asarray(model.blocks.w_qkv),
        lm_head=np.asarray(model.lm_head),
    )
    script = f"""
import json, sys, numpy as np
import orbax.checkpoint as ocp
# 1. plain orbax, no myojax import
step_dir = {str(run_dir.resolve() / "checkpoints" / "12" / "model")!r}
params = ocp.StandardCheckpointer().restore(step_dir)
assert "myojax" not in sys.modules
e = np.load({str(expected)!r})
for k in ("wte", "lm_head"):
    np.testing.assert_array_equal(np.asarray(params[k]), e[k])
np.testing.assert_array_equal(np.asarray(params["blocks"]["w_qkv"]), e["w_qkv"])
# 2. myojax.checkpoint.restore, no training code
from myojax.checkpoint import restore
config, model = restore({str(run_dir)!r})
assert "myojax.train" not in sys.modules
np.testing.assert_array_equal(np.asarray(model.wte), e["wte"])
print(json.dumps({{"mode": config.gradient_mode, "keys": sorted(params)}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mode"] == "myopic"
    assert result["keys"] == ["blocks", "lm_head", "lnf_bias", "lnf_gain", "wpe", "wte"]


def test_restore_specific_step_and_config(run_dir):
    _, m6 = ckpt.restore(run_dir, step=6)
    _, m12 = ckpt.restore(run_dir, step=12)
    assert not np.array_equal(np.asarray(m6.wte), np.asarray(m12.wte))
    assert ckpt.read_config(run_dir)["train"]["steps"] == 12
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint for step 7"):
        ckpt.restore(run_dir, step=7)


def test_restore_without_checkpoints_is_one_clear_error(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="has no checkpoint directory"):
        ckpt.restore(tmp_path)


def corrupt(step_dir: Path) -> None:
    """Truncate every array data file of the model item, as a crashed disk write might."""
    files = [
        p
        for p in (step_dir / "model").rglob("*")
        if p.is_file()
        and p.stat().st_size > 0
        and p.name not in ("_CHECKPOINT_METADATA", "commit_success.txt")
    ]
    assert files
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def test_corrupt_latest_falls_back_to_previous_good_step(tmp_path, run_dir, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    _, good9 = ckpt.restore(out, step=9)
    corrupt(out / "checkpoints" / "12")
    # Analysis: reports the bad step, returns step 9, changes nothing on disk.
    _, model = ckpt.restore(out)
    assert "checkpoint step 12" in capsys.readouterr().err
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(good9), strict=True):
        np.testing.assert_array_equal(a, b)
    assert steps_on_disk(out) == [6, 9, 12]
    with pytest.raises(ckpt.CheckpointError, match="step 12 .* unreadable"):
        ckpt.restore(out, step=12)
    # Resume: the bad step is moved aside (kept), training continues from 9 and rewrites 12.
    final = run(*configs(out), progress=False)
    assert final["resumed_from"] == 9 and final["step"] == 12
    assert "moved it to" in capsys.readouterr().err
    assert len(list((out / "corrupt-checkpoints").iterdir())) == 1
    assert steps_on_disk(out) == [6, 9, 12]
    _, again = ckpt.restore(out)
    _, reference = ckpt.restore(run_dir)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)  # the redone steps reproduce the lost checkpoint


def test_normal_restore_prints_nothing(run_dir, capfd):
    """Issue 13 item 6: orbax's two absl WARNING lines on every read-only restore are gone."""
    ckpt.restore(run_dir)
    ckpt.read_config(run_dir)
    assert capfd.readouterr() == ("", "")


def test_unreadable_step_is_one_line_without_orbax_tracebacks(tmp_path, run_dir, capfd):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    corrupt(out / "checkpoints" / "12")
    capfd.readouterr()
    step, _, _ = ckpt.restore_step(out)
    err = capfd.readouterr().err
    assert step == 9 and "Event loop is closed" not in err and "Traceback" not in err
    (line,) = err.splitlines()
    assert "checkpoint step 12" in line and "unreadable" in line


def plant_nonfinite_step(out: Path, src: int, dest: int) -> None:
    """Step ``dest``: a copy of step ``src`` whose parameters are all NaN, as a run that saved
    after a divergence (before steps were checked) left it."""
    import orbax.checkpoint as ocp

    step_dir = out / "checkpoints" / str(dest)
    shutil.copytree(out / "checkpoints" / str(src), step_dir)
    _, model = ckpt.restore(out, step=src)
    shutil.rmtree(step_dir / "model")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((step_dir / "model").resolve(), jax.tree.map(lambda x: x * np.nan, model))
    checkpointer.wait_until_finished()
    checkpointer.close()


def test_nonfinite_steps_are_reported_as_such_and_skipped(tmp_path, run_dir, capsys):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    plant_nonfinite_step(out, 12, 15)
    capsys.readouterr()
    # Analysis: named as non-finite, the previous finite step returned.
    step, _, model = ckpt.restore_step(out)
    (line,) = capsys.readouterr().err.splitlines()
    assert step == 12 and "step 15" in line and "non-finite parameters" in line
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(model))
    with pytest.raises(ckpt.NonFiniteCheckpoint, match="step 15 .* non-finite"):
        ckpt.restore(out, step=15)
    # verify says which step it checked and why it skipped the latest.
    from myojax import cli
    from myojax.verify.__main__ import main as verify

    assert cli.run(verify, ["--checkpoint", str(out), "--seq-len", "4"]) == 0
    captured = capsys.readouterr()
    assert f"checkpoint {out} step 12" in captured.out and "step 15" in captured.err
    # Resume: the NaN step is moved aside like an unreadable one, never resumed from.
    final = run(*configs(out), progress=False)
    assert final["resumed_from"] == 12
    assert "non-finite" in capsys.readouterr().err
    assert [p.name.split("-")[0] for p in (out / "corrupt-checkpoints").iterdir()] == ["15"]
    # Only non-finite steps left: an error that says so, from restore and from verify.
    only_nan = tmp_path / "nan"
    (only_nan / "checkpoints").mkdir(parents=True)
    shutil.move(next((out / "corrupt-checkpoints").iterdir()), only_nan / "checkpoints" / "15")
    with pytest.raises(ckpt.CheckpointError, match="no readable, finite checkpoint.*non-finite"):
        ckpt.restore(only_nan)
    assert cli.run(verify, ["--checkpoint", str(only_nan)]) == 2
    assert "non-finite" in capsys.readouterr().err


def test_latest_first_ignores_a_killed_save_directory(tmp_path):
    """Issue 26 (7): the temporary directory of a save killed midway is not a step for the
    resolver the trainer, restore() and the analysis tools share."""

    run = tmp_path / "run"
    shutil.copytree("tests/fixtures/run-v0.1-myopic", run)
    (run / "checkpoints" / "6.orbax-checkpoint-tmp-99").mkdir()
    manager = ckpt.make_manager(run, read_only=True)
    try:
        assert ckpt.latest_first(manager) == [4]
    finally:
        manager.close()
    # Negative control: a finished save is a step.
    shutil.copytree(run / "checkpoints" / "4", run / "checkpoints" / "5")
    manager = ckpt.make_manager(run, read_only=True)
    try:
        assert ckpt.latest_first(manager) == [5, 4]
    finally:
        manager.close()
