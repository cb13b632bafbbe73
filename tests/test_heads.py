"""Composable heads: the token Transformer is GPT bitwise; a real-valued-input, linear-readout,
Huber-loss model trains, groups its parameters, and passes the verifier and the prover."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from myojax import verify
from myojax.attention import GRADIENT_SPECS, GradientSpec
from myojax.config import ModelConfig
from myojax.heads import LinearInput, LinearReadout, TiedLogits, Transformer, from_gpt
from myojax.loss import Batch, huber, squared_error
from myojax.model import GPT, cast_model
from myojax.mup import param_labels
from myojax.train import TrainConfig, init_state, make_optimizer
from myojax.train.step import compile_train_step

N_IN, N_OUT, T = 2, 1, 6


def continuous_config(mode: str = "standard", **kw: object) -> ModelConfig:
    base = dict(vocab_size=None, seq_len=T, d_model=8, n_layers=2, n_heads=2, activation="relu")
    return ModelConfig(gradient_mode=mode, **(base | kw))


def build(config: ModelConfig, *, key: jax.Array) -> Transformer:
    k_in, k_out, k_blocks = jax.random.split(key, 3)
    embed = LinearInput.init(config, N_IN, key=k_in)
    readout = LinearReadout.init(config, N_OUT, key=k_out)
    return Transformer.init(config, embed, readout, key=k_blocks)


def problem(key: jax.Array, batch: int = 2) -> Batch:
    k_x, k_y = jax.random.split(key)
    return Batch(jax.random.normal(k_x, (batch, T, N_IN)), jax.random.normal(k_y, (batch, T, 1)))


def test_token_transformer_is_gpt_bitwise():
    cfg = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=2, n_heads=2)
    gpt = GPT(cfg, key=jax.random.key(0))
    tokens = jnp.arange(8) % 32
    assert jnp.array_equal(gpt(tokens), from_gpt(gpt)(tokens))
    g_gpt = eqx.filter_grad(lambda m: jnp.sum(m(tokens)[:, 0]))(gpt)
    g_tr = eqx.filter_grad(lambda m: jnp.sum(m(tokens)[:, 0]))(from_gpt(gpt))
    assert jnp.array_equal(g_gpt.wte, g_tr.embed.wte)
    assert jnp.array_equal(g_gpt.blocks.w_qkv, g_tr.blocks.w_qkv)


def test_activation_field_changes_the_function_and_default_is_gpt2():
    cfg = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=1, n_heads=2)
    tokens = jnp.arange(8)
    outs = {
        a: GPT(cfg.replace(activation=a), key=jax.random.key(0))(tokens)
        for a in ("gelu_tanh", "gelu", "relu")
    }
    assert not jnp.array_equal(outs["gelu_tanh"], outs["relu"])
    assert not jnp.array_equal(outs["gelu_tanh"], outs["gelu"])
    assert ModelConfig().activation == "gelu_tanh"
    with pytest.raises(ValueError, match="activation must be one of"):
        ModelConfig(activation="swish")


def test_vocab_size_none_refused_by_token_pieces_by_name():
    cfg = continuous_config()
    with pytest.raises(ValueError, match="GPT needs ModelConfig.vocab_size"):
        GPT(cfg, key=jax.random.key(0))
    with pytest.raises(ValueError, match="TiedLogits|TokenEmbedding needs"):
        from myojax.heads import TokenEmbedding

        TokenEmbedding.init(cfg, key=jax.random.key(0))
    model = build(cfg, key=jax.random.key(0))
    with pytest.raises(TypeError, match="TiedLogits needs a TokenEmbedding"):
        TiedLogits()(jnp.zeros((T, 8)), model.embed, cfg)


def test_linear_input_shape_error_is_clear():
    model = build(continuous_config(), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"LinearInput expects inputs \[T, 2\]"):
        model(jnp.zeros((T, 3)))
    assert model(jnp.zeros((T, N_IN))).shape == (T, N_OUT)


def test_param_labels_cover_every_piece():
    labels = param_labels(build(continuous_config(), key=jax.random.key(0)))
    assert labels.embed.w_in == "embedding" and labels.embed.wpe == "embedding"
    assert labels.embed.b_in == "vector"
    assert labels.readout.w_readout == "readout" and labels.readout.b_readout == "vector"
    assert labels.blocks.w_qkv == "hidden" and labels.blocks.b_qkv == "vector"

    class Odd(eqx.Module):  # negative control: an unknown matrix is refused by name
        mystery: jax.Array

    with pytest.raises(ValueError, match=r"no rule for parameter .mystery"):
        param_labels(Odd(jnp.zeros((2, 2))))


def test_train_step_serves_another_model_and_loss():
    cfg = continuous_config()
    train_cfg = TrainConfig(steps=40, lr=1e-2, warmup_steps=0, batch_size=16)
    skeleton = eqx.filter_eval_shape(build, cfg, key=jax.random.key(0))
    optimizer = make_optimizer(train_cfg, skeleton)
    state = init_state(cfg, optimizer, jax.random.key(0), build=build)
    step = compile_train_step(optimizer, loss_fn=huber(1.0))
    x = jax.random.normal(jax.random.key(1), (16, T, N_IN))
    batch = Batch(x, x[..., :1])  # learn the identity on the first input: a live signal
    losses = []
    for _ in range(40):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.3 * losses[0]


def test_losses_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="must have one shape"):
        squared_error(jnp.zeros((T, 1)), jnp.zeros((T,)))


# myopic by default; the other modes with python -m pytest -m slow tests/test_heads.py
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "mode",
    [pytest.param("standard", marks=SLOW), "myopic", pytest.param("myopic_kv", marks=SLOW)],
)
def test_continuous_model_through_the_verifier(mode):
    model = build(continuous_config(mode), key=jax.random.key(1))
    batch = problem(jax.random.key(2))
    report = verify.check(model, batch.inputs[0], batch.targets[0], batch=batch, loss_fn=huber(1.0))
    assert report.passed, report.failures
    past = max(r.past_max for r in report.layers)
    assert (past == 0.0) == (mode != "standard")


def _layerwise(spec: GradientSpec):
    def forward(model: Transformer, inputs, probes=None):
        x = model.embed(inputs, model.config)
        for i in range(model.config.n_layers):
            if probes is not None:
                x = x + probes[i].astype(x.dtype)
            x = model.layer(i)(x, model.config, spec)
        return model.unembed(x)

    return forward


@pytest.mark.slow  # two verifier runs (~25 s CPU); python -m pytest -m slow tests/test_heads.py
def test_verifier_catches_a_leaky_mutant_of_the_continuous_model():
    model = build(continuous_config("myopic"), key=jax.random.key(1))
    batch = problem(jax.random.key(2), batch=1)
    leaky = _layerwise(GradientSpec("input", "live"))  # values live: a myopia leak
    report = verify.check(
        model, batch.inputs[0], batch.targets[0], batch=batch, loss_fn=huber(1.0), forward=leaky
    )
    assert any("past cross-position gradient" in f for f in report.failures)
    sound = _layerwise(GRADIENT_SPECS["myopic"])  # the same function, the same gradients
    report = verify.check(
        model, batch.inputs[0], batch.targets[0], batch=batch, loss_fn=huber(1.0), forward=sound
    )
    assert report.passed, report.failures


def test_verifier_refuses_a_forward_that_is_not_the_model():
    model = build(continuous_config("myopic"), key=jax.random.key(1))
    batch = problem(jax.random.key(2), batch=1)
    other = lambda m, x, p: 2.0 * m(x, p)
    with pytest.raises(ValueError, match="forward hook computes different losses"):
        verify.check(
            model, batch.inputs[0], batch.targets[0], batch=batch, loss_fn=huber(1.0), forward=other
        )
    with pytest.raises(TypeError, match="reference covers GPT"):
        verify.check(object(), batch.inputs[0], batch.targets[0])  # type: ignore[arg-type]


def test_cast_model_of_a_transformer():
    model = build(continuous_config(), key=jax.random.key(0))
    with jax.enable_x64(True):
        m64 = cast_model(model, "float64")
        assert m64.embed.w_in.dtype == jnp.float64 and m64.config.compute_dtype == "float64"
        out = m64(jnp.ones((T, N_IN), jnp.float64))
    np.testing.assert_allclose(out, model(jnp.ones((T, N_IN))), atol=1e-5)


@pytest.mark.parametrize("mode,proven", [("myopic", True), ("standard", False)])
def test_prover_on_the_continuous_model(mode, proven):
    from proofs.myopia import Target, prove

    cfg = continuous_config(mode, seq_len=16)
    cert = prove(
        Target(mode=mode),
        cfg,
        build=build,
        loss_fn=huber(1.0),
        input_shape=(N_IN,),
        target_shape=(N_OUT,),
    )
    assert (cert["verdict"]["myopic"] == "proven") == proven, cert["verdict"]
    assert cert["programs"]["backward"]["properties"]["causal"]["proven"]
