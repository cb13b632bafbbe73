"""Training every seed of one cell at once, and the fed condition's second pass.

``train_seeds`` trains one fresh model per seed, vmapped over the seeds and scanned over the
steps (one compile per gradient mode and objective), each from its seed's initial weights on
its seed's pool in its seed's batch order (``data.SeedData``).

The *fed* condition makes a model's own outputs part of its training signal during training:
a second pass replaces a random ``fed_fraction`` of the input positions (never the first)
with the embedding of the model's own predicted distribution for that byte, p_(t−1) · W_emb,
and the training loss is the teacher-forced loss plus the loss of that second pass. With the
``blind`` objective p is stop-gradient: nothing rewards the first pass for what its outputs
do to the second (consequence-blind, like ``fed_stopped`` in the toys). With ``aware`` the
gradient flows through p: the first pass is also trained for the effect of its outputs on
its own later inputs. The myopic gradient mode stops gradients through attention to past
positions; it does not touch this path, which runs through the model's output and input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from experiments.self_training.config import GridConfig
from experiments.self_training.data import FED_MASK, INIT, seed_key
from myojax.loss import Batch, token_losses
from myojax.model import GPT, run_blocks
from myojax.mup import lr_multipliers
from myojax.train.optim import make_optimizer
from myojax.train.step import TrainState, init_state, train_step


def fed_mask(key: PRNGKeyArray, shape: tuple[int, int], fraction: float) -> Bool[Array, "B T"]:
    """Which input positions get the model's own prediction: Bernoulli(``fraction``) per
    position, never position 0 (no prediction precedes it)."""
    mask = jax.random.bernoulli(key, fraction, shape)
    return mask.at[:, 0].set(False)


def fed_logits(
    model: GPT, tokens: Int[Array, " T"], mask: Bool[Array, " T"], live: bool
) -> tuple[Float[Array, "T V"], Float[Array, "T V"]]:
    """Teacher-forced logits and the second pass's logits, whose input at every masked
    position t is the model's predicted distribution for byte t (from position t − 1)
    embedded as p · W_emb; ``live``: gradients flow through p."""
    logits = model(tokens)
    p = jax.nn.softmax(logits, axis=-1)
    p = p if live else jax.lax.stop_gradient(p)
    true = model.wte[tokens]
    soft = jnp.concatenate([true[:1], p[:-1] @ model.wte], axis=0)
    x = jnp.where(mask[:, None], soft, true) + model.wpe[: tokens.shape[0]]
    x = x * model.config.input_multiplier
    h, _ = run_blocks(model.blocks, x, model.config, None, collect=False)
    return logits, model.unembed(h)


def fed_losses(
    model: GPT, windows: Int[Array, "B W"], mask: Bool[Array, "B T"], live: bool
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Mean teacher-forced and mean fed (second-pass) next-byte losses of a batch."""
    batch = Batch.from_windows(windows)
    tf, fed = jax.vmap(lambda x, m: fed_logits(model, x, m, live))(batch.inputs, mask)
    per = jax.vmap(token_losses)
    return per(tf, batch.targets).mean(), per(fed, batch.targets).mean()


def _optimizer(cfg: GridConfig, mode: str) -> optax.GradientTransformation:
    model_cfg = cfg.model_config(mode)
    abstract = eqx.filter_eval_shape(GPT, model_cfg, key=jax.random.key(0))
    return make_optimizer(cfg.train_config(), abstract, lr_multipliers(model_cfg))


def _fed_step(state: TrainState, windows, mask, optimizer, live: bool):
    """One optimizer step on the fed objective (teacher-forced loss + fed loss)."""

    def total(model: GPT) -> Float[Array, ""]:
        tf, fed = fed_losses(model, windows, mask, live)
        return tf + fed

    loss, grads = eqx.filter_value_and_grad(total)(state.model)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.model)
    model = eqx.apply_updates(state.model, updates)
    return TrainState(state.step + 1, model, opt_state), loss


@functools.cache
def _compiled(cfg: GridConfig, mode: str, objective: str | None) -> Callable:
    """The jitted, seed-vmapped training of one gradient mode and objective, built once."""
    optimizer = _optimizer(cfg, mode)
    model_cfg = cfg.model_config(mode)

    def one(pool, order, init_key, mask_key):
        state = init_state(model_cfg, optimizer, init_key)

        def step(state, xs):
            t, idx = xs
            windows = pool[idx].astype(jnp.int32)
            if objective is None:
                state, metrics = train_step(state, Batch.from_windows(windows), optimizer)
                return state, metrics["loss"]
            mask_key_t = jax.random.fold_in(mask_key, t)
            mask = fed_mask(mask_key_t, (idx.shape[0], cfg.seq_len), cfg.fed_fraction)
            return _fed_step(state, windows, mask, optimizer, objective == "aware")

        state, losses = jax.lax.scan(step, state, (jnp.arange(len(order)), order))
        return state.model, losses

    return jax.jit(jax.vmap(one))


def train_seeds(
    cfg: GridConfig,
    mode: str,
    pools: Sequence[np.ndarray],
    orders: Sequence[np.ndarray],
    seeds: Sequence[int],
    objective: str | None = None,
) -> tuple[GPT, np.ndarray]:
    """One model per seed (stacked along a leading seed axis) and its training losses
    ``[seeds, steps]``; ``objective``: None (teacher forcing) or a fed objective."""
    keys = [(seed_key(s, INIT), seed_key(s, FED_MASK)) for s in seeds]
    init_keys, mask_keys = (jnp.stack(k) for k in zip(*keys, strict=True))
    models, losses = _compiled(cfg, mode, objective)(
        jnp.asarray(np.stack(pools)), jnp.asarray(np.stack(orders)), init_keys, mask_keys
    )
    return models, np.asarray(losses)


def seed_model(models: GPT, i: int) -> GPT:
    """Seed ``i``'s model out of a stack."""
    return jax.tree.map(lambda a: a[i] if eqx.is_array(a) else a, models)


def fed_eval(
    model: GPT, windows: Sequence[np.ndarray], key: PRNGKeyArray, fraction: float
) -> float:
    """The fed (second-pass) loss on held-out windows, with masks fixed by ``key`` (the same
    for every model evaluated)."""
    losses = []
    for i, w in enumerate(windows):
        w = jnp.asarray(w, jnp.int32)
        mask = fed_mask(jax.random.fold_in(key, i), (w.shape[0], w.shape[1] - 1), fraction)
        losses.append(_fed_eval_batch(model, w, mask))
    return float(np.mean(jax.device_get(losses)))


@eqx.filter_jit
def _fed_eval_batch(model: GPT, windows: Array, mask: Array) -> Array:
    return fed_losses(model, windows, mask, live=False)[1]

