"""myojax.orbax_noise: closed-event-loop tracebacks dropped whole, everything else written
through (other tracebacks, partial progress-bar writes); the read-only absl notice dropped."""

from __future__ import annotations

import io
import logging
import sys

from myojax.orbax_noise import quiet_orbax

CLOSED = (
    "Traceback (most recent call last):\n"
    '  File "base_events.py", line 519, in _check_closed\n'
    "    raise RuntimeError('Event loop is closed')\n"
    "RuntimeError: Event loop is closed\n"
)
OTHER = (
    'Traceback (most recent call last):\n  File "x.py", line 1, in f\nValueError: a real error\n'
)


def test_only_closed_loop_tracebacks_are_dropped(monkeypatch):
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    with quiet_orbax():
        sys.stderr.write("\r 10%|#         | 1/10")  # a bar without a newline: straight through
        assert sink.getvalue() == "\r 10%|#         | 1/10"
        for chunk in (CLOSED[:40], CLOSED[40:], OTHER, CLOSED, "after\n"):
            sys.stderr.write(chunk)
    assert sys.stderr is sink
    assert sink.getvalue() == "\r 10%|#         | 1/10" + OTHER + "after\n"


def test_read_only_notice_is_dropped_other_warnings_pass(caplog):
    absl = logging.getLogger("absl")
    with caplog.at_level(logging.WARNING, logger="absl"):
        for message in ("Given directory is read only=/x", "something else"):
            record = absl.makeRecord("absl", logging.WARNING, "f.py", 1, message, (), None)
            absl.handle(record)  # applies the logger's filters
    assert [r.getMessage() for r in caplog.records] == ["something else"]
