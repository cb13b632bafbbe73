"""The saddle page: the verdict follows the curriculum arm's seeds (the saddle, not the saddle,
undecided), and the page redraws byte for byte from its JSON."""

from __future__ import annotations

import dataclasses
import json

from experiments.precaching.saddle_page import (
    CURRICULUM,
    SCRATCH,
    STANDARD,
    ArmRun,
    SaddleResults,
    report,
    verdict,
)


def _run(arm: str, seed: int, accuracy: float, future=(0.5, 0.5), pretrain=None) -> ArmRun:
    return ArmRun(task="map", arm=arm, seed=seed, loss=1.0 - accuracy, accuracy=accuracy,
                  attention=(0.5, 0.2), precache_future=future, precache_unused=(0.5, 0.5),
                  chance=0.25, curve=(1.4, 0.5), pretrain_accuracy=pretrain, wall_s=1.0,
                  cpu_s=1.0)  # fmt: skip


def _results(curriculum_accuracy, curriculum_future=(0.5, 0.5)) -> SaddleResults:
    runs = [_run(STANDARD, s, 1.0, future=(1.0, 0.9)) for s in range(3)]
    runs += [_run(SCRATCH, s, 0.26) for s in range(3)]
    runs += [_run(CURRICULUM, s, a, curriculum_future, pretrain=0.99)
             for s, a in enumerate(curriculum_accuracy)]  # fmt: skip
    settings = {"d_model": 32, "n_layers": 2, "n_heads": 4, "batch_size": 64, "lr": 3e-3,
                "steps": 1500, "seeds": 3}  # fmt: skip
    return SaddleResults(settings, "cmd", 1.0, 1.0, {}, {}, len(runs), tuple(runs))


def test_verdict_reads_the_curriculum_arm():
    assert verdict(_results([1.0, 1.0, 0.99]), "map").startswith("**The saddle.**")
    assert verdict(_results([0.26, 0.3, 0.25]), "map").startswith("**Not the saddle.**")
    assert "the seeds disagree" in verdict(_results([1.0, 0.3, 1.0]), "map")
    # Learnt, but by storing the answer at the source: not evidence against pre-caching.
    stored = verdict(_results([1.0, 1.0, 1.0], curriculum_future=(1.0, 0.9)), "map")
    assert stored.startswith("**Undecided.**") and "holds the answer" in stored
    partial = dataclasses.replace(_results([1.0] * 3), runs=_results([1.0] * 3).runs[:3])
    assert verdict(partial, "map") == "Not enough arms finished for a verdict."


def test_page_redraws_from_its_json():
    results = _results([1.0, 1.0, 1.0])
    obj = json.loads(json.dumps(results.to_json()))
    assert SaddleResults.from_json(obj) == results
    page = report(obj)
    assert page == report(json.loads(json.dumps(obj)))
    assert "| myopic after a myopic copy stage | 3 of 3 |" in page
    assert "**The saddle.**" in page
