"""Plots and the results page of the self-training study, written from its results alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments import epilogue

FIGURE = "self_training.png"


def plot(results: dict[str, Any], folder: Path) -> list[str]:
    return []


def report(results: dict[str, Any], figure_prefix: str) -> str:
    return "# placeholder\n"


PAGE = epilogue.report_page("self_training", report, plot)
