"""Progress and stop signals, shared by the trainer and the experiments' drivers.

``Progress``: a tqdm bar on a terminal, plain log lines otherwise, silent on processes other
than 0. ``StopFlag`` + ``stop_on_signals``: SIGTERM/SIGINT only set a flag that the loop reads at
its next boundary, agreed across processes so every one of them stops at the same step.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from myojax import sharding as shd


class StopFlag:
    signum: int | None = None

    def agreed(self) -> int:
        """The signal to stop on if any process received one (0: none); the same on every
        process, which therefore all save and exit at the same step boundary."""
        return int(shd.gather_ints(self.signum or 0).max())


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


class Progress:
    """A tqdm bar on a terminal; plain log lines otherwise; silent when ``quiet`` (processes
    other than 0). Positions are absolute (``update(done)``), so a resumed run starts mid-bar."""

    def __init__(
        self,
        total: int,
        initial: int = 0,
        enabled: bool | None = None,
        *,
        unit: str = "step",
        desc: str | None = None,
        quiet: bool = False,
    ):
        self.quiet = quiet
        self.bar = None
        if quiet:
            return
        if sys.stderr.isatty() if enabled is None else enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)

    def update(
        self, done: int, postfix: dict[str, str] | None = None, line: str | None = None
    ) -> None:
        """Move to ``done``; ``postfix`` decorates the bar, ``line`` is what a log without a
        bar prints instead (nothing if None)."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if postfix:
                self.bar.set_postfix(postfix)
        elif line is not None:
            print(line, flush=True)

    def write(self, message: str) -> None:
        if self.quiet:
            return
        (self.bar.write if self.bar is not None else functools.partial(print, flush=True))(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
