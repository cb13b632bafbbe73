"""Stop signals, shared by the trainer and the experiments' drivers: ``StopFlag`` +
``stop_on_signals``: SIGTERM/SIGINT only set a flag that the loop reads at its next boundary,
agreed across processes so every one of them stops at the same step.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from myojax import sharding as shd


def clock_save_due(minutes: float, saved_at: float) -> bool:
    """Whether this process's clock says a time-based checkpoint is due: ``minutes`` (> 0) since
    the last save at ``time.monotonic()`` ``saved_at``. Agreed across processes before use."""
    return minutes > 0 and time.monotonic() - saved_at >= 60 * minutes


class StopFlag:
    signum: int | None = None

    def agreed(self, save_due: bool = False) -> tuple[int, bool]:
        """The signal to stop on if any process received one (0: none), and whether any
        process's clock says a time-based checkpoint is due: the same on every process, which
        therefore all save, or stop, at the same step boundary. One all-gather of one int per
        step carries both (the signal in the high bits, the due flag in the lowest)."""
        flags = shd.gather_ints(((self.signum or 0) << 1) | int(save_due))
        return int((flags >> 1).max()), bool((flags & 1).any())


@contextmanager
def stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGTERM/SIGINT only set ``stop.signum``; the caller saves and exits at its next boundary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        stop.signum = signum

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
