"""A fuzzing run, its statistics and the record it leaves.

Many hypothesis-drawn programs are checked one by one; the record holds the number of
programs, the primitives covered, the verdict distribution, refusals, wall time, command and date.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import platform
import time
from typing import Any, Literal

import hypothesis
import jax
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from proofs.fuzz.custom_vjp import check_custom_vjp, custom_vjp_programs
from proofs.fuzz.differential import Counterexample, Outcome, check
from proofs.fuzz.edges import INPUTS
from proofs.fuzz.grammar import Program, programs
from proofs.lattice import Position
from proofs.rules import RULES

SMALL_T = (3, 5, 8)
# family -> (the programs drawn, the differential check of one): plain programs on their JVP, or
# custom-VJP programs (exact and wrong backward rules) on their backward program.
FAMILIES = {
    "plain": (programs, check),
    "custom_vjp": (custom_vjp_programs, check_custom_vjp),
}
BIG_T = (260, 300)  # > 256: int8 iotas wrap, bfloat16 iotas round


@dataclasses.dataclass(frozen=True)
class FuzzConfig:
    """How many programs, drawn how (each field is a flag of ``python -m proofs.fuzz``)."""

    programs: int = dataclasses.field(
        default=300, metadata={"help": "number of random programs to check"}
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "hypothesis seed: the same seed draws the same programs"}
    )
    big_every: int = dataclasses.field(
        default=8, metadata={"help": "about 1 in N programs at T > 256"}
    )
    family: Literal["plain", "custom_vjp"] = dataclasses.field(
        default="plain",
        metadata={
            "help": "plain: random programs, their JVP; custom_vjp: programs with exact or "
            "deliberately wrong custom backward rules, their backward program"
        },
    )

    def __post_init__(self) -> None:
        for name in ("programs", "big_every"):
            value = getattr(self, name)
            if value < 1:  # hypothesis would fail later with its own message
                raise ValueError(f"FuzzConfig.{name} must be at least 1, got {value}")
        if self.family not in FAMILIES:
            raise ValueError(f"FuzzConfig.family must be one of {tuple(FAMILIES)}")


@dataclasses.dataclass
class Stats:
    programs: int = 0
    verdicts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    symbolic: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    measured: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    refused: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    lengths: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped: int = 0
    primitives: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    exact: int = 0  # verdict equal to the measured finest label

    def add(self, o: Outcome) -> None:
        self.programs += 1
        self.verdicts[o.verdict] += 1
        self.symbolic[o.symbolic.split(" ")[0]] += 1
        self.measured[o.measured] += 1
        self.lengths["big" if o.t > 256 else "small"] += 1
        self.primitives.update(o.primitives)
        self.skipped += bool(o.skipped)
        self.exact += o.verdict == o.measured
        if o.refused:
            self.refused[o.refused] += 1

    @property
    def definite(self) -> int:
        return self.programs - self.verdicts["refused"]

    def acceptable(self) -> list[str]:
        """What makes a run test nothing: too many refusals, a verdict kind that never occurs."""
        problems = []
        if 2 * self.definite < self.programs:
            problems.append(f"only {self.definite}/{self.programs} definite verdicts")
        missing = [p.label for p in Position if not self.verdicts[p.label]]
        if missing:
            problems.append(f"verdicts never produced: {missing}")
        if not self.lengths["big"]:
            problems.append("no program checked at T > 256")
        return problems

    def to_json(self) -> dict[str, Any]:
        analysed = sorted(self.primitives)
        with_rule = [p for p in analysed if p in RULES]  # control flow included
        return {
            "programs": self.programs,
            "definite_verdicts": self.definite,
            "verdicts_concrete_t": dict(sorted(self.verdicts.items())),
            "verdicts_symbolic_t": dict(sorted(self.symbolic.items())),
            "measured_finest": dict(sorted(self.measured.items())),
            "verdict_equals_measured": self.exact,
            "refused_by_primitive": dict(sorted(self.refused.items())),
            "skipped_non_finite": self.skipped,
            "lengths": dict(self.lengths),
            "primitives_covered": {p: self.primitives[p] for p in with_rule},
            "primitives_without_rule": [p for p in analysed if p not in with_rule],
        }


def run(
    config: FuzzConfig,
    drawn: st.SearchStrategy[Program] | None = None,
    shrink: bool = True,
) -> Stats:
    """Check ``config.programs`` hypothesis-drawn programs (``drawn``, default every kind of
    step; about one in ``config.big_every`` at T > 256, inputs drawn per ``edges.INPUTS``);
    raises ``Counterexample`` (shrunk by hypothesis unless ``shrink`` is off) on the first
    unsound verdict."""
    stats = Stats()
    failing = [False]
    big_every = config.big_every
    family_programs, check_one = FAMILIES[config.family]

    @settings(
        max_examples=config.programs,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink) if shrink else (Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(
        program=family_programs() if drawn is None else drawn,
        small=st.sampled_from(SMALL_T),
        big=st.sampled_from(BIG_T),
        use_big=st.sampled_from([False] * (big_every - 1) + [True]),
        data_seed=st.integers(0, 2**16),
        inputs=st.sampled_from(INPUTS),
    )
    def one(program: Any, small: int, big: int, use_big: bool, data_seed: int, inputs: str) -> None:
        try:
            outcome = check_one(program, big if use_big else small, seed=data_seed, inputs=inputs)
        except Counterexample:
            failing[0] = True
            raise
        if not failing[0]:
            stats.add(outcome)

    hypothesis.seed(config.seed)(one)()
    return stats


def run_and_record(config: FuzzConfig, command: str) -> dict[str, Any]:
    """Run ``config`` and return its record: how it was run, then the statistics and what makes
    the run test too little (or the counterexample that stopped it)."""
    start = time.perf_counter()
    started = datetime.datetime.now(datetime.UTC)
    error, stats = None, None
    try:
        stats = run(config)
    except Counterexample as e:
        error = str(e)
    wall = time.perf_counter() - start
    record: dict[str, Any] = {
        "command": command,
        "date_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(wall, 1),
        "jax_version": jax.__version__,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "seed": config.seed,
        "family": config.family,
        "counterexample": error,
    }
    if stats is not None:
        record |= stats.to_json()
        record["acceptance_problems"] = stats.acceptable()
    return record


def passed(record: dict[str, Any]) -> bool:
    """No counterexample, and the run tested enough to mean something."""
    return record["counterexample"] is None and not record.get("acceptance_problems")
