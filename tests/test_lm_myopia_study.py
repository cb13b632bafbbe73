"""Opening a finished study: its size runs, models and test windows, the losses checked against
the study's records, and one-line refusals of what cannot be analysed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from experiments.lm_myopia.study import (
    StudyError,
    checked_losses,
    open_study,
    run_losses,
    study_windows,
)
from experiments.scaling.protocol import STUDY_PRESETS
from tests.lm_myopia_fixtures import smoke_study  # noqa: F401 (a fixture)


def test_opens_every_size_and_seed_and_reproduces_the_recorded_losses(smoke_study):  # noqa: F811
    study = open_study(smoke_study)
    preset = STUDY_PRESETS["smoke"]
    assert study.sizes == tuple(s.name for s in preset.sizes)
    assert study.seeds == preset.seeds
    assert all(n > 0 for n in study.params) and list(study.params) == sorted(study.params)
    windows = study_windows(study)
    assert windows.shape == (preset.eval_batches * preset.batch_size, preset.seq_len + 1)
    losses = run_losses(study, "myopic", study.sizes[-1], study.seeds[-1], windows)
    record = study.record("myopic", study.sizes[-1], study.seeds[-1])
    assert np.isclose(losses.mean(), record.test_loss, atol=1e-5)


def test_losses_on_other_windows_are_refused(smoke_study):  # noqa: F811
    study = open_study(smoke_study)
    record = study.record("standard", study.sizes[0], study.seeds[0])
    windows = study_windows(study)
    good = run_losses(study, "standard", study.sizes[0], study.seeds[0], windows)
    with pytest.raises(StudyError, match="differ from the study's record"):
        checked_losses(record, good[::-1].copy(), "reversed")  # negative control
    with pytest.raises(StudyError, match="differ"):
        checked_losses(record, good[:-1], "one window short")


def test_refuses_what_is_not_a_finished_study(smoke_study, tmp_path):  # noqa: F811
    with pytest.raises(StudyError, match="no results.json"):
        open_study(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(smoke_study, copy, ignore=shutil.ignore_patterns("runs", "*.png"))
    obj = json.loads((copy / "results.json").read_text())
    (copy / "results.json").write_text(json.dumps({**obj, "finished": False}))
    with pytest.raises(StudyError, match="has not finished"):
        open_study(copy)
    (copy / "results.json").write_text(json.dumps({**obj, "modes": ["standard"]}))
    with pytest.raises(StudyError, match="no myopic runs"):
        open_study(copy)
    (copy / "results.json").write_text("{}")
    with pytest.raises(StudyError, match="current schema"):
        open_study(copy)
