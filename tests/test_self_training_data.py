"""A seed's fixed data: the same for every condition, different across seeds, nested pools."""

import numpy as np

from experiments.self_training.data import SeedData


def _tokens():
    return np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8)


def test_a_seed_fixes_its_pool_and_order_and_other_seeds_differ():
    a = SeedData.build(3, _tokens(), 64, 9, 20, 8)
    b = SeedData.build(3, _tokens(), 64, 9, 20, 8)
    c = SeedData.build(4, _tokens(), 64, 9, 20, 8)
    assert (a.human == b.human).all() and (a.order == b.order).all()
    assert (a.replace_order == b.replace_order).all()
    assert not (a.order == c.order).all() and not (a.human == c.human).all()  # negative control


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
    assert (d.prompts(5) == d.human[d.replace_order[:5], 0]).all()
