"""The consequence-blindness toys: the linear task's tilt, the Fibonacci channel measures, and
the command's ending (page, --from-json)."""

import json

import numpy as np
import pytest

from experiments.consequence_blindness import fib as cb
from experiments.consequence_blindness import linear
from experiments.consequence_blindness.__main__ import main
from myojax import cli


def test_at_rho_half_only_the_live_regime_shapes_its_first_prediction_and_it_pays():
    rows = {r: linear.train_regime(r, 0.5, seeds=2, steps=400) for r in linear.REGIMES}
    for blind in ("teacher", "fed_stopped"):
        assert np.all(np.abs(rows[blind]["along_perp"]) < 0.05), rows[blind]
        assert np.all(rows[blind]["along_w"] > 0.9)
    live = rows["fed_live"]
    assert np.all(live["along_perp"] > 0.1)  # the effect the blind regimes must not show
    total = {r: m["z1_mse"] + m["z2_mse"] for r, m in rows.items()}
    assert np.all(total["fed_live"] < total["fed_stopped"] - 0.1)  # analytic gap 0.25
    optimum = linear.Analytic(0.5)
    assert np.all(total["fed_live"] > optimum.total("fed_live") - 0.03)  # nothing beats it


def test_the_analytic_totals_are_a_flat_valley_at_rho_zero():
    flat, tilted = linear.Analytic(0.0), linear.Analytic(0.5)
    assert flat.total("fed_live") == pytest.approx(flat.total("fed_stopped"))
    assert flat.along("fed_live") is None
    # Negative control: with correlated targets the live optimum is strictly lower.
    assert tilted.total("fed_live") < tilted.total("fed_stopped") - 0.2


def test_cli_rejects_bad_arguments(capsys):
    assert cli.run(main, ["--seeds", "0"]) == 2
    assert "positive" in capsys.readouterr().err
    assert cli.run(main, ["--task", "fib", "--seeds", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: --task fib needs --seeds >= 3")


def test_cli_rejects_an_unknown_task(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--task", "nonsense"])
    assert e.value.code == 2 and "--task" in capsys.readouterr().err


def test_a_short_run_writes_its_page_and_redraws_it_from_its_json(tmp_path):
    out = tmp_path / "run"
    assert main(["--seeds", "2", "--steps", "20", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    want = [(rho, r) for rho in linear.LinearConfig().rhos for r in linear.REGIMES for _ in "ab"]
    assert [(r["rho"], r["regime"]) for r in results["runs"]] == want
    report = (out / "report.md").read_text()
    assert "![linear](consequence_blindness_linear.png)" in report
    assert f"`{results['meta']['command']}`" in report
    again = tmp_path / "again"
    assert main(["--from-json", str(out / "results.json"), "--out", str(again)]) == 0
    assert (again / "report.md").read_text() == report
    assert (again / "consequence_blindness_linear.png").is_file()
    assert not (again / "results.json").exists()  # redrawing writes no results


# ---------------------------------------------------------------------------- Fibonacci task


def test_fib_targets_are_standardised_logs_of_consecutive_fibonacci_numbers():
    assert [cb.fib(n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    x, z1, z2 = cb.fib_targets(12)
    assert x.tolist() == list(range(1, 13))
    np.testing.assert_allclose(z1[1:], z2[:-1])  # z2(x) = z1(x + 1)
    scale = (z2[4] - z1[4]) / np.log(8 / 5)  # one scale and one offset for both targets
    np.testing.assert_allclose(z2 - z1, np.log([cb.fib(n + 1) / cb.fib(n) for n in x]) * scale)
    # What an affine g2 cannot get from z1 is Binet's correction: largest at small x.
    rho = cb.affine_residual(z1, z2)
    assert abs(rho[0]) == np.abs(rho).max() and np.mean(rho**2) > 1e-3


def _rho_and_targets():
    _, z1, z2 = cb.fib_targets(12)
    return cb.affine_residual(z1, z2), z1, z2


def test_channel_detects_a_planted_channel():
    rho, z1, z2 = _rho_and_targets()
    rng = np.random.default_rng(0)
    for i in range(10):
        e = 0.5 * rho + 1e-3 * np.random.default_rng(i).normal(size=rho.shape)
        m = cb.channel(e, z1, z2, rng, permutations=500)
        assert m["p_value"] < 0.01 and m["probe_r2"] > 0.9 and m["gain"] > 1e-3, m
        assert abs(m["probe_slope"] - 2.0) < 0.2  # ρ ≈ 2e


def test_channel_reports_none_without_a_channel():
    rho, z1, z2 = _rho_and_targets()
    rng = np.random.default_rng(0)
    flat = cb.channel(np.zeros_like(rho), z1, z2, rng, permutations=200)
    assert flat["gain"] == 0.0 and flat["probe_r2"] == 0.0 and flat["p_value"] == 1.0
    p_values, gains = [], []
    for i in range(40):  # errors unrelated to z2, of the planted channel's size
        e = rho.std() * 0.5 * np.random.default_rng(100 + i).normal(size=rho.shape)
        m = cb.channel(e, z1, z2, rng, permutations=200)
        p_values.append(m["p_value"])
        gains.append(m["gain"])
    # A calibrated null: about 5% of unrelated errors fall below p = 0.05, none is a channel.
    assert sum(p < 0.05 for p in p_values) <= 6, p_values
    assert np.median(gains) < 0 and max(gains) < 0.5 * np.mean(rho**2), gains


def test_only_live_gradients_make_g1_leak_the_hidden_part_of_z2():
    cfg = cb.FibConfig(steps=3000)
    _, z1, z2 = cb.fib_targets(cfg.x_max)
    rng = np.random.default_rng(0)
    out = {}
    for regime in ("fed_stopped", "fed_live"):
        z1_hat, _ = cb.train_fib(regime, cfg, seeds=[0, 1])
        out[regime] = [cb.channel(e - z1, z1, z2, rng, permutations=300) for e in z1_hat]
        out[regime + "_mse"] = np.mean((z1_hat - z1) ** 2)
    assert all(m["p_value"] < 0.01 and m["gain"] > 1e-3 for m in out["fed_live"]), out
    assert all(m["p_value"] > 0.01 and m["gain"] <= 1e-6 for m in out["fed_stopped"]), out
    assert out["fed_live_mse"] > 100 * out["fed_stopped_mse"]  # the leak costs z1 accuracy
