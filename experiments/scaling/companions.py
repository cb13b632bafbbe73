"""The default report's companion sections: what the other scaling commands measured, rendered
into ``results/scaling.md`` from the JSON they left in ``results/``.

- the ``cpu-large`` preset's answer (``results/scaling-cpu-large.json``, written by
  ``python -m experiments.scaling --preset cpu-large --publish``): the gap per size, its slope,
  the undertraining and muP transfer checks;
- the gpt2 memory planner checked against XLA (``results/memory_plan.json``, written by
  ``python -m experiments.memory_check``).

Nothing here measures anything: a missing JSON means a missing section, said in one line. The
page is redrawn whenever either preset is published (``--report-only --publish`` redraws it
after a new memory check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments import memory_plan_page
from experiments.scaling import findings, records

LARGE_JSON = "scaling-cpu-large.json"
MEMORY_JSON = "memory_plan.json"


def _demote(line: str) -> str:
    """One heading level down, so a section of another page nests under this page's ``##``."""
    return f"#{line}" if line.startswith("#") else line


def cpu_large_section(res: records.StudyResults) -> list[str]:
    cost = res.cost
    return [
        "## The larger CPU ladder (`cpu-large` preset)",
        "",
        *findings.headline(res),
        f"{res.description}. {cost.distinct_runs} runs, "
        f"{cost.sum_run_wall_s / 3600:.1f} h of run wall time and "
        f"{cost.sum_run_cpu_s / 3600:.1f} h of process CPU time; the full report, with every "
        "run and the machine's load, is [scaling-cpu-large.md](scaling-cpu-large.md).",
        "",
        *findings.answer_sections(res, _demote),
    ]


def memory_section(doc: Any) -> list[str]:
    """The memory check's page (``experiments.memory_plan_page``, from its own JSON), nested."""
    page = memory_plan_page.page(Path(MEMORY_JSON)).render(doc, "").splitlines()
    return [
        _demote(page[0]),
        "",
        "Copied from [memory_plan.md](memory_plan.md) (the same rows, from "
        f"`{MEMORY_JSON}`), so that the study's report holds the planner's check at its real "
        "shapes.",
        *map(_demote, page[1:]),
        "",
    ]


def companion_sections(results: Path) -> str:
    """The sections for every companion JSON present in ``results``; a line for each absent."""
    lines: list[str] = []
    for name, render, absent in (
        (
            LARGE_JSON,
            lambda obj: cpu_large_section(records.results_from_json(obj)),
            "the cpu-large preset has not been published",
        ),
        (MEMORY_JSON, memory_section, "python -m experiments.memory_check has not been run"),
    ):
        path = results / name
        if path.is_file():
            lines += render(json.loads(path.read_text()))
        else:
            lines += [f"_No `{name}` in results/: {absent}._", ""]
    return "\n".join(lines)
