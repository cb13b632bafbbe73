import jax
import jax.numpy as jnp
import numpy as np

from myojax.config import ModelConfig
from myojax.loss import Batch, loss_and_grad, mean_loss, per_position_loss
from myojax.model import GPT


def test_per_position_loss_is_cross_entropy_of_each_row():
    cfg = ModelConfig(vocab_size=11, seq_len=5, d_model=8, n_layers=1, n_heads=2)
    model = GPT(cfg, key=jax.random.key(0))
    tokens = jnp.array([1, 2, 3, 4, 5])
    targets = jnp.array([2, 3, 4, 5, 6])
    logits = np.asarray(model(tokens), np.float64)
    expected = [
        np.log(np.sum(np.exp(row - row.max()))) + row.max() - row[y]
        for row, y in zip(logits, np.asarray(targets), strict=True)
    ]
    np.testing.assert_allclose(per_position_loss(model, tokens, targets), expected, rtol=1e-5)


def test_batch_from_windows_shifts_targets():
    b = Batch.from_windows(jnp.arange(12).reshape(2, 6))
    np.testing.assert_array_equal(b.inputs, [[0, 1, 2, 3, 4], [6, 7, 8, 9, 10]])
    np.testing.assert_array_equal(b.targets, [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11]])


def test_loss_and_grad_is_the_mean_and_its_gradient():
    cfg = ModelConfig(
        vocab_size=13, seq_len=6, d_model=8, n_layers=2, n_heads=2, gradient_mode="myopic"
    )
    model = GPT(cfg, key=jax.random.key(0))
    batch = Batch.from_windows(jax.random.randint(jax.random.key(1), (3, 7), 0, 13))
    loss, grads = loss_and_grad(model, batch)
    rows = [
        per_position_loss(model, x, y) for x, y in zip(batch.inputs, batch.targets, strict=True)
    ]
    np.testing.assert_allclose(loss, np.mean(rows), rtol=1e-6)
    np.testing.assert_allclose(loss, mean_loss(model, batch), rtol=1e-7)
    assert np.log(13) - 0.5 < float(loss) < np.log(13) + 0.5  # near-uniform at init
    assert type(grads) is GPT and float(jnp.abs(grads.wte).sum()) > 0


def test_regression_losses_match_their_formulas():
    from myojax.loss import huber, squared_error

    out = jnp.array([[0.0, 3.0], [1.0, -0.5]])
    tgt = jnp.array([[0.5, 0.0], [1.0, 0.0]])
    # residuals r = (-0.5, 3), (0, -0.5); Huber(δ=1): ½r² inside, |r| − ½ outside
    np.testing.assert_allclose(squared_error(out, tgt), [(0.25 + 9) / 2, 0.25 / 2])
    np.testing.assert_allclose(huber(1.0)(out, tgt), [(0.125 + 2.5) / 2, 0.125 / 2])
    np.testing.assert_allclose(huber(2.0)(out, tgt), [(0.125 + 4.0) / 2, 0.125 / 2])
    assert huber(1.0) is huber(1.0)  # one function per delta: stable jit caches
