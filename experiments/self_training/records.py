"""The study's typed records: one per trained model, the human floor of the drift metrics, and
the whole study as written to (and read back from) its JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Drift:
    """How a sample of bytes differs from held-out human text (``text_stats.drift``)."""

    unigram_kl: float
    bigram_kl: float
    unigram_kl_rev: float
    bigram_kl_rev: float
    unigram_entropy: float
    bigram_entropy: float
    repetition_8: float
    distinct_4: float
    distinct_8: float


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """One trained model: which cell, what it trained on, and what was measured."""

    condition: str  # "generations" | "fed"
    mode: str  # gradient mode
    generation: int
    mix: float | None  # generations >= 1: fraction of the pool sampled from the parent
    objective: str | None  # fed: "blind" | "aware"
    seed: int
    dir: str
    pool_sampled: int
    windows_seen_sampled: int
    train_loss_first: float
    train_loss_last: float
    train_wall_s: float
    examples: list[str]
    val_loss: float  # held-out human text, teacher forced
    fed_loss: float | None  # held-out human text, own predictions fed (None: fed_fraction 0)
    self_loss: float | None = None  # on its own samples (models that sampled)
    drift: Drift | None = None  # its samples against held-out human text

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelRecord:
        drift = None if d.get("drift") is None else Drift(**d["drift"])
        return cls(**(d | {"drift": drift}))


@dataclasses.dataclass(frozen=True)
class Study:
    """Everything the page is written from (with the run record under ``meta`` and the power
    calculation under ``design`` in the JSON)."""

    config: dict[str, Any]
    params: int
    floor: Drift
    records: list[ModelRecord]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Study:
        return cls(
            d["config"],
            d["params"],
            Drift(**d["floor"]),
            [ModelRecord.from_json(r) for r in d["records"]],
        )

    def select(self, **fields: Any) -> list[ModelRecord]:
        """The records whose fields equal ``fields``, in seed order."""
        rows = [r for r in self.records if all(getattr(r, k) == v for k, v in fields.items())]
        return sorted(rows, key=lambda r: r.seed)

    def values(self, metric: str, **fields: Any) -> np.ndarray:
        """``metric`` of the selected records as a numpy array over seeds (``drift.<name>``
        for a drift statistic)."""

        def get(r: ModelRecord) -> float:
            value: Any = r
            for part in metric.split("."):
                value = getattr(value, part)
            return value

        return np.array([get(r) for r in self.select(**fields)], float)
