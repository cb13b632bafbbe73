"""The analysis sections of a study's results as typed records: the lr sweeps, the loss and
the gap per size with their intervals, the joint fit, the undertraining and muP transfer
checks, and the answer (``experiments.scaling.estimates`` computes them).

Plain frozen dataclasses; ``experiments.scaling.records`` reads and writes them as JSON. A new
reported number is a new field here (and ``records.SCHEMA_VERSION`` goes up).
"""

from __future__ import annotations

import dataclasses

from myojax.scaling_laws import SharedFloorFit

Floats = tuple[float, ...]
Table = tuple[tuple[float | None, ...], ...]  # [seed, lr] or [size, seed]; None: diverged

_section = dataclasses.dataclass(frozen=True, kw_only=True)


@_section
class Interval:
    """One statistic: estimate, interval, each level's standard error and the degrees of
    freedom (``myojax.bootstrap.crossed_interval``)."""

    point: float
    lo: float
    hi: float
    se_seed: float
    se_seq: float
    df: float
    scale: str | None = None  # "log": point, lo, hi back from log scale; the SEs and df are not


@_section
class Intervals:
    """One statistic per size (or budget factor), as ``Interval``."""

    point: Floats
    lo: Floats
    hi: Floats
    se_seed: Floats
    se_seq: Floats
    df: Floats


@_section
class Band:
    """A plain percentile interval per statistic (the coverage study's reference)."""

    lo: tuple[float | None, ...]
    hi: tuple[float | None, ...]


@_section
class Sweep:
    """A mode's lr sweep on the proxy: validation loss per seed and lr, and the lr chosen."""

    lrs: Floats
    seeds: tuple[int, ...]
    val_loss: Table  # [seed, lr]
    mean_val_loss: tuple[float | None, ...]
    chosen_lr: float
    at_edge: bool
    per_seed_best_lr: tuple[float | None, ...]


@_section
class LossCurve(Intervals):
    """A mode's test loss per complete size: per seed, and the seed mean with its interval."""

    sizes: tuple[str, ...]
    n: Floats  # non-embedding parameters
    per_seed: Table  # [size, seed]


@_section
class Gap:
    """A mode minus standard, per complete size, and its slope per decade of N."""

    sizes: tuple[str, ...]
    n: Floats
    gap: Intervals
    relative: Floats  # gap / standard's loss
    per_seed: Table  # [size, seed]
    slope_per_decade: Interval | None  # None below two sizes
    plain_percentile: Band  # per size, then the slope


@_section
class JointFit:
    """L_m(N) = E + A_m N^-alpha_m with E shared; ``params`` by name, each with its interval."""

    form: str
    params: dict[str, Interval]
    point: SharedFloorFit
    at_bounds: tuple[str, ...]
    extrapolation_sizes: tuple[str, ...]
    extrapolation_n: Floats


@_section
class UndertrainMode:
    """A mode's loss at each budget factor and, for a non-standard mode, its gap and the gap's
    change from the first factor to the last."""

    loss: Intervals
    gap: Intervals | None = None
    gap_change: Interval | None = None
    per_seed_gap: Table | None = None  # [factor, seed]


@_section
class Undertrain:
    """The undertraining check: one size at 1x, 2x, 4x the token budget (``modes`` when
    ``complete``)."""

    size: str
    factors: Floats
    complete: bool
    modes: dict[str, UndertrainMode] | None = None


@_section
class Transfer:
    """The muP transfer check of a mode: the largest size re-swept around the transferred lr
    (every field but ``transferred_lr`` is None until the re-sweep is ``complete``)."""

    complete: bool
    size: str | None = None
    seeds: tuple[int, ...] | None = None
    transferred_lr: float
    lrs: Floats | None = None
    val_loss: Table | None = None  # [seed, lr]
    mean_val_loss: tuple[float | None, ...] | None = None
    own_optimum: float | None = None
    steps_from_transferred: int | None = None
    own_optimum_at_local_edge: bool | None = None
    within_one_step: bool | None = None  # None: not determined (own optimum at the edge)


@_section
class Answer:
    """The one-sentence answer, from the first non-standard mode's gap slope."""

    mode: str
    verdict: str
    text: str


@_section
class Analysis:
    """Everything the report states. ``transfer`` (with ``answer`` and ``cpu_s``) is None while
    no size is complete for every mode and seed: then only the sweeps are analysed."""

    level: float
    n_boot: int
    n_boot_fit: int
    method: str
    sweeps: dict[str, Sweep]
    losses: dict[str, LossCurve]
    gaps: dict[str, Gap]
    complete_sizes: tuple[str, ...]
    fit: JointFit | None = None
    undertrain: Undertrain | None = None
    transfer: dict[str, Transfer] | None = None
    answer: Answer | None = None
    cpu_s: float | None = None
