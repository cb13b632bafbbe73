"""proofs.fuzz.custom_vjp: custom-VJP programs with exact and deliberately wrong backward rules,
checked on the backward program that runs; a CI run finds no counterexample and means
something, and an unsound transposition rule is found."""

from __future__ import annotations

import os

import pytest

from proofs import rules
from proofs.fuzz.custom_vjp import CustomVjp, check_custom_vjp
from proofs.fuzz.differential import Counterexample
from proofs.fuzz.grammar import Op
from proofs.fuzz.runner import FuzzConfig, run
from proofs.lattice import unknown

# half the plain family's count: the grammar's many step kinds make the one backward verdict
# that needs an anti-causal step (same-or-past) rare in fewer draws
CI_PROGRAMS = int(os.environ.get("MYOJAX_FUZZ_EXAMPLES", "150")) // 2
LOCAL = (Op("unary", ("tanh",), (0,)),)  # out[t] = tanh(x[t])


@pytest.mark.parametrize(
    ("rule", "params", "verdict"),
    [
        ("exact", (), "same-position"),
        ("shift", (1,), "same-or-past"),  # x̄[s] = ȳ[s + 1]·…: the loss at t = s + 1 reaches s
        ("shift", (-1,), "any"),  # the loss at t = s - 1 reaches s: the future
        ("cumulated", (True,), "same-or-past"),  # x̄[s] sums ȳ[t] over t >= s
        ("scaled", (), "same-position"),
        ("local", (), "same-position"),
        ("zero", (), "none"),
    ],
)
def test_the_analysis_describes_the_rule_that_runs_not_the_function(rule, params, verdict):
    """Wrong rules of a position-local function: the verdict follows the backward rule."""
    outcome = check_custom_vjp(CustomVjp(LOCAL, rule, params), t=5)
    assert outcome.verdict == outcome.measured == verdict
    # with a symbolic T a shift's concatenate sits at an unresolved offset: coarser, still sound
    assert outcome.symbolic == ("any" if rule == "shift" else verdict)


def test_another_programs_vjp_is_analysed_as_that_program():
    cumsum = (Op("cumulative", ("cumsum", 0, False), (0,)),)
    outcome = check_custom_vjp(CustomVjp(LOCAL, "other", (), cumsum), t=5)
    assert outcome.verdict == outcome.measured == "same-or-past"


def test_fuzz_finds_no_unsound_verdict_on_custom_vjp_programs():
    stats = run(FuzzConfig(programs=CI_PROGRAMS, seed=0, big_every=8, family="custom_vjp"))
    assert stats.programs == CI_PROGRAMS
    assert stats.acceptable() == [], stats.to_json()
    covered = set(stats.to_json()["primitives_covered"])
    assert {"add_any", "transpose", "dot_general", "cumsum", "scatter-add"} <= covered


def test_a_custom_vjp_run_finds_an_unsound_transposition_rule(monkeypatch):
    """Negative control: add_any (the sum of cotangents) claiming only its first operand."""

    def first_only(eqn, ins, ctx):
        return [unknown(ins[0].rank, ins[0].dep)]

    monkeypatch.setitem(rules.RULES, "add_any", first_only)
    with pytest.raises(Counterexample):
        run(FuzzConfig(programs=80, seed=0, family="custom_vjp"))


def test_family_is_validated():
    with pytest.raises(ValueError, match="family"):
        FuzzConfig(family="nope")  # type: ignore[arg-type]
