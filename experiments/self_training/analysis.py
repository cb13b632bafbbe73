"""The study's paired contrasts (per-seed differences of held-out loss, in nats).

Generations: the mode gap already present on human data (myopic − standard at generation 0),
each mode's change from generation 0 to generation g, and the mode × generation interaction
(myopic − standard at generation g, minus that gap). Own-consequence: per mode, own − control
(the model's own samples in its batches versus a frozen model's), and the mode × feeding
interaction (myopic's own − control minus standard's).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from experiments.self_training.config import MODES
from experiments.self_training.stats import Contrast, interaction
from experiments.self_training.study import condition


@dataclasses.dataclass(frozen=True)
class Contrasts:
    gap: Contrast  # myopic − standard at generation 0
    changes: list[Contrast]  # each mode's generation g − generation 0, per mix
    interactions: list[Contrast]  # mode × generation, per mix and generation
    feed: list[Contrast]  # own − control per mode
    feed_interaction: Contrast  # mode × (own − control)

    def all(self) -> list[Contrast]:
        return [self.gap, *self.changes, *self.interactions, *self.feed, self.feed_interaction]


def contrasts(losses: dict[str, list[float]], generations: int, mixes: Any) -> Contrasts:
    x = {k: np.asarray(v, float) for k, v in losses.items()}
    std, myo = MODES
    base = {m: x[condition(m)] for m in MODES}
    changes, inter = [], []
    for mix in mixes:
        for g in range(1, generations):
            after = {m: x[condition(m, g, mix)] for m in MODES}
            changes += [
                Contrast.of(f"{m}: generation {g} − 0, mix {mix:g}", after[m] - base[m])
                for m in MODES
            ]
            name = f"mode × generation: ({myo} − {std}) change, generation {g} − 0, mix {mix:g}"
            inter.append(interaction(name, base[std], after[std], base[myo], after[myo]))
    own = {m: x[condition(m, feed="own")] for m in MODES}
    ctrl = {m: x[condition(m, feed="control")] for m in MODES}
    feed = [Contrast.of(f"{m}: own − control", own[m] - ctrl[m]) for m in MODES]
    feed_name = f"mode × own-consequence: ({myo} − {std}) in own − control"
    return Contrasts(
        gap=Contrast.of(f"{myo} − {std}, generation 0 (human data)", base[myo] - base[std]),
        changes=changes,
        interactions=inter,
        feed=feed,
        feed_interaction=interaction(feed_name, ctrl[std], own[std], ctrl[myo], own[myo]),
    )
