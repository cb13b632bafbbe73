"""Provenance of a measurement: which machine, software and load it ran under, and when.

Every published figure is written with this record beside it, so a reader can tell an idle
machine from a shared one.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from myojax.files import write_text


def environment() -> dict[str, Any]:
    """Platform, Python and JAX versions, devices, CPU count, 1/5/15-minute load, UTC time."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": load,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def idle(env: dict[str, Any]) -> bool | None:
    """Whether an ``environment()`` record shows an otherwise idle machine: 1-minute load at
    most the CPU count (None when the load was not recorded)."""
    load, cpus = env.get("load_avg_1_5_15"), env.get("cpu_count")
    if not load or not cpus:
        return None
    return load[0] <= cpus


def load_summary(end: dict[str, Any], start: dict[str, Any] | None = None) -> str:
    """One line for a results page: the 1/5/15-minute load against the CPU count and whether
    the wall times are an otherwise idle machine's. The verdict uses the load when the job
    started (``start``, an ``environment()`` record) where there is one, since the load at the
    end counts the job's own threads."""
    judged = start or end
    if idle(judged) is None:
        return "load not recorded"

    def figures(env: dict[str, Any]) -> str:
        return " / ".join(f"{x:.1f}" for x in env["load_avg_1_5_15"])

    verdict = (
        "an otherwise idle machine"
        if idle(judged)
        else "a shared machine: wall times are inflated by other work"
    )
    when = f"{figures(start)} at the start, " if start else ""
    at_end = f"{figures(end)} at the end" if end.get("load_avg_1_5_15") else "end not recorded"
    cpus = judged["cpu_count"]
    return f"load average (1/5/15 min) {when}{at_end} on {cpus} CPUs ({end.get('time')}): {verdict}"


def command_line(prog: str, argv: Sequence[str]) -> str:
    """The shell command that reproduces a run: ``prog`` followed by ``argv``, quoted."""
    return " ".join([prog, *(shlex.quote(a) for a in argv)])


def run_record(
    prog: str, argv: Sequence[str], wall_s: float, load_before: Sequence[float]
) -> dict[str, Any]:
    """What a results page prints beside its figures: command, wall time, load before and
    after, CPU count, JAX version and backend, UTC date."""
    return {
        "command": command_line(prog, argv),
        "wall_s": wall_s,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_section(path: str | Path, key: str, body: str) -> None:
    """Replace the ``key`` section of the markdown file ``path`` (append it if absent)."""
    path = Path(path)
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    write_text(path, text)  # atomic: a full disk never leaves half a README
