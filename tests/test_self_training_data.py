"""The self-training study's pairing: everything a seed fixes is the same for every condition
trained under it, and different across seeds."""

import jax
import numpy as np
import pytest

from experiments.self_training.data import INIT, ORDER, SeedData, seed_key

TOKENS = np.frombuffer(b"the quick brown fox jumps over the lazy dog. " * 40, np.uint8)
SHAPE = dict(pool=48, seq_len=16, steps=12, batch=8)


def _build(seed: int) -> SeedData:
    return SeedData.build(seed, TOKENS, **SHAPE)


def test_a_seed_rebuilds_the_same_init_key_data_and_order():
    # every condition of a seed (generation, mix, mode, objective) rebuilds its SeedData and
    # init key from the seed alone, so they must come out identical
    a, b = _build(3), _build(3)
    np.testing.assert_array_equal(a.human, b.human)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.replace_order, b.replace_order)
    ka, kb = jax.random.key_data(seed_key(3, INIT)), jax.random.key_data(seed_key(3, INIT))
    np.testing.assert_array_equal(ka, kb)


def test_different_seeds_and_streams_differ():
    # negative control: the pairing is per seed, not one fixed draw for the whole study
    a, c = _build(3), _build(4)
    assert not np.array_equal(a.human, c.human)
    assert not np.array_equal(a.order, c.order)
    init, order = jax.random.key_data(seed_key(3, INIT)), jax.random.key_data(seed_key(3, ORDER))
    assert not np.array_equal(init, order)


def test_the_order_visits_every_slot_and_has_the_trainers_shape():
    d = _build(0)
    assert d.order.shape == (SHAPE["steps"], SHAPE["batch"])
    assert d.human.shape == (SHAPE["pool"], SHAPE["seq_len"] + 1)
    # 12 batches of 8 = two epochs of the 48-slot pool, shuffled together: each slot twice
    np.testing.assert_array_equal(np.bincount(d.order.ravel(), minlength=48), np.full(48, 2))


@pytest.mark.parametrize("n", [0, 12, 48])
def test_pools_differ_from_the_human_pool_only_in_the_replaced_slots(n):
    d = _build(1)
    sampled = np.full((n, SHAPE["seq_len"] + 1), 255, np.uint8)  # byte absent from TOKENS
    pool, is_sampled = d.pool(sampled)
    assert is_sampled.sum() == n
    assert (pool[is_sampled] == 255).all()
    np.testing.assert_array_equal(pool[~is_sampled], d.human[~is_sampled])
    assert not (d.human == 255).any()


def test_a_smaller_mix_is_nested_in_the_larger_one():
    # the mix-0.25 pool is the mix-1 pool with the later replace slots put back to human text
    d = _build(2)
    sampled = np.full((48, SHAPE["seq_len"] + 1), 255, np.uint8)
    _, full = d.pool(sampled)
    _, quarter = d.pool(sampled[:12])
    assert (full | quarter == full).all() and quarter.sum() == 12
    assert d.seen_sampled(quarter) == int(quarter[d.order].sum())
    assert d.prompts(5).shape == (5, 1)
