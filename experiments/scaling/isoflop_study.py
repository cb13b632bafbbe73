"""Running the isoFLOP design: the lr sweep per mode (validation loss), then every (budget,
size, mode, seed) at its mode's lr, each on D = C/(6N) non-overlapping training windows; per
run the most times any training token was read, computed by replaying the run's own training
stream over token positions. Every run is cached in its directory, so rerunning the same
command resumes; the analysis (``isoflop_analysis``) reads only test losses. ``--report-only``
trains nothing and analyses the budgets whose every run has finished (a partial study).

``--share``: several processes run the same command on the same directory (on one machine, or
on several sharing a filesystem with working ``flock``), each claiming a run (``RUN/.claim``,
held from its start until its record is written) and passing over runs others hold (by their
claim, or by the run's own lock: a process running the study without ``--share``). The lr
sweep is waited for (the design needs its lr); a process whose remaining runs are all held by
others says so and stops, and the one that finds every run finished writes the analysis
(passes repeat while they train something, so the last process to train finds them all).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from experiments.scaling import execute, isoflop, isoflop_analysis, records, watch
from experiments.scaling.protocol import RunSpec, model_config
from myojax.data import pipeline
from myojax.train.rundir import LOCK_FILE, Holder, RunBusyError, RunLock, read_holder
from myojax.train.setup import data_seeds

CLAIM_FILE = ".claim"  # held by the process training a run under --share
WAIT_S = 10.0  # how often a --share process looks again at a sweep run another one holds


class HeldByOthers(Exception):
    """--share: the runs this process could not take, all held by other processes."""

    def __init__(self, runs: tuple[str, ...]):
        super().__init__(f"{len(runs)} run(s) held by other processes")
        self.runs = runs


_HELD = object()  # go()'s answer for a run another process holds


@dataclasses.dataclass(frozen=True)
class IsoflopRun:
    """One finished run of the design and the most times it read any training token."""

    record: records.RunRecord
    budget: float
    max_token_reads: int
    role: str  # "sweep" or "size" in the design (a cached record keeps the role it ran as)


def _spec(d: isoflop.Design, r: isoflop.IsoflopRun, mode: str, lr: float, seed: int, role: str):
    cfg = model_config(d.preset.base, r.size, mode)
    return RunSpec(mode, role, r.size, lr, r.steps, r.tokens, cfg, seed, float(f"{r.budget:.4g}"))


def token_reads(d: isoflop.Design, spec: RunSpec, data: pipeline.TokenData) -> int:
    """Replays the run's training stream (same seed derivation as the trainer) over positions."""
    train_seed, _ = data_seeds(jax.random.split(jax.random.key(spec.seed))[1])
    ds = pipeline.window_dataset(
        pipeline.position_ids(data.train),
        seq_len=d.preset.base.seq_len,
        batch_size=d.preset.base.batch_size,
        num_batches=spec.steps,
        seed=train_seed,
        rows=np.arange(d.preset.base.batch_size),
        disjoint=d.preset.base.disjoint_windows,
    )
    return pipeline.max_token_reads(ds)


def run(
    d: isoflop.Design,
    out: Path,
    data: str,
    progress: bool | None = None,
    *,
    train: bool = True,
    share: bool = False,
):
    """Sweep, then the design; returns (lr per mode, finished runs), or None if stopped (or,
    with ``train=False``, if the lr sweep has not finished: no lr to read the design at).
    ``train=False`` trains nothing and returns the runs finished so far. ``share``: claim
    each run and pass over those other processes hold (module docstring), passing again while
    a pass trained something; raises ``HeldByOthers`` after a pass that trained nothing and
    found runs still held."""
    base, tokens = d.preset.base, pipeline.load_data(data)
    windows = execute.heldout_windows(base, data) if train else None
    done: list[IsoflopRun] = []
    held: list[str] = []
    reads: dict[Path, int] = {}  # a run's replayed token reads, once per process
    trained_here: list[str] = []

    def execute_run(spec: RunSpec) -> records.RunRecord:
        record, cached = execute.execute(
            base, spec, out, data, windows, write=True, progress=progress
        )
        if not cached:
            trained_here.append(spec.run_dir(out).name)
        return record

    def trained(spec: RunSpec, wait: bool) -> records.RunRecord | object:
        if not share:
            return execute_run(spec)
        claim = RunLock(spec.run_dir(out), CLAIM_FILE)
        while True:
            try:
                claim.acquire()
                try:
                    return execute_run(spec)
                finally:
                    claim.release()
            except RunBusyError:  # its claim, or its own lock (a process that is not sharing)
                if not wait:
                    return _HELD
                time.sleep(WAIT_S)

    def go(spec: RunSpec, budget: float, wait: bool = False) -> records.RunRecord | object | None:
        record = trained(spec, wait) if train else records.read_run(spec.run_dir(out))
        if record is _HELD:
            held.append(spec.run_dir(out).name)
            return _HELD
        if record is None or record.status == "interrupted":
            return None
        if spec.run_dir(out) not in reads:
            reads[spec.run_dir(out)] = token_reads(d, spec, tokens)
        done.append(IsoflopRun(record, budget, reads[spec.run_dir(out)], spec.role))
        return record

    def design_pass() -> dict[str, float] | None:
        done.clear()
        held.clear()
        lrs: dict[str, float] = {}
        for mode in isoflop.MODES:
            specs = [_spec(d, d.sweep, mode, lr, base.seeds[0], "sweep") for lr in base.lrs]
            sweep = [go(s, d.sweep.budget) for s in specs]
            # the design needs this mode's lr: wait for the sweep runs others hold
            sweep = [
                go(s, d.sweep.budget, wait=True) if r is _HELD else r
                for s, r in zip(specs, sweep, strict=True)
            ]
            if any(r is None for r in sweep):
                return None
            ok = [r for r in sweep if r.status == "ok"]
            lrs[mode] = min(ok, key=lambda r: r.val_loss).lr
        held.clear()
        for r in d.runs:
            for mode in isoflop.MODES:
                for seed in base.seeds:
                    spec = _spec(d, r, mode, lrs[mode], seed, "size")
                    if go(spec, r.budget) is None and train:
                        return None
        return lrs

    while True:  # another pass while this one trained something: runs held may be done now
        before = len(trained_here)
        lrs = design_pass()
        if lrs is None:
            return None
        if not held:
            return lrs, done
        if len(trained_here) == before:
            raise HeldByOthers(tuple(held))


def planned_runs(d: isoflop.Design) -> int:
    """Every run the design trains: the lr sweep and each (budget, size) x mode x seed."""
    n_modes, base = len(isoflop.MODES), d.preset.base
    return n_modes * (len(base.lrs) + len(d.runs) * len(base.seeds))


def _key(x: IsoflopRun) -> tuple[float, str, str, int]:
    """A size run's place in the design: (budget, size name, mode, seed)."""
    return x.budget, x.record.size, x.record.mode, x.record.seed


def finished_budgets(d: isoflop.Design, done: list[IsoflopRun]) -> tuple[float, ...]:
    """The budgets whose every size, mode and seed has finished ok: a partial study's
    analysis rests on these alone, so each profile it fits is whole and paired."""
    ok = {_key(x) for x in done if x.role == "size" and x.record.ok}
    need = {
        c: {
            (c, r.size.name, m, s)
            for r in d.runs
            if r.budget == c
            for m in isoflop.MODES
            for s in d.preset.base.seeds
        }
        for c in d.budgets
    }
    return tuple(c for c in d.budgets if need[c] <= ok)


def losses(
    d: isoflop.Design, done: list[IsoflopRun], budgets: tuple[float, ...] | None = None
) -> isoflop_analysis.IsoflopLosses:
    """The test losses at ``budgets`` (default: all of the design's) as the analysis's array
    (every run at those budgets must have finished ok)."""
    by_key = {_key(x): x.record for x in done if x.role == "size"}
    budgets = d.budgets if budgets is None else budgets
    names = [[r.size.name for r in d.runs if r.budget == c] for c in budgets]
    sizes = np.array([[r.non_embedding for r in d.runs if r.budget == c] for c in budgets], float)
    loss = np.array(
        [
            [
                [
                    [by_key[(c, n, mode, s)].test_loss_per_sequence for s in d.preset.base.seeds]
                    for n in row
                ]
                for c, row in zip(budgets, names, strict=True)
            ]
            for mode in isoflop_analysis.MODES
        ],
        float,
    )
    return isoflop_analysis.IsoflopLosses(np.array(budgets), sizes, loss)


def _holder(run_dir: Path) -> Holder | None:
    """Who holds the run, from its claim or lock file alone (nothing is locked to find out)."""
    for name in (CLAIM_FILE, LOCK_FILE):
        if (holder := read_holder(run_dir / name)) is not None:
            return holder  # a released file is emptied and names no one
    return None


def status(d: isoflop.Design, out: Path) -> watch.StudyStatus:
    """Where the study in ``out`` stands, from its files alone (``--status``): runs finished of
    those planned, their wall time, the steps left priced at the finished runs' seconds per step
    (one process's time: divide by the processes sharing it), and each started, unfinished run
    with its last step and holder."""
    base, done, elapsed, started = d.preset.base, [], 0.0, []
    sweep = {
        m: [_spec(d, d.sweep, m, lr, base.seeds[0], "sweep") for lr in base.lrs]
        for m in isoflop.MODES
    }
    finished = {m: [records.read_run(s.run_dir(out)) for s in sweep[m]] for m in isoflop.MODES}
    lrs = {  # a mode's size runs are named by its lr: known once its sweep has finished
        m: min(ok, key=lambda r: r.val_loss).lr
        for m, rs in finished.items()
        if all(rs) and (ok := [r for r in rs if r.ok])
    }
    plan = [s for m in isoflop.MODES for s in sweep[m]] + [
        _spec(d, r, m, lrs.get(m, base.lrs[0]), seed, "size")
        for r in d.runs
        for m in isoflop.MODES
        for seed in base.seeds
    ]
    todo, seen, live, steps_done = [], set(), set(), {}
    for spec in plan:
        run_dir = spec.run_dir(out)
        record = records.read_run(run_dir) if spec.role == "sweep" or spec.mode in lrs else None
        timed = run_dir not in seen  # the sweep's best run is also a size run: time it once
        seen.add(run_dir)
        if record is not None and record.status != "interrupted":
            done.append(record)
            elapsed += (record.wall_s or 0.0) if timed else 0.0
            continue
        todo.append(spec)
        cost = records.read_cost(run_dir)
        elapsed += cost.wall_s if cost is not None and timed else 0.0
        step, holder = watch.last_step(run_dir), _holder(run_dir)
        if step is None and holder is None:
            continue  # not started
        where = "starting" if step is None else f"at step {step}"  # held before its first step
        steps_done[spec] = step or 0
        if holder is None:
            who = ""
        elif holder.alive():
            who = f" (pid {holder.pid} on {holder.host})"
            live.add((holder.pid, holder.host))
        else:
            who = " (stopped)"
        started.append(f"{run_dir.parent.name}/{run_dir.name} {where}{who}")
    eta = watch.eta_s(todo, done, steps_done)
    current = "; ".join(started) or None
    return watch.StudyStatus(len(done), len(plan), elapsed, eta, current, max(len(live), 1))
