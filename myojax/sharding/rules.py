"""Partition rules and sharded state: pure functions of a leaf's path and shape, turned into
``NamedSharding``s on a concrete mesh; sharded init and the jitted, donated train step.

Everything is explicit: every ``jax.jit`` gets ``in_shardings``, ``out_shardings`` and donation.
State is created sharded (``jit`` with ``out_shardings``), so no host ever materializes a full
copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

from myojax.sharding.mesh import FSDP, replicated

# Leaves with fewer elements stay replicated: gathering them costs more latency than it saves.
DEFAULT_MIN_SHARD_SIZE: int = 2**16
# Pytree attribute names whose leaves carry a leading stacked-layer axis (scanned over).
STACKED_NAMES: tuple[str, ...] = ("blocks",)

State = TypeVar("State")
Metrics = TypeVar("Metrics")


def fsdp_partition_spec(
    shape: Sequence[int],
    fsdp_size: int,
    *,
    stacked: bool = False,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
) -> PartitionSpec:
    """Shard the largest dimension divisible by ``fsdp_size`` over ``fsdp``; else replicate.

    A ``stacked`` leaf's leading axis indexes scanned layers and is never sharded: ``lax.scan``
    slices one layer per iteration, and slicing a sharded axis would make every device fetch
    (or XLA gather) the whole stack each step. Sharding a feature axis instead lets each
    iteration all-gather exactly one layer.
    """
    if fsdp_size == 1 or math.prod(shape) < min_shard_size:
        return PartitionSpec()
    first = 1 if stacked else 0
    candidates = [i for i in range(first, len(shape)) if shape[i] % fsdp_size == 0]
    if not candidates:
        return PartitionSpec()
    axis = max(candidates, key=lambda i: (shape[i], -i))  # largest; first on ties
    return PartitionSpec(*([None] * axis + [FSDP]))


def is_stacked_path(path: Sequence[Any], stacked_names: Sequence[str] = STACKED_NAMES) -> bool:
    """Whether a leaf lives under a stacked-layer field (e.g. ``GPT.blocks``, or Adam's
    ``mu.blocks``, whose tree mirrors the parameters)."""
    for key in path:
        name = getattr(key, "name", getattr(key, "key", None))
        if name in stacked_names:
            return True
    return False


def _check_array_leaf(path: Sequence[Any], leaf: object) -> tuple[int, ...]:
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        raise TypeError(
            f"state leaf at {jax.tree_util.keystr(tuple(path))} is {type(leaf).__name__}, not an "
            f"array; sharded state must be a pytree of arrays (mark Python values as static "
            f"fields, e.g. eqx.field(static=True))"
        )
    return tuple(leaf.shape)


def partition_specs(
    tree: PyTree,
    fsdp_size: int,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> PyTree[PartitionSpec]:
    """A ``PartitionSpec`` for every array leaf of ``tree`` (arrays or ``ShapeDtypeStruct``s).

    Works for any state: parameters, Adam moments (same tree under ``mu`` / ``nu``), step
    counters (scalars: replicated).
    """

    def spec(path: Sequence[Any], leaf: object) -> PartitionSpec:
        shape = _check_array_leaf(path, leaf)
        return fsdp_partition_spec(
            shape,
            fsdp_size,
            stacked=is_stacked_path(path, stacked_names),
            min_shard_size=min_shard_size,
        )

    return jax.tree_util.tree_map_with_path(spec, tree)


def state_shardings(
    tree: PyTree,
    mesh: Mesh,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> PyTree[NamedSharding]:
    """``NamedSharding``s on ``mesh`` for every array leaf of ``tree`` (FSDP over ``fsdp``,
    replicated over ``data``)."""
    specs = partition_specs(
        tree, mesh.shape[FSDP], min_shard_size=min_shard_size, stacked_names=stacked_names
    )
    return jax.tree.map(
        lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
    )


def abstract_state(tree: PyTree, shardings: PyTree[NamedSharding]) -> PyTree[jax.ShapeDtypeStruct]:
    """``ShapeDtypeStruct``s carrying target shardings: the restore target for orbax, which
    then reads each device's shard directly onto the (possibly different) mesh."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


def create_sharded_state(
    init_fn: Callable[[jax.Array], State],
    key: jax.Array,
    mesh: Mesh,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> tuple[State, PyTree[NamedSharding]]:
    """Run ``init_fn(key)`` already sharded and return ``(state, shardings)``.

    Shapes come from ``jax.eval_shape`` (no allocation); the init is then jitted with
    ``out_shardings`` so every device computes only its own shard. With JAX's partitionable
    threefry (the default) the values equal those of an unsharded init.
    """
    shapes = jax.eval_shape(init_fn, key)
    shardings = state_shardings(
        shapes, mesh, min_shard_size=min_shard_size, stacked_names=stacked_names
    )
    state = jax.jit(init_fn, in_shardings=replicated(mesh), out_shardings=shardings)(key)
    return state, shardings


def shard_train_step(
    step_fn: Callable[[State, Any], tuple[State, Metrics]],
    mesh: Mesh,
    state_shardings: PyTree[NamedSharding],
    batch_sharding: PyTree[NamedSharding] | NamedSharding,
    *,
    donate: bool = True,
) -> Callable[[State, Any], tuple[State, Metrics]]:
    """Jit a pure ``step(state, batch) -> (state, metrics)`` for the mesh.

    State keeps its shardings across steps (``out_shardings`` = ``in_shardings``), so there is
    no resharding between steps; metrics come back replicated (cheap scalars, readable on
    every host). ``donate`` lets XLA update the state in place: the caller must not reuse the
    state it passed in.
    """
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch_sharding),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,) if donate else (),
    )
