"""The study's run record: the study with its command, wall and CPU time and machine load
attached."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

from experiments.self_training.config import GridConfig
from experiments.self_training.study import run_study
from myojax.provenance import environment, run_record

PROG = "python -m experiments.self_training"
QUICK = GridConfig(
    pilot_seeds=3, min_seeds=2, max_seeds=2, steps=40, pool_windows=128, eval_windows=64
)


def quick_fields() -> str:
    """What ``--quick`` changes, for its help."""
    default = GridConfig()
    changed = {
        f.name: getattr(QUICK, f.name)
        for f in dataclasses.fields(QUICK)
        if getattr(QUICK, f.name) != getattr(default, f.name)
    }
    return ", ".join(f"{k}={v}" for k, v in changed.items())


def run(cfg: GridConfig, argv: Sequence[str]) -> dict[str, Any]:
    """Run the study; its config, pilot, per-seed losses and run record (``meta``)."""
    load_before = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    pilot, losses = run_study(cfg)
    meta = run_record(PROG, argv, time.perf_counter() - t0, load_before)
    meta |= {"cpu_s": time.process_time() - c0, "environment": environment()}
    return {
        "config": cfg.to_dict(),
        "pilot": dataclasses.asdict(pilot),
        "losses": losses,
        "meta": meta,
    }
