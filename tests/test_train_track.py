"""myojax.train.track: TensorBoard and W&B (offline) trackers, read back with the trackers' own
readers (TensorBoard's event file loader, W&B's offline DataStore): every logged step once,
also after a kill -9 and resume; the rebuild command; the row and config mappings."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from wandb.proto import wandb_internal_pb2
from wandb.sdk.internal import datastore

from myojax import cli as command
from myojax.train import run
from myojax.train.presets import RUN_PRESETS as PRESETS
from myojax.train.track import (
    TRACKER_DIRS,
    TrackerSpec,
    default_tracker,
    hyperparameters,
    open_tracker,
    read_rows,
    scalars,
)
from myojax.train.track.__main__ import main

REPO = Path(__file__).resolve().parents[1]
STEPS = 14
MODEL = dict(seq_len=8, d_model=16, n_layers=1, n_heads=2)
TRAIN = dict(
    steps=STEPS,
    batch_size=2,
    warmup_steps=1,
    log_interval=1,
    eval_interval=6,
    eval_batches=1,
    checkpoint_interval=4,
    keep=2,
)
KILL_AT = 12  # dies with step 12 dispatched, rows to 10 written; checkpoints every 4 steps


def configs(out: Path):
    model_cfg, train_cfg = PRESETS["tiny"]
    return train_cfg.replace(**TRAIN, out=str(out)), model_cfg.replace(**MODEL)


def tensorboard_steps(run_dir: Path) -> dict[str, list[int]]:
    """tag -> steps of every scalar event, in file order, read with TensorBoard's own loader."""
    steps = collections.defaultdict(list)
    for path in sorted((run_dir / TRACKER_DIRS["tensorboard"]).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    steps[value.tag].append(event.step)
    return dict(steps)


def wandb_steps(run_dir: Path) -> dict[str, list[int]]:
    """key -> steps of every history row in the offline run files, read with W&B's DataStore."""
    steps = collections.defaultdict(list)
    for path in sorted((run_dir / TRACKER_DIRS["wandb"]).glob("offline-run-*/run-*.wandb")):
        store = datastore.DataStore()
        store.open_for_scan(str(path))
        while (data := store.scan_data()) is not None:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "history":
                for item in record.history.item:
                    key = item.key or "/".join(item.nested_key)
                    if not key.startswith("_"):
                        steps[key].append(record.history.step.num)
    return dict(steps)


READERS = {"tensorboard": tensorboard_steps, "wandb": wandb_steps}


def expected_steps(run_dir: Path) -> dict[str, list[int]]:
    """What metrics.jsonl (the source of truth) says each tracker key must hold."""
    steps = collections.defaultdict(list)
    for row in read_rows(run_dir / "metrics.jsonl"):
        for name in scalars(row):
            steps[name].append(row["step"])
    return dict(steps)


def test_scalars_names_train_and_eval_and_drops_lists_and_non_finite():
    row = {"step": 3, "loss": 2.5, "lr": 1e-3, "val_loss": 2.0, "val_loss_per_position": [1.0]}
    assert scalars(row) == {"train/loss": 2.5, "train/lr": 1e-3, "eval/val_loss": 2.0}
    assert scalars({"step": 1, "loss": float("nan"), "flag": True}) == {}  # the control


def test_hyperparameters_flatten_config_and_tags():
    config = {"train": {"lr": 0.1, "mesh": "data=-1"}, "model": {"d_model": 16, "x": [1]}}
    hp = hyperparameters(config, ("mode=myopic", "seed=0"))
    assert hp == {
        "train.lr": 0.1,
        "train.mesh": "data=-1",
        "model.d_model": 16,
        "tag.mode": "myopic",
        "tag.seed": "0",
    }


def test_spec_rejects_unknown_tracker_and_defaults_to_tensorboard():
    with pytest.raises(ValueError, match="unknown tracker 'mlflow'"):
        TrackerSpec("mlflow")
    assert default_tracker() == "tensorboard"  # tensorboardX is installed with [track]
    assert TrackerSpec().resolved == "tensorboard"


@pytest.mark.parametrize("kind", ["tensorboard", "wandb"])
def test_every_step_once_after_kill9_and_resume(tmp_path, kind):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "myojax.train", "--preset", "tiny", "--out", str(out)]
    argv += ["--tracker", kind, "--progress", "false"]
    for name, value in {**TRAIN, **MODEL}.items():
        argv += [command.flag(name), str(value)]
    env = {**os.environ, "MYOJAX_FAULT": f"step:{KILL_AT}"}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    last_logged = max(r["step"] for r in read_rows(out / "metrics.jsonl"))
    last_tracked = max(tensorboard_steps(out)["train/loss"]) if kind == "tensorboard" else None

    final = run(*configs(out), progress=False, tracker=TrackerSpec(kind))
    assert final["step"] == STEPS
    # The hazard is real: rows past the restored checkpoint were logged (and tracked) before.
    assert final["resumed_from"] < last_logged
    assert last_tracked is None or final["resumed_from"] < last_tracked

    logged = READERS[kind](out)
    want = expected_steps(out)
    assert want["train/loss"] == list(range(1, STEPS + 1))
    assert want["eval/val_loss"] == [6, 12, 14]
    assert {k: sorted(v) for k, v in logged.items()} == want  # every step, each once


def test_default_tracker_writes_tensorboard_and_none_writes_nothing(tmp_path):
    run(*configs(tmp_path), progress=False)
    assert tensorboard_steps(tmp_path)["train/loss"] == list(range(1, STEPS + 1))
    open_tracker(tmp_path / "b", {}, TrackerSpec("none")).close()
    assert not (tmp_path / "b").exists()  # the control: no tracker, no files


def test_rebuild_command_writes_tensorboard_from_metrics(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    rows = [{"step": s, "loss": 3.0 - s / 10, "lr": 0.01} for s in range(1, 6)]
    rows.append({"step": 5, "val_loss": 2.9, "val_loss_per_position": [2.9]})
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6')
    (out / "config.json").write_text(json.dumps({"train": {"lr": 0.01}}))
    assert main([str(out), "--to", "tensorboard"]) == 0
    assert "6 rows (steps 1..5)" in capsys.readouterr().out
    assert tensorboard_steps(out) == {
        "train/loss": [1, 2, 3, 4, 5],
        "train/lr": [1, 2, 3, 4, 5],
        "eval/val_loss": [5],
    }
    assert main([str(out), "--to", "tensorboard"]) == 0  # rerun: replaced, not appended
    assert tensorboard_steps(out)["train/loss"] == [1, 2, 3, 4, 5]


def test_rebuild_command_refuses_a_directory_without_metrics(tmp_path, capsys):
    code = command.run(main, [str(tmp_path)])
    assert code != 0
    assert "has no metrics.jsonl" in capsys.readouterr().err
