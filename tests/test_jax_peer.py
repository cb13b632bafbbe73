"""The benchmark's plain-JAX peer computes the same model and optimizer step as myojax."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

from experiments.bench import jax_peer
from myojax.loss import Batch, mean_loss
from myojax.model import GPT, count_params
from tests.peers import CFG, model_and_windows

LR, WD, CLIP = 3e-2, 0.1, 1.0


def _model_and_data():
    model, windows = model_and_windows()
    return model, jnp.asarray(windows)


def test_peer_has_the_same_parameter_count_and_loss():
    model, windows = _model_and_data()
    params = jax_peer.from_myojax(model)
    assert jax_peer.count_params(params) == count_params(model)
    expected = float(mean_loss(model, Batch.from_windows(windows)))
    assert float(jax_peer.mean_loss(CFG, params, windows)) == pytest.approx(expected, rel=1e-6)


def test_a_peer_that_attends_to_the_future_is_detected(monkeypatch):
    """Negative control: the comparison above fails for a peer without the causal mask."""
    model, windows = _model_and_data()
    expected = float(mean_loss(model, Batch.from_windows(windows)))
    monkeypatch.setattr(jax_peer.jnp, "tril", lambda a: jnp.ones_like(a))  # jnp's, for a moment
    got = float(jax_peer.mean_loss(CFG, jax_peer.from_myojax(model), windows))
    assert got != pytest.approx(expected, rel=1e-6)


def test_one_optimizer_step_matches_clipped_adamw():
    model, windows = _model_and_data()
    step = jax_peer.make_train_step(
        CFG, jax_peer.from_myojax(model), lr=LR, weight_decay=WD, grad_clip=CLIP
    )
    first = float(step(windows))
    after = float(step(windows))  # the loss after one step, from the second call
    opt = optax.chain(optax.clip_by_global_norm(CLIP), optax.adamw(LR, weight_decay=WD))
    batch = Batch.from_windows(windows)
    grads = eqx.filter_grad(mean_loss)(model, batch)
    updates, _ = opt.update(grads, opt.init(eqx.filter(model, eqx.is_array)), model)
    stepped = eqx.apply_updates(model, updates)
    assert first == pytest.approx(float(mean_loss(model, batch)), rel=1e-6)
    assert after == pytest.approx(float(mean_loss(stepped, batch)), rel=1e-5)
    assert after < first  # the step did something


def test_untied_models_are_refused():
    model = GPT(CFG.replace(tie_embeddings=False), key=jax.random.key(0))
    with pytest.raises(ValueError, match="tied embeddings"):
        jax_peer.from_myojax(model)
