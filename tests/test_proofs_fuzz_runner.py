"""proofs.fuzz.runner: the CI run checks MYOJAX_FUZZ_EXAMPLES programs (default 150, about 1
in 16 at T > 256) and requires that it means something; a random run finds an unsound rule on
its own; the record says whether a run passed."""

from __future__ import annotations

import os

import pytest

from proofs import rules
from proofs.fuzz.differential import Counterexample
from proofs.fuzz.runner import FuzzConfig, Stats, passed, run, run_and_record
from proofs.lattice import unknown

CI_PROGRAMS = int(os.environ.get("MYOJAX_FUZZ_EXAMPLES", "150"))


def _assert_run_is_meaningful(stats: Stats) -> None:
    assert stats.acceptable() == [], stats.to_json()
    # the finite assumption excludes few: inputs drawn far from N(0, 1) (3 draws in 7) and the
    # float-edge kinds overflow on purpose, and a NaN / inf tangent counts as leaving it
    assert stats.skipped < stats.programs // 4
    covered = set(stats.to_json()["primitives_covered"])
    must_cover = {"iota", "select_n", "convert_element_type", "dot_general", "reshape", "scan"}
    assert must_cover | {"cumsum", "reduce_max", "exp", "cond", "transpose"} <= covered


def test_fuzz_finds_no_unsound_verdict():
    # raises Counterexample (shrunk) on the first one; 1 in 16 at T > 256 keeps CI short
    stats = run(FuzzConfig(programs=CI_PROGRAMS, seed=0, big_every=16))
    assert stats.programs == CI_PROGRAMS  # hypothesis found that many distinct programs
    _assert_run_is_meaningful(stats)


def test_a_random_run_finds_an_unsound_rule(monkeypatch):
    def claims_local(eqn, ins, ctx):
        return [unknown(ins[0].rank, ins[0].dep)]

    monkeypatch.setitem(rules.RULES, "cumsum", claims_local)
    with pytest.raises(Counterexample):
        run(FuzzConfig(programs=30, seed=0))
    record = run_and_record(FuzzConfig(programs=30, seed=0), "python -m proofs.fuzz")
    assert record["counterexample"] and "programs" not in record and not passed(record)


def test_acceptance_names_what_a_run_did_not_test():
    stats = Stats()
    stats.programs, stats.verdicts["refused"] = 4, 3
    problems = stats.acceptable()
    assert problems[0] == "only 1/4 definite verdicts"
    assert "no program checked at T > 256" in problems
    assert passed({"counterexample": None, "acceptance_problems": []})
    assert not passed({"counterexample": None, "acceptance_problems": problems})


@pytest.mark.parametrize("field", ["programs", "big_every"])
def test_config_refuses_an_empty_run(field):
    with pytest.raises(ValueError, match=f"FuzzConfig.{field} must be at least 1, got 0"):
        FuzzConfig(**{field: 0})
    assert getattr(FuzzConfig(**{field: 1}), field) == 1  # negative control: 1 is a run
