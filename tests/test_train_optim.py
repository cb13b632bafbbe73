"""myojax.train.optim: parameter labels, the weight-decay rule, per-label lr multipliers,
schedule, clipping."""

from __future__ import annotations

import collections
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from myojax.config import ModelConfig
from myojax.model import GPT
from myojax.mup import LABELS, param_labels
from myojax.train import TrainConfig
from myojax.train.optim import learning_rate_schedule, make_optimizer

CFG = ModelConfig(seq_len=8, d_model=16, n_layers=2, n_heads=2, tie_embeddings=False)
TRAIN = TrainConfig(
    steps=100, lr=1e-2, warmup_steps=10, min_lr_ratio=0.1, weight_decay=0.5, grad_clip=1.0
)


def named(tree) -> dict[str, object]:
    return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def model() -> GPT:
    return GPT(CFG, key=jax.random.key(0))


def test_every_leaf_gets_the_documented_label(model):
    labels = named(param_labels(model))
    assert labels.keys() == named(model).keys()
    expected = {
        ".wte": "embedding",
        ".wpe": "embedding",
        ".lm_head": "readout",
        ".lnf_gain": "vector",
        ".lnf_bias": "vector",
    }
    for name in ("w_qkv", "w_out", "w_fc", "w_proj"):
        expected[f".blocks.{name}"] = "hidden"
    for name in (
        "b_qkv",
        "b_out",
        "b_fc",
        "b_proj",
        "ln1_gain",
        "ln1_bias",
        "ln2_gain",
        "ln2_bias",
    ):
        expected[f".blocks.{name}"] = "vector"
    assert labels == expected
    tied = named(param_labels(GPT(CFG.replace(tie_embeddings=True), key=jax.random.key(0))))
    assert ".lm_head" not in tied and collections.Counter(tied.values())["readout"] == 0


def one_update(model, grads, train=TRAIN, multipliers=None, steps=12):
    """Apply ``steps`` updates with the given constant gradients; returns the new params."""
    opt = make_optimizer(train, model, multipliers)
    state = opt.init(model)
    params = model
    for _ in range(steps):
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_weight_decay_only_on_hidden_and_readout(model):
    zero = jax.tree.map(jnp.zeros_like, model)  # Adam's step is then 0: only decay moves params
    after = named(one_update(model, zero))
    labels, before = named(param_labels(model)), named(model)
    for k, label in labels.items():
        changed = not np.array_equal(after[k], before[k])
        assert changed == (label in ("hidden", "readout")), (k, label)
        if changed:  # decoupled decay: p * prod(1 - lr_t * wd)
            lrs = [float(learning_rate_schedule(TRAIN)(i)) for i in range(12)]
            factor = np.prod([1 - lr * TRAIN.weight_decay for lr in lrs])
            np.testing.assert_allclose(after[k], before[k] * factor, rtol=1e-5)


def test_lr_multipliers_scale_each_label(model):
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), model)
    no_decay = TRAIN.replace(weight_decay=0.0)
    base = named(one_update(model, grads, no_decay))
    mults = {"embedding": 0.5, "hidden": 2.0, "readout": 3.0, "vector": 1.0}
    scaled = named(one_update(model, grads, no_decay, mults))
    before, labels = named(model), named(param_labels(model))
    for k, label in labels.items():
        np.testing.assert_allclose(
            scaled[k] - before[k], mults[label] * (base[k] - before[k]), rtol=1e-4, atol=1e-9
        )
    with pytest.raises(ValueError, match=r"unknown lr multiplier label\(s\) \['hiden'\]"):
        make_optimizer(TRAIN, model, {"hiden": 2.0})
    with pytest.raises(ValueError, match="must be positive"):
        make_optimizer(TRAIN, model, {"hidden": 0.0})


def test_schedule_warmup_then_cosine():
    s = learning_rate_schedule(TRAIN)
    assert float(s(0)) == 0.0
    np.testing.assert_allclose(float(s(5)), 0.5 * TRAIN.lr, rtol=1e-6)
    np.testing.assert_allclose(float(s(10)), TRAIN.lr, rtol=1e-6)
    np.testing.assert_allclose(float(s(100)), TRAIN.lr * TRAIN.min_lr_ratio, rtol=1e-6)
    values = [float(s(i)) for i in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_global_norm_clipping(model):
    rng = np.random.default_rng(0)
    grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype) * 1e3, model)
    norm = float(optax.tree.norm(grads))
    clip = 1e-6  # so small that Adam's eps makes the clipped update visibly different
    cfg = TRAIN.replace(grad_clip=clip, weight_decay=0.0, warmup_steps=0)
    clipped = named(one_update(model, grads, cfg, steps=1))
    prescaled = named(
        one_update(
            model,
            jax.tree.map(lambda g: g * clip / norm, grads),
            cfg.replace(grad_clip=0.0),
            steps=1,
        )
    )
    unclipped = named(one_update(model, grads, cfg.replace(grad_clip=0.0), steps=1))
    for k in clipped:
        np.testing.assert_allclose(clipped[k], prescaled[k], rtol=1e-5, atol=1e-8)
    assert any(not np.allclose(clipped[k], unclipped[k]) for k in clipped)


def test_labels_cover_exactly_the_declared_set(model):
    assert set(jax.tree.leaves(param_labels(model))) == set(LABELS)
