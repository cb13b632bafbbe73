"""myojax.train.presets: named single runs, a model shape and how to train it."""

from __future__ import annotations

import pytest

from myojax.model import GPT, count_params, param_counts
from myojax.presets import MODEL_PRESETS
from myojax.train import TrainConfig
from myojax.train.presets import RUN_PRESETS, describe_presets, run_preset


@pytest.mark.parametrize("name", list(RUN_PRESETS))
def test_run_presets_pair_a_model_preset_with_a_train_config(name: str) -> None:
    model, train = run_preset(name)
    assert model == MODEL_PRESETS[name] and isinstance(train, TrainConfig)
    assert model.vocab_size == 256  # byte-level: runs on the embedded corpus


def test_unknown_run_preset_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown run preset 'huge'; known: tiny, small"):
        run_preset("huge")


def test_preset_sizes_and_their_summary() -> None:
    import jax

    tiny = RUN_PRESETS["tiny"].model
    assert param_counts(tiny)[0] == count_params(GPT(tiny, key=jax.random.key(0)))
    assert 0.15e6 <= param_counts(tiny)[0] <= 0.3e6
    assert 1e6 <= param_counts(RUN_PRESETS["small"].model)[0] <= 3e6
    text = describe_presets()
    assert "tiny: 0.22M params" in text and "small: 1.2" in text
