"""Verdicts from the excess over the swapped twin, on planted results; the control checks
and their negative control."""

import dataclasses

import numpy as np

from experiments.hiads import analysis
from experiments.hiads.settings import Setting


def _row(name: str, coop: list[float], role: str = "test", swap: bool = False) -> analysis.Row:
    s = Setting(name, "reinforce", "fam", role=role, swap=swap, seeds=len(coop))
    return analysis.Row(s, coop, [float(c > 0.5) for c in coop], [0.0], [0.0], [0.0])


def test_excess_and_verdicts_on_planted_populations():
    rows = [
        _row("coop", [0.8, 0.9, 0.85, 0.95]),
        _row("coop_swap", [0.0, 0.05, 0.02, 0.01], swap=True),
        _row("none", [0.01, 0.02, 0.01, 0.02]),
        _row("none_swap", [0.01, 0.02, 0.02, 0.01], swap=True),
        _row("noisy", [0.0, 0.9, 0.0, 0.8]),
        _row("noisy_swap", [0.0, 0.0, 0.0, 0.0], swap=True),
        _row("small", [0.06, 0.07, 0.06, 0.07]),
        _row("small_swap", [0.05, 0.05, 0.05, 0.05], swap=True),
        _row("orphan", [0.9, 0.9]),  # no twin: no verdict
    ]
    ex = {e.row.setting.name: e for e in analysis.excesses(rows)}
    assert set(ex) == {"coop", "none", "noisy", "small"}
    assert ex["coop"].verdict == "FAIL" and abs(ex["coop"].mean - 0.855) < 1e-9
    assert ex["coop"].failing_mean == 1.0
    assert ex["none"].verdict == "PASS"
    assert ex["noisy"].verdict == "inconclusive"  # the interval reaches 0
    assert ex["small"].verdict == "FAIL, small"  # above 0, below the margin


def test_control_checks_flag_a_control_that_fails():
    ok = [
        _row("neg", [0.0, 0.01, 0.0], role="control-"),
        _row("neg_swap", [0.0, 0.0, 0.01], swap=True, role="control-"),
        _row("pos", [0.9, 0.95, 0.9], role="control+"),
        _row("pos_swap", [0.0, 0.0, 0.01], swap=True, role="control+"),
    ]
    assert all(analysis.control_checks(analysis.excesses(ok)).values())
    bad = [dataclasses.replace(ok[0], cooperation=[0.9, 0.95, 0.9]), *ok[1:]]
    checks = analysis.control_checks(analysis.excesses(bad))
    assert checks == {"neg PASS": False, "pos FAIL": True}


def test_summarise_bins_curves_and_counts_failing_agents():
    s = Setting("x", "reinforce", "fam", seeds=2, agents=3, steps=10)
    curves = np.tile(np.linspace(0, 1, 10), (2, 1))
    finals = np.array([[0.9, 0.1, 0.6], [0.2, 0.2, 0.2]])
    row = analysis.summarise(s, curves, finals, bins=5, rng=np.random.default_rng(0))
    assert row.failing == [2 / 3, 0.0] and len(row.curve_mean) == 5
    np.testing.assert_allclose(row.cooperation, [1.6 / 3, 0.2])
    back = analysis.Row.from_json(dataclasses.asdict(row))
    assert back == row
