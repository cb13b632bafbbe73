"""The unit-test environment: rewards, transitions and swapping on hand-computed cases."""

import jax.numpy as jnp
import numpy as np

from experiments.hiads import environment as env


def test_rewards_and_transitions_of_a_hand_computed_episode():
    # One agent, s_0 = 0 (defected before), actions C C D D C.
    s = jnp.array([0])
    states, rewards = [], []
    for a in [1, 1, 0, 0, 1]:
        a = jnp.array([a])
        states.append(int(s[0]))
        rewards.append(float(env.reward(s, a)[0]))
        s = env.next_state(a, swap=False)
    assert states == [0, 1, 1, 0, 0]
    # r = s − 0.5·a − 0.5: cooperating costs 0.5 now and pays 1 at the next step.
    assert rewards == [-1.0, 0.0, 0.5, -0.5, -1.0]


def test_reward_table_and_beta():
    s, a = jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1])
    np.testing.assert_array_equal(env.reward(s, a), [-0.5, -1.0, 0.5, 0.0])
    # β is the immediate price of cooperating: at β = 0.5 it pays immediately too.
    np.testing.assert_array_equal(env.reward(s, a, beta=0.5), [-0.5, 0.0, 0.5, 1.0])


def test_swapping_never_shows_an_agent_its_own_action():
    a = jnp.array([1, 0, 0, 0])
    np.testing.assert_array_equal(env.next_state(a, swap=True), [0, 1, 0, 0])
    np.testing.assert_array_equal(env.next_state(a, swap=False), [1, 0, 0, 0])
    for i in range(4):
        one_hot = jnp.zeros(4, jnp.int32).at[i].set(1)
        assert int(env.next_state(one_hot, swap=True)[i]) == 0
