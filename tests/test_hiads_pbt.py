"""PBT's selection under both rule sets, the shuffled-fitness control, and REINFORCE's
controls (the myopic gradient defects, the long-run credit cooperates)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from experiments.hiads import pbt
from experiments.hiads.settings import Setting


def test_ours_replaces_the_worst_and_perturbs_only_the_copy():
    fitness = jnp.array([3.0, 1.0, 5.0, 0.0, 2.0])
    theta = jnp.array([10.0, 11.0, 12.0, 13.0, 14.0])
    lr = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    seen = set()
    for i in range(20):
        new_theta, new_lr = pbt.select(jax.random.key(i), theta, lr, fitness, pbt.RULES["ours"])
        np.testing.assert_array_equal(new_theta, [10.0, 11.0, 12.0, 12.0, 14.0])
        np.testing.assert_array_equal(np.delete(new_lr, 3), [1.0, 2.0, 3.0, 5.0])
        seen.add(round(float(new_lr[3]), 6))
    assert seen == {2.4, 3.75}


def test_paper_rules_floor_the_count_and_perturb_every_learning_rate():
    rules = pbt.RULES["paper"]
    assert rules.replaced(10) == 2 and rules.replaced(4) == 0 and pbt.RULES["ours"].replaced(4) == 1
    fitness = jnp.arange(10.0)
    theta, lr = jnp.arange(10.0) + 100, jnp.ones(10)
    new_theta, new_lr = pbt.select(jax.random.key(0), theta, lr, fitness, rules)
    assert set(np.asarray(new_theta[:2])) <= {108.0, 109.0}  # the two worst copy the top two
    np.testing.assert_array_equal(new_theta[2:], theta[2:])
    assert {round(float(x), 6) for x in new_lr} == {0.8, 1.2}


def test_shuffled_fitness_replaces_agents_regardless_of_fitness():
    fitness = jnp.arange(10.0)
    theta = jnp.arange(10.0)
    hit = np.zeros(10)
    for i in range(100):
        new, _ = pbt.select(jax.random.key(i), theta, jnp.ones(10), fitness, pbt.RULES["paper"],
                            shuffled=True)  # fmt: skip
        hit += np.asarray(new != theta)
    assert (hit[2:] > 0).sum() >= 5  # not only the two worst
    # Negative control: without shuffling only the two worst are ever replaced.
    new, _ = pbt.select(jax.random.key(0), theta, jnp.ones(10), fitness, pbt.RULES["paper"])
    assert set(np.flatnonzero(np.asarray(new != theta))) <= {0, 1}


def _coop(setting: Setting) -> float:
    fn = jax.jit(jax.vmap(lambda k: pbt.simulate(setting, k)))
    _, finals = fn(jax.random.split(jax.random.key(0), setting.seeds))
    return float(np.asarray(finals).mean())


def test_myopic_reinforce_defects_longrun_cooperates_and_pbt_cooperates_unless_swapped():
    base = Setting("x", "reinforce", "test", seeds=3, agents=20, steps=2000, pbt_rules="ours")
    assert _coop(base) < 0.15
    assert _coop(dataclasses.replace(base, longrun=True)) > 0.9  # control +
    pbt_paper = Setting("y", "reinforce", "test", seeds=3, agents=100, steps=1000, pbt_interval=10)
    assert _coop(pbt_paper) > 0.4
    assert _coop(dataclasses.replace(pbt_paper, swap=True)) < 0.1
