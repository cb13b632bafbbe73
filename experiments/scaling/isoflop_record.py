"""The isoFLOP study's results record: what ``isoflop.json`` holds, typed, with its one writer
(``to_json``) and one reader (``from_json``). The page, plots and README section are drawn from
the record alone, so ``--publish`` and ``--from-json`` write the same bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

from experiments.scaling import records
from experiments.scaling.isoflop_analysis import IsoflopAnalysis
from experiments.scaling.isoflop_study import IsoflopRun

KIND = "isoflop"
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class IsoflopResults:
    """An isoFLOP study: every finished run (its record, the design's exact budget, its role,
    the most times it read a training token), the lr per mode, the analysis, and the report's
    sentences (the first is the answer). ``partial``: written by ``--report-only`` before every
    budget finished; the analysis then rests on the finished budgets alone and the first
    sentence says so."""

    command: str
    preset: str
    lrs: dict[str, float]
    runs: tuple[IsoflopRun, ...]
    analysis: IsoflopAnalysis
    report: tuple[str, ...]
    partial: bool = False
    kind: str = KIND
    schema_version: int = SCHEMA_VERSION


def to_json(results: IsoflopResults) -> dict[str, Any]:
    return records.to_json(results)


def is_isoflop(obj: Any) -> bool:
    """Whether parsed JSON claims to be this record (the --from-json dispatch)."""
    return isinstance(obj, dict) and obj.get("kind") == KIND


def from_json(obj: Any) -> IsoflopResults:
    """The record from parsed JSON; another kind, another schema version or a malformed
    record is one clear ValueError."""
    if not is_isoflop(obj):
        raise ValueError(f"not an isoFLOP results record (kind {KIND!r} missing)")
    if obj.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"isoFLOP results schema version {obj.get('schema_version')!r}; this code reads "
            f"version {SCHEMA_VERSION}"
        )
    return records.parse(IsoflopResults, obj, "isoFLOP results")
