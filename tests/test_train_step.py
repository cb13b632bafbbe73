"""Gradient accumulation (``TrainConfig.microbatches``): the scanned mean gradient equals the
full batch's in every gradient mode; bad microbatch counts are refused naming the field; run
directories written before the field existed still resume."""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
import pytest

from myojax.config import GRADIENT_MODES, ModelConfig
from myojax.loss import loss_and_grad, to_batch
from myojax.model import GPT
from myojax.train.__main__ import main
from myojax.train.config import TrainConfig
from myojax.train.optim import make_optimizer
from myojax.train.rundir import RunDirError, prepare_run_dir, run_config
from myojax.train.step import (
    accumulated_loss_and_grad,
    init_state,
    split_microbatches,
    train_step,
)

CONFIG = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=1, n_heads=2)
BATCH = 8
TOL = dict(rtol=2e-5, atol=2e-7)  # float32 summation-order rounding, far below the gradient


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return to_batch(rng.integers(0, CONFIG.vocab_size, (BATCH, CONFIG.seq_len + 1), np.int32))


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_split_is_strided_so_every_device_keeps_its_rows() -> None:
    batch = _batch()
    micro = split_microbatches(batch, 4)
    assert micro.inputs.shape == (4, BATCH // 4, CONFIG.seq_len)
    for k in range(4):
        np.testing.assert_array_equal(micro.inputs[k], batch.inputs[k::4])
        np.testing.assert_array_equal(micro.targets[k], batch.targets[k::4])
    with pytest.raises(ValueError, match="microbatches=3 must divide the batch"):
        split_microbatches(batch, 3)


@pytest.mark.parametrize("mode", GRADIENT_MODES)
def test_accumulated_gradient_equals_full_batch(mode: str) -> None:
    model = GPT(CONFIG.replace(gradient_mode=mode), key=jax.random.key(0))
    batch = _batch()
    full_loss, full = jax.jit(loss_and_grad)(model, batch)
    for k in (2, 8)[: 2 if mode == "myopic" else 1]:
        acc = jax.jit(functools.partial(accumulated_loss_and_grad, microbatches=k))
        loss, grads = acc(model, batch)
        np.testing.assert_allclose(float(loss), float(full_loss), **TOL)
        for a, b in zip(_leaves(grads), _leaves(full), strict=True):
            np.testing.assert_allclose(a, b, **TOL)
    # Negative control: another batch's gradient (same shapes, no new compile) is far outside
    # the tolerance, so the comparison above can tell a wrong accumulation from a right one.
    _, other = jax.jit(loss_and_grad)(model, _batch(1))
    assert any(
        not np.allclose(a, b, **TOL) for a, b in zip(_leaves(other), _leaves(full), strict=True)
    )


def test_train_step_with_microbatches_matches_one_batch() -> None:
    train_cfg = TrainConfig(steps=10, batch_size=BATCH, warmup_steps=1, lr=1e-2, microbatches=4)
    optimizer = make_optimizer(train_cfg, GPT(CONFIG, key=jax.random.key(0)))
    state = init_state(CONFIG, optimizer, jax.random.key(0))
    batch = _batch()
    results = []
    for k in (1, 4):
        step = jax.jit(functools.partial(train_step, optimizer=optimizer, microbatches=k))
        results.append(step(state, batch))
    (a, ma), (b, mb) = results
    assert int(a.step) == int(b.step) == 1
    np.testing.assert_allclose(float(ma["loss"]), float(mb["loss"]), **TOL)
    np.testing.assert_allclose(float(ma["grad_norm"]), float(mb["grad_norm"]), rtol=1e-4)
    for x, y in zip(_leaves(a.model), _leaves(b.model), strict=True):
        # Adam's first update is about lr * sign(g): a wrong gradient moves a weight by ~lr.
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-2 * train_cfg.lr)


def test_microbatches_are_validated_naming_the_field() -> None:
    assert TrainConfig(batch_size=32, microbatches=4).microbatch_size(n_devices=2) == 4
    with pytest.raises(ValueError, match=r"TrainConfig.microbatches \(3\) must divide"):
        TrainConfig(batch_size=32, microbatches=3)
    with pytest.raises(ValueError, match="TrainConfig.microbatches must be positive"):
        TrainConfig(microbatches=0)
    cfg = TrainConfig(batch_size=32, microbatches=8, mesh="data=-1")
    with pytest.raises(ValueError, match=r"microbatches \(8\) must divide the per-device batch"):
        cfg.microbatch_size(n_devices=8)  # 4 sequences per device


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--microbatches", "3"],
            "TrainConfig.microbatches (3) must divide TrainConfig.batch_size",
        ),
        (["--microbatches", "0"], "TrainConfig.microbatches must be positive"),
        (["--microbatches", "two"], "invalid int value: 'two'"),
    ],
)
def test_cli_rejects_bad_microbatches(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--preset", "tiny", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_dir_without_the_field_resumes_and_other_changes_are_refused(tmp_path) -> None:
    """A config.json written before ``microbatches`` existed reads as microbatches=1; the count
    may change on resume (memory layout, like the mesh); a real change is still refused."""
    train, model = TrainConfig(out=str(tmp_path)), ModelConfig()
    old = run_config(train, model)
    del old["train"]["microbatches"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    prepare_run_dir(tmp_path, run_config(train, model), overwrite=False)
    prepare_run_dir(tmp_path, run_config(train.replace(microbatches=4), model), overwrite=False)
    with pytest.raises(RunDirError, match=r"train.lr: 0.003 -> 0.001"):
        prepare_run_dir(tmp_path, run_config(train.replace(lr=1e-3), model), overwrite=False)


def test_attention_impl_may_change_on_resume_and_a_model_change_is_refused(tmp_path) -> None:
    """A config.json written before ``attention_impl`` existed (or with either value) resumes
    with either implementation — the same gradients to float rounding — while a change of
    what is trained is still refused (negative control)."""
    train, model = TrainConfig(out=str(tmp_path)), ModelConfig(gradient_mode="myopic")
    old = run_config(train, model)
    del old["model"]["attention_impl"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    for impl in ("fast", "reference"):
        prepare_run_dir(
            tmp_path, run_config(train, model.replace(attention_impl=impl)), overwrite=False
        )
    with pytest.raises(RunDirError, match=r"model.gradient_mode: 'myopic' -> 'standard'"):
        changed = model.replace(gradient_mode="standard", attention_impl="reference")
        prepare_run_dir(tmp_path, run_config(train, changed), overwrite=False)


def test_a_run_killed_before_its_config_was_written_starts_again(tmp_path) -> None:
    """Issue 30 (kill -9 of a pod host mid-study): the checkpoint manager creates the empty
    checkpoints directory before config.json is written; rerunning must start the run afresh
    rather than refuse it. Negative control: a checkpoint without config.json is refused."""
    config = run_config(TrainConfig(out=str(tmp_path)), ModelConfig())
    (tmp_path / "checkpoints").mkdir()
    assert prepare_run_dir(tmp_path, config, overwrite=False) is None
    (tmp_path / "checkpoints" / "5").mkdir()
    with pytest.raises(RunDirError, match="has checkpoints but no config.json"):
        prepare_run_dir(tmp_path, config, overwrite=False)
