"""The grid's run record: the grid run with its command, wall and CPU time, machine load and
sampler version attached, and the note a page rewritten from saved results carries."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.self_training.grid import GridConfig, run_grid
from myojax.analysis import sampling
from myojax.provenance import command_line, environment, run_record

PROG = "python -m experiments.self_training"
QUICK = GridConfig(seeds=2, generations=4, steps=120, pool_windows=768, metric_rows=128)


def quick_fields() -> str:
    """What ``--quick`` changes, for its help."""
    default = GridConfig()
    changed = {
        f.name: getattr(QUICK, f.name)
        for f in dataclasses.fields(QUICK)
        if getattr(QUICK, f.name) != getattr(default, f.name)
    }
    return ", ".join(f"{k}={v}" for k, v in changed.items())


def run(cfg: GridConfig, out: Path, argv: Sequence[str]) -> dict[str, Any]:
    """Run the grid into ``out``; its results with the run record under ``meta`` (also in every
    ``results.partial.json`` the grid leaves after each seed)."""
    load_before = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()

    def meta() -> dict[str, Any]:
        rec = run_record(PROG, argv, time.perf_counter() - t0, load_before)
        return rec | {
            "cpu_s": time.process_time() - c0,
            "environment": environment(),
            # which sampler produced the text (myojax/analysis/sampling.py, by content)
            "sampler_sha256": hashlib.sha256(Path(sampling.__file__).read_bytes()).hexdigest(),
        }

    results = run_grid(cfg, out, meta=meta)
    results["meta"] = meta()
    return results


def rewritten(results: dict[str, Any], argv: Sequence[str]) -> dict[str, Any]:
    """``results`` whose page says it was rewritten from the saved results by this command."""
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = results["meta"] | {"page_rewritten": f"`{command_line(PROG, argv)}` on {now}"}
    return results | {"meta": meta}
