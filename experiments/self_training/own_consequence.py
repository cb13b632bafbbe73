"""The own-consequence condition: a model's own samples, drawn during its training, enter its
own training pool.

Every ``every`` steps the first ``fed_slots`` windows of the pool are replaced by continuations
sampled (temperature 1) from a *source* model, each prompted by that slot's original first
human byte; the batches keep reading the pool in the seed's fixed order, so those samples
enter the following batches. With ``source=None`` the source is the model being trained (its
outputs feed its own training: only here can a consequence-aware objective differ from a
consequence-blind one); the control passes a frozen, separately trained model instead, so
that the contrast isolates "own outputs feed own training" from "sampled text in the pool".
Everything else (initial weights, batch order, sampling keys) comes from the seed, so the own
and control runs of a seed are paired.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from myojax.config import ModelConfig
from myojax.loss import Batch
from myojax.model import GPT
from myojax.mup import lr_multipliers
from myojax.train.config import TrainConfig
from myojax.train.optim import make_optimizer
from myojax.train.step import init_state, train_step


def sample_windows(
    model: GPT, prompts: Int[Array, " n"], key: PRNGKeyArray, seq_len: int
) -> Int[Array, "n W"]:
    """``seq_len`` bytes sampled after each one-byte prompt (full recompute per byte: the
    models are tiny and this keeps sampling a pure function inside the training scan)."""

    def one(prompt: Int[Array, ""], key: PRNGKeyArray) -> Int[Array, " W"]:
        buf = jnp.zeros(seq_len + 1, jnp.int32).at[0].set(prompt)

        def body(t, buf):
            logits = model(buf[:-1])[t - 1]
            return buf.at[t].set(jax.random.categorical(jax.random.fold_in(key, t), logits))

        return jax.lax.fori_loop(1, seq_len + 1, body, buf)

    return jax.vmap(one)(prompts, jax.random.split(key, prompts.shape[0]))


def train_with_feedback(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    pool: Int[Array, "P W"],
    order: Int[Array, "S B"],
    keys: tuple[PRNGKeyArray, PRNGKeyArray],
    every: int,
    fed_slots: int,
    source: GPT | None = None,
) -> tuple[GPT, Array, Int[Array, "P W"]]:
    """Train from ``keys[0]``'s initial weights on ``pool`` in ``order``, refreshing the
    first ``fed_slots`` pool windows every ``every`` steps (at step 0 too) with samples from
    ``source`` (``None``: the model being trained) drawn with ``keys[1]`` folded with the
    step; ``fed_slots=0`` trains on the pool as it is. Returns the final model, the training
    losses and the final pool."""
    if every < 1 or not 0 <= fed_slots <= pool.shape[0]:
        raise ValueError(f"need every >= 1 and 0 <= fed_slots <= {pool.shape[0]}")
    pool = jnp.asarray(pool, jnp.int32)
    order = jnp.asarray(np.asarray(order), jnp.int32)
    return _train(model_cfg, train_cfg, every, fed_slots, pool, order, keys, source)


@eqx.filter_jit
def _train(model_cfg, train_cfg, every, fed_slots, pool, order, keys, source):
    abstract = eqx.filter_eval_shape(GPT, model_cfg, key=jax.random.key(0))
    optimizer = make_optimizer(train_cfg, abstract, lr_multipliers(model_cfg))
    init_key, sample_key = keys
    prompts = pool[:fed_slots, 0]

    def step(carry, xs):
        state, pool = carry
        t, idx = xs
        src = state.model if source is None else source

        def refresh(pool):
            key = jax.random.fold_in(sample_key, t)
            return pool.at[:fed_slots].set(sample_windows(src, prompts, key, pool.shape[1] - 1))

        if fed_slots:
            pool = jax.lax.cond(t % every == 0, refresh, lambda p: p, pool)
        state, metrics = train_step(state, Batch.from_windows(pool[idx]), optimizer)
        return (state, pool), metrics["loss"]

    state = init_state(model_cfg, optimizer, init_key)
    xs = (jnp.arange(order.shape[0]), order)
    (state, pool), losses = jax.lax.scan(step, (state, pool), xs)
    return state.model, losses, pool
