"""Fault injection for tests: ``MYOJAX_FAULT=PHASE:STEP`` kills the process (SIGKILL, no
handler runs, exactly like ``kill -9``) when the run reaches ``PHASE`` at ``STEP``.

Phases: ``start`` (run directory ready, before the first step), ``step`` (a step dispatched,
its metrics not yet read), ``save`` (an async checkpoint save in flight), ``eval`` (evaluation
computed, its row not yet written), ``metrics-rewrite`` (half of ``metrics.jsonl`` rewritten on
resume). ``STEP`` is ignored for ``start`` and ``metrics-rewrite``. Unset: every call is a no-op.
"""

from __future__ import annotations

import os
import signal

PHASES = ("start", "step", "save", "eval", "metrics-rewrite")
ENV = "MYOJAX_FAULT"


def fault_point(phase: str, step: int = 0) -> None:
    """Die here if ``MYOJAX_FAULT`` names this phase (and step)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, at = spec.partition(":")
    if want not in PHASES:
        raise ValueError(f"{ENV}={spec!r}: phase must be one of {PHASES}")
    if want == phase and (phase in ("start", "metrics-rewrite") or int(at or 0) == step):
        os.kill(os.getpid(), signal.SIGKILL)
