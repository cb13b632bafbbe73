"""Synthetic tasks generated on the fly from explicit PRNG keys.

The pre-caching task: tokens x_s are uniform over the vocabulary and the target at position t is
y_t = f(x_{t-k}) for a fixed random permutation f and lag k (positions t < k predict a reserved
"no target" token 0 from f's range being shifted by one). Predicting y_t needs f(x_{t-k}), which
is of no use to position t-k itself: a standard transformer is rewarded for computing it early at
position t-k and leaving it in the residual stream for t to read ("pre-caching"); a myopic one is
not, and must compute f at position t from the raw token it attends to.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from myojax.loss import Batch

NO_TARGET = 0  # target for positions with nothing k steps back


@dataclasses.dataclass(frozen=True)
class PrecacheTask:
    """Targets y_t = table[x_{t-lag}] + 1 (0 before position lag); inputs in [1, vocab)."""

    vocab_size: int = 64
    seq_len: int = 32
    lag: int = 4

    def __post_init__(self) -> None:
        if self.vocab_size < 3:
            raise ValueError(f"PrecacheTask.vocab_size must be >= 3, got {self.vocab_size}")
        if not 1 <= self.lag < self.seq_len:
            raise ValueError(
                f"PrecacheTask.lag must be in [1, seq_len={self.seq_len}), got {self.lag}"
            )

    @property
    def n_symbols(self) -> int:
        return self.vocab_size - 1  # token 0 is reserved for "no target"

    def table(self, key: PRNGKeyArray) -> Int[Array, " S"]:
        """The hidden map f: a random permutation of the symbols."""
        return jax.random.permutation(key, self.n_symbols)

    def sample(self, key: PRNGKeyArray, table: Int[Array, " S"], batch_size: int) -> Batch:
        symbols = jax.random.randint(key, (batch_size, self.seq_len), 0, self.n_symbols)
        mapped = table[symbols] + 1
        shifted = jnp.pad(mapped, ((0, 0), (self.lag, 0)), constant_values=NO_TARGET)[
            :, : self.seq_len
        ]
        return Batch(inputs=symbols + 1, targets=shifted)

    @staticmethod
    def future_feature(inputs: Int[Array, "... T"], table: Int[Array, " S"]) -> Int[Array, "... T"]:
        """f(x_s): what position s could pre-compute for position s + lag (a class in [0, S))."""
        return table[inputs - 1]
