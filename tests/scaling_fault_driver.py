"""A study process for ``tests/test_scaling_faults.py`` to kill: ``python -m
experiments.scaling --preset cpu --publish`` with the trainer replaced by a known law (so a whole
study takes seconds) and, when ``FAULT`` is set, a signal sent to itself at one phase.

    FAULT=PHASE:SIGNAL:N python -m tests.scaling_fault_driver OUT

PHASE is training (inside the N-th run), between (after the N-th run's record is written),
analysis, plotting, report or publish (entering that step); SIGNAL is KILL or TERM.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import zlib
from pathlib import Path

import numpy as np

from experiments import epilogue
from experiments.scaling import __main__ as command
from experiments.scaling import estimates, execute, plots, protocol, publishing, records
from myojax import cli, files, train
from myojax.model import param_counts
from tests import scaling_synthetic as syn

LOCAL_REPORT = publishing.page(syn.PRESET.name).local_page


def fake_train(train_cfg, model_cfg, progress=None, heldout=None, stop=None, tracker=None):
    """The final losses of a run from a known law: size, mode, lr and seed decide them."""
    n = param_counts(model_cfg)[1]
    gap = 0.02 if model_cfg.gradient_mode != "standard" else 0.0
    loss = 1.5 + 40 * n**-0.35 + gap + math.log2(train_cfg.lr / 8e-3) ** 2 / 20
    run = "/".join(Path(train_cfg.out).parts[-2:])  # MODE/RUN: the same in every study dir
    rng = np.random.default_rng(zlib.crc32(run.encode()))
    per_token = {s: loss + rng.normal(0, 0.05, (8, 4)) for s in ("validation", "test")}
    preempted = stop is not None and stop.signum is not None
    return {
        "step": train_cfg.steps,
        "loss": loss,
        "preempted": preempted,
        "heldout_losses": per_token,
    }


def _signal(name: str) -> None:
    os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


def _fire_at(module, attr: str, n: int, sig: str, after: bool = False, when=None) -> None:
    """Replace ``module.attr`` with a version sending ``sig`` at its ``n``-th qualifying call."""
    real, calls = getattr(module, attr), []

    def wrapper(*a, **k):
        if when is None or when(*a, **k):
            calls.append(1)
        fire = len(calls) == n and (when is None or when(*a, **k))
        if fire and not after:
            _signal(sig)
        out = real(*a, **k)
        if fire and after:
            _signal(sig)
        return out

    setattr(module, attr, wrapper)


def install(fault: str) -> None:
    phase, sig, n = fault.split(":")
    n = int(n)
    targets = {
        "training": (train, "run", False, None),
        "between": (records, "write_run", True, None),
        "analysis": (estimates, "analyze", False, None),
        "plotting": (plots, "plot_all", False, None),
        "report": (files, "write_text", False, lambda path, text: str(path).endswith(LOCAL_REPORT)),
        "publish": (epilogue, "publish_page", False, None),
    }
    module, attr, after, when = targets[phase]
    _fire_at(module, attr, n, sig, after, when)


def main(out: str) -> int:
    protocol.STUDY_PRESETS["cpu"] = syn.PRESET
    train.run = fake_train
    execute.heldout_windows = lambda p, data: {"validation": [], "test": []}
    if os.environ.get("FAULT"):
        install(os.environ["FAULT"])
    argv = ["--preset", "cpu", "--out", out, "--progress", "false", "--publish"]
    return cli.run(command.main, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
