"""The whole analysis of one finished study: the sacrifice map, the future-token probes and the
mode switch, gathered into ``LmMyopiaResults``."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from experiments.lm_myopia import switch as switch_runs
from experiments.lm_myopia.future_probes import probe_model
from experiments.lm_myopia.records import LmMyopiaResults, SwitchArm, SwitchResult
from experiments.lm_myopia.sacrifice import intervals, size_sacrifice, trends
from experiments.lm_myopia.study import MODES, Study, open_study, run_losses, study_windows
from myojax import files
from myojax.analysis.compare import token_classes
from myojax.data import pipeline
from myojax.provenance import environment

CACHE = "lm_myopia"  # inside the study directory: the switched runs' losses


@dataclasses.dataclass(frozen=True)
class Options:
    n_boot: int = 400
    probe_sequences: int = 128  # test windows the probes use (their own train/test split)
    switch_size: str | None = None  # None: the middle of the ladder; "" : no switch
    log: bool = True


def _say(options: Options, text: str) -> None:
    if options.log:
        print(text, file=sys.stderr, flush=True)


def all_losses(study: Study, windows: np.ndarray, options: Options) -> dict[str, np.ndarray]:
    """Per mode, the per-token test losses ``[Z, S, M, T]`` of every size and seed."""
    out = {}
    for mode in MODES:
        out[mode] = np.stack(
            [
                np.stack([run_losses(study, mode, z, s, windows) for s in study.seeds])
                for z in study.sizes
            ]
        )
        _say(options, f"evaluated the {mode} runs")
    return out


def _cached_switch(study: Study, source_dir: Path, to_mode: str, windows, test_loss: float):
    """The switched run's per-token test losses, cached in the study directory under a key
    that names the source run's record (a rerun study trains the switch anew)."""
    stem = f"{source_dir.parent.name}-{source_dir.name}-to-{to_mode}"
    npy, meta_path = (study.root / CACHE / f"{stem}{ext}" for ext in (".npy", ".json"))
    key = {"source": str(source_dir.relative_to(study.root)), "source_test_loss": test_loss}
    meta = files.read_json(meta_path)
    if isinstance(meta, dict) and meta.get("key") == key and npy.is_file():
        return np.load(npy), 0.0
    c0 = time.process_time()
    losses = switch_runs.switched_losses(source_dir, to_mode, windows)
    npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy, losses)
    cpu = time.process_time() - c0
    files.write_json(meta_path, {"key": key, "cpu_s": cpu})
    return losses, cpu


def mode_switch(
    study: Study, size: str, windows: np.ndarray, losses: dict[str, np.ndarray], options: Options
) -> SwitchResult:
    z = study.sizes.index(size)
    arms = {"standard": losses["standard"][z], "myopic": losses["myopic"][z]}  # [S, M, T]
    cpu = 0.0
    for source, to_mode in (("standard", "myopic"), ("myopic", "standard")):
        per_seed = []
        for seed in study.seeds:
            rec = study.record(source, size, seed)
            got, spent = _cached_switch(
                study, study.root / rec.run_dir, to_mode, windows, rec.test_loss
            )
            per_seed.append(got)
            cpu += spent
            _say(options, f"switch {source} -> {to_mode} {size} seed {seed}: {got.mean():.4f}")
        arms[f"{source} -> {to_mode}"] = np.stack(per_seed)
    per_seq = {name: a.mean(axis=-1) for name, a in arms.items()}  # [S, M]
    names = list(per_seq)
    stacked = np.stack([per_seq[n] for n in names])  # [A, S, M]

    def stat(seeds: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        m = stacked[:, seeds][:, :, seqs].mean(axis=(1, 2))
        std, myo, s2m, m2s = m  # the arms in the order built above
        advantage = myo - std
        return np.array([*m, (myo - s2m) / advantage, (myo - m2s) / advantage])

    s, m = stacked.shape[1:]
    ci = intervals(stat, s, m, n_boot=options.n_boot, seed=1)
    steps = study.record("standard", size, study.seeds[0]).steps
    return SwitchResult(
        size=size,
        steps=steps,
        switch_step=steps // 2,
        arms=tuple(
            SwitchArm(name=n, loss=ci[i], per_seed=tuple(float(x) for x in per_seq[n].mean(1)))
            for i, n in enumerate(names)
        ),
        kept=ci[len(names)],
        reached=ci[len(names) + 1],
        cpu_s=cpu,
    )


def analyse(
    study_dir: str | Path, *, command: str, options: Options = Options()
) -> LmMyopiaResults:
    start, cpu0, env_start = time.perf_counter(), time.process_time(), environment()
    study = open_study(study_dir)
    windows = study_windows(study)
    losses = all_losses(study, windows, options)
    data = pipeline.load_data(study.results.data or pipeline.EMBEDDED)
    classes, names, class_kind = token_classes(
        data, windows[:, 1:], data.vocab_size, data.tokenizer
    )
    sacrifice = tuple(
        size_sacrifice(
            z, n, losses["standard"][i], losses["myopic"][i], classes, names, n_boot=options.n_boot
        )
        for i, (z, n) in enumerate(zip(study.sizes, study.params, strict=True))
    )
    _say(options, "sacrifice map done")
    probe_windows = windows[: options.probe_sequences]
    probes = []
    for z in study.sizes:
        for mode in MODES:
            for s in study.seeds:
                probes.append(
                    probe_model(study.model(mode, z, s), probe_windows, mode=mode, size=z, seed=s)
                )
        _say(options, f"probes {z} done")
    size = options.switch_size
    size = study.sizes[len(study.sizes) // 2] if size is None else size
    switch = mode_switch(study, size, windows, losses, options) if size else None
    return LmMyopiaResults(
        study=str(study_dir),
        preset=study.results.preset,
        description=study.results.description,
        command=command,
        wall_s=time.perf_counter() - start,
        cpu_s=time.process_time() - cpu0,
        environment_start=env_start,
        environment_end=environment(),
        seeds=study.seeds,
        sizes=study.sizes,
        params=study.params,
        sequences=int(windows.shape[0]),
        positions=int(windows.shape[1] - 1),
        n_boot=options.n_boot,
        class_kind=class_kind,
        sacrifice=sacrifice,
        trends=trends(
            np.asarray(study.params, float),
            losses["standard"],
            losses["myopic"],
            n_boot=options.n_boot,
        ),
        probes=tuple(probes),
        switch=switch,
    )
