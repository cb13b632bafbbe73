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
from proofs.myopia import PROGRAMS, Target, analyse, load_mutants, prove
from proofs.myopia.__main__ import main
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
    """The fast path (the default): its backward program is proven; it has no JVP program."""
    assert main(["--mode", mode, "--out", str(tmp_path), *SMALL]) == 0
    cert = json.loads((tmp_path / f"{mode}.json").read_text())
    assert cert["verdict"] == {**cert["verdict"], "myopic": "proven", "programs": ["backward"]}
    assert cert["sequence_length"] == "symbolic T, 1 <= T <= 16"
    backward = cert["programs"]["backward"]
    assert backward["outputs"][1]["verdict"] == "same-position"
    assert backward["properties"]["same_position"]["assumptions"] == ["finite"]
    assert backward["properties"]["diagonal_route"]["present"] is False  # O(T·D) terms
    assert "custom_lin" not in backward["program"]["primitives"]  # the rule, inlined
    assert cert["programs"]["jvp"]["applicable"] is False
    assert "custom_vjp" in cert["programs"]["jvp"]["reason"]
    assert len(backward["program"]["jaxpr_sha256"]) == 64 and cert["jax_version"] == jax.__version__


@pytest.mark.parametrize("mode", ["myopic", "myopic_kv"])
def test_reference_implementation_is_proven_in_both_programs(mode, tmp_path):
    argv = ["--mode", mode, "--attention-impl", "reference", "--out", str(tmp_path), *SMALL]
    assert main(argv) == 0
    cert = json.loads((tmp_path / f"{mode}-reference.json").read_text())
    assert cert["verdict"]["programs"] == ["backward", "jvp"]
    for program in ("backward", "jvp"):
        section = cert["programs"][program]
        assert section["verdict"]["myopic"] == "proven"
        assert section["properties"]["diagonal_route"]["present"] is True


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_standard_is_causal_but_not_myopic(impl, tmp_path):
    argv = ["--mode", "standard", "--attention-impl", impl, "--out", str(tmp_path), *SMALL]
    assert main(argv) == 1
    name = "standard" if impl == "fast" else "standard-reference"
    cert = json.loads((tmp_path / f"{name}.json").read_text())
    assert cert["verdict"]["program"] == "backward"
    for program in ("backward", "jvp"):  # standard has no custom VJP: both programs exist
        section = cert["programs"][program]
        assert section["properties"]["causal"] == {
            "proven": True,
            "assumptions": ["finite", "no_overflow"],
        }
        assert section["properties"]["same_position"]["proven"] is False
        assert section["outputs"][1]["verdict"] == "same-or-past"  # not collapsed to "any"
    where = "attention_fast.py" if impl == "fast" else "attention.py"
    assert f"myojax/{where}:" in cert["verdict"]["location"]


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
def test_every_mutant_is_refused_with_a_location_or_left_to_the_verifier(name, tmp_path):
    """The prover refuses the mutants it is meant to catch, at their source line; a wrong
    backward rule that only drops the own-position terms is same-position in the backward
    program (proven), and the verifier catches it (tests/test_verify.py)."""
    _, verifier, refused = MUTANTS[name]
    assert main(["--mutant", name, "--out", str(tmp_path), *SMALL]) == (1 if refused else 0)
    verdict = json.loads((tmp_path / f"mutant-{name}.json").read_text())["verdict"]
    if not refused:
        assert verdict["myopic"] == "proven" and verifier == "diagonal"
        return
    assert verdict["myopic"] == "not proven"
    assert "myojax/attention" in verdict["location"] or "tests/mutants.py" in verdict["location"]
    assert ("diagonal" in verdict["reason"]) == (verifier == "diagonal")
    # a stopped diagonal is refused by the JVP program; a wrong backward rule has none
    assert verdict["program"] == ("jvp" if name == "stop_diagonal" else "backward")


def test_refuses_when_a_rule_is_missing(monkeypatch):
    monkeypatch.delitem(rules.RULES, "dot_general")
    cert = prove(Target(mode="myopic"), small("myopic"))
    assert cert["verdict"]["myopic"] == "not proven" and cert["verdict"]["program"] == "backward"
    assert cert["verdict"]["reason"].startswith("not proven: cannot analyse dot_general at ")


def test_remat_variants_are_proven_too():
    for config in (small("myopic").replace(remat="full"), small("myopic_kv").replace(remat="dots")):
        for impl in ("fast", "reference"):
            cert = prove(Target(mode=config.gradient_mode), config.replace(attention_impl=impl))
            assert cert["verdict"]["myopic"] == "proven"


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
    assert config["attention_impl"] == "fast"  # the default: the program that trains
    assert (config["d_model"], config["n_layers"], config["seq_len"]) == (8, 2, 16)
    assert config["remat"] == "full" and config["gradient_mode"] == "myopic"
    assert config["param_dtype"] == config["compute_dtype"] == "float32"


# ---- soundness cross-check -----------------------------------------------------------------------


@functools.cache
def proven_region(
    target: Target, n_layers: int, n_heads: int, impl: str, program: str
) -> zones.Region:
    config = small(target.mode or "standard", n_layers, n_heads).replace(attention_impl=impl)
    traced = PROGRAMS[program].trace(target.forward(), config)
    return analyse(traced, frozenset({"no_overflow"}), PROGRAMS[program]).outputs[1].dep


def measured(
    target: Target, n_layers: int, n_heads: int, impl: str, t: int, seed: int
) -> np.ndarray:
    """|∂L_t/∂δ^l_s| maxed over D, [l, t, s], float64 (rows by VJPs: the backward program)."""
    config = small(target.mode or "standard", n_layers, n_heads).replace(attention_impl=impl)
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
@settings(max_examples=5, deadline=None, derandomize=True)
@example(target=Target(mode="standard"), n_layers=2, n_heads=2, impl="fast", t=3, seed=0)
@example(target=Target(mutant="vjp_leak"), n_layers=2, n_heads=2, impl="fast", t=3, seed=0)
@given(
    target=st.sampled_from(TARGETS),
    n_layers=st.integers(1, 3),
    n_heads=st.sampled_from([1, 2, 4]),
    impl=st.sampled_from(["fast", "reference"]),
    t=st.sampled_from([2, 3, 5]),
    seed=st.integers(0, 3),
)
def test_proven_pattern_contains_the_measured_jacobian(target, n_layers, n_heads, impl, t, seed):
    """The backward program's region (and the JVP program's, where one exists) contains every
    measured nonzero ∂L_t/∂δ^l_s."""
    jac = measured(target, n_layers, n_heads, impl, t, seed)
    assert jac.shape == (n_layers, t, t)
    assert np.all(np.diagonal(jac, axis1=1, axis2=2) > 0)  # the check is not vacuous
    region = proven_region(target, n_layers, n_heads, impl, "backward")
    if (impl == "reference" and target.mutant is None) or target.mode == "standard":
        region_jvp = proven_region(target, n_layers, n_heads, impl, "jvp")
        _check_contains(region_jvp, jac, target)
    _check_contains(region, jac, target)


def _check_contains(region: zones.Region, jac: np.ndarray, target: Target) -> None:
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
