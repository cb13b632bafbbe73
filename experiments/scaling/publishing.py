"""Where a study's results go, through the experiments' shared ending (``experiments.epilogue``):
``results.json``, the plots and ``report.md`` in the study's --out; with ``--publish``, the
repository's copy.

Published, the ``cpu`` preset's page is ``results/scaling.md`` (others:
``results/scaling-PRESET.md``), its results ``results/scaling-PRESET.json`` and its plots
``docs/figures/scaling/`` (others: a PRESET subfolder); the presets in ``README_KEYS`` also
rewrite their README section between that preset's markers. The default page also carries the
cpu-large answer and the gpt2 memory check (``experiments.scaling.companions``), so publishing
another preset redraws it too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from experiments import epilogue
from experiments.scaling import findings, markdown, plots, records
from experiments.scaling.companions import companion_sections
from myojax import files

DEFAULT = "cpu"  # the preset whose page is results/scaling.md
README_KEY = "scaling answer, written by python -m experiments.scaling --publish"
# The presets whose answer --publish copies into the README, each between its own markers.
README_KEYS = {
    DEFAULT: README_KEY,
    "cpu-large": "cpu-large answer, written by python -m experiments.scaling --preset cpu-large "
    "--publish",
}


def _render(obj: Any, prefix: str, companions: Path | None) -> str:
    res = records.results_from_json(obj)
    text = markdown.render_report(res, plots.plot_names(res), figure_prefix=prefix)
    if companions is None:
        return text
    return text.rstrip("\n") + "\n\n" + companion_sections(companions)


def page(preset: str, *, companions: Path | None = None) -> epilogue.Page:
    """The study's page for ``preset``; ``companions``: the results folder whose companion JSON
    the default page carries (published only)."""
    key = README_KEYS.get(preset)
    return epilogue.Page(
        json_name=f"scaling-{preset}.json",
        page_name="scaling.md" if preset == DEFAULT else f"scaling-{preset}.md",
        render=lambda obj, prefix: _render(obj, prefix, companions),
        plot=lambda obj, folder: plots.plot_all(records.results_from_json(obj), folder),
        figures="docs/figures/scaling" + ("" if preset == DEFAULT else f"/{preset}"),
        readme=(lambda obj: findings.readme_summary(records.results_from_json(obj)))
        if key
        else None,
        readme_key=key,
        local_json="results.json",
    )


def write(results: records.StudyResults, out: Path) -> list[Path]:
    """``results.json``, the plots and ``report.md`` in ``out``; returns the paths, page last."""
    return epilogue.finish(page(results.preset), records.to_json(results), out)


def is_current(results: records.StudyResults, out: Path) -> bool:
    """Whether ``out``'s report is the page of ``results``: the page is written last, so a page
    that renders these results means the study's outputs are whole. A kill between
    ``results.json`` and the page leaves an older page, and the study then writes them again."""
    own = page(results.preset)
    try:
        text = (out / own.local_page).read_text()
    except FileNotFoundError:
        return False
    return text == own.render(records.to_json(results), "")


def publish(results: records.StudyResults, root: Path) -> list[Path]:
    """The repository's copy at ``root``, and the default page redrawn when another preset's
    answer changed. Returns the paths written."""
    companions = root / "results" if results.preset == DEFAULT else None
    own = page(results.preset, companions=companions)
    written = epilogue.publish_page(own, records.to_json(results), root)
    default = files.read_json(root / "results" / f"scaling-{DEFAULT}.json")
    if results.preset != DEFAULT and default is not None:
        # Its JSON is rewritten as read and its README section is left alone: only the page and
        # its plots change, with the companion sections.
        redraw = dataclasses.replace(page(DEFAULT, companions=root / "results"), readme=None)
        records.results_from_json(default)  # one clear error if it is not the study's
        written += epilogue.publish_page(redraw, default, root)
    return written
