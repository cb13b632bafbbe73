"""proofs.fuzz.differential: the check catches unsound rules (negative controls), measures every
column, and every counterexample the fuzzer has found stays fixed (REGRESSIONS)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from proofs import rules
from proofs.fuzz.differential import Counterexample, check, finest, measure
from proofs.fuzz.grammar import Op, build
from proofs.lattice import Position, unknown
from proofs.rules import dtypes

# ---- negative controls: the checker does catch unsound rules ------------------------------------

INT8_TRIL = Op("masked_sum", (("ge", "int8", True, 0, 0, False), 0.0), (0, 0))


def test_checker_catches_the_old_wrapping_iota_rule(monkeypatch):
    """The int8 iota family: with the dtype check removed, the grammar's int8 causal mask at
    T = 300 is claimed causal and the measured Jacobian refutes it."""
    assert check((INT8_TRIL,), 300).verdict == "any"  # fixed: no claim
    monkeypatch.setattr(dtypes, "index_fits", lambda *a: True)
    with pytest.raises(Counterexample, match="T=300"):
        check((INT8_TRIL,), 300)


def test_checker_catches_an_unsound_cumsum_rule(monkeypatch):
    def claims_local(eqn, ins, ctx):
        return [unknown(ins[0].rank, ins[0].dep)]

    monkeypatch.setitem(rules.RULES, "cumsum", claims_local)
    with pytest.raises(Counterexample):
        check((Op("cumulative", ("cumsum", 0, False), (0,)),), 5)


def test_measure_sees_every_column():
    primal, changed, finite = measure(
        lambda x: jnp.cumsum(x, axis=0), jnp.ones((4, 2)), (), [0, 1, 2, 3], seed=0
    )
    assert primal.shape == (4, 2) and finite
    np.testing.assert_array_equal(changed, np.tril(np.ones((4, 4), bool)))


def test_a_nan_tangent_is_outside_the_finite_assumption():
    # acosh(1 + u²) at u = 0 (the shifted-in zeros): finite values, an infinite derivative, so
    # its 0 tangent is NaN whichever position moves; the check skips it rather than call the
    # analyser unsound (found by the fuzzer)
    program = (Op("shift", (-2,), (0,)), Op("lax_unary", ("acosh",), (0,)))
    assert not measure(build(program), jnp.ones((3, 4)), (jnp.ones((3, 4)), jnp.eye(4)), [0], 0)[2]
    assert check(program, 3).skipped == "non-finite"


def test_finest_is_the_finest_verdict_containing_the_pattern():
    eye, tril = np.eye(3, dtype=bool), np.tril(np.ones((3, 3), bool))
    assert finest(np.zeros((3, 3), bool), [0, 1, 2]) == Position.NONE
    assert finest(eye, [0, 1, 2]) == Position.SAME
    assert finest(tril, [0, 1, 2]) == Position.PAST
    assert finest(tril.T, [0, 1, 2]) == Position.ANY
    assert finest(eye[:, :2], [1, 2]) == Position.ANY  # columns name the measured positions


# ---- regressions: every counterexample the fuzzer found -----------------------------------------
# (program, T, the verdict it must now get). The first three are the issue-12 families written in
# the grammar: an int8 causal mask and a bfloat16 eye at T = 300, and a rectangular eye-masked
# softmax whose rows t >= T // 2 + 1 are fully masked (no_overflow must not apply there).

RECT_EYE = ("eq", "int32", True, 0, 0, True)
REGRESSIONS = [
    pytest.param((INT8_TRIL,), 300, "any", id="int8-tril"),
    pytest.param(
        (Op("masked_sum", (("eq", "bfloat16", True, 0, 0, False), 0.0), (0, 0)),),
        300,
        "any",
        id="bf16-eye",
    ),
    pytest.param((Op("masked_softmax", (RECT_EYE, "min"), (0, 0, 0)),), 5, "any", id="rect-eye"),
]


@pytest.mark.parametrize("program,t,verdict", REGRESSIONS)
def test_fuzz_regressions(program, t, verdict):
    assert check(program, t).verdict == verdict
