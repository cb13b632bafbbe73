import jax
import numpy as np
import pytest

from myojax.config import ModelConfig
from myojax.loss import per_position_loss
from myojax.model import GPT, cast_model
from myojax.reference import column_loss, full_forward_losses


@pytest.fixture(scope="module")
def setup():
    cfg = ModelConfig(
        vocab_size=20, seq_len=7, d_model=12, n_layers=2, n_heads=3, gradient_mode="myopic"
    )
    tokens = jax.random.randint(jax.random.key(0), (7,), 0, 20)
    targets = jax.random.randint(jax.random.key(1), (7,), 0, 20)
    return GPT(cfg, key=jax.random.key(2)), tokens, targets


def test_full_forward_matches_the_model(setup):
    model, tokens, targets = setup
    with jax.enable_x64(True):
        m = cast_model(model, "float64")
        ref, past = full_forward_losses(m, tokens, targets)
        np.testing.assert_allclose(ref, per_position_loss(m, tokens, targets), rtol=1e-12)
        assert past.h_LxTxD.shape == (2, 7, 12)


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_every_column_reproduces_its_loss(setup, mode):
    model, tokens, targets = setup
    with jax.enable_x64(True):
        m = cast_model(
            GPT(model.config.replace(gradient_mode=mode), key=jax.random.key(2)), "float64"
        )
        losses, past = full_forward_losses(m, tokens, targets)
        zeros = np.zeros((2, 12))
        cols = [column_loss(m, tokens, targets, t, zeros, past) for t in range(7)]
        np.testing.assert_allclose(cols, losses, rtol=1e-12)


def test_column_loss_refuses_standard(setup):
    model, tokens, targets = setup
    std = GPT(model.config.replace(gradient_mode="standard"), key=jax.random.key(2))
    _, past = full_forward_losses(std, tokens, targets)
    with pytest.raises(ValueError, match="myopic"):
        column_loss(std, tokens, targets, 3, np.zeros((2, 12)), past)
