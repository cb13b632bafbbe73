"""Vmapped training: pairing across modes, and the own-consequence condition's feeding."""

import dataclasses

import equinox as eqx
import jax
import numpy as np
import pytest

from experiments.self_training import train
from experiments.self_training.config import GridConfig
from experiments.self_training.data import FEED, INIT, SeedData, seed_key
from myojax.model import GPT

CFG = GridConfig(
    pilot_seeds=2, min_seeds=2, max_seeds=2, d_model=16, n_heads=2, seq_len=8, steps=4,
    batch_size=4, pool_windows=16, feed_every=2, feed_windows=2, eval_windows=8,
)  # fmt: skip
FROZEN_LR = 1e-30  # a learning rate too small to move any float32 weight: the model stays put


def _data(seeds=(0, 1)):
    tokens = np.random.default_rng(0).integers(0, 256, 4000).astype(np.uint8)
    return [
        SeedData.build(s, tokens, CFG.pool_windows, 9, CFG.steps, CFG.batch_size) for s in seeds
    ]


def _leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _equal(a, b, atol=0.0):
    pairs = zip(_leaves(a), _leaves(b), strict=True)
    return all(np.allclose(x, y, rtol=0, atol=atol) for x, y in pairs)


def _seed(models, i):
    return jax.tree.map(lambda a: a[i] if eqx.is_array(a) else a, models)


@pytest.mark.slow  # compiles vmapped training: > 20 s on the shared 2 cores
def test_every_condition_of_a_seed_starts_from_the_same_weights():
    cfg = dataclasses.replace(CFG, lr=FROZEN_LR)
    data = _data()
    pools = [d.human for d in data]
    std, myo = (train.train_plain(cfg, m, data, pools) for m in ("standard", "myopic"))
    fed, _ = train.train_fed(cfg, "standard", data, std, own=True)
    init = GPT(cfg.model_config("standard"), key=seed_key(0, INIT))
    for models in (std, myo, fed):  # vmapped init rounds differently: compare to 1e-7
        assert _equal(_seed(models, 0), init, atol=1e-7)
    assert not _equal(
        _seed(std, 1), init, atol=1e-7
    )  # negative control: another seed, other weights


@pytest.mark.slow  # compiles vmapped training: > 20 s on the shared 2 cores
def test_training_is_a_pure_function_of_the_seed_and_pool():
    data = _data()
    pools = [d.human for d in data]
    a = train.train_plain(CFG, "standard", data, pools)
    b = train.train_plain(CFG, "standard", data, pools)
    assert _equal(a, b)
    other = [d.pool(np.zeros((8, 9), np.uint8)) for d in data]
    assert not _equal(a, train.train_plain(CFG, "standard", data, other))  # the pool matters


def _expected(model, d, t):
    prompts = d.prompts(CFG.feed_windows).astype(np.int32)
    key = jax.random.fold_in(seed_key(d.seed, FEED), t)
    return np.asarray(train.sample(model, prompts, key, CFG.seq_len + 1))


@pytest.mark.slow  # compiles vmapped training: > 20 s on the shared 2 cores
@pytest.mark.parametrize("mode", ["standard", "myopic"])
def test_own_condition_feeds_the_models_own_samples_and_control_the_frozen_ones(mode):
    data = _data()
    frozen = train.train_plain(CFG, mode, data, [d.human for d in data])
    init = GPT(CFG.model_config(mode), key=seed_key(0, INIT))
    _, own = train.train_fed(CFG, mode, data, frozen, own=True)
    _, ctrl = train.train_fed(CFG, mode, data, frozen, own=False)
    own, ctrl = np.asarray(own)[0], np.asarray(ctrl)[0]  # seed 0: [steps, feed, W]
    d = data[0]
    # step 0: own samples come from its (initial) self, the control's from the frozen model
    assert (own[0] == _expected(init, d, 0)).all()
    assert (ctrl[0] == _expected(_seed(frozen, 0), d, 0)).all()
    assert not (own[0] == ctrl[0]).all()  # negative control
    # the buffer is refreshed every feed_every steps and held in between
    assert (own[1] == own[0]).all() and (ctrl[1] == ctrl[0]).all()
    assert (ctrl[2] == _expected(_seed(frozen, 0), d, 2)).all()
    # at step 2 the own model has trained: its samples are no longer the initial model's
    assert not (own[2] == _expected(init, d, 2)).all()


@pytest.mark.slow  # compiles vmapped training: > 20 s on the shared 2 cores
def test_own_samples_track_the_current_model():
    # with a learning rate too small to move the weights, the current model is the initial
    # one, so step 2's own samples are exactly the initial model's (cf. the test above)
    cfg = dataclasses.replace(CFG, lr=FROZEN_LR)
    data = _data()
    frozen = train.train_plain(CFG, "standard", data, [d.human for d in data])
    _, own = train.train_fed(cfg, "standard", data, frozen, own=True)
    init = GPT(cfg.model_config("standard"), key=seed_key(0, INIT))
    assert (np.asarray(own)[0, 2] == _expected(init, data[0], 2)).all()


@pytest.mark.slow  # compiles vmapped training: > 20 s on the shared 2 cores
def test_the_fed_windows_enter_training():
    data = _data()
    pools = [d.human for d in data]
    frozen_a = train.train_plain(CFG, "standard", data, pools)
    zeros = [d.pool(np.zeros((16, 9), np.uint8)) for d in data]
    frozen_b = train.train_plain(CFG, "standard", data, zeros)
    a, _ = train.train_fed(CFG, "standard", data, frozen_a, own=False)
    b, _ = train.train_fed(CFG, "standard", data, frozen_b, own=False)
    assert not _equal(a, b)  # another sampler, another trained model


def test_nested_draws_share_their_rows():
    model = GPT(CFG.model_config("standard"), key=jax.random.key(0))
    prompts = np.arange(6, dtype=np.int32)
    big = np.asarray(train.sample(model, prompts, jax.random.key(1), 9))
    small = np.asarray(train.sample(model, prompts[:3], jax.random.key(1), 9))
    assert big.shape == (6, 9) and (big[:3] == small).all() and (big[:, 0] == prompts).all()
    other = np.asarray(train.sample(model, prompts[:3], jax.random.key(2), 9))
    assert not (other == small).all()  # negative control: another key, other samples
