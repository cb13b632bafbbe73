"""The language-model myopia analysis's results as typed records, and their JSON.

``LmMyopiaResults`` is what the page, the plots and the README paragraph read; it is written
as ``lm_myopia.json`` (``results/lm_myopia.json`` for the cpu study, ``lm_myopia-PRESET.json``
for another preset) and read back by ``--from-json`` with ``experiments.scaling.records``'
generic record reader.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from experiments.lm_myopia.future_probes import ProbeRun
from experiments.lm_myopia.sacrifice import SizeSacrifice, Trends
from experiments.scaling import records as study_records
from experiments.scaling.sections import Interval

_record = dataclasses.dataclass(frozen=True, kw_only=True)


@_record
class SwitchArm:
    name: str  # "standard", "myopic", "standard -> myopic", "myopic -> standard"
    loss: Interval  # test loss (nats/token), crossed interval over seeds and sequences
    per_seed: tuple[float, ...]


@_record
class SwitchResult:
    """The gradient mode switched at half of one size's run, both ways, every seed."""

    size: str
    steps: int
    switch_step: int
    arms: tuple[SwitchArm, ...]
    # Of the standard advantage L(myopic) − L(standard): the share that standard -> myopic
    # keeps, and the share that myopic -> standard reaches.
    kept: Interval
    reached: Interval
    cpu_s: float  # training the switched arms (0 when read from the cache)


@_record
class LmMyopiaResults:
    study: str  # the study directory, as given
    preset: str
    description: str
    command: str
    wall_s: float
    cpu_s: float
    environment_start: dict[str, Any]
    environment_end: dict[str, Any]
    seeds: tuple[int, ...]
    sizes: tuple[str, ...]
    params: tuple[int, ...]  # non-embedding, per size
    sequences: int  # test windows
    positions: int
    n_boot: int
    class_kind: str
    sacrifice: tuple[SizeSacrifice, ...]
    trends: Trends
    probes: tuple[ProbeRun, ...]
    switch: SwitchResult | None


def to_json(results: LmMyopiaResults) -> dict[str, Any]:
    return dataclasses.asdict(results)


def from_json(obj: Any) -> LmMyopiaResults:
    """Saved results as records; a document of another shape is one clear error."""
    try:
        return study_records.parse(LmMyopiaResults, obj, "language-model myopia results")
    except KeyError as e:
        raise ValueError(f"malformed language-model myopia results: {e}") from None
