from experiments import consequence_blindness as cb


def test_only_the_live_fed_regime_tilts_its_first_prediction_towards_z2():
    rows = {r: cb.train_regime(r, seed=0, steps=400) for r in cb.REGIMES}
    for blind in ("teacher", "fed_stopped"):
        assert abs(rows[blind]["along_u"]) < 0.05, rows[blind]
        assert rows[blind]["along_w"] > 0.9
    live = rows["fed_live"]
    assert live["along_u"] > 0.1  # the effect the blind regimes must not show
    assert live["z1_mse"] > rows["teacher"]["z1_mse"] and live["z2_mse"] < rows["teacher"]["z2_mse"]


def test_cli_rejects_bad_arguments(capsys):
    assert cb.main(["--seeds", "0"]) == 2
    assert "positive" in capsys.readouterr().err
