"""What a seed fixes for every model it trains: the human pool, which of its slots samples
replace first, and the order of the batches.

Pairing is the point: every model of a seed (every generation, mix, gradient mode and fed
objective) starts from the same weights (``init_key``) and reads its pool in the same order
(``order``); its pool is the seed's human pool with the first ``n`` slots of
``replace_order`` holding the previous generation's samples. A mix-0.5 pool is therefore the
mix-1 pool with half of its sampled windows put back to human text, and a mix-0 pool is
generation 0's pool: a model trained on it *is* generation 0 (the same weights, data and order).
"""

from __future__ import annotations

import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool, Int, UInt8

from myojax.data.pipeline import window_dataset

_SINGLE = grain.sharding.ShardOptions(0, 1)  # one process reads every row
PROMPT_LEN = 1  # human bytes before the sampled continuation of each sampled window

# What each stream of a seed's key is used for (fold_in indices).
INIT, ORDER, HUMAN, REPLACE, SAMPLE, FED_MASK = range(6)


def seed_key(seed: int, stream: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), stream)


def key_seed(key: jax.Array) -> int:
    """A Python integer seed from a key (for grain and numpy)."""
    return int(jax.random.bits(key, dtype=jnp.uint32))


def human_windows(tokens: np.ndarray, n: int, seq_len: int, seed: int) -> UInt8[np.ndarray, "n W"]:
    """``n`` random windows of ``seq_len + 1`` bytes (the trainer's grain pipeline)."""
    if n == 0:
        return np.zeros((0, seq_len + 1), np.uint8)
    ds = window_dataset(
        [tokens], seq_len=seq_len, batch_size=n, num_batches=1, seed=seed, shard=_SINGLE
    )
    return np.asarray(ds[0], np.uint8)


def batch_order(pool_size: int, steps: int, batch_size: int, seed: int) -> Int[np.ndarray, "S B"]:
    """The pool slots of every batch: ``ceil(steps * batch_size / pool_size)`` epochs shuffled
    together with grain, cut into ``steps`` batches."""
    epochs = -(-steps * batch_size // pool_size)
    ds = grain.MapDataset.range(pool_size).repeat(epochs).shuffle(seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True)
    return np.stack([np.asarray(ds[i]) for i in range(steps)]).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class SeedData:
    """One seed's fixed data (see the module docstring)."""

    seed: int
    human: UInt8[np.ndarray, "P W"]
    replace_order: Int[np.ndarray, " P"]
    order: Int[np.ndarray, "S B"]

    @classmethod
    def build(
        cls, seed: int, train_tokens: np.ndarray, pool: int, seq_len: int, steps: int, batch: int
    ) -> SeedData:
        human = human_windows(train_tokens, pool, seq_len, key_seed(seed_key(seed, HUMAN)))
        rng = np.random.default_rng(key_seed(seed_key(seed, REPLACE)))
        order = batch_order(pool, steps, batch, key_seed(seed_key(seed, ORDER)))
        return cls(seed, human, rng.permutation(pool).astype(np.int32), order)

    def pool(self, sampled: UInt8[np.ndarray, "n W"]) -> tuple[np.ndarray, Bool[np.ndarray, " P"]]:
        """The human pool with its first ``len(sampled)`` replace slots holding ``sampled``;
        returns (pool, is_sampled)."""
        pool = self.human.copy()
        slots = self.replace_order[: len(sampled)]
        pool[slots] = sampled
        is_sampled = np.zeros(len(pool), bool)
        is_sampled[slots] = True
        return pool, is_sampled

    def prompts(self, n: int) -> UInt8[np.ndarray, "n 1"]:
        """The first byte of the human window in each of the first ``n`` replace slots: sample
        row i (which goes to slot ``replace_order[i]``) starts from it."""
        return self.human[self.replace_order[:n], :PROMPT_LEN]

    def seen_sampled(self, is_sampled: Bool[np.ndarray, " P"]) -> int:
        """How many sampled windows the optimizer reads over the whole training."""
        return int(is_sampled[self.order].sum())
