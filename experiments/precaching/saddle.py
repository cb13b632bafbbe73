"""Why myopic models fail the synthetic tasks: they cannot pre-cache, or they sit on a saddle?

    python -m experiments.precaching --task saddle [--quick] [--seeds N] [--steps N] [--out DIR]

On the lagged random map and on synthetic facts, myopic models from scratch stay at the
constant prediction while standard ones learn. Two explanations compete. (a) The task needs
pre-caching: the answer must be computed at the source position (f(x_s), the entity's
attribute) for the later position, which myopic gradients never ask of it. (b) An optimisation
saddle: a myopic model can compute the answer at the answering position from the copied source
token (the lagged copy is learnt myopically), but attention cannot sharpen onto the source
until the answering MLP can use what it copies, and that MLP cannot learn while attention is
diffuse; standard training breaks the symmetry by shaping the source positions.

Arms, per task and seed (the pages' model and data, d_model 32, 2 layers, 4 heads): standard and
myopic at the pages' budget; myopic started from a model trained myopically on the copy variant
(the source token as target: a curriculum that puts attention in place first); myopic trained
``long_factor`` times longer; the gradient mode switched halfway, standard -> myopic (and, with
``both_switches``, back; larger ``widths`` on request). Each final model is scored on held-out
sequences, its attention on the source position is measured per layer, and the source position
is probed for the future-useful feature against an unused function of the same token.
(a) predicts that myopic training fails from every start; (b) that it learns once attention to
the source is in place, without pre-caching. Writes precaching_saddle.json, .png and .md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax

from experiments import epilogue
from experiments.precaching import facts as facts_page
from experiments.precaching import map as map_page
from experiments.precaching.saddle_page import (
    CURRICULUM,
    PAGE,
    SCRATCH,
    STANDARD,
    ArmRun,
    SaddleResults,
)
from experiments.precaching.saddle_tasks import TASKS, TaskView, attention, facts_view, map_view
from experiments.precaching.saddle_tasks import score as task_score
from experiments.precaching.training import Schedule, train
from myojax import files
from myojax.config import ModelConfig
from myojax.loss import cross_entropy
from myojax.model import GPT
from myojax.provenance import environment

CURVE_WINDOW = 50  # training steps per point of the recorded loss curve


@dataclasses.dataclass(frozen=True)
class Arm:
    """One way of training: ``mode`` for ``steps`` at width ``d_model``; ``switch=(step, mode)``
    changes the gradient mode mid-run; ``pretrain`` steps of myopic training on the copy
    variant come first (then a fresh optimizer)."""

    name: str
    mode: str
    steps: int
    d_model: int = 32
    switch: tuple[int, str] | None = None
    pretrain: int = 0


@dataclasses.dataclass(frozen=True)
class SaddleSettings:
    tasks: tuple[str, ...] = TASKS
    seeds: int = dataclasses.field(default=3, metadata={"help": "seeds per arm"})
    steps: int = dataclasses.field(default=1500, metadata={"help": "the pages' training budget"})
    modes: tuple[str, ...] = ("standard", "myopic")  # what the pages compare (not varied here)
    long_factor: int = 4
    # Off by default to fit a shared 2-core CPU: the map page already trains d_model 64, and
    # the curriculum arm records the copy variant's accuracy (its first stage).
    widths: tuple[int, ...] = ()
    both_switches: bool = False
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    eval_sequences: int = 512
    probe_sequences: int = 256

    def quick(self) -> SaddleSettings:
        """A smoke run: one seed, a few steps."""
        return dataclasses.replace(self, seeds=1, steps=60, long_factor=2, probe_sequences=32)

    def arms(self) -> tuple[Arm, ...]:
        s, half = self.steps, self.steps // 2
        return (
            Arm(STANDARD, "standard", s),
            Arm(SCRATCH, "myopic", s),
            Arm(CURRICULUM, "myopic", s, pretrain=s),
            Arm(f"myopic, {self.long_factor}x steps", "myopic", s * self.long_factor),
            *(Arm(f"myopic, d_model {w}", "myopic", s, d_model=w) for w in self.widths),
            Arm("standard -> myopic", "standard", s, switch=(half, "myopic")),
            *(
                [Arm("myopic -> standard", "myopic", s, switch=(half, "standard"))]
                if self.both_switches
                else []
            ),
        )

    def view(self, task: str, d_model: int, seed: int) -> TaskView:
        if task == "map":
            ms = map_page.Settings(d_model=d_model, probe_sequences=self.probe_sequences)
            return map_view(dataclasses.replace(ms, n_layers=self.n_layers), seed)
        fs = facts_page.FactsSettings(
            d_model=d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            probe_sequences=self.probe_sequences,
        )
        return facts_view(fs, seed)

    def model_config(self, view: TaskView, arm: Arm, mode: str) -> ModelConfig:
        return ModelConfig(
            vocab_size=view.vocab_size,
            seq_len=view.seq_len,
            d_model=arm.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            gradient_mode=mode,
        )

    def schedule(self, steps: int) -> Schedule:
        return Schedule(steps, self.batch_size, self.lr, max(1, steps // 10))


def _curve(losses: list[float]) -> tuple[float, ...]:
    return tuple(
        sum(losses[i : i + CURVE_WINDOW]) / len(losses[i : i + CURVE_WINDOW])
        for i in range(0, len(losses), CURVE_WINDOW)
    )


def run_arm(settings: SaddleSettings, task: str, arm: Arm, seed: int) -> ArmRun:
    """Train one arm for one seed and measure its final model (same data order in every arm)."""
    t0, c0 = time.perf_counter(), time.process_time()
    view = settings.view(task, arm.d_model, seed)
    k_train, k_pre, k_eval, k_probe = jax.random.split(
        jax.random.fold_in(jax.random.key(seed), 1), 4
    )
    init, pretrain_accuracy = None, None
    if arm.pretrain:
        cfg = settings.model_config(view, arm, "myopic")
        schedule = settings.schedule(arm.pretrain)
        init, _ = train(cfg, GPT, cross_entropy, view.copy_sample, schedule, k_pre)
        copy_view = dataclasses.replace(view, sample=view.copy_sample)
        pretrain_accuracy = task_score(copy_view, init, k_eval, settings.eval_sequences).accuracy
    model, losses = train(
        settings.model_config(view, arm, arm.mode),
        GPT,
        cross_entropy,
        view.sample,
        settings.schedule(arm.steps),
        k_train,
        switch=arm.switch,
        init=init,
    )
    result = task_score(view, model, k_eval, settings.eval_sequences)
    precache = view.precache(model, k_probe)
    return ArmRun(
        task=task,
        arm=arm.name,
        seed=seed,
        loss=result.loss,
        accuracy=result.accuracy,
        attention=attention(view, model, k_eval, settings.probe_sequences),
        precache_future=precache.future,
        precache_unused=precache.unused,
        chance=precache.chance,
        curve=_curve(losses),
        pretrain_accuracy=pretrain_accuracy,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
    )


def finished_runs(
    path: Path, settings: SaddleSettings, plan: list
) -> tuple[list[ArmRun], float, float]:
    """The runs an earlier, interrupted invocation with the same settings left in ``path``
    (rerunning resumes: finished runs are kept, the rest are trained), and that invocation's
    wall and CPU seconds (0 when there is none)."""
    obj = files.read_json(path)
    if not isinstance(obj, dict) or obj.get("settings") != to_plain(dataclasses.asdict(settings)):
        return [], 0.0, 0.0
    planned = {(t, a.name, s) for t, a, s in plan}
    previous = SaddleResults.from_json(obj)
    kept = [r for r in previous.runs if (r.task, r.arm, r.seed) in planned]
    return kept, previous.wall_s, previous.cpu_s


def to_plain(value: Any) -> Any:
    """``value`` as its JSON reads back (tuples as lists), for comparing settings."""
    return json.loads(json.dumps(value))


def run_all(
    settings: SaddleSettings, out: Path, *, command: str, workers: int = 1, log: bool = True
) -> dict[str, Any]:
    """Every (task, arm, seed), ``workers`` at a time (threads: XLA releases the GIL); the page
    is rewritten after every run, so an interrupted experiment still has whole runs."""
    out.mkdir(parents=True, exist_ok=True)
    start, cpu0, env_start = time.perf_counter(), time.process_time(), environment()
    plan = [
        (t, a, s) for t in settings.tasks for a in settings.arms() for s in range(settings.seeds)
    ]
    runs, wall0, cpu0_before = finished_runs(out / PAGE.json_name, settings, plan)
    done_keys = {(r.task, r.arm, r.seed) for r in runs}
    todo = [(t, a, s) for t, a, s in plan if (t, a.name, s) not in done_keys]
    lock = threading.Lock()

    def write() -> dict[str, Any]:
        order = {a.name: i for i, a in enumerate(settings.arms())}
        ordered = sorted(runs, key=lambda r: (settings.tasks.index(r.task), order[r.arm], r.seed))
        results = SaddleResults(
            settings=dataclasses.asdict(settings),
            command=command,
            wall_s=wall0 + time.perf_counter() - start,
            cpu_s=cpu0_before + time.process_time() - cpu0,
            environment_start=env_start,
            environment=environment(),
            runs_planned=len(plan),
            runs=tuple(ordered),
        ).to_json()
        epilogue.finish(PAGE, results, out)
        return results

    def done(job: tuple[str, Arm, int]) -> None:
        row = run_arm(settings, *job)
        if log:
            print(
                f"{row.task} {row.arm:<34} seed {row.seed}: accuracy {row.accuracy:.3f} "
                f"loss {row.loss:.3f} ({row.wall_s:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        with lock:
            runs.append(row)
            write()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(done, todo))
    return write()
