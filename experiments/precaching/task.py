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
from jaxtyping import Array, Float, Int, PRNGKeyArray

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


@dataclasses.dataclass(frozen=True)
class LaggedSineTask:
    """Wu, Morris & Levine (2024)'s lagged-sine task, with its size as parameters.

    x_n ~ N(0, 1), z_n ~ Bernoulli(p); inputs [x_n, z_n]; target
    y_n = z_n·Σ_{i=1..n_lags} sin(freq·x_{n−i}) + (1 − z_n)·x_n (terms before the start are 0).
    The published task is ``seq_len=64, n_lags=10, freq=10``. sin(freq·x_s) is of no use to
    position s itself, only to the n_lags positions after it: computing it at s is pre-caching.
    """

    seq_len: int = 64
    n_lags: int = 10
    freq: float = 10.0
    p: float = 0.3

    def __post_init__(self) -> None:
        if not 1 <= self.n_lags < self.seq_len:
            raise ValueError(
                f"LaggedSineTask.n_lags must be in [1, {self.seq_len}), got {self.n_lags}"
            )
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"LaggedSineTask.p must be in [0, 1], got {self.p}")

    def sample(self, key: PRNGKeyArray, batch_size: int) -> Batch:
        """inputs [B, T, 2] = (x, z), targets [B, T, 1]."""
        k_x, k_z = jax.random.split(key)
        x = jax.random.normal(k_x, (batch_size, self.seq_len))
        z = jax.random.bernoulli(k_z, self.p, (batch_size, self.seq_len)).astype(x.dtype)
        lagged = lagged_sines(x, self.freq, self.n_lags)[..., 1:]  # i = 1..n_lags
        y = z * jnp.sum(lagged, axis=-1) + (1.0 - z) * x
        return Batch(jnp.stack([x, z], axis=-1), y[..., None])


def lagged_sines(x: Float[Array, "B T"], freq: float, max_lag: int) -> Float[Array, "B T I"]:
    """sin(freq·x_{n−i}) for i = 0..max_lag at every position n (0 before the start)."""
    s = jnp.sin(freq * x)
    padded = jnp.pad(s, ((0, 0), (max_lag, 0)))
    t = x.shape[1]
    return jnp.stack([padded[:, max_lag - i : max_lag - i + t] for i in range(max_lag + 1)], -1)


@dataclasses.dataclass(frozen=True)
class FactsTask:
    """Synthetic facts (the ROME pattern): each entity has a fixed attribute (a fact stored in
    the weights, one random table per seed); a sequence mentions ``n_mentions`` distinct
    entities, then filler, then a query token Q_j asking the attribute of the j-th mentioned
    entity; the target at the query is the attribute's token (elsewhere ``NO_TARGET``).

    Token layout: 0 = no target; entities 1..E; filler tokens; query tokens Q_1..Q_m; values.
    Looking the attribute up at the entity's token is pre-caching (that position is never asked
    for it); a model can instead look it up at the query, after copying the entity's identity.
    """

    n_entities: int = 48
    n_values: int = 4
    n_mentions: int = 3
    n_filler: int = 6
    n_filler_tokens: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.n_mentions <= self.n_entities:
            raise ValueError(f"FactsTask.n_mentions must be in [1, {self.n_entities}]")
        if self.n_values < 2 or self.n_filler < 0 or self.n_filler_tokens < 1:
            raise ValueError("FactsTask needs n_values >= 2, n_filler >= 0, n_filler_tokens >= 1")

    @property
    def filler_offset(self) -> int:
        return 1 + self.n_entities

    @property
    def query_offset(self) -> int:
        return self.filler_offset + self.n_filler_tokens

    @property
    def value_offset(self) -> int:
        return self.query_offset + self.n_mentions

    @property
    def vocab_size(self) -> int:
        return self.value_offset + self.n_values

    @property
    def seq_len(self) -> int:
        return self.n_mentions + self.n_filler + 1

    def facts(self, key: PRNGKeyArray) -> Int[Array, " E"]:
        """attribute[e] for entity index e in [0, E): every value used equally often."""
        return jax.random.permutation(key, jnp.arange(self.n_entities) % self.n_values)

    def sample(
        self, key: PRNGKeyArray, facts: Int[Array, " E"], batch_size: int
    ) -> tuple[Batch, Int[Array, "B M"], Int[Array, " B"]]:
        """(batch, mentioned entity indices [B, M], queried slot j [B])."""
        k_e, k_f, k_q = jax.random.split(key, 3)
        noise = jax.random.uniform(k_e, (batch_size, self.n_entities))
        entities = jnp.argsort(noise, axis=1)[:, : self.n_mentions]  # distinct per row
        filler = jax.random.randint(k_f, (batch_size, self.n_filler), 0, self.n_filler_tokens)
        slot = jax.random.randint(k_q, (batch_size,), 0, self.n_mentions)
        inputs = jnp.concatenate(
            [entities + 1, filler + self.filler_offset, (slot + self.query_offset)[:, None]], 1
        )
        queried = jnp.take_along_axis(entities, slot[:, None], 1)[:, 0]
        targets = jnp.zeros_like(inputs).at[:, -1].set(facts[queried] + self.value_offset)
        return Batch(inputs, targets), entities, slot
