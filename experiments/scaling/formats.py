"""How the study writes its numbers in text: parameter counts, intervals, load averages."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_n(n: float) -> str:
    """A parameter count in k, M or B (3 significant digits)."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def ci_text(lo: float, hi: float, digits: int = 4, sign: bool = False) -> str:
    """``[lo, hi]`` with ``digits`` decimals (and a sign with ``sign``)."""
    f = f"+.{digits}f" if sign else f".{digits}f"
    return f"[{lo:{f}}, {hi:{f}}]"


def load_text(load: Sequence[float] | None) -> str:
    """Load averages as ``1.0/2.0/3.0`` ("n/a" when not recorded)."""
    return "n/a" if not load else "/".join(f"{x:.1f}" for x in load)
