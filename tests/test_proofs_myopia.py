"""proofs.myopia: the model-level proofs, the command (python -m proofs.myopia) and the soundness
cross-check against the numerically measured Jacobian ∂L_t/∂δ^l_s."""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from myojax import cli
from myojax.config import ModelConfig
from myojax.model import GPT
from proofs import rules, zones
from proofs.lattice import Position, classify
from proofs.myopia import Target, analyse, load_mutants, prove
from proofs.myopia.__main__ import main
from proofs.trace import trace_jvp
from proofs.zones import U

MUTANTS = load_mutants()
SMALL = [
    "--d-model",
    "8",
    "--n-heads",
    "2",
    "--n-layers",
    "2",
    "--seq-len",
    "16",
    "--vocab-size",
    "16",
]


def small(mode: str = "standard", n_layers: int = 2, n_heads: int = 2) -> ModelConfig:
    return ModelConfig(
        vocab_size=16, seq_len=8, d_model=8, n_layers=n_layers, n_heads=n_heads, gradient_mode=mode
    )


# ---- the acceptance results ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_myopic_modes_are_proven_for_symbolic_t(mode, tmp_path):
    assert main(["--mode", mode, "--out", str(tmp_path), *SMALL]) == 0
    cert = json.loads((tmp_path / f"{mode}.json").read_text())
    assert cert["verdict"]["myopic"] == "proven"
    assert cert["sequence_length"] == "symbolic T, 1 <= T <= 16"
    assert cert["outputs"][1]["verdict"] == "same-position"
    assert cert["properties"]["same_position"]["assumptions"] == ["finite"]  # no overflow needed
    assert cert["properties"]["diagonal_route"]["present"] is True
    assert len(cert["program"]["jaxpr_sha256"]) == 64 and cert["jax_version"] == jax.__version__


def test_standard_is_causal_but_not_myopic(tmp_path):
    assert main(["--mode", "standard", "--out", str(tmp_path), *SMALL]) == 1
    cert = json.loads((tmp_path / "standard.json").read_text())
    assert cert["properties"]["causal"] == {
        "proven": True,
        "assumptions": ["finite", "no_overflow"],
    }
    assert cert["properties"]["same_position"]["proven"] is False
    assert cert["outputs"][1]["verdict"] == "same-or-past"  # precise: not collapsed to "any"
    assert "attention.py" in cert["verdict"]["location"]


def test_default_run_does_not_write_into_the_checkout(tmp_path, monkeypatch):
    """Certificates go to runs/proofs (git-ignored) unless --out says otherwise, and are the
    same bytes on every run (no timings), so regenerating them changes nothing."""
    monkeypatch.chdir(tmp_path)
    assert main(["--mode", "myopic", *SMALL]) == 0
    written = tmp_path / "runs" / "proofs" / "myopic.json"
    first = written.read_bytes()
    assert "seconds" not in json.loads(first)
    assert main(["--mode", "myopic", *SMALL]) == 0
    assert written.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_refused_with_a_location(name, tmp_path):
    assert main(["--mutant", name, "--out", str(tmp_path), *SMALL]) == 1
    verdict = json.loads((tmp_path / f"mutant-{name}.json").read_text())["verdict"]
    assert verdict["myopic"] == "not proven"
    assert "myojax/attention.py:" in verdict["location"]
    expected = MUTANTS[name][1]  # what the verifier must say: "past" or "diagonal"
    assert ("diagonal" in verdict["reason"]) == (expected == "diagonal")


def test_refuses_when_a_rule_is_missing(monkeypatch):
    monkeypatch.delitem(rules.RULES, "dot_general")
    cert = prove(Target(mode="myopic"), small("myopic"))
    assert cert["verdict"]["myopic"] == "not proven"
    assert cert["verdict"]["reason"].startswith("not proven: cannot analyse dot_general at ")


def test_remat_variants_are_proven_too():
    for config in (small("myopic").replace(remat="full"), small("myopic_kv").replace(remat="dots")):
        assert prove(Target(mode=config.gradient_mode), config)["verdict"]["myopic"] == "proven"


def test_cli_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "exit status" in out
    # the model flags are generated from ModelConfig, spelled as in every other command
    for flag in ("--vocab-size", "--seq-len", "--d-model", "--n-layers", "--n-heads", "--remat"):
        assert flag in out
    assert cli.run(main, ["--mutant", "no_such_mutant"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown mutant 'no_such_mutant'") and err.count("\n") == 1
    assert cli.run(main, ["--mode", "myopic", "--n-heads", "3", "--d-model", "8"]) == 2
    assert "n_heads" in capsys.readouterr().err  # the config's own validation, one line


def test_model_flags_reach_the_certificate(tmp_path):
    argv = ["--mode", "myopic", "--out", str(tmp_path), *SMALL, "--remat", "full"]
    assert main(argv) == 0
    config = json.loads((tmp_path / "myopic.json").read_text())["config"]
    assert (config["d_model"], config["n_layers"], config["seq_len"]) == (8, 2, 16)
    assert config["remat"] == "full" and config["gradient_mode"] == "myopic"
    assert config["param_dtype"] == config["compute_dtype"] == "float32"


# ---- soundness cross-check -----------------------------------------------------------------------


@functools.cache
def proven_region(target: Target, n_layers: int, n_heads: int) -> zones.Region:
    config = small(target.mode or "standard", n_layers, n_heads)
    traced = trace_jvp(target.forward(), config)
    return analyse(traced, frozenset({"no_overflow"})).outputs[1].dep


def measured(target: Target, n_layers: int, n_heads: int, t: int, seed: int) -> np.ndarray:
    """|∂L_t/∂δ^l_s| maxed over D, [l, t, s], float64."""
    config = small(target.mode or "standard", n_layers, n_heads)
    k_model, k_data = jax.random.split(jax.random.key(seed))
    model = GPT(config, key=k_model)
    data = np.asarray(jax.random.randint(k_data, (t + 1,), 0, config.vocab_size))
    tokens, targets = data[:-1], data[1:]
    try:
        from myojax.verify import probe_jacobian_norms
    except ImportError:  # the verifier is optional here: fall back to a dense jacrev
        return _jacrev_norms(target, model, tokens, targets)
    return probe_jacobian_norms(target.forward(), model, tokens, targets)


def _jacrev_norms(target, model, tokens, targets):
    from myojax.loss import per_position_loss
    from myojax.model import cast_model
    from proofs.trace import _Bound

    with jax.enable_x64(True):
        m64 = cast_model(model, "float64")
        probes = np.zeros((m64.config.n_layers, len(tokens), m64.config.d_model))
        jac = jax.jacrev(
            lambda p: per_position_loss(_Bound(target.forward(), m64), tokens, targets, p)
        )(probes)  # [t, l, s, d]
        return np.abs(np.asarray(jac)).max(-1).transpose(1, 0, 2)


TARGETS = [Target(mode=m) for m in ("standard", "myopic", "myopic_kv")] + [
    Target(mutant=n) for n in sorted(MUTANTS)
]


# Each new (target, layers, heads, T) compiles a float64 Jacobian: keep the examples few.
@settings(max_examples=4, deadline=None, derandomize=True)
@example(target=Target(mode="standard"), n_layers=2, n_heads=2, t=3, seed=0)
@given(
    target=st.sampled_from(TARGETS),
    n_layers=st.integers(1, 3),
    n_heads=st.sampled_from([1, 2, 4]),
    t=st.sampled_from([2, 3, 5]),
    seed=st.integers(0, 3),
)
def test_proven_pattern_contains_the_measured_jacobian(target, n_layers, n_heads, t, seed):
    region = proven_region(target, n_layers, n_heads)
    jac = measured(target, n_layers, n_heads, t, seed)
    assert jac.shape == (n_layers, t, t)
    assert np.all(np.diagonal(jac, axis1=1, axis2=2) > 0)  # the check is not vacuous
    for layer, row, col in zip(*np.nonzero(jac)):
        assert zones.contains(region, {0: int(row), U: int(col)}), (
            f"{target}: measured ∂L_{row}/∂δ^{layer}_{col} != 0 outside the proven {region}"
        )
    if classify(region) == Position.SAME:
        assert not np.any(np.tril(jac, k=-1))
    if target == Target(mode="standard"):
        # the containment check can fail: standard's past entries are really nonzero, so a
        # (wrong) same-position region would not contain them
        assert np.any(np.tril(jac, k=-1))
