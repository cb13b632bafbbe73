"""muP: config validation, init and learning-rate rules, m = 1 agreement with SP, forward
multipliers, gradient modes under muP, and the quick coordinate check (with SP as control)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from myojax import mup
from myojax.config import ModelConfig
from myojax.loss import Batch, loss_and_grad, per_position_loss
from myojax.model import GPT, INIT_STD
from myojax.mup import param_labels
from myojax.train import TrainConfig, optim
from myojax.train.optim import make_optimizer

BASE = ModelConfig(
    vocab_size=256,
    seq_len=8,
    d_model=32,
    n_heads=2,
    n_layers=2,
    parametrization="mup",
    base_width=32,
)
LR = 1e-2


def _mup(width: int, **changes: object) -> ModelConfig:
    return mup.with_width(BASE.replace(**changes), width)


def _batch(config: ModelConfig, key: int = 1, batch_size: int = 2) -> Batch:
    data = jax.random.randint(jax.random.key(key), (batch_size, config.seq_len + 1), 0, 256)
    return Batch.from_windows(data)


# -- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"parametrization": "ntk"}, "parametrization"),
        ({"base_width": 0}, "base_width"),
        ({"base_width": 32.0}, "base_width"),
        ({"input_mult": 0.0}, "input_mult"),
        ({"output_mult": -1.0}, "output_mult"),
        ({"attn_mult": float("nan")}, "attn_mult"),
        ({"attn_mult": True}, "attn_mult"),
        ({"zero_init_query": 1}, "zero_init_query"),
        ({"zero_init_readout": True}, "zero_init_readout"),  # needs an untied readout
    ],
)
def test_invalid_mup_config_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"ModelConfig.{field}"):
        ModelConfig(**changes)


def test_sp_is_the_default_and_ignores_base_width() -> None:
    sp = ModelConfig(d_model=256, n_heads=4, base_width=64)
    assert ModelConfig().parametrization == "sp"
    assert sp.width_mult == 1.0
    assert sp.attn_scale == 1 / math.sqrt(64)
    assert sp.output_multiplier == 1.0 and sp.input_multiplier == 1.0
    assert mup.lr_multipliers(sp) is None


def test_mup_config_roundtrips_through_dict() -> None:
    cfg = _mup(128, input_mult=2.0, zero_init_query=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_with_width_keeps_head_dim_and_mlp_ratio() -> None:
    cfg = mup.with_width(BASE.replace(d_ff=96), 128)
    assert (cfg.d_model, cfg.head_dim, cfg.n_heads, cfg.ff_dim) == (128, 16, 8, 384)
    assert cfg.width_mult == 4.0
    with pytest.raises(ValueError, match="head_dim"):
        mup.with_width(BASE, 40)


def test_forward_multipliers_follow_the_rules() -> None:
    for width in (32, 64, 256):
        cfg = _mup(width, output_mult=3.0, attn_mult=2.0)
        m = width / 32
        assert cfg.width_mult == m
        assert cfg.output_multiplier == pytest.approx(3.0 / m)
        assert cfg.attn_scale == pytest.approx(2.0 * 8 / cfg.head_dim)  # 1/d_head, d_head=64 = SP


def test_lr_multipliers() -> None:
    assert mup.lr_multipliers(_mup(128)) == {
        "embedding": 1.0,
        "hidden": 0.25,
        "readout": 1.0,
        "vector": 1.0,
    }
    untied = GPT(BASE.replace(tie_embeddings=False), key=jax.random.key(0))
    assert mup.LABELS == optim.LABELS
    assert set(mup.LABELS) == set(jax.tree.leaves(param_labels(untied)))
    with pytest.raises(ValueError, match="unknown"):
        mup.check_multipliers({"hiden": 0.5})


def test_train_hook_returns_mup_multipliers() -> None:
    assert mup.lr_multipliers(BASE.replace(parametrization="sp")) is None


# -- init ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [64, 128, 256])
def test_init_std_follows_the_rules(width: int) -> None:
    cfg = _mup(width, tie_embeddings=False, n_layers=2)
    model = GPT(cfg, key=jax.random.key(width))
    m = width / 32
    hidden = INIT_STD / math.sqrt(m)  # variance ∝ 1/fan_in, = GPT-2's 0.02 at the base width
    resid = hidden / math.sqrt(2 * cfg.n_layers)
    expect = {
        "w_qkv": hidden,
        "w_fc": hidden,
        "w_out": resid,
        "w_proj": resid,
    }
    for name, std in expect.items():
        assert float(jnp.std(getattr(model.blocks, name))) == pytest.approx(std, rel=0.03), name
    for name in ("wte", "wpe", "lm_head"):  # width-independent (readout's 1/m is a multiplier)
        assert float(jnp.std(getattr(model, name))) == pytest.approx(INIT_STD, rel=0.03), name
    for name in ("b_qkv", "b_out", "b_fc", "b_proj", "ln1_bias", "ln2_bias"):
        assert not jnp.any(getattr(model.blocks, name))
    assert jnp.all(model.blocks.ln1_gain == 1) and jnp.all(model.lnf_gain == 1)
    # SP at the same width keeps GPT-2's width-independent 0.02.
    sp = GPT(cfg.replace(parametrization="sp"), key=jax.random.key(width))
    assert float(jnp.std(sp.blocks.w_qkv)) == pytest.approx(INIT_STD, rel=0.03)


def test_effective_tied_readout_has_mup_readout_scale() -> None:
    """wte/m acts as the readout: init std 0.02/m (variance ∝ 1/width²)."""
    for width in (32, 128):
        cfg = _mup(width)
        model = GPT(cfg, key=jax.random.key(0))
        eff_std = float(jnp.std(model.wte)) * cfg.output_multiplier
        assert eff_std == pytest.approx(INIT_STD * 32 / width, rel=0.03)


def test_zero_init_options() -> None:
    cfg = _mup(64, zero_init_query=True, zero_init_readout=True, tie_embeddings=False)
    model = GPT(cfg, key=jax.random.key(0))
    d = cfg.d_model
    assert not jnp.any(model.blocks.w_qkv[:, :, :d])  # queries
    assert jnp.all(jnp.std(model.blocks.w_qkv[:, :, d:], axis=(1, 2)) > 0)  # keys, values
    assert not jnp.any(model.lm_head)
    tokens = jnp.arange(cfg.seq_len)
    assert not jnp.any(model(tokens))  # zero readout: logits exactly 0 at init
    assert not jnp.any(model.activations(tokens)["attn_logits"])  # zero queries: uniform attention


# -- one Adam step -------------------------------------------------------------------------


def _first_adam_update(cfg: ModelConfig) -> tuple[GPT, GPT]:
    """The trainer's optimizer (no warmup, decay or clipping) applied to one gradient."""
    model = GPT(cfg, key=jax.random.key(0))
    train_cfg = TrainConfig(steps=10, warmup_steps=0, lr=LR, weight_decay=0.0, grad_clip=0.0)
    opt = make_optimizer(train_cfg, model, mup.lr_multipliers(cfg))

    @eqx.filter_jit
    def update(model: GPT, batch: Batch) -> GPT:
        params = eqx.filter(model, eqx.is_array)
        _, grads = loss_and_grad(model, batch)
        return opt.update(grads, opt.init(params), params)[0]

    return model, update(model, _batch(cfg))


@pytest.mark.parametrize("width", [32, 64, 128])
def test_one_adam_step_scales_hidden_by_one_over_m(width: int) -> None:
    """Adam's first step moves each entry by lr·g/(|g|+eps) ≈ lr: times 1/m for hidden
    matrices, unscaled for embeddings, vectors and the (multiplier-scaled) readout."""
    cfg = _mup(width, tie_embeddings=False)
    m = width / 32
    _, updates = _first_adam_update(cfg)

    def typical(a: jax.Array) -> float:
        a = jnp.abs(a).ravel()
        return float(jnp.median(a[a > 0]))

    for name in ("w_qkv", "w_out", "w_fc", "w_proj"):
        assert typical(getattr(updates.blocks, name)) == pytest.approx(LR / m, rel=1e-3), name
    for name in ("wte", "wpe", "lm_head"):
        assert typical(getattr(updates, name)) == pytest.approx(LR, rel=1e-3), name
    assert typical(updates.blocks.ln1_gain) == pytest.approx(LR, rel=1e-3)
    # The readout's effective update, Δlm_head · output_multiplier, is the 1/m-scaled one.
    eff = typical(updates.lm_head) * cfg.output_multiplier
    assert eff == pytest.approx(LR / m, rel=1e-3)


def test_mup_at_base_width_equals_sp_model_and_first_update() -> None:
    """At m = 1 with d_head = 64 every rule coincides: same parameters, logits, first update."""
    sp = ModelConfig(vocab_size=256, seq_len=8, d_model=64, n_heads=1, n_layers=2)
    for tie in (True, False):
        cfg_sp = sp.replace(tie_embeddings=tie)
        cfg_mup = cfg_sp.replace(parametrization="mup", base_width=64)
        assert cfg_mup.attn_scale == cfg_sp.attn_scale
        model_sp, upd_sp = _first_adam_update(cfg_sp)
        model_mup, upd_mup = _first_adam_update(cfg_mup)
        for a, b in zip(jax.tree.leaves(model_sp), jax.tree.leaves(model_mup), strict=True):
            np.testing.assert_array_equal(a, b)
        tokens = jnp.arange(8)
        np.testing.assert_array_equal(model_sp(tokens), model_mup(tokens))
        for a, b in zip(jax.tree.leaves(upd_sp), jax.tree.leaves(upd_mup), strict=True):
            np.testing.assert_array_equal(a, b)


def test_documented_differences_at_base_width() -> None:
    """Where muP and SP differ at m = 1: the attention scale when d_head != 64."""
    cfg_sp = ModelConfig(d_model=64, n_heads=4)  # d_head = 16
    cfg_mup = cfg_sp.replace(parametrization="mup", base_width=64)
    assert cfg_mup.attn_scale / cfg_sp.attn_scale == pytest.approx(math.sqrt(64 / 16))
    model_sp = GPT(cfg_sp, key=jax.random.key(0))
    model_mup = GPT(cfg_mup, key=jax.random.key(0))
    for a, b in zip(jax.tree.leaves(model_sp), jax.tree.leaves(model_mup), strict=True):
        np.testing.assert_array_equal(a, b)  # the init still coincides


def test_input_and_output_multipliers_scale_exactly() -> None:
    cfg = _mup(64)
    model = GPT(cfg, key=jax.random.key(0))
    # Multipliers are not part of the init, so the same key gives the same parameters.
    scaled_in = GPT(cfg.replace(input_mult=2.0), key=jax.random.key(0))
    scaled_out = GPT(cfg.replace(output_mult=0.5), key=jax.random.key(0))
    tokens = jnp.arange(cfg.seq_len)
    np.testing.assert_array_equal(scaled_in.embed(tokens), 2.0 * model.embed(tokens))
    np.testing.assert_array_equal(scaled_out(tokens), 0.5 * model(tokens))
    assert not np.allclose(scaled_in(tokens), model(tokens))  # the input scale reaches the output


def test_coord_check_cli_help(capsys) -> None:
    from experiments.coord_check.__main__ import main as coord_check
    from experiments.mup_transfer.__main__ import main as mup_transfer

    for main in (coord_check, mup_transfer):
        with pytest.raises(SystemExit) as exc:
            main(["--help"])
        assert exc.value.code == 0
    with pytest.raises(SystemExit) as exc:  # the mode flag is the model's, with its choices
        coord_check(["--gradient-mode", "sideways"])
    assert exc.value.code == 2 and "--gradient-mode" in capsys.readouterr().err


# -- gradient modes under muP ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_gradient_modes_exact_under_mup(mode: str) -> None:
    """Forward identical to standard; the past probe Jacobian exactly zero (float32, non-base
    width, non-unit multipliers); standard mode's is non-zero (control)."""
    cfg = _mup(64, input_mult=2.0, output_mult=1.5, attn_mult=0.7, zero_init_query=False)
    tokens = jax.random.randint(jax.random.key(3), (cfg.seq_len,), 0, 256)
    targets = jnp.roll(tokens, -1)
    probes = jnp.zeros((cfg.n_layers, cfg.seq_len, cfg.d_model))
    strictly_past = np.tril(np.ones((cfg.seq_len, cfg.seq_len), bool), k=-1)

    def past_jacobian(c: ModelConfig) -> tuple[jax.Array, np.ndarray]:
        model = GPT(c, key=jax.random.key(0))
        losses = lambda p: per_position_loss(model, tokens, targets, p)
        jac_TxLxSxD = jax.jit(jax.jacrev(losses))(probes)
        norms_LxTxS = np.abs(np.asarray(jac_TxLxSxD)).max(-1).transpose(1, 0, 2)
        return model(tokens), norms_LxTxS

    logits_std, jac_std = past_jacobian(cfg)
    logits, jac = past_jacobian(cfg.replace(gradient_mode=mode))
    np.testing.assert_array_equal(logits, logits_std)
    assert all(np.all(j[strictly_past] == 0.0) for j in jac), "past gradient leaks"
    assert all(np.all(np.diagonal(j) > 0) for j in jac)  # non-vacuous
    assert all(np.any(j[strictly_past] > 0) for j in jac_std)  # control: standard leaks


def test_verifier_passes_under_mup() -> None:
    from myojax.verify import check, random_problem

    changes = dict(
        gradient_mode="myopic",
        attn_mult=0.5,
        output_mult=2.0,
        input_mult=3.0,
        seq_len=6,
        n_layers=2,
    )
    cfg = mup.with_width(BASE.replace(**changes), 64)  # m = 2, every multiplier non-unit
    model, tokens, targets, batch = random_problem(cfg, jax.random.key(0))
    report = check(model, tokens, targets, batch=batch)
    assert report.passed, report.failures


# -- coordinate check ----------------------------------------------------------------------


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_quick_coord_check_passes_for_mup_and_fails_for_sp() -> None:
    from experiments.coord_check import check as cc

    cfg = cc.QUICK
    result = cc.run(cfg, out=None, log=lambda _: None)
    mup_ok, sp_logits_blow_up, lines = cc.judge(cfg, cc.verdicts(result))
    report = "\n".join(lines)
    assert mup_ok, report
    assert sp_logits_blow_up, report
    sp_logits = next(
        v
        for v in cc.verdicts(result)
        if v.parametrization == "sp" and (v.stat, v.activation) == ("value", "logits")
    )
    assert not sp_logits.within(cfg.tolerance) and min(sp_logits.ratios) >= cfg.blowup


def test_coord_check_optimizer_matches_trainer_first_step() -> None:
    """The coord check's Adam + optax lr multipliers equals the trainer's optimizer (no clip,
    no decay, no warmup) on a first step: one rule set, two call sites."""
    from experiments.coord_check.check import adam_with_lr_multipliers

    cfg = _mup(64)
    model, trainer_updates = _first_adam_update(cfg)
    opt = adam_with_lr_multipliers(LR, param_labels(model), mup.lr_multipliers(cfg))

    @eqx.filter_jit
    def update(model: GPT, batch: Batch) -> GPT:
        params = eqx.filter(model, eqx.is_array)
        _, grads = loss_and_grad(model, batch)
        return opt.update(grads, opt.init(params), params)[0]

    updates = update(model, _batch(cfg))
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(trainer_updates), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
