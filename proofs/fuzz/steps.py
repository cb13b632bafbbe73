"""What every module of fuzz step kinds shares: the feature width, the ``Kind`` of a step, and
iota grids over [T, S] positions compared by a relation.

A kind's ``apply(params, u, rest, a, w)`` computes a [T, D] stream from the streams it reads
(``u`` first, ``rest`` the others) and the constants ``a [T, D]``, ``w [D, D]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from hypothesis import strategies as st
from jaxtyping import Array

D = 4  # features (even: reshape splits it in two)

Apply = Callable[[tuple, Array, list[Array], Array, Array], Array]


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of step: the strategy of its static parameters, how many streams it reads, and
    how it computes."""

    params: st.SearchStrategy
    n_args: int
    apply: Apply


COMPARE = {
    "ge": jnp.greater_equal,
    "gt": jnp.greater,
    "le": jnp.less_equal,
    "lt": jnp.less,
    "eq": jnp.equal,
    "ne": jnp.not_equal,
}


def iota_grid(shape: tuple[Any, Any], dtype: Any = jnp.int32) -> tuple[Array, Array]:
    """The row and column indices of a [T, S] grid."""
    return jax.lax.broadcasted_iota(dtype, shape, 0), jax.lax.broadcasted_iota(dtype, shape, 1)
