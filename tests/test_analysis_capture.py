"""Activation capture: the model's own numbers, at no cost to the training forward."""

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from myojax.analysis.capture import capture
from myojax.loss import Batch, batch_losses
from myojax.model import GPT, layer_norm
from tests.test_analysis_sampling import MUP, SP, trained_like


def batch(config, b=3):
    windows = jax.random.randint(jax.random.key(3), (b, config.seq_len + 1), 0, config.vocab_size)
    return Batch.from_windows(windows)


def test_capture_reproduces_the_training_forward():
    config = MUP.replace(gradient_mode="myopic")  # muP multipliers and the myopic trace
    model, data = trained_like(config), batch(config)
    acts = capture(model, data.inputs, data.targets)
    train_logits = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, data.inputs)
    # The same operations; XLA fuses the two compiled programs differently, so agreement is to
    # float32 rounding (observed max |diff| ~1e-6 on logits of magnitude ~3), not bitwise.
    np.testing.assert_allclose(acts.logits, train_logits, atol=1e-5, rtol=1e-6)
    losses = eqx.filter_jit(batch_losses)(model, data)
    np.testing.assert_allclose(acts.losses, losses, atol=1e-5, rtol=1e-6)
    # The stream leaving layer l is the stream entering layer l + 1; the last one is unembedded.
    np.testing.assert_array_equal(acts.resid_in[:, 1:], acts.resid_out[:, :-1])
    unembed = eqx.filter_jit(lambda m, x: jax.vmap(m.unembed)(x))
    np.testing.assert_allclose(unembed(model, acts.resid_out[:, -1]), acts.logits, atol=1e-5)
    b, t, c = data.inputs.shape[0], config.seq_len, config
    assert acts.attn_probs.shape == (b, c.n_layers, c.n_heads, t, t)
    assert acts.resid_in.shape == (b, c.n_layers, t, c.d_model)


@jax.jit
def _attention_output(block, resid_in, probs):
    """The attention branch rebuilt from the captured stream and probabilities."""
    h = layer_norm(resid_in, block.ln1_gain, block.ln1_bias)
    d, heads = h.shape[1], probs.shape[0]
    v = (h @ block.w_qkv + block.b_qkv)[:, 2 * d :].reshape(h.shape[0], heads, -1)
    mixed = jnp.einsum("hts,shd->thd", probs, v).reshape(h.shape[0], d)
    return mixed @ block.w_out + block.b_out


def test_captured_probabilities_are_the_ones_the_model_used():
    model, data = trained_like(MUP), batch(MUP, b=1)
    acts = capture(model, data.inputs, data.targets)
    probs = acts.attn_probs[0]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    assert float(jnp.abs(jnp.triu(probs, k=1)).max()) == 0.0  # causal
    attn_out = eqx.filter_jit(GPT.activations)(model, data.inputs[0])["attn_out"]
    for layer in range(MUP.n_layers):
        block = model.layer(layer)
        rebuilt = _attention_output(block, acts.resid_in[0, layer], probs[layer])
        np.testing.assert_allclose(rebuilt, attn_out[layer], atol=1e-5)
        # Negative control: uniform causal attention does not rebuild the branch.
        uniform = jnp.tril(jnp.ones_like(probs[layer]))
        uniform = uniform / uniform.sum(-1, keepdims=True)
        wrong = _attention_output(block, acts.resid_in[0, layer], uniform)
        assert not np.allclose(wrong, attn_out[layer], atol=1e-3)


def _dot_count(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == "dot_general"
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            n += _dot_count(sub)
    return n


def test_training_forward_computes_nothing_for_capture():
    model, tokens = trained_like(SP), batch(SP).inputs[0]
    train = _dot_count(jax.make_jaxpr(model)(tokens).jaxpr)
    collect = _dot_count(jax.make_jaxpr(model.activations)(tokens).jaxpr)
    assert collect == train + 1  # capture's one extra matmul (the collected scores) only
