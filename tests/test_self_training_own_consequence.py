"""The own-consequence condition really puts the trained model's own samples into its own
pool, and the frozen-source control does not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.self_training.data import INIT, SAMPLE, SeedData, seed_key
from experiments.self_training.own_consequence import sample_windows, train_with_feedback
from myojax.config import ModelConfig
from myojax.model import GPT
from myojax.train.config import TrainConfig

SEQ, SLOTS = 8, 4
MODEL = ModelConfig(vocab_size=256, seq_len=SEQ, d_model=16, n_layers=1, n_heads=2)
TRAIN = TrainConfig(steps=6, batch_size=8, lr=3e-2, warmup_steps=1)
TOKENS = np.frombuffer(b"abcabcabd the cat sat. " * 30, np.uint8)


@pytest.fixture(scope="module")
def setup():
    data = SeedData.build(0, TOKENS, pool=16, seq_len=SEQ, steps=TRAIN.steps, batch=8)
    keys = (seed_key(0, INIT), seed_key(0, SAMPLE))
    init_model = GPT(MODEL, key=keys[0])
    return data, keys, init_model


def _run(setup, every, source):
    data, keys, _ = setup
    return train_with_feedback(MODEL, TRAIN, data.human, data.order, keys, every, SLOTS, source)


@pytest.mark.slow  # ~25 s: compiles the training scan with sampling inside
def test_own_samples_enter_the_pool_and_the_batches(setup):
    data, keys, init_model = setup
    # refresh only at step 0: the model is still its initial weights, so its own samples
    # equal those of a frozen copy of the initial model with the same key
    _, _, own = _run(setup, TRAIN.steps, None)
    _, _, frozen = _run(setup, TRAIN.steps, init_model)
    np.testing.assert_array_equal(np.asarray(own), np.asarray(frozen))
    prompts = jnp.asarray(data.human[:SLOTS, 0], jnp.int32)
    expected = sample_windows(init_model, prompts, jax.random.fold_in(keys[1], 0), SEQ)
    np.testing.assert_array_equal(np.asarray(own[:SLOTS]), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(own[SLOTS:]), data.human[SLOTS:])
    assert (data.order < SLOTS).any()  # the batches read the fed slots
    assert not np.array_equal(np.asarray(own[:SLOTS]), data.human[:SLOTS])


@pytest.mark.slow  # ~25 s
def test_later_refreshes_sample_the_trained_model_not_a_frozen_one(setup):
    data, keys, init_model = setup
    last = TRAIN.steps - 1  # every = last: refreshes at step 0 and at the last step
    model_own, _, own = _run(setup, last, None)
    _, _, frozen = _run(setup, last, init_model)
    prompts = jnp.asarray(data.human[:SLOTS, 0], jnp.int32)
    key = jax.random.fold_in(keys[1], last)
    # negative control: the frozen-source pool holds the initial model's samples at step last
    np.testing.assert_array_equal(
        np.asarray(frozen[:SLOTS]), np.asarray(sample_windows(init_model, prompts, key, SEQ))
    )
    # the own pool was refreshed by the model being trained (trained for `last` steps), so
    # it differs from the frozen control
    assert not np.array_equal(np.asarray(own), np.asarray(frozen))
    assert np.asarray(own).shape == data.human.shape
    assert model_own is not None


def test_bad_refresh_settings_are_rejected(setup):
    data, keys, _ = setup
    with pytest.raises(ValueError, match="fed_slots"):
        train_with_feedback(MODEL, TRAIN, data.human, data.order, keys, 0, SLOTS)
