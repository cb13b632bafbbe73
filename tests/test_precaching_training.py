"""Training for the pre-caching experiments: a gradient-mode switch carries the parameters and
optimizer state over, and a curriculum starts from an earlier stage's model."""

from __future__ import annotations

import jax
import numpy as np

from experiments.precaching.task import PrecacheTask
from experiments.precaching.training import Schedule, train, with_config
from myojax.config import ModelConfig
from myojax.loss import cross_entropy
from myojax.model import GPT

TASK = PrecacheTask(vocab_size=12, seq_len=8, lag=2)
CFG = ModelConfig(vocab_size=12, seq_len=8, d_model=16, n_layers=1, n_heads=2)
SCHEDULE = Schedule(steps=6, batch_size=8, lr=1e-2, warmup_steps=1)


def _sample(key, b):
    return TASK.sample(key, jax.numpy.arange(TASK.n_symbols), b)


def test_with_config_changes_only_the_static_config():
    model = GPT(CFG, key=jax.random.key(0))
    myopic = with_config({"m": model, "x": 1}, CFG.replace(gradient_mode="myopic"), GPT)
    assert myopic["m"].config.gradient_mode == "myopic" and myopic["x"] == 1
    assert model.config.gradient_mode == "standard"  # the original is untouched
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(myopic["m"]), strict=True):
        assert a is b


def test_switch_and_curriculum_train_from_where_they_should():
    key = jax.random.key(1)
    plain, losses = train(CFG, GPT, cross_entropy, _sample, SCHEDULE, key)
    switched, s_losses = train(
        CFG, GPT, cross_entropy, _sample, SCHEDULE, key, switch=(3, "myopic")
    )
    assert switched.config.gradient_mode == "myopic" and len(s_losses) == 6
    assert s_losses[:4] == losses[:4]  # the switch acts from step 3's update on
    assert s_losses[4:] != losses[4:]
    resumed, r_losses = train(CFG.replace(gradient_mode="myopic"), GPT, cross_entropy, _sample,
                              SCHEDULE, jax.random.key(2), init=plain)  # fmt: skip
    _, f_losses = train(CFG.replace(gradient_mode="myopic"), GPT, cross_entropy, _sample,
                            SCHEDULE, jax.random.key(2))  # fmt: skip
    assert resumed.config.gradient_mode == "myopic"
    assert r_losses[0] != f_losses[0]  # started from the first stage's weights
    np.testing.assert_allclose(r_losses[0], losses[-1], rtol=0.5)  # ... near where it ended
