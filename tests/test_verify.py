import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from myojax import verify
from myojax.config import ModelConfig
from tests.mutants import MUTANTS
from tests.strategies import configs

SMALL = ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=2, n_heads=2)


def _problem(cfg, seed=0):
    return verify.random_problem(cfg, jax.random.key(seed))


@given(st.sampled_from(["myopic", "myopic_kv"]).flatmap(lambda m: configs(mode=m)))
def test_past_jacobian_is_exactly_zero_in_myopic_modes(cfg):
    model, tokens, targets, _ = _problem(cfg)
    jac = verify.probe_jacobian_norms(verify.model_forward, model, tokens, targets)
    past = np.tril(np.ones((cfg.seq_len,) * 2, bool), -1)
    assert np.all(jac[:, past] == 0.0)
    assert np.all(jac[:, ~np.tril(np.ones_like(past))] == 0.0)  # causality
    assert np.all(np.einsum("ltt->lt", jac) > 0.0)  # non-vacuous


@given(configs(mode="standard").filter(lambda c: c.seq_len > 1))
def test_past_jacobian_is_nonzero_in_standard_mode(cfg):  # negative control
    model, tokens, targets, _ = _problem(cfg)
    jac = verify.probe_jacobian_norms(verify.model_forward, model, tokens, targets)
    assert np.all(jac[:, 1, 0] > 0.0)


@pytest.mark.parametrize("mode", ["standard", "myopic", "myopic_kv"])
def test_check_passes_each_mode_against_the_column_local_reference(mode):
    report = verify.check(
        *_problem(SMALL.replace(gradient_mode=mode))[:3], batch=_problem(SMALL)[3]
    )
    assert report.passed, report.failures
    assert report.param_grad_err <= 1e-10 and report.train_grad_err <= 1e-10
    assert all(r.future_max == 0.0 and r.diag_min > 0 for r in report.layers)
    assert all((r.past_max == 0.0) == (mode != "standard") for r in report.layers)


def test_standard_mode_fails_the_myopic_expectation_naming_the_layer():
    model, tokens, targets, batch = _problem(SMALL)
    report = verify.check(model, tokens, targets, expect="myopic", batch=batch)
    assert not report.passed
    assert report.failures[0].startswith("layer 0: past cross-position gradient")


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_rejected_with_layer_and_reason(name):
    """Each mutant the verifier is meant to catch fails with its reason; one leaking further
    back than the checked T (``vjp_leak_far``) passes: that one is the prover's to catch
    (tests/test_proofs_myopia.py)."""
    forward, reason, _ = MUTANTS[name]
    model, tokens, targets, batch = _problem(SMALL.replace(gradient_mode="myopic"))
    report = verify.check(model, tokens, targets, forward=forward, batch=batch)
    if reason is None:
        assert report.passed, report.failures
        return
    assert not report.passed
    text = "\n".join(report.failures)
    assert "layer " in report.failures[0]
    if reason == "past":
        assert "past cross-position gradient" in text
    else:
        assert "diagonal gradient differs" in text and "past cross-position" not in text
    if name == "last_layer_standard":
        assert f"leak enters at layer {SMALL.n_layers - 1}" in text


def test_cli_exit_codes(capsys):
    args = [
        "--n-layers",
        "2",
        "--d-model",
        "16",
        "--n-heads",
        "2",
        "--seq-len",
        "6",
        "--seeds",
        "1",
    ]
    assert run_cli(["--gradient-mode", "myopic", *args]) == 0
    capsys.readouterr()
    assert run_cli(["--gradient-mode", "standard", "--expect", "myopic", *args]) == 1
    out = capsys.readouterr().out
    assert "FAIL layer 0: past cross-position gradient" in out and out.rstrip().endswith("FAIL")
    assert run_cli(["--gradient-mode", "myopic", "--d-model", "10", "--n-heads", "3"]) == 2
    assert "must be divisible by" in capsys.readouterr().err
    assert run_cli(["--seeds", "1"]) == 2  # neither a mode nor a checkpoint
    assert "give --gradient-mode MODE or --checkpoint DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the model flags are ModelConfig's, spelled one way
        run_cli(["--gradient-mode", "myopic", "--layers", "2"])


def run_cli(argv: list[str]) -> int:
    from myojax import cli
    from myojax.verify.__main__ import main

    return cli.run(main, argv)


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    from myojax.train import run
    from myojax.train.presets import RUN_PRESETS as PRESETS

    model_cfg, train_cfg = PRESETS["tiny"]
    model_cfg = model_cfg.replace(n_layers=2)
    runs = {}
    for mode in ("standard", "myopic"):
        out = tmp_path_factory.mktemp(mode)
        cfg = train_cfg.replace(steps=3, warmup_steps=0, batch_size=4, eval_batches=1, out=str(out))
        run(cfg, model_cfg.replace(gradient_mode=mode), progress=False)
        runs[mode] = str(out)
    return runs


def test_cli_verifies_trained_checkpoints(trained_runs, capsys):
    assert run_cli(["--checkpoint", trained_runs["myopic"], "--seq-len", "8"]) == 0
    assert "mode=myopic" in capsys.readouterr().out
    assert run_cli(["--checkpoint", trained_runs["standard"], "--seq-len", "8"]) == 0
    assert (
        run_cli(["--checkpoint", trained_runs["standard"], "--seq-len", "8", "--expect", "myopic"])
        == 1
    )
    assert "past cross-position gradient" in capsys.readouterr().out
    assert run_cli(["--checkpoint", "/nonexistent/run"]) == 2


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_check_passes_under_mup_with_nontrivial_multipliers(mode):
    cfg = SMALL.replace(
        gradient_mode=mode,
        parametrization="mup",
        base_width=8,
        input_mult=1.5,
        output_mult=2.0,
        attn_mult=0.7,
        tie_embeddings=False,
    )
    report = verify.check(*_problem(cfg)[:3])
    assert report.passed, report.failures
