"""orbax's noise on a read, narrowly filtered: nothing else is hidden.

- the absl WARNING "Given directory is read only" that orbax logs for every read-only manager
  (what was asked for) is dropped, from the logger ``absl`` only;
- ``quiet_orbax()`` drops, from ``sys.stderr`` while it is active, whole tracebacks that end in
  ``RuntimeError: Event loop is closed``; every other byte is written through unchanged;
- ``quiet_failed_saves()`` also drops the copies orbax logs of a failed background save, which
  the main thread re-raises (and a command reports in one line).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any


class _DropReadOnlyNotice(logging.Filter):
    """orbax warns on every read-only manager that it is read-only: what was asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_DropReadOnlyNotice())


_TRACEBACK = "Traceback (most recent call last):"


class _DropClosedLoopTracebacks:
    """A stderr wrapper that drops whole tracebacks ending in ``RuntimeError: Event loop is
    closed``: tensorstore reads still in flight when orbax gives up on a damaged step call back
    into the event loop orbax has already closed. Everything else is written through."""

    def __init__(self, stream: Any):
        self._stream, self._held = stream, ""

    def write(self, text: str) -> int:
        if not self._held and not text.startswith(_TRACEBACK):
            return self._stream.write(text)  # progress bars and messages pass straight through
        self._held += text
        while self._held.startswith(_TRACEBACK):
            lines = self._held.split("\n")
            # The exception line is the first unindented line after the header.
            end = next((i for i, x in enumerate(lines[1:-1], 1) if x and x[0] != " "), None)
            if end is None:
                return len(text)  # the traceback is still being written
            block = "\n".join(lines[: end + 1]) + "\n"
            self._held = "\n".join(lines[end + 1 :])
            if lines[end] != "RuntimeError: Event loop is closed":
                self._stream.write(block)
        self._stream.write(self._held)
        self._held = ""
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def close_out(self) -> None:
        if self._held:
            self._stream.write(self._held)
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Restore-time noise off: see ``_DropClosedLoopTracebacks``."""
    wrapper = _DropClosedLoopTracebacks(sys.stderr)
    sys.stderr = wrapper
    try:
        yield
    finally:
        if sys.stderr is wrapper:
            sys.stderr = wrapper._stream
        wrapper.close_out()


def drop_background_save_errors(record: logging.LogRecord) -> bool:
    """orbax logs every failure of its background save threads, with a traceback, before
    re-raising it in the main thread, where a command reports it in one line: drop the copies
    (``--debug`` keeps them)."""
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


@contextlib.contextmanager
def quiet_failed_saves() -> Iterator[None]:
    """A training command's orbax noise off: ``quiet_orbax`` and the background copies of a
    failed save (``drop_background_save_errors``). The absl filter stays for the process's
    life, as orbax's save threads outlive a failed run."""
    logging.getLogger("absl").addFilter(drop_background_save_errors)
    with quiet_orbax():
        yield
