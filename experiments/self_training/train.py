"""Training every seed of one condition at once, sampling, and the own-consequence condition.

``train_plain`` trains one fresh model per seed on its pool (vmapped over seeds, scanned over
steps; one compile per gradient mode). ``train_fed`` is the own-consequence condition: every
``feed_every`` steps the *sampler* writes ``feed_windows`` fresh windows into a buffer, and
every batch is ``batch_size - feed_windows`` pool windows plus that buffer. With ``own`` the
sampler is the model being trained, so its own samples, drawn during its training, are part
of its training data; without, it is a frozen, separately trained model (the control). Both
use the same keys, pool and order, so the difference isolates "own outputs feed own training".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from experiments.self_training.config import GridConfig
from experiments.self_training.data import FEED, INIT, SeedData, seed_key
from myojax.loss import Batch, token_losses
from myojax.model import GPT
from myojax.mup import lr_multipliers
from myojax.train.optim import make_optimizer
from myojax.train.step import init_state, train_step


def sample(
    model: GPT, prompts: Int[Array, " n"], key: PRNGKeyArray, width: int
) -> Int[Array, "n W"]:
    """``width``-byte windows continuing each one-byte prompt at temperature 1 (a full forward
    pass per byte: the models are tiny and this stays inside jit and vmap). Row r's bytes
    depend only on its prompt, ``key`` and r, so the first n rows of a larger draw are the
    draw of n rows (nested pools share their samples)."""
    T = model.config.seq_len
    rows = jnp.zeros((prompts.shape[0], T), jnp.int32).at[:, 0].set(prompts)
    row_keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(prompts.shape[0]))

    def step(rows: Array, i: Array) -> tuple[Array, Array]:
        logits = jax.vmap(model)(rows)[:, i - 1]
        keys = jax.vmap(lambda k: jax.random.fold_in(k, i))(row_keys)
        byte = jax.vmap(jax.random.categorical)(keys, logits).astype(jnp.int32)
        return rows.at[:, jnp.minimum(i, T - 1)].set(byte), byte

    _, bytes_ = jax.lax.scan(step, rows, jnp.arange(1, width))
    return jnp.concatenate([prompts[:, None].astype(jnp.int32), bytes_.T], axis=1)


def heldout_loss(model: GPT, windows: Int[Array, "N W"]) -> Float[Array, ""]:
    """Mean next-byte loss on held-out windows."""
    batch = Batch.from_windows(windows)
    return jax.vmap(lambda x, y: token_losses(model(x), y).mean())(*batch).mean()


def _optimizer(cfg: GridConfig, mode: str) -> optax.GradientTransformation:
    model_cfg = cfg.model_config(mode)
    abstract = eqx.filter_eval_shape(GPT, model_cfg, key=jax.random.key(0))
    return make_optimizer(cfg.train_config(), abstract, lr_multipliers(model_cfg))


@functools.cache
def _plain(cfg: GridConfig, mode: str) -> Callable:
    optimizer = _optimizer(cfg, mode)

    def one(pool, order, init_key):
        state = init_state(cfg.model_config(mode), optimizer, init_key)

        def step(state, idx):
            batch = Batch.from_windows(pool[idx].astype(jnp.int32))
            return train_step(state, batch, optimizer)[0], None

        return jax.lax.scan(step, state, order)[0].model

    return jax.jit(jax.vmap(one))


@functools.cache
def _fed(cfg: GridConfig, mode: str) -> Callable:
    optimizer = _optimizer(cfg, mode)
    n_pool, width = cfg.batch_size - cfg.feed_windows, cfg.seq_len + 1

    def one(pool, order, init_key, feed_key, prompts, frozen, own):
        state = init_state(cfg.model_config(mode), optimizer, init_key)
        buffer = jnp.zeros((cfg.feed_windows, width), jnp.int32)

        def step(carry, xs):
            state, buffer = carry
            t, idx = xs
            sampler = jax.tree.map(
                lambda a, b: jnp.where(own, a, b) if eqx.is_array(a) else a, state.model, frozen
            )
            buffer = jax.lax.cond(
                t % cfg.feed_every == 0,
                lambda: sample(sampler, prompts, jax.random.fold_in(feed_key, t), width),
                lambda: buffer,
            )
            windows = jnp.concatenate([pool[idx[:n_pool]].astype(jnp.int32), buffer])
            state, _ = train_step(state, Batch.from_windows(windows), optimizer)
            return (state, buffer), buffer

        steps = jnp.arange(order.shape[0])
        (state, _), fed = jax.lax.scan(step, (state, buffer), (steps, order))
        return state.model, fed

    return jax.jit(jax.vmap(one))


def _stack(arrays: Sequence[np.ndarray]) -> Array:
    return jnp.asarray(np.stack(arrays))


def train_plain(
    cfg: GridConfig, mode: str, data: Sequence[SeedData], pools: Sequence[np.ndarray]
) -> GPT:
    """One model per seed (stacked along a leading seed axis), each from its seed's initial
    weights on its pool in its seed's batch order."""
    keys = jnp.stack([seed_key(d.seed, INIT) for d in data])
    return _plain(cfg, mode)(_stack(pools), _stack([d.order for d in data]), keys)


def train_fed(
    cfg: GridConfig, mode: str, data: Sequence[SeedData], frozen: GPT, own: bool
) -> tuple[GPT, Int[Array, "seeds S F W"]]:
    """The own-consequence condition on each seed's human pool (``own``) or its control fed
    by ``frozen`` (stacked like the result); also returns the fed windows of every step."""
    keys = jnp.stack([seed_key(d.seed, INIT) for d in data])
    feed_keys = jnp.stack([seed_key(d.seed, FEED) for d in data])
    prompts = _stack([d.prompts(cfg.feed_windows) for d in data]).astype(jnp.int32)
    owns = jnp.full((len(data),), own)
    pools, orders = _stack([d.human for d in data]), _stack([d.order for d in data])
    return _fed(cfg, mode)(pools, orders, keys, feed_keys, prompts, frozen, owns)


@functools.cache
def _sample_all(width: int) -> Callable:
    return jax.jit(jax.vmap(lambda m, p, k: sample(m, p, k, width)))


def sample_seeds(models: GPT, prompts: np.ndarray, keys: Array, width: int) -> np.ndarray:
    """Every seed's model continues its seed's prompts with its key."""
    return np.asarray(_sample_all(width)(models, jnp.asarray(prompts, jnp.int32), keys), np.uint8)


@jax.jit
def _losses(models: GPT, windows: Array) -> Array:
    return jax.vmap(heldout_loss, in_axes=(0, None))(models, windows)


def heldout_losses(models: GPT, windows: np.ndarray) -> np.ndarray:
    """Each seed's model's held-out loss on the same windows."""
    return np.asarray(_losses(models, jnp.asarray(windows, jnp.int32)), float)
