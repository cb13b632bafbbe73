import jax
import jax.numpy as jnp
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


def test_lagged_sine_targets_match_a_loop_recomputation():
    from experiments.precaching.task import LaggedSineTask, lagged_sines

    task = LaggedSineTask(seq_len=9, n_lags=3, freq=2.0, p=0.5)
    batch = task.sample(jax.random.key(3), 4)
    inputs = np.asarray(batch.inputs, np.float64)
    x, z = inputs[..., 0], inputs[..., 1]
    assert set(np.unique(z)) <= {0.0, 1.0} and batch.targets.shape == (4, 9, 1)
    expected = np.zeros((4, 9))
    for b in range(4):
        for n in range(9):
            lagged = sum(np.sin(2.0 * x[b, n - i]) for i in range(1, 4) if n - i >= 0)
            expected[b, n] = z[b, n] * lagged + (1 - z[b, n]) * x[b, n]
    np.testing.assert_allclose(np.asarray(batch.targets)[..., 0], expected, atol=1e-5)
    feats = np.asarray(lagged_sines(batch.inputs[..., 0], 2.0, 5))
    assert feats.shape == (4, 9, 6)
    np.testing.assert_allclose(feats[1, 7, 4], np.sin(2.0 * x[1, 3]), atol=1e-6)
    np.testing.assert_array_equal(feats[:, 2, 3:], 0.0)  # before the start


def test_lagged_sine_extremes_of_p():
    from experiments.precaching.task import LaggedSineTask

    copy = LaggedSineTask(seq_len=8, n_lags=2, freq=1.0, p=0.0).sample(jax.random.key(0), 3)
    np.testing.assert_array_equal(copy.targets[..., 0], copy.inputs[..., 0])
    with pytest.raises(ValueError, match="p must be in"):
        LaggedSineTask(p=1.5)


def test_facts_targets_are_the_queried_entitys_fact():
    from experiments.precaching.task import FactsTask

    task = FactsTask(n_entities=10, n_values=3, n_mentions=3, n_filler=2, n_filler_tokens=4)
    facts = np.asarray(task.facts(jax.random.key(0)))
    assert np.bincount(facts).tolist() == [4, 3, 3]  # every value used, balanced
    batch, entities, slot = task.sample(jax.random.key(1), jnp.asarray(facts), 6)
    x, y = np.asarray(batch.inputs), np.asarray(batch.targets)
    assert x.shape == (6, task.seq_len) and x.max() < task.vocab_size
    for b in range(6):
        mentioned = x[b, :3] - 1  # entity tokens are 1..E
        assert len(set(mentioned)) == 3 and list(mentioned) == list(np.asarray(entities[b]))
        assert np.all((x[b, 3:5] >= task.filler_offset) & (x[b, 3:5] < task.query_offset))
        j = x[b, -1] - task.query_offset
        assert j == int(slot[b])
        assert y[b, -1] == facts[mentioned[j]] + task.value_offset
        assert np.all(y[b, :-1] == NO_TARGET)
