"""The study's paired contrasts, and the power calculation from a pilot.

Generations (held-out human loss, per seed): each mode's change from generation 0 to the last
generation G per mix; the mode gap already present at generation 0; and the mode × generation
interaction, (B_G − B_0) − (A_G − A_0) for modes A, B. Fed: per mode, aware minus blind in the
held-out loss (what the first pass pays) and in the fed loss (what the second pass gains), and
the objective × mode interaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from experiments.self_training.config import GridConfig
from experiments.self_training.records import Study
from experiments.self_training.stats import Contrast, seeds_needed


@dataclasses.dataclass(frozen=True)
class Contrasts:
    """Every contrast of a study, by section; ``primary`` are the ones the seeds were sized
    for."""

    generations: list[Contrast]
    fed: list[Contrast]
    primary: list[Contrast]


def _gen(study: Study, metric: str, mode: str, generation: int, mix: float | None = None):
    fields: dict[str, Any] = {"condition": "generations", "mode": mode, "generation": generation}
    if generation:
        fields["mix"] = mix
    return study.values(metric, **fields)


def generation_contrasts(study: Study) -> tuple[list[Contrast], list[Contrast]]:
    """All generation contrasts, and the interaction at the largest mix (primary)."""
    cfg = study.config
    G, modes, mixes = cfg["generations"] - 1, cfg["modes"], cfg["mixes"]
    base = {m: _gen(study, "val_loss", m, 0) for m in modes}
    out, primary = [], []
    if len(modes) > 1:
        a, b = modes[:2]
        out.append(Contrast.of(f"{b} − {a}, generation 0", base[b] - base[a]))
    for mix in mixes:
        delta = {m: _gen(study, "val_loss", m, G, mix) - base[m] for m in modes}
        out += [Contrast.of(f"{m}: generation {G} − 0, mix {mix:g}", delta[m]) for m in modes]
        if len(modes) > 1:
            a, b = modes[:2]
            c = Contrast.of(
                f"interaction ({b} − {a}) × (generation {G} − 0), mix {mix:g}", delta[b] - delta[a]
            )
            out.append(c)
            if mix == max(mixes):
                primary.append(c)
    return out, primary


def fed_contrasts(study: Study) -> tuple[list[Contrast], list[Contrast]]:
    """All fed contrasts, and aware − blind in the fed loss per mode (primary)."""
    cfg = study.config
    if not study.select(condition="fed"):
        return [], []
    modes = cfg["modes"]
    out, primary = [], []
    gap = {}
    for mode in modes:
        for metric, what in (("val_loss", "held-out loss"), ("fed_loss", "fed loss")):
            aware = study.values(metric, condition="fed", mode=mode, objective="aware")
            blind = study.values(metric, condition="fed", mode=mode, objective="blind")
            gap[mode, metric] = aware - blind
            c = Contrast.of(f"{mode}: aware − blind, {what}", aware - blind)
            out.append(c)
            if metric == "fed_loss":
                primary.append(c)
        blind = study.values("fed_loss", condition="fed", mode=mode, objective="blind")
        plain = _gen(study, "fed_loss", mode, 0)
        out.append(Contrast.of(f"{mode}: blind − teacher-forced only, fed loss", blind - plain))
    if len(modes) > 1:
        a, b = modes[:2]
        for metric, what in (("val_loss", "held-out loss"), ("fed_loss", "fed loss")):
            name = f"interaction ({b} − {a}) × (aware − blind), {what}"
            out.append(Contrast.of(name, gap[b, metric] - gap[a, metric]))
    return out, primary


def contrasts(study: Study) -> Contrasts:
    gen, gen_primary = generation_contrasts(study)
    fed, fed_primary = fed_contrasts(study)
    return Contrasts(gen, fed, gen_primary + fed_primary)


def design(pilot: Study, pilot_meta: dict[str, Any], cfg: GridConfig) -> dict[str, Any]:
    """The power calculation: for each primary contrast of the pilot, its seed standard
    deviation and the seeds a paired t-test needs to detect ``cfg.target_effect`` with 80%
    power at the 5% level."""
    rows = [
        {
            "contrast": c.name,
            "pilot_sd": c.sd,
            "seeds_needed": seeds_needed(c.sd, cfg.target_effect),
        }
        for c in contrasts(pilot).primary
    ]
    return {
        "pilot_command": pilot_meta["command"],
        "pilot_seeds": pilot.config["seeds"],
        "pilot_generations": pilot.config["generations"],
        "target_effect": cfg.target_effect,
        "rows": rows,
    }
