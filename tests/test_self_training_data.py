"""A seed's fixed data (the study's pairing): the same for every condition trained under a
seed, different across seeds, with nested pools."""

import jax
import numpy as np

from experiments.self_training.data import INIT, ORDER, SeedData, seed_key


def _tokens():
    return np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8)


def test_a_seed_fixes_its_pool_and_order_and_other_seeds_differ():
    # every condition of a seed rebuilds its SeedData from the seed alone
    a = SeedData.build(3, _tokens(), 64, 9, 20, 8)
    b = SeedData.build(3, _tokens(), 64, 9, 20, 8)
    c = SeedData.build(4, _tokens(), 64, 9, 20, 8)
    assert (a.human == b.human).all() and (a.order == b.order).all()
    assert (a.replace_order == b.replace_order).all()
    assert a.human.shape == (64, 9)
    # negative control: the pairing is per seed, not one fixed draw for the whole study
    assert not (a.order == c.order).all() and not (a.human == c.human).all()


def test_a_seeds_keys_are_reproducible_and_its_streams_differ():
    key_data = jax.random.key_data
    np.testing.assert_array_equal(key_data(seed_key(3, INIT)), key_data(seed_key(3, INIT)))
    # negative controls: another stream of the same seed, the same stream of another seed
    assert not np.array_equal(key_data(seed_key(3, INIT)), key_data(seed_key(3, ORDER)))
    assert not np.array_equal(key_data(seed_key(3, INIT)), key_data(seed_key(4, INIT)))


def test_order_visits_every_window_once_per_epoch():
    d = SeedData.build(0, _tokens(), 64, 9, 16, 8)  # 128 rows = 2 epochs
    assert d.order.shape == (16, 8)
    assert (np.bincount(d.order.ravel(), minlength=64) == 2).all()


def test_pools_nest_and_keep_the_human_rest():
    d = SeedData.build(1, _tokens(), 64, 9, 4, 8)
    sampled = np.full((32, 9), 7, np.uint8)
    half, full = d.pool(sampled[:16]), d.pool(sampled)
    changed = (half != d.human).any(axis=1)
    assert changed.sum() == 16 and (half[changed] == 7).all()
    assert (full[changed] == half[changed]).all()  # the mix-0.5 pool is inside the mix-1 pool
    assert ((full != d.human).any(axis=1)).sum() == 32
    assert (d.pool(sampled[:0]) == d.human).all()  # mix 0: generation 0's pool
    assert (d.prompts(5) == d.human[d.replace_order[:5], 0]).all()
