"""The benchmark's PyTorch peer computes the same model and optimizer step as myojax."""

import equinox as eqx
import jax.numpy as jnp
import optax
import pytest

from myojax.loss import Batch, mean_loss
from myojax.model import count_params
from tests.peers import model_and_windows

torch = pytest.importorskip("torch")
tp = pytest.importorskip("experiments.bench.torch_peer")

LR, WD, CLIP = 3e-2, 0.1, 1.0


def _torch_loss(model, windows) -> float:
    with torch.no_grad():
        return float(tp.mean_loss(tp.from_myojax(model), *tp.batch_tensors(windows)))


def test_peer_has_the_same_parameter_count_and_loss():
    model, windows = model_and_windows()
    assert tp.count_params(tp.from_myojax(model)) == count_params(model)
    jax_loss = float(mean_loss(model, Batch.from_windows(jnp.asarray(windows))))
    assert _torch_loss(model, windows) == pytest.approx(jax_loss, rel=2e-6)


def test_a_peer_that_attends_to_the_future_is_detected(monkeypatch):
    """Negative control: the comparison above fails for a peer without the causal mask."""
    model, windows = model_and_windows()
    jax_loss = float(mean_loss(model, Batch.from_windows(jnp.asarray(windows))))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        tp.F, "scaled_dot_product_attention", lambda *a, is_causal, **k: sdpa(*a, **k)
    )
    assert _torch_loss(model, windows) != pytest.approx(jax_loss, rel=2e-6)


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_one_optimizer_step_matches_clipped_adamw():
    """After one clipped AdamW step from the same weights, both models have the same loss.

    (Compared through the loss: the key bias has zero true gradient — softmax ignores a shift of
    every score — so Adam turns float noise there into ±lr steps that differ between frameworks
    but, for the same reason, do not change the loss.)"""
    model, windows = model_and_windows()
    peer = tp.from_myojax(model)
    tp.make_train_step(peer, lr=LR, weight_decay=WD, grad_clip=CLIP)(*tp.batch_tensors(windows))
    opt = optax.chain(optax.clip_by_global_norm(CLIP), optax.adamw(LR, weight_decay=WD))
    batch = Batch.from_windows(jnp.asarray(windows))
    grads = eqx.filter_grad(mean_loss)(model, batch)
    updates, _ = opt.update(grads, opt.init(eqx.filter(model, eqx.is_array)), model)
    stepped = eqx.apply_updates(model, updates)
    with torch.no_grad():
        torch_loss = float(tp.mean_loss(peer, *tp.batch_tensors(windows)))
    assert torch_loss == pytest.approx(float(mean_loss(stepped, batch)), rel=1e-5)
    assert torch_loss < float(mean_loss(model, batch))  # the step did something
