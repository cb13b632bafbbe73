"""The scaling study's results as typed records, and the one module that reads and writes them
as JSON.

A run's record (``RunRecord``: what it trained, how it ended, its held-out losses, its cost)
is written to its run directory as ``study_result.json`` and gathered into the study's
``results.json`` (``StudyResults``: protocol, cost, invocations, runs and the ``Analysis``
sections). Everything else in the study reads fields of these records, never a JSON key: a
new reported number is a new field here, and ``SCHEMA_VERSION`` goes up.

The JSON is the layout the study has always written (schema version 2), key for key and in
the same order, so a page redrawn from a committed ``results.json`` is the committed page
byte for byte. Older layouts are converted when read, here only: a run row without ``seed``
or ``budget`` (the single-seed study) is seed 0 at budget 1, one without ``cpu_s`` or load
averages (an early diverged row) has them unknown (None), and keys that nothing reads any
more (schema 1's ``val_loss_per_position``) are dropped.

``to_json``, ``from_json`` and ``parse`` serve every record of the study's commands: the
measured step costs (``step_costs``) and the interval coverage (``interval_coverage``) too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from experiments.scaling import sections as sec
from experiments.scaling.protocol import EVAL_SEED, RunSpec, Size, StudyPreset
from experiments.scaling.sections import Floats
from myojax import files
from myojax.model import param_counts

SCHEMA_VERSION = 2
RESULT_FILE = "study_result.json"  # per run directory: written once the run is evaluated
COST_FILE = "study_wall.json"  # per run directory: the cost so far of an interrupted run
_record = dataclasses.dataclass(frozen=True, kw_only=True)
T = TypeVar("T")


# ----------------------------------------------------------------------------------------------
# Runs


@_record
class RunCost:
    """What a run has cost so far, over every invocation that trained it."""

    wall_s: float = 0.0
    cpu_s: float | None = 0.0  # process CPU time, all threads (None: not recorded)
    load_start: Floats | None = None  # load averages 1/5/15 min (None: not available)
    load_end: Floats | None = None


EVALUATION_FIELDS = (
    "final_step",
    "train_loss",
    "val_loss",
    "val_loss_per_sequence",
    "test_loss",
    "test_loss_per_sequence",
    "test_loss_per_position",
)


@_record
class RunRecord:
    """One training run: what it trained, how it ended, its held-out losses and its cost.

    ``status`` is "ok", "diverged" (a non-finite loss; ``error`` says where when training
    raised) or "interrupted" (never written: rerunning resumes it). The losses are the final
    model's on the study's fixed windows: validation (every choice) and test (every reported
    number). ``same_run_as_sweep``: the proxy's size run, which is its sweep run at the chosen lr.
    ``data``: what it trained on, by content (None in studies from before it was recorded);
    ``attention_impl``: how its attention was computed. A study refuses to mix runs of different
    data or attention implementations.
    """

    mode: str
    role: str
    size: str
    seed: int = 0
    budget: float = 1.0
    d_model: int
    n_layers: int
    params: int
    non_embedding_params: int
    tokens: int
    steps: int
    lr: float
    run_dir: str
    status: str = "interrupted"
    error: str | None = None
    final_step: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_loss_per_sequence: Floats | None = None
    test_loss: float | None = None
    test_loss_per_sequence: Floats | None = None
    test_loss_per_position: Floats | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    load_start: Floats | None = None
    load_end: Floats | None = None
    same_run_as_sweep: bool = False
    data: str | None = None  # the study's data identity (``execute.data_identity``)
    # ModelConfig.attention_impl that trained it (None: a run from before the fast path, when
    # the reference formulation was the only one)
    attention_impl: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def with_cost(self, cost: RunCost) -> RunRecord:
        return dataclasses.replace(self, **dataclasses.asdict(cost))


def planned(spec: RunSpec) -> RunRecord:
    """The record of a run before it has trained: what it trains and where (its run directory
    relative to the study's)."""
    total, non_emb = param_counts(spec.model)
    return RunRecord(
        mode=spec.mode,
        role=spec.role,
        size=spec.size.name,
        seed=spec.seed,
        budget=spec.budget,
        d_model=spec.size.d_model,
        n_layers=spec.size.n_layers,
        params=total,
        non_embedding_params=non_emb,
        tokens=spec.tokens,
        steps=spec.steps,
        lr=spec.lr,
        run_dir=str(spec.run_dir(Path("."))),
        attention_impl=spec.model.attention_impl,
    )


def read_run(run_dir: Path) -> RunRecord | None:
    """The run's record, or None when it has none yet (or only half a file: the run is redone
    from its checkpoints)."""
    obj = files.read_json(Path(run_dir) / RESULT_FILE)
    if not isinstance(obj, dict) or "status" not in obj:
        return None
    try:
        return from_json(RunRecord, obj)
    except (TypeError, ValueError):
        return None


def write_run(run_dir: Path, record: RunRecord) -> None:
    files.write_json(Path(run_dir) / RESULT_FILE, to_json(record))


def read_cost(run_dir: Path) -> RunCost | None:
    obj = files.read_json(Path(run_dir) / COST_FILE)
    return from_json(RunCost, obj) if isinstance(obj, dict) else None


def write_cost(run_dir: Path, cost: RunCost) -> None:
    files.write_json(Path(run_dir) / COST_FILE, to_json(cost))


def fingerprint(runs: Sequence[RunRecord]) -> list[tuple[Any, ...]]:
    """What the analysis depends on: equal fingerprints make a rerun with nothing new a no-op."""
    return sorted(
        (r.mode, r.role, r.size, r.seed, r.budget, r.lr, r.status, r.test_loss) for r in runs
    )


# ----------------------------------------------------------------------------------------------
# The study


@_record
class Protocol:
    """How the study was run (its preset, as recorded)."""

    sizes: tuple[Size, ...]
    proxy: Size
    base_width: int
    lrs: Floats
    lr_step: float
    seeds: tuple[int, ...]
    seq_len: int
    batch_size: int
    tokens_per_param: float
    token_rule: str
    undertrain_size: str | None
    undertrain_factors: tuple[int, ...]
    transfer_steps: tuple[int, ...]
    transfer_seeds: tuple[int, ...]
    warmup_frac: float
    eval_seed: int
    eval_sequences_per_split: int
    splits: str
    n_boot: int

    @classmethod
    def of(cls, p: StudyPreset) -> Protocol:
        return cls(
            sizes=p.sizes,
            proxy=p.proxy,
            base_width=p.base_width,
            lrs=p.lrs,
            lr_step=p.lr_step,
            seeds=p.seeds,
            seq_len=p.seq_len,
            batch_size=p.batch_size,
            tokens_per_param=p.tokens_per_param,
            token_rule="D = tokens_per_param x N (non-embedding), rounded up to whole steps",
            undertrain_size=p.undertrain_size,
            undertrain_factors=p.undertrain_factors,
            transfer_steps=p.transfer_steps,
            transfer_seeds=p.seeds[: p.transfer_seeds],
            warmup_frac=p.warmup_frac,
            eval_seed=EVAL_SEED,
            eval_sequences_per_split=p.eval_batches * p.batch_size,
            splits="train / validation (every choice) / test (every reported loss), "
            "disjoint by whole works",
            n_boot=p.n_boot,
        )


@_record
class Cost:
    """The distinct runs' summed wall and CPU time, and the analysis's CPU time."""

    distinct_runs: int
    sum_run_wall_s: float
    sum_run_cpu_s: float
    analysis_cpu_s: float | None


@_record
class Invocation:
    """One command that contributed to the study (a resumed study took several)."""

    command: str
    wall_s: float
    cpu_s: float | None = None
    runs_trained: int = 0
    environment_start: dict[str, Any]  # myojax.provenance.environment()
    environment_end: dict[str, Any]

    @property
    def load_start(self) -> list[float] | None:
        return self.environment_start.get("load_avg_1_5_15")

    @property
    def load_end(self) -> list[float] | None:
        return self.environment_end.get("load_avg_1_5_15")


@_record
class StudyResults:
    """A study's ``results.json``: the report and the plots read it alone."""

    schema_version: int = SCHEMA_VERSION
    preset: str
    description: str
    modes: tuple[str, ...]
    finished: bool = True
    planned_runs: int | None = None
    command: str
    data: str | None
    protocol: Protocol
    cost: Cost
    wall_s: float
    environment_start: dict[str, Any]
    environment_end: dict[str, Any]
    invocations: tuple[Invocation, ...]
    runs: tuple[RunRecord, ...]
    analysis: sec.Analysis

    @property
    def distinct_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if not r.same_run_as_sweep]


def results_document(
    p: StudyPreset,
    modes: Sequence[str],
    runs: Sequence[RunRecord],
    analysis: sec.Analysis,
    *,
    invocation: Invocation,
    previous: Sequence[Invocation] = (),
    data: str | None,
    finished: bool = True,
    planned_runs: int | None = None,
) -> StudyResults:
    """The study's results; ``previous`` are the invocations that contributed before this one."""
    distinct = [r for r in runs if not r.same_run_as_sweep]
    return StudyResults(
        preset=p.name,
        description=p.description,
        modes=tuple(modes),
        finished=finished,
        planned_runs=planned_runs,
        command=invocation.command,
        data=data,
        protocol=Protocol.of(p),
        cost=Cost(
            distinct_runs=len(distinct),
            sum_run_wall_s=sum(r.wall_s or 0.0 for r in distinct),
            sum_run_cpu_s=sum(r.cpu_s or 0.0 for r in distinct),
            analysis_cpu_s=analysis.cpu_s,
        ),
        wall_s=invocation.wall_s,
        environment_start=invocation.environment_start,
        environment_end=invocation.environment_end,
        invocations=(*previous, invocation),
        runs=tuple(runs),
        analysis=analysis,
    )


def results_from_json(obj: Any) -> StudyResults:
    """A ``results.json`` document (parsed) as records; another schema is one clear error."""
    version = obj.get("schema_version") if isinstance(obj, dict) else None
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"not a scaling study's results of schema {SCHEMA_VERSION} (found {version!r}); "
            "rerun the study with --rerender to rewrite it"
        )
    return parse(StudyResults, obj, "scaling study results")


def read_results(path: Path) -> StudyResults | None:
    """The study's results at ``path``; None when missing, half-written or of another schema."""
    obj = files.read_json(path)
    try:
        return results_from_json(obj)
    except ValueError:
        return None


def read_invocations(path: Path) -> tuple[Invocation, ...]:
    """The invocations recorded at ``path`` in any schema (a resumed study keeps them)."""
    obj = files.read_json(path)
    items = obj.get("invocations", []) if isinstance(obj, dict) else []
    return tuple(from_json(Invocation, i) for i in items)


# ----------------------------------------------------------------------------------------------
# JSON


def _run_absent(r: RunRecord) -> Collection[str]:
    absent = {
        k for k in ("error", "data", "attention_impl", *EVALUATION_FIELDS) if getattr(r, k) is None
    }
    if r.wall_s is None:  # an interrupted run: its cost is in COST_FILE
        absent |= {f.name for f in dataclasses.fields(RunCost)}
    return absent if r.same_run_as_sweep else absent | {"same_run_as_sweep"}


def _analysis_absent(an: sec.Analysis) -> Collection[str]:
    absent = [k for k in ("fit", "undertrain") if getattr(an, k) is None]
    return [*absent, "transfer", "answer", "cpu_s"] if an.transfer is None else absent


def _transfer_absent(t: sec.Transfer) -> Collection[str]:
    kept = ("complete", "transferred_lr")
    return () if t.complete else [f.name for f in dataclasses.fields(t) if f.name not in kept]


# The fields a record's JSON leaves out (the layout the study has always written); every other
# field is written, None as null.
_ABSENT: dict[type, Callable[[Any], Collection[str]]] = {
    RunRecord: _run_absent,
    sec.Interval: lambda iv: () if iv.scale else ("scale",),
    sec.UndertrainMode: lambda m: [
        k for k in ("gap", "gap_change", "per_seed_gap") if getattr(m, k) is None
    ],
    sec.Undertrain: lambda ut: () if ut.complete else ("modes",),
    sec.Transfer: _transfer_absent,
    sec.Analysis: _analysis_absent,
}


# Fields written before the others (a subclass's own fields ahead of its base's).
_FIRST: dict[type, tuple[str, ...]] = {sec.LossCurve: ("sizes", "n", "per_seed")}


def to_json(value: Any) -> Any:
    """A record, or a container of records, as the JSON value the study writes: fields in
    declaration order (``_FIRST`` first), less those ``_ABSENT`` leaves out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        absent = _ABSENT.get(type(value), lambda _: ())(value)
        first = _FIRST.get(type(value), ())
        names = [*first, *(f.name for f in dataclasses.fields(value) if f.name not in first)]
        return {k: to_json(getattr(value, k)) for k in names if k not in absent}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(cls: type, obj: dict[str, Any]) -> Any:
    """The record ``cls`` from its JSON object: each field built by its type hint; keys it has
    no field for are dropped, fields the object lacks keep their defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _build(hints[k], v) for k, v in obj.items() if k in names})


def parse(cls: type[T], obj: Any, what: str) -> T:
    """``obj`` (parsed JSON) as the record ``cls``; anything else is one clear error naming
    ``what``."""
    if not isinstance(obj, dict):
        raise ValueError(f"malformed {what}: not a JSON object")
    try:
        return from_json(cls, obj)
    except (TypeError, AttributeError) as e:
        raise ValueError(f"malformed {what}: {e}") from None


def _build(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(_build(args[0], v) for v in value)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value
