"""The two synthetic tasks of the saddle experiment (``experiments.precaching.saddle``), each
with its copy variant and the measurements the experiment reads off a trained model.

A ``TaskView`` draws one seed's task (the hidden map or the facts table, fixed by the seed) and
offers: ``sample(key, b)`` of the task itself, ``copy_sample(key, b)`` of its copy variant
(the same inputs, the target is the source token itself: the lagged copy, or the queried
entity's name), ``score`` (held-out loss and accuracy where a target is asked for),
``attention`` (the attention probability the answering position puts on the source position,
per layer, the most attentive head) and ``precache`` (a probe of the future-useful feature at
the source position, and of an unused function of the same token as its control, per site).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from experiments.precaching import facts as facts_page
from experiments.precaching import map as map_page
from experiments.precaching.task import FactsTask
from myojax.analysis.capture import capture
from myojax.loss import Batch
from myojax.model import GPT

TASKS = ("map", "facts")


@dataclasses.dataclass(frozen=True)
class Score:
    loss: float  # held-out cross-entropy where a target is asked for (nats)
    accuracy: float


@dataclasses.dataclass(frozen=True)
class Precache:
    """Probe accuracy per site (embedding, after each layer) at the source position."""

    future: tuple[float, ...]  # the feature only a later position needs
    unused: tuple[float, ...]  # an unused function of the same token (the control)
    chance: float


@dataclasses.dataclass(frozen=True)
class TaskView:
    vocab_size: int
    seq_len: int
    sample: Callable[[jax.Array, int], Batch]
    copy_sample: Callable[[jax.Array, int], Batch]
    answer_positions: Int[np.ndarray, " A"]  # positions scored (those with a real target)
    source: Callable[[Batch], Int[np.ndarray, " B"]]  # per sequence: the source position
    precache: Callable[[GPT, jax.Array], Precache]


def _masked_score(model: GPT, batch: Batch, positions: np.ndarray) -> Score:
    acts = capture(model, batch.inputs, batch.targets)
    correct = jnp.argmax(acts.logits, -1) == batch.targets
    return Score(float(jnp.mean(acts.losses[:, positions])), float(jnp.mean(correct[:, positions])))


def score(view: TaskView, model: GPT, key: jax.Array, n: int) -> Score:
    return _masked_score(model, view.sample(key, n), view.answer_positions)


def attention(view: TaskView, model: GPT, key: jax.Array, n: int) -> tuple[float, ...]:
    """Per layer: the mean (over sequences and answering positions) attention probability on
    the source position, of the head that puts the most there."""
    batch = view.sample(key, n)
    probs = np.asarray(capture(model, batch.inputs, batch.targets).attn_probs)  # [B L H T S]
    rows, t = np.arange(len(probs)), view.answer_positions
    src = view.source(batch)  # [B] or [B, A]
    src = np.broadcast_to(src.reshape(len(rows), -1), (len(rows), len(t)))
    picked = probs[rows[:, None], :, :, t[None, :], src]  # [B, A, L, H]
    return tuple(float(x) for x in picked.mean(axis=(0, 1)).max(axis=-1))


# ----------------------------------------------------------------------------------------------
# The lagged map


def map_view(settings: map_page.Settings, seed: int) -> TaskView:
    """``map_page``'s task for ``seed``: the same hidden map f (and unused g) its page draws."""
    task = settings.task
    k_table, k_unused = jax.random.split(jax.random.key(seed), 5)[:2]
    f = map_page.random_map(k_table, task.n_symbols, settings.n_classes)
    g = map_page.random_map(k_unused, task.n_symbols, settings.n_classes)
    identity = jnp.arange(task.n_symbols)
    lag = settings.lag
    positions = np.arange(lag, settings.seq_len)

    def precache(model: GPT, key: jax.Array) -> Precache:
        batch = task.sample(key, f, settings.probe_sequences)
        inputs = np.asarray(batch.inputs)
        labels = {"future": np.asarray(f)[inputs - 1], "unused": np.asarray(g)[inputs - 1]}
        acc = map_page.probe_layers(model, batch, labels, lag)
        chance = map_page.chance_accuracy(labels["future"][:, lag:].ravel())
        return Precache(tuple(acc["future"]), tuple(acc["unused"]), chance)

    return TaskView(
        vocab_size=task.vocab_size,
        seq_len=task.seq_len,
        sample=lambda k, b: task.sample(k, f, b),
        copy_sample=lambda k, b: task.sample(k, identity, b),
        answer_positions=positions,
        source=lambda batch: np.broadcast_to(
            positions - lag, (batch.inputs.shape[0], len(positions))
        ),
        precache=precache,
    )


# ----------------------------------------------------------------------------------------------
# Synthetic facts


def _copy_targets(batch: Batch, entities: Int[Array, "B M"], slot: Int[Array, " B"]) -> Batch:
    """The facts batch asking the queried entity's own token instead of its attribute."""
    named = jnp.take_along_axis(entities, slot[:, None], 1)[:, 0] + 1
    return Batch(batch.inputs, jnp.zeros_like(batch.targets).at[:, -1].set(named))


def facts_view(settings: facts_page.FactsSettings, seed: int) -> TaskView:
    """``facts_page``'s task for ``seed``: the same facts table its page draws."""
    task: FactsTask = settings.task
    table = task.facts(jax.random.split(jax.random.key(seed), 4)[0])
    last = np.array([task.seq_len - 1])

    def copy_sample(key: jax.Array, b: int) -> Batch:
        batch, entities, slot = task.sample(key, table, b)
        return _copy_targets(batch, entities, slot)

    def precache(model: GPT, key: jax.Array) -> Precache:
        probes = facts_page.probe(model, settings, table, key)
        return Precache(tuple(probes["entity"]), tuple(probes["entity_control"]), 1 / task.n_values)

    return TaskView(
        vocab_size=task.vocab_size,
        seq_len=task.seq_len,
        sample=lambda k, b: task.sample(k, table, b)[0],
        copy_sample=copy_sample,
        answer_positions=last,
        # the queried slot j is the query token's offset from the first query token
        source=lambda batch: np.asarray(batch.inputs[:, -1] - task.query_offset),
        precache=precache,
    )


def precache_margin(p: Precache) -> float:
    """How much more of the future feature than of the unused control the source position
    holds, at the site where the difference is largest. Under myopic training nothing at the
    source is shaped by the later position, so both are arbitrary functions of the token and
    the margin is near 0; a standard model that pre-caches shows a clear positive margin."""
    return float(np.max(np.asarray(p.future) - np.asarray(p.unused)))
