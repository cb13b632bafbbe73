"""Provenance of a measurement: which machine, software and load it ran under, and when.

Every published figure is written with this record beside it, so a reader can tell an idle
machine from a shared one.
"""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

import jax


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
