"""myojax.evaluation: held-out windows cut one way, per-token losses batch by batch (locally and
on a mesh), the trainer's held-out loss, and the three reductions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from myojax import evaluation
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.data import corpus, pipeline
from myojax.loss import batch_losses, per_position_loss, to_batch
from myojax.model import GPT

CONFIG = ModelConfig(vocab_size=256, seq_len=16, d_model=16, n_layers=2, n_heads=2)


@pytest.fixture(scope="module")
def model() -> GPT:
    return GPT(CONFIG, key=jax.random.key(1))


def _windows(seed: int = 7, batch_size: int = 6, num_batches: int = 2) -> list[np.ndarray]:
    return evaluation.heldout_windows(
        (corpus.load().validation,),
        seq_len=CONFIG.seq_len,
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
    )


def test_heldout_windows_are_the_pipelines_fixed_by_the_seed():
    windows = _windows()
    assert [w.shape for w in windows] == [(6, 17), (6, 17)] and windows[0].dtype == np.int32
    ds = pipeline.window_dataset(
        (corpus.load().validation,), seq_len=16, batch_size=6, num_batches=2, seed=7, rows=range(6)
    )
    for got, want in zip(windows, [ds[0], ds[1]], strict=True):
        np.testing.assert_array_equal(got, want)
    assert all(np.array_equal(a, b) for a, b in zip(windows, _windows(), strict=True))
    assert not np.array_equal(windows[0], _windows(seed=8)[0])  # control: the seed matters
    rows = evaluation.heldout_windows(
        (corpus.load().validation,), seq_len=16, batch_size=6, num_batches=2, seed=7, rows=[4, 1]
    )
    np.testing.assert_array_equal(rows[1], windows[1][[4, 1]])  # this process's rows only


def test_token_losses_are_the_models_per_position_losses_in_any_batching(model):
    windows = _windows()
    losses = evaluation.token_losses(model, windows)
    assert losses.shape == (12, 16) and losses.dtype == np.float32
    direct = np.concatenate(
        [
            np.asarray(jax.vmap(per_position_loss, in_axes=(None, 0, 0))(model, *to_batch(w)))
            for w in windows
        ]
    )
    np.testing.assert_allclose(losses, direct, rtol=1e-6)
    regrouped = evaluation.in_batches(np.concatenate(windows), 5)
    assert [len(w) for w in regrouped] == [5, 5, 2]
    np.testing.assert_allclose(evaluation.token_losses(model, regrouped), losses, rtol=1e-6)
    with pytest.raises(ValueError, match="no windows"):
        evaluation.token_losses(model, [])


def test_trainer_evaluation_is_the_mean_of_batch_means(model):
    windows = _windows()
    result = evaluation.evaluate(model, windows)
    assert len(result["val_loss_per_position"]) == 16
    per_batch = [jnp.mean(batch_losses(model, to_batch(w)), axis=0) for w in windows]
    direct = np.mean([np.asarray(x) for x in per_batch], axis=0)
    np.testing.assert_allclose(result["val_loss_per_position"], direct, rtol=1e-5)
    assert math.isclose(result["val_loss"], float(direct.mean()), rel_tol=1e-5)
    tokens = evaluation.token_losses(model, windows)
    assert math.isclose(result["val_loss"], float(tokens.mean()), rel_tol=1e-5)


def test_loss_summary_reduces_three_ways():
    losses = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], np.float32)
    s = evaluation.LossSummary.of(losses)
    assert s.mean == 3.0 and s.per_sequence == [2.0, 4.0] and s.per_position == [2.0, 3.0, 4.0]
    shifted = evaluation.LossSummary.of(losses + np.array([[0.0], [1.0]], np.float32))
    assert shifted.per_sequence == [2.0, 5.0] and shifted.per_position != s.per_position


def test_mesh_evaluation_matches_the_local_one(model):
    mesh = shd.make_mesh(shd.MeshConfig.parse("data=-1"))
    sharded = jax.device_put(model, shd.replicated(mesh))
    shardings = jax.tree.map(lambda a: a.sharding, sharded)
    windows = _windows()
    on_mesh = evaluation.token_losses(
        sharded,
        windows,
        losses_fn=evaluation.compile_losses("token", mesh, shardings),
        batch_fn=evaluation.mesh_batch_fn(mesh),
    )
    np.testing.assert_allclose(on_mesh, evaluation.token_losses(model, windows), rtol=1e-6)
    with pytest.raises(ValueError, match="needs the model's shardings"):
        evaluation.compile_losses("token", mesh)
