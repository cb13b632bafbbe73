"""Setting one run up: its mesh and data, the layout of its state, its data streams, the state
it starts from (fresh, or the latest good checkpoint), and its compiled step and evaluation.

Nothing here writes to the run directory; ``myojax.train.loop`` does, once the run has started.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import grain
import jax
import numpy as np
import optax
from jaxtyping import Array, Int, PRNGKeyArray

from myojax import checkpoint as ckpt
from myojax import evaluation
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.data import pipeline
from myojax.loss import Batch
from myojax.model import GPT
from myojax.mup import lr_multipliers
from myojax.train.config import TrainConfig
from myojax.train.optim import learning_rate_schedule, make_optimizer
from myojax.train.step import TrainState, compile_train_step, init_state


def data_seeds(key: PRNGKeyArray) -> tuple[int, int]:
    """grain seeds for the training and the held-out stream, derived from a JAX key."""
    k_train, k_eval = jax.random.split(key)
    return tuple(int(jax.random.bits(k, dtype=jax.numpy.uint32)) for k in (k_train, k_eval))


def run_mesh(train_cfg: TrainConfig) -> shd.Mesh:
    """The run's mesh, over which the batch and its microbatches must split evenly."""
    mesh = shd.make_mesh(shd.MeshConfig.parse(train_cfg.mesh))
    shd.check_batch_size(train_cfg.batch_size, mesh)
    train_cfg.microbatch_size(mesh.size)  # the microbatches must split each device's rows
    return mesh


def run_data(train_cfg: TrainConfig, model_cfg: ModelConfig) -> pipeline.TokenData:
    """The run's tokens, checked against the model (vocabulary, window length)."""
    data = pipeline.load_data(train_cfg.data)
    if data.vocab_size > model_cfg.vocab_size:
        raise ValueError(
            f"data {train_cfg.data!r} has vocab_size {data.vocab_size} but "
            f"ModelConfig.vocab_size is {model_cfg.vocab_size}"
        )
    pipeline.check_windows_fit(data, model_cfg.seq_len + 1)
    return data


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a run fixes before any state exists: its keys, optimizer and schedule, the layout of
    its state on the mesh, and its data streams (this process's rows of every batch)."""

    init_key: PRNGKeyArray
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    init_fn: Callable[[PRNGKeyArray], TrainState]
    shardings: TrainState
    restore_target: TrainState
    train_ds: grain.MapDataset
    eval_windows: list[Int[np.ndarray, "b T1"]]


def plan_layout(
    train_cfg: TrainConfig, model_cfg: ModelConfig, mesh: shd.Mesh, data: pipeline.TokenData
) -> Layout:
    init_key, data_key = jax.random.split(jax.random.key(train_cfg.seed))
    train_seed, eval_seed = data_seeds(data_key)
    abstract_model = eqx.filter_eval_shape(GPT, model_cfg, key=init_key)
    optimizer = make_optimizer(train_cfg, abstract_model, lr_multipliers(model_cfg))
    init_fn = functools.partial(init_state, model_cfg, optimizer)
    shardings = shd.state_shardings(
        jax.eval_shape(init_fn, init_key), mesh, min_shard_size=train_cfg.min_shard_size
    )
    # Only this process's rows of every global batch, in the order its devices hold them.
    rows = shd.process_batch_indices(train_cfg.batch_size, shd.batch_sharding(mesh))
    window: dict[str, Any] = dict(
        seq_len=model_cfg.seq_len, batch_size=train_cfg.batch_size, rows=rows
    )
    return Layout(
        init_key=init_key,
        optimizer=optimizer,
        schedule=learning_rate_schedule(train_cfg),
        init_fn=init_fn,
        shardings=shardings,
        restore_target=shd.abstract_state(jax.eval_shape(init_fn, init_key), shardings),
        train_ds=pipeline.window_dataset(
            data.train,
            num_batches=train_cfg.steps,
            seed=train_seed,
            disjoint=train_cfg.disjoint_windows,
            **window,
        ),
        eval_windows=evaluation.heldout_windows(
            data.val, num_batches=train_cfg.eval_batches, seed=eval_seed, **window
        ),
    )


@dataclasses.dataclass(frozen=True)
class Start:
    """The state a run starts from: ``step`` 0 and fresh weights, or a restored checkpoint
    (``resumed``) with the training iterator at its position."""

    state: TrainState
    step: int
    resumed: bool
    train_iter: grain.DatasetIterator
    unreadable: bool  # checkpoints existed but none could be read: a fresh start


def restore_or_init(layout: Layout, mesh: shd.Mesh, manager: Any, min_shard_size: int) -> Start:
    """The latest good checkpoint, or step 0 when there is none."""
    had_checkpoints = bool(manager.all_steps())
    train_iter = pipeline.batch_iterator(layout.train_ds)
    resumed = ckpt.restore_for_resume(
        manager,
        abstract_model=layout.restore_target.model,
        abstract_opt_state=layout.restore_target.opt_state,
        data_iterator=train_iter,
    )
    if resumed is not None:
        start, model, opt_state = resumed
        step = jax.make_array_from_callback(
            (), layout.shardings.step, lambda _: np.asarray(start, np.int32)
        )
        return Start(TrainState(step, model, opt_state), start, True, train_iter, False)
    # A failed restore may have moved the iterator: never pair fresh weights with it.
    train_iter = pipeline.batch_iterator(layout.train_ds)
    if mesh.size == 1:
        # Op-by-op init, bitwise the values of single-device runs before meshes; a jitted
        # init fuses the scaling and may round differently (<= 1 ulp).
        state = jax.device_put(layout.init_fn(layout.init_key), layout.shardings)
    else:
        state, _ = shd.create_sharded_state(
            layout.init_fn, layout.init_key, mesh, min_shard_size=min_shard_size
        )
    return Start(state, 0, False, train_iter, had_checkpoints)


def compile_step_fn(
    train_cfg: TrainConfig, mesh: shd.Mesh, layout: Layout
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """The compiled train step, and whether its updated parameters are all finite."""
    train_step_fn = compile_train_step(
        layout.optimizer, mesh, layout.shardings, train_cfg.microbatches
    )
    finite_fn = jax.jit(ckpt.all_finite, out_shardings=shd.replicated(mesh))

    def step_fn(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Array]]:
        state, metrics = train_step_fn(state, batch)
        # Queued before the next step donates the state: are the updated parameters finite?
        return state, {**metrics, "params_finite": finite_fn(state.model)}

    return step_fn


def compile_eval_fn(
    mesh: shd.Mesh, layout: Layout, batch_fn: Callable[[np.ndarray], Batch]
) -> Callable[[Any, list[np.ndarray]], dict[str, Any]]:
    """The run's own held-out loss on the mesh (``myojax.evaluation.evaluate``)."""
    return functools.partial(
        evaluation.evaluate,
        losses_fn=evaluation.compile_losses("position", mesh, layout.shardings.model),
        batch_fn=batch_fn,
    )
