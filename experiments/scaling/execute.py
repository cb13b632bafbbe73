"""Executing the study: train (or resume) each run, evaluate its final model (in the trainer,
on the run's mesh) on the study's fixed validation and test windows, and record the result in
its run directory.

Each run directory gets its record (``records.RESULT_FILE``) once evaluated, so a rerun skips
it; an interrupted run resumes from its checkpoint. Every record holds the run's wall time, the
process CPU time it used and the load average at its start and end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.scaling import records as rec
from experiments.scaling.estimates import choose_lr
from experiments.scaling.protocol import (
    EVAL_SEED,
    RunSpec,
    StudyPreset,
    size_specs,
    sweep_specs,
    train_config,
    transfer_specs,
    undertrain_specs,
)
from myojax import evaluation, train
from myojax.config import ATTENTION_IMPL_BEFORE_FIELD
from myojax.data import pipeline
from myojax.data.corpus import cache
from myojax.model import GPT
from myojax.train.monitor import StopFlag
from myojax.train.track import TrackerSpec

SPLITS = ("validation", "test")  # validation: every choice; test: every reported loss

Windows = dict[str, list[np.ndarray]]


def heldout_windows(p: StudyPreset, data: str) -> Windows:
    """The study's validation and test windows: a fixed seed, independent of the runs' seeds."""
    tokens = pipeline.load_data(data)
    out: Windows = {}
    for split in SPLITS:
        arrays = getattr(tokens, split)
        if not arrays:
            raise pipeline.DataError(
                f"{data} has no {split} split (token shards need test_*.bin beside val_*.bin; "
                "the study never reports on the data it tunes on)"
            )
        out[split] = evaluation.heldout_windows(
            arrays,
            seq_len=p.seq_len,
            batch_size=p.batch_size,
            num_batches=p.eval_batches,
            seed=EVAL_SEED,
        )
    return out


class StudyMixError(ValueError):
    """A study directory holding runs of other data than the study is run with."""


def data_identity(data: str) -> str:
    """What a run trained on, by content: the embedded corpus by name, token shards by their
    tokenizer and a hash of every sidecar (each records its shard's sha256, so the hash covers
    the tokens; the directory may move)."""
    if data == pipeline.EMBEDDED:
        return data
    directory = Path(cache.resolve(data) or data)
    sidecars = sorted(directory.glob("*_*.json"))
    if not sidecars:
        raise pipeline.DataError(f"no token shard sidecars in {directory}")
    digest = hashlib.sha256()
    for sidecar in sidecars:
        digest.update(sidecar.name.encode() + b"\0" + sidecar.read_bytes())
    tokenizer = json.loads(sidecars[0].read_text()).get("tokenizer", "unknown")
    return f"shards sha256:{digest.hexdigest()[:16]} (tokenizer {tokenizer})"


def check_identity(record: rec.RunRecord, identity: str, out: Path) -> None:
    """Refuse, in one line, a run of ``out`` that trained on other data than ``identity``."""
    if record.data is not None and record.data != identity:
        raise StudyMixError(
            f"{out} holds run {record.run_dir} trained on {record.data}, but this study runs on "
            f"{identity}: one study never mixes data; use another --out or the original --data"
        )


def check_attention(record: rec.RunRecord, spec: RunSpec, out: Path) -> None:
    """Refuse, in one line, a finished run of ``out`` whose attention implementation is not the
    one this study trains with: step costs and float rounding differ between implementations,
    so a study never mixes them (a run recorded without one predates the fast path)."""
    trained = record.attention_impl or ATTENTION_IMPL_BEFORE_FIELD
    wanted = spec.model.attention_impl
    if trained != wanted:
        raise StudyMixError(
            f"{out} holds run {record.run_dir} trained with attention_impl={trained!r}, but this "
            f"study trains with {wanted!r}: one study never mixes attention implementations; use "
            f"another --out or --attention-impl {trained}"
        )


def summaries(losses: Mapping[str, np.ndarray]) -> dict[str, evaluation.LossSummary]:
    """Per split, the mean, per-sequence and per-position reductions of per-token losses."""
    return {split: evaluation.LossSummary.of(losses_NxT) for split, losses_NxT in losses.items()}


def evaluate_heldout(model: GPT, windows: Windows) -> dict[str, evaluation.LossSummary]:
    """``summaries`` of a model outside its run (a restored checkpoint)."""
    return summaries({s: evaluation.token_losses(model, ws) for s, ws in windows.items()})


EXPLODED_FACTOR = 2.0  # a held-out loss above this many times ln(vocab) has exploded


def exploded(loss: float, vocab_size: int) -> bool:
    """The finite-but-exploded rule: a held-out loss above ``EXPLODED_FACTOR`` times that of the
    uniform predictor over the vocabulary, ln(vocab_size), is no trained model (a loss of 5.8e6
    is finite but means the run diverged); such a run is recorded "diverged"."""
    return loss > EXPLODED_FACTOR * math.log(vocab_size)


def evaluated(
    record: rec.RunRecord,
    step: int,
    train_loss: float,
    heldout: Mapping[str, Any],
    vocab_size: int | None = None,
) -> rec.RunRecord:
    """``record`` with the final model's losses: the means and per-sequence means on both
    splits, the per-position means on test; "diverged" when a held-out loss is not finite, or
    (given ``vocab_size``) ``exploded``, with ``error`` saying which."""
    val, test = heldout["validation"], heldout["test"]
    error = None
    if not (math.isfinite(val.mean) and math.isfinite(test.mean)):
        error = f"held-out loss is not finite (validation {val.mean}, test {test.mean})"
    elif vocab_size is not None and exploded(max(val.mean, test.mean), vocab_size):
        error = (
            f"held-out loss exploded (validation {val.mean:.4g}, test {test.mean:.4g} > "
            f"{EXPLODED_FACTOR:g} x ln({vocab_size}))"
        )
    return dataclasses.replace(
        record,
        status="ok" if error is None else "diverged",
        error=error if error is not None else record.error,
        final_step=step,
        train_loss=train_loss,
        val_loss=val.mean,
        val_loss_per_sequence=tuple(val.per_sequence),
        test_loss=test.mean,
        test_loss_per_sequence=tuple(test.per_sequence),
        test_loss_per_position=tuple(test.per_position),
    )


def _load() -> tuple[float, ...] | None:
    return tuple(os.getloadavg()) if hasattr(os, "getloadavg") else None


def execute(
    p: StudyPreset,
    spec: RunSpec,
    out: Path,
    data: str,
    windows: Windows,
    *,
    write: bool,
    progress: bool | None = None,
    mesh: str | None = None,
    stop: StopFlag | None = None,
    identity: str | None = None,
    tracker: str | None = None,
) -> tuple[rec.RunRecord, bool]:
    """Train (or resume) one run and evaluate its final model; cached on disk.

    Returns (the run's record, whether it was finished before). Its ``status`` is "ok",
    "diverged" (non-finite loss: recorded, not raised) or "interrupted" (a signal stopped
    training; rerunning resumes it). ``wall_s`` and ``cpu_s`` (process CPU time: all threads)
    add up over resumed invocations. ``stop``: the study's flag, handed to the trainer so that
    the signal that stopped the run is the one the study exits with (Ctrl-C: 130).
    ``identity``: ``data_identity(data)``, recorded with the run. ``tracker``: the trainer's
    ``--tracker`` (None: its default), the run tagged by ``run_tags`` in the study's group.
    """
    run_dir = spec.run_dir(out)
    cached = rec.read_run(run_dir)
    if cached is not None:
        check_attention(cached, spec, out)
        return cached, True
    t0, c0, load_start = time.perf_counter(), time.process_time(), _load()
    record = dataclasses.replace(rec.planned(spec), data=identity)
    prior = rec.read_cost(run_dir)

    def cost() -> rec.RunCost:
        before = prior or rec.RunCost(load_start=load_start)
        return rec.RunCost(
            wall_s=before.wall_s + time.perf_counter() - t0,
            cpu_s=(before.cpu_s or 0.0) + time.process_time() - c0,
            load_start=before.load_start,
            load_end=_load(),
        )

    try:
        final = train.run(
            train_config(p, spec, run_dir, data, mesh),
            spec.model,
            progress=progress,
            heldout=windows,  # evaluated once, on the final model, in the run's mesh
            stop=stop,
            tracker=TrackerSpec(tracker, run_tags(spec), Path(out).resolve().name),
        )
    except train.NonFiniteLoss as e:
        record = dataclasses.replace(record, status="diverged", error=str(e)).with_cost(cost())
    else:
        if final["preempted"]:
            if write:
                rec.write_cost(run_dir, cost())
            return record, False
        heldout = summaries(final["heldout_losses"])
        record = evaluated(
            record, final["step"], final["loss"], heldout, spec.model.vocab_size
        ).with_cost(cost())
    if write:
        rec.write_run(run_dir, record)
    return record, False


def run_tags(spec: RunSpec) -> tuple[str, ...]:
    """A run's labels in its tracker, to compare runs of a study side by side."""
    return (
        f"mode={spec.mode}",
        f"size={spec.size.name}",
        f"seed={spec.seed}",
        f"budget={spec.budget:g}",
        f"role={spec.role}",
        f"lr={spec.lr:.3g}",
    )


def _report_line(spec: RunSpec, record: rec.RunRecord, skipped: bool) -> str:
    when = "done before" if skipped else f"{record.wall_s:.0f}s"
    loss = (
        f"val {record.val_loss:.4f} test {record.test_loss:.4f}"
        if record.ok
        else record.status.upper()
    )
    return f"[{spec.mode}] {spec.role} {spec.name}: {loss} ({when})"


@dataclasses.dataclass
class _Pass:
    """One pass over the study's runs: trains what is missing (or, with ``train`` False, only
    gathers what is finished) and collects the records in protocol order."""

    p: StudyPreset
    out: Path
    data: str
    write: bool
    stop: StopFlag
    say: Callable[[str], None]
    bar: Any
    progress: bool | None
    mesh: str | None
    train: bool
    windows: Windows
    identity: str
    tracker: str | None = None
    runs: list[rec.RunRecord] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)

    def run_one(self, spec: RunSpec) -> rec.RunRecord | None:
        if self.stop.signum is not None:
            return None
        if not self.train:
            record = rec.read_run(spec.run_dir(self.out))
            if record is None:
                self.missing.append(spec.name)
            else:
                check_identity(record, self.identity, self.out)
                check_attention(record, spec, self.out)
            return record
        record, skipped = execute(
            self.p,
            spec,
            self.out,
            self.data,
            self.windows,
            write=self.write,
            progress=self.progress,
            mesh=self.mesh,
            stop=self.stop,
            identity=self.identity,
            tracker=self.tracker,
        )
        check_identity(record, self.identity, self.out)
        if record.status == "interrupted":
            self.stop.signum = self.stop.signum or 15
            return None
        self.say(_report_line(spec, record, skipped))
        if self.bar is not None:
            self.bar.update(1, trained=not skipped, record=record)
        return record

    def run_all(self, specs: Sequence[RunSpec]) -> bool:
        """Every spec in order; False when one stopped the pass (a signal, an interruption)."""
        for spec in specs:
            reused = next((r for r in self.runs if r.role == "sweep" and _same(spec, r)), None)
            if reused is not None:  # the proxy at the chosen lr is size 0's run
                self.runs.append(
                    dataclasses.replace(reused, role=spec.role, same_run_as_sweep=True)
                )
                continue
            record = self.run_one(spec)
            if record is None:
                if self.train:
                    return False
                continue
            self.runs.append(record)
        return True


def run_study(
    p: StudyPreset,
    modes: Sequence[str],
    out: Path,
    *,
    data: str,
    write: bool,
    stop: StopFlag,
    say: Callable[[str], None],
    bar: Any = None,
    progress: bool | None = None,
    mesh: str | None = None,
    train: bool = True,
    tracker: str | None = None,
) -> tuple[list[rec.RunRecord], bool]:
    """All runs of the study, in protocol order; returns (run records, finished).

    With ``train=False`` nothing is trained: the records are the runs finished so far (a
    partial study for ``--report-only``) and ``finished`` says whether that is all of them.

    Order: the lr sweeps of every mode; then size by size (every mode and seed of a size before
    the next size, so a partial study holds complete, paired sizes); then the undertraining and
    transfer checks. ``finished`` is False when a signal stopped it: everything done so far is
    on disk and rerunning resumes. ``bar`` (optional) gets ``update(1, trained=..., record=...)``
    per run. ``tracker``: each run's ``--tracker`` (``execute``).
    """
    windows = heldout_windows(p, data) if train else {}
    identity = data_identity(data)
    run = _Pass(
        p, out, data, write, stop, say, bar, progress, mesh, train, windows, identity, tracker
    )
    if not run.run_all(sweep_specs(p, modes)) or run.missing:
        return run.runs, False
    lrs = {}
    for mode in modes:
        lr, edge = choose_lr([r for r in run.runs if r.mode == mode and r.role == "sweep"])
        lrs[mode] = lr
        say(f"[{mode}] chosen lr {lr:g}" + (" (at the edge of the grid)" if edge else ""))
    batches = [[s for m in modes for s in size_specs(p, m, lrs[m]) if s.size == z] for z in p.sizes]
    batches += [[s for m in modes for s in make(p, m, lrs[m])] for make in CHECKS]
    return run.runs, all(run.run_all(batch) for batch in batches) and not run.missing


CHECKS = (undertrain_specs, transfer_specs)  # after the sizes, in this order


def _same(spec: RunSpec, record: rec.RunRecord) -> bool:
    return (
        record.mode == spec.mode
        and record.size == spec.size.name
        and record.lr == spec.lr
        and record.steps == spec.steps
        and record.seed == spec.seed
        and record.d_model == spec.size.d_model
        and record.n_layers == spec.size.n_layers
    )
