"""A simulated scaling study for the study's tests: run records drawn from a known law, and the
results record that ``execute.run_study`` + ``estimates.analyze`` would make of them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments.scaling import estimates, protocol, records
from experiments.scaling.protocol import STUDY_PRESETS
from myojax.model import param_counts

MODES = ("standard", "myopic")
PRESET = dataclasses.replace(STUDY_PRESETS["cpu"], n_boot=40, n_boot_fit=10)


def record(p, mode, role, size, lr, seed, loss, rng, difficulty, budget=1.0, **fields):
    """A finished run's record with the given mean test loss (per sequence: ``difficulty``
    plus noise) and a validation loss that prefers lr 8e-3."""
    total, n = param_counts(protocol.model_config(p, size, mode))
    steps, tokens = protocol.token_budget(p, n, budget)
    per_seq = loss + difficulty + rng.normal(0, 0.02, difficulty.size)
    val = loss + (math.log2(lr / 8e-3)) ** 2 / 20 + rng.normal(0, 0.003)
    base = records.RunRecord(
        mode=mode,
        role=role,
        size=size.name,
        seed=seed,
        budget=budget,
        d_model=size.d_model,
        n_layers=size.n_layers,
        params=total,
        non_embedding_params=n,
        tokens=tokens,
        steps=steps,
        lr=lr,
        run_dir=f"runs/{mode}/{size.name}-lr{lr:.3g}-x{budget:g}-s{seed}",
        status="ok",
        final_step=steps,
        train_loss=loss,
        val_loss=val,
        val_loss_per_sequence=(val,) * 4,
        test_loss=float(per_seq.mean()),
        test_loss_per_sequence=tuple(per_seq.tolist()),
        test_loss_per_position=tuple(np.linspace(loss + 1, loss - 0.2, 8).tolist()),
        wall_s=2.0,
        cpu_s=1.5,
        load_start=(1.0, 1.0, 1.0),
        load_end=(1.0, 1.0, 1.0),
    )
    return dataclasses.replace(base, **fields)


def runs(gap_per_decade: float = 0.02) -> list[records.RunRecord]:
    """Every run of the cpu preset for both modes: the myopic gap grows by ``gap_per_decade``
    and shrinks by 0.01 per doubling of the token budget."""
    p = PRESET
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 0.4, 48)
    n0 = param_counts(protocol.model_config(p, p.sizes[0], "standard"))[1]
    seed_effect = rng.normal(0, 0.003, (len(p.sizes), len(p.seeds)))

    def loss(mode, size, seed, budget=1.0):
        n = param_counts(protocol.model_config(p, size, mode))[1]
        gap = gap_per_decade * math.log10(n / n0) + 0.02 - 0.01 * math.log2(budget)
        k = p.sizes.index(size)
        return 1.5 + 40 * n**-0.35 + (gap if mode == "myopic" else 0) + seed_effect[k, seed]

    def run(mode, role, size, lr, seed, budget=1.0):
        return record(
            p, mode, role, size, lr, seed, loss(mode, size, seed, budget), rng, difficulty, budget
        )

    out = []
    for mode in MODES:
        sweep = {(lr, s): run(mode, "sweep", p.proxy, lr, s) for lr in p.lrs for s in p.seeds}
        out += sweep.values()
        for size in p.sizes:
            for seed in p.seeds:
                if size == p.proxy:
                    reused = sweep[8e-3, seed]
                    out.append(dataclasses.replace(reused, role="size", same_run_as_sweep=True))
                else:
                    out.append(run(mode, "size", size, 8e-3, seed))
        ut = next(s for s in p.sizes if s.name == p.undertrain_size)
        out += [
            run(mode, "undertrain", ut, 8e-3, seed, float(f))
            for f in p.undertrain_factors
            for seed in p.seeds
        ]
        out += [
            run(mode, "transfer", p.sizes[-1], lr, seed)
            for lr in protocol.transfer_lrs(p, 8e-3)
            for seed in p.seeds[: p.transfer_seeds]
        ]
    return out


def study(runs_: list[records.RunRecord] | None = None, **fields) -> records.StudyResults:
    """The results record of ``runs_`` (default: ``runs()``), with ``fields`` replaced."""
    runs_ = runs() if runs_ is None else runs_
    env = {"load_avg_1_5_15": [0.1, 0.2, 0.3], "cpu_count": 2, "time": "2026-01-01 00:00 UTC"}
    invocation = records.Invocation(
        command="python -m experiments.scaling",
        wall_s=12.0,
        cpu_s=10.0,
        runs_trained=10,
        environment_start=env,
        environment_end=env,
    )
    res = records.results_document(
        PRESET,
        MODES,
        runs_,
        estimates.analyze(PRESET, MODES, runs_),
        invocation=invocation,
        data="shakespeare",
        planned_runs=protocol.n_runs(PRESET, MODES),
    )
    return dataclasses.replace(res, **fields)


def smoke_pass(out, data: str, *, stop=None, train: bool = True, write: bool = True):
    """``execute.run_study`` of the smoke preset's standard mode into ``out``: (runs, finished)."""
    from experiments.scaling import execute
    from myojax.train.monitor import StopFlag

    return execute.run_study(
        STUDY_PRESETS["smoke"],
        ["standard"],
        out,
        data=data,
        write=write,
        stop=StopFlag() if stop is None else stop,
        say=lambda _: None,
        train=train,
    )
