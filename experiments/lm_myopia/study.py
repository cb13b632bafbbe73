"""A finished scaling study, opened for analysis: its size runs per (mode, size, seed), their
models, and the study's own test windows.

Everything is read through the study's typed records (``experiments.scaling.records``) and the
library's run reader (``myojax.analysis.runs``). The test windows are cut again from the
recorded protocol (the fixed evaluation seed, window length, batch size and count), and every
model's recomputed per-sequence losses are checked against the losses its record holds, so an
analysis can never silently read other windows than the study reported on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int

from experiments.scaling import records
from myojax import evaluation
from myojax.analysis.runs import open_run
from myojax.data import pipeline
from myojax.model import GPT

MODES = ("standard", "myopic")
RESULTS_FILE = "results.json"
LOSS_TOLERANCE = 1e-4  # nats: recomputed per-sequence losses vs the record's


class StudyError(ValueError):
    """A study directory that cannot be analysed (missing, unfinished, or inconsistent)."""


@dataclasses.dataclass(frozen=True)
class Study:
    """The size runs of a finished study, in ladder order; ``seeds`` are those every
    (mode, size) finished (``ok``) at the preset's own budget."""

    root: Path
    results: records.StudyResults
    sizes: tuple[str, ...]
    seeds: tuple[int, ...]
    params: tuple[int, ...]  # non-embedding parameters per size

    def record(self, mode: str, size: str, seed: int) -> records.RunRecord:
        for r in self.results.runs:
            if (r.mode, r.role, r.size, r.seed, r.budget) == (mode, "size", size, seed, 1.0):
                return r
        raise StudyError(f"the study has no {mode} size run {size} seed {seed}")

    def model(self, mode: str, size: str, seed: int) -> GPT:
        return open_run(self.root / self.record(mode, size, seed).run_dir).model


def _size_runs(results: records.StudyResults) -> list[records.RunRecord]:
    return [r for r in results.runs if r.role == "size" and r.budget == 1.0]


def open_study(root: str | Path) -> Study:
    """The study in ``root`` (its ``results.json`` and run directories)."""
    root = Path(root)
    path = root / RESULTS_FILE
    if not path.is_file():
        raise StudyError(f"{root} holds no study: no {RESULTS_FILE} (run the study first)")
    results = records.read_results(path)
    if results is None:
        raise StudyError(f"{path} is not a scaling study's results of the current schema")
    if not results.finished:
        raise StudyError(f"the study in {root} has not finished (rerun it to complete it)")
    missing = [m for m in MODES if m not in results.modes]
    if missing:
        raise StudyError(f"the study in {root} has no {', '.join(missing)} runs")
    runs = _size_runs(results)
    ladder = [s.name for s in results.protocol.sizes]
    ok = {(r.mode, r.size, r.seed) for r in runs if r.ok}
    seeds = tuple(
        s for s in results.protocol.seeds if all((m, z, s) in ok for m in MODES for z in ladder)
    )
    if len(seeds) < 2:
        raise StudyError(f"the study in {root} has fewer than 2 seeds finished at every size")
    params = tuple(next(r.non_embedding_params for r in runs if r.size == name) for name in ladder)
    return Study(root, results, tuple(ladder), seeds, params)


def study_windows(study: Study) -> Int[np.ndarray, "M T1"]:
    """The study's test windows, cut as the study cut them (``evaluation.heldout_windows``
    with the recorded evaluation seed, window length and count)."""
    p = study.results.protocol
    data = pipeline.load_data(study.results.data or pipeline.EMBEDDED)
    if not data.test:
        raise StudyError(f"the study's data {study.results.data!r} has no test split")
    batches = evaluation.heldout_windows(
        data.test,
        seq_len=p.seq_len,
        batch_size=p.batch_size,
        num_batches=p.eval_sequences_per_split // p.batch_size,
        seed=p.eval_seed,
    )
    return np.concatenate(batches)


def checked_losses(
    record: records.RunRecord, losses: Float[np.ndarray, "M T"], what: str
) -> Float[np.ndarray, "M T"]:
    """``losses`` (per token, on the test windows), after checking that their per-sequence
    means are the ones ``record`` holds."""
    expected = np.asarray(record.test_loss_per_sequence or (), np.float64)
    got = losses.mean(axis=1)
    if expected.shape != got.shape or np.max(np.abs(expected - got)) > LOSS_TOLERANCE:
        raise StudyError(
            f"{what}: the recomputed test losses differ from the study's record (other windows "
            "or another model than the study evaluated)"
        )
    return losses


def run_losses(
    study: Study, mode: str, size: str, seed: int, windows: Int[np.ndarray, "M T1"]
) -> Float[np.ndarray, "M T"]:
    """Per-token test losses of one size run, checked against its record."""
    model = study.model(mode, size, seed)
    losses = evaluation.token_losses(model, evaluation.in_batches(windows, 64)).astype(np.float64)
    return checked_losses(study.record(mode, size, seed), losses, f"{mode} {size} seed {seed}")
