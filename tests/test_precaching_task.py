import jax
import numpy as np
import pytest

from experiments.precaching.task import NO_TARGET, PrecacheTask


def test_targets_are_the_mapped_token_lag_steps_back():
    task = PrecacheTask(vocab_size=10, seq_len=12, lag=3)
    table = task.table(jax.random.key(0))
    batch = task.sample(jax.random.key(1), table, 5)
    x, y = np.asarray(batch.inputs), np.asarray(batch.targets)
    assert x.min() >= 1 and x.max() < 10
    assert np.all(y[:, :3] == NO_TARGET)
    np.testing.assert_array_equal(y[:, 3:], np.asarray(table)[x[:, :-3] - 1] + 1)
    np.testing.assert_array_equal(
        task.future_feature(batch.inputs, table), np.asarray(table)[x - 1]
    )


def test_same_key_same_batch_and_validation():
    task = PrecacheTask()
    table = task.table(jax.random.key(0))
    a = task.sample(jax.random.key(3), table, 4)
    b = task.sample(jax.random.key(3), table, 4)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    with pytest.raises(ValueError, match="lag"):
        PrecacheTask(seq_len=4, lag=4)
    with pytest.raises(ValueError, match="vocab_size"):
        PrecacheTask(vocab_size=2)
