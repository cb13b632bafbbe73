"""Running the whole study: every run in protocol order (``execute``), then the estimates, the
results record and its pages (``publishing``), or nothing when nothing changed.

Rerunning the same study skips finished runs and resumes an interrupted one from its last
checkpoint; with nothing new to do it writes nothing. A signal stops it between runs (the
trainer checkpoints the current one). Only JAX process 0 writes study files.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from experiments.scaling import estimates, execute, protocol, publishing, records, watch
from experiments.scaling.protocol import StudyPreset
from myojax.progress import Progress
from myojax.provenance import environment
from myojax.train.monitor import StopFlag, stop_on_signals


@dataclasses.dataclass(frozen=True)
class Options:
    """How to run a study: where, on what data and mesh, and what to write."""

    out: Path
    data: str
    mesh: str | None = None
    train: bool = True  # False: report the runs finished so far (--report-only)
    rerender: bool = False  # redo the estimates and pages even when no run changed
    publish: bool = False  # also write the repository's copy (run from its root)
    progress: bool | None = None  # None: bars only on a terminal
    tracker: str | None = None  # each run's --tracker (None: the trainer's default)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a study ended: ``signum`` set when a signal stopped it (rerun to resume);
    ``results`` None when nothing was written (not process 0, or stopped)."""

    signum: int | None = None
    results: records.StudyResults | None = None
    nothing_new: bool = False
    written: tuple[Path, ...] = ()


class RunCounter:
    """Overall progress over runs: the shared ``Progress`` bar plus numbered log lines with the
    elapsed time and an ETA from the per-step costs of the runs so far (``watch.eta_s``)."""

    def __init__(self, total: int, tty: bool | None, plan: Sequence[protocol.RunSpec] = ()):
        self.total, self.done, self.trained = total, 0, 0
        self.bar = Progress(total, enabled=tty, unit="run", desc="scaling study")
        self.plan, self.records, self.t0 = plan, [], time.perf_counter()

    def update(
        self, n: int, trained: bool = False, record: records.RunRecord | None = None
    ) -> None:
        self.done += n
        self.trained += n if trained else 0
        self.records += [record] if record is not None else []
        self.bar.update(self.done)

    def say(self, message: str) -> None:
        elapsed = watch.duration(time.perf_counter() - self.t0)
        todo = watch.remaining(self.plan, self.records)
        eta = watch.duration(watch.eta_s(todo, self.records) if todo else 0.0)
        self.bar.write(f"[scaling {self.done}/{self.total}, {elapsed}, ETA {eta}] {message}")

    def close(self) -> None:
        self.bar.close()


def compilation_cache(out: Path) -> None:
    """Persist compiled steps under --out: every seed of a configuration compiles the same
    program, and on a small CPU compiling costs more than training the smallest models."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str((out / "jax-cache").resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _up_to_date(
    old: records.StudyResults | None,
    runs: Sequence[records.RunRecord],
    modes: Sequence[str],
    finished: bool,
) -> bool:
    """Whether ``old`` already holds exactly these runs' results."""
    return (
        old is not None
        and records.fingerprint(old.runs) == records.fingerprint(runs)
        and old.modes == tuple(modes)
        and old.finished == finished
    )


def run(p: StudyPreset, modes: Sequence[str], options: Options, command: str) -> Outcome:
    """Train what is missing (``options.train``), then estimate and write the results;
    ``command`` is the reproducing command line that the results record."""
    from myojax import sharding

    sharding.maybe_initialize_distributed()
    compilation_cache(options.out)
    t0, c0, env_start = time.perf_counter(), time.process_time(), environment()
    plan = protocol.plan_specs(p, modes)
    stop, counter = StopFlag(), RunCounter(protocol.n_runs(p, modes), options.progress, plan)
    try:
        with stop_on_signals(stop):  # between runs; the trainer installs its own while training
            runs, finished = execute.run_study(
                p,
                modes,
                options.out,
                data=options.data,
                write=sharding.is_main_process(),
                stop=stop,
                say=counter.say,
                bar=counter,
                progress=options.progress,
                mesh=options.mesh,
                train=options.train,
                tracker=options.tracker,
            )
    finally:
        counter.close()
    if not finished and options.train:
        return Outcome(signum=stop.signum or 15)
    if not sharding.is_main_process():
        return Outcome()
    path = options.out / "results.json"
    old = records.read_results(path)
    if (
        not options.rerender
        and _up_to_date(old, runs, modes, finished)
        and publishing.is_current(old, options.out)
    ):
        written = publishing.publish(old, Path.cwd()) if options.publish else []
        return Outcome(results=old, nothing_new=True, written=tuple(written))
    counter.say("fitting scaling laws (bootstrap)")
    analysis = estimates.analyze(p, modes, runs)
    invocation = records.Invocation(
        command=command,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
        runs_trained=counter.trained,
        environment_start=env_start,
        environment_end=environment(),
    )
    results = records.results_document(
        p,
        modes,
        runs,
        analysis,
        invocation=invocation,
        previous=records.read_invocations(path),
        data=options.data,
        finished=finished,
        planned_runs=protocol.n_runs(p, modes),
    )
    written = publishing.write(results, options.out)
    if options.publish:
        written += publishing.publish(results, Path.cwd())
    return Outcome(results=results, written=tuple(written))
