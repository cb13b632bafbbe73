"""The mode switch replays a study run exactly as the trainer trained it, and switching the
gradient mode halfway changes the result."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.lm_myopia.study import checked_losses, open_study, study_windows
from experiments.lm_myopia.switch import run_configs, switched_losses, train_switched
from myojax import evaluation
from tests.lm_myopia_fixtures import smoke_study  # noqa: F401 (a fixture)


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_replay_without_a_switch_is_the_study_run_and_a_switch_changes_it(smoke_study):  # noqa: F811
    study = open_study(smoke_study)
    size, seed = study.sizes[-1], study.seeds[0]
    record = study.record("standard", size, seed)
    windows = study_windows(study)
    train_cfg, model_cfg = run_configs(study.root / record.run_dir)
    replay = train_switched(train_cfg, model_cfg, None)
    losses = evaluation.token_losses(replay, evaluation.in_batches(windows, 64))
    checked_losses(record, losses.astype(np.float64), "replay")  # the trainer's run, again
    switched = switched_losses(study.root / record.run_dir, "myopic", windows)
    assert switched.shape == losses.shape and np.all(np.isfinite(switched))
    assert not np.array_equal(switched, losses)  # the second half trained myopically
