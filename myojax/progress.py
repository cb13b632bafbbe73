"""Progress of long work: a tqdm bar on a terminal, plain log lines otherwise, silent on
processes other than 0. Used by the trainer, the studies and every long command."""

from __future__ import annotations

import functools
import sys


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
