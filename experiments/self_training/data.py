"""What a seed fixes for every model it trains: its keys, human pool, replacement order and
batch order (common random numbers).

Every model of a seed (every generation, mix, gradient mode and feeding condition) starts
from the same weights (``seed_key(seed, INIT)``) and reads its pool in the same order
(``order``); a generation's pool is the seed's human pool with the first ``n`` slots of
``replace_order`` holding the previous generation's samples, so a mix-0.5 pool is the mix-1
pool with half its sampled windows put back to human text.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Int, UInt8

# What each stream of a seed's key is used for (fold_in indices).
INIT, ORDER, HUMAN, REPLACE, SAMPLE, FEED = range(6)


def seed_key(seed: int, stream: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), stream)


def key_seed(key: jax.Array) -> int:
    """A Python integer seed from a key (for numpy)."""
    return int(jax.random.bits(key, dtype=jnp.uint32))


def windows(tokens: np.ndarray, n: int, width: int, seed: int) -> UInt8[np.ndarray, "n W"]:
    """``n`` random windows of ``width`` bytes of ``tokens``."""
    starts = np.random.default_rng(seed).integers(0, len(tokens) - width, n)
    return np.stack([tokens[s : s + width] for s in starts]).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class SeedData:
    """One seed's fixed data (see the module docstring)."""

    seed: int
    human: UInt8[np.ndarray, "P W"]
    replace_order: Int[np.ndarray, " P"]
    order: Int[np.ndarray, "S B"]

    @classmethod
    def build(
        cls, seed: int, tokens: np.ndarray, pool: int, width: int, steps: int, batch: int
    ) -> SeedData:
        human = windows(tokens, pool, width, key_seed(seed_key(seed, HUMAN)))
        replace = np.random.default_rng(key_seed(seed_key(seed, REPLACE))).permutation(pool)
        rng = np.random.default_rng(key_seed(seed_key(seed, ORDER)))
        epochs = -(-steps * batch // pool)
        flat = np.concatenate([rng.permutation(pool) for _ in range(epochs)])
        order = flat[: steps * batch].reshape(steps, batch)
        return cls(seed, human, replace.astype(np.int32), order.astype(np.int32))

    def pool(self, sampled: UInt8[np.ndarray, "n W"]) -> UInt8[np.ndarray, "P W"]:
        """The human pool with its first ``len(sampled)`` replace slots holding ``sampled``."""
        pool = self.human.copy()
        pool[self.replace_order[: len(sampled)]] = sampled
        return pool

    def prompts(self, n: int) -> UInt8[np.ndarray, " n"]:
        """The first byte of the human window in each of the first ``n`` replace slots: sample
        row i (which goes to slot ``replace_order[i]``) starts from it."""
        return self.human[self.replace_order[:n], 0]
