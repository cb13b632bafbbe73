"""Fault injection over the phases of a run (``myojax.train.faults``): the real trainer in a
subprocess is killed with SIGKILL at each failure point (``MYOJAX_FAULT=PHASE:STEP``), then rerun;
every rerun must complete with metrics and parameters bitwise equal to an uninterrupted run.

One representative case (a kill mid-step, then a kill while ``metrics.jsonl`` is rewritten on
resume) runs by default; the whole loop is ``@pytest.mark.slow``:
``python -m pytest -m slow tests/test_faults.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from myojax import checkpoint as ckpt
from myojax.train import run
from myojax.train.presets import RUN_PRESETS as PRESETS

REPO = Path(__file__).resolve().parents[1]
STEPS = 12
MODEL = dict(seq_len=16, d_model=16, n_layers=2, n_heads=2)
TRAIN = dict(
    batch_size=4,
    warmup_steps=2,
    log_interval=1,
    eval_interval=6,
    eval_batches=1,
    checkpoint_interval=4,
    keep=3,
)

# Each case: the faults of successive killed attempts, then one clean rerun.
CASES = {
    "start": ["start"],
    "mid-step": ["step:7"],
    "during-save": ["save:8"],
    "during-eval": ["eval:6"],
    "during-metrics-rewrite": ["step:10", "metrics-rewrite"],
}


def command(out: Path) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**MODEL, **TRAIN}.items()]
    head = [sys.executable, "-m", "myojax.train", "--preset", "tiny", "--steps", str(STEPS)]
    return [*head, "--out", str(out), *flags]


def attempt(out: Path, fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MYOJAX_FAULT"}
    if fault is not None:
        env["MYOJAX_FAULT"] = fault
    return subprocess.run(
        command(out), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def logged(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "reference"
    train_cfg = PRESETS["tiny"][1].replace(**TRAIN, steps=STEPS, out=str(out))
    final = run(train_cfg, PRESETS["tiny"][0].replace(**MODEL), progress=False)
    assert final["step"] == STEPS and final["resumed_from"] is None
    return out


def check_case(faults: list[str], out: Path, reference: Path) -> None:
    for fault in faults:
        before = (out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").exists() else None
        killed = attempt(out, fault)
        assert killed.returncode == -signal.SIGKILL, (
            f"MYOJAX_FAULT={fault} did not kill the run: {killed.stderr[-2000:]}"
        )
        if fault == "metrics-rewrite":  # killed half-way through the rewrite: old file whole
            assert (out / "metrics.jsonl").read_text() == before
    done = attempt(out, None)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["step"] == STEPS and summary["resumed_from"] != STEPS
    assert logged(out) == logged(reference)  # every loss, lr, grad norm and evaluation
    _, model = ckpt.restore(out)
    _, ref_model = ckpt.restore(reference)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(ref_model), strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise


def test_kill_mid_step_then_during_metrics_rewrite(tmp_path, reference):
    out = tmp_path / "run"
    check_case(CASES["during-metrics-rewrite"], out, reference)
    # The killed runs' lock was taken over by the next attempt, not left blocking.
    assert not (out / ".lock").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c != "during-metrics-rewrite"])
def test_kill_at_every_phase_then_rerun_matches_uninterrupted(case, tmp_path, reference):
    check_case(CASES[case], tmp_path / "run", reference)


def test_fault_spec_is_validated(monkeypatch):
    from myojax.train.faults import fault_point

    monkeypatch.setenv("MYOJAX_FAULT", "nowhere:3")
    with pytest.raises(ValueError, match="phase must be one of"):
        fault_point("step", 3)
    monkeypatch.setenv("MYOJAX_FAULT", "step:3")
    fault_point("step", 2)  # another step: no-op (this process is still alive)
    fault_point("save", 3)
