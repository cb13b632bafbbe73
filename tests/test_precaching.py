import json

from experiments.precaching import cli as precaching


def test_smoke_run_writes_artifacts_for_both_modes(tmp_path):
    settings = precaching.Settings(
        seeds=1, steps=20, seq_len=8, lag=2, d_model=16, probe_sequences=24
    )
    results = precaching.run(settings, tmp_path, show=False, log=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["mode"] for r in saved["runs"]] == ["standard", "myopic"]
    for row in saved["runs"]:
        for label in precaching.LABELS:
            accs = row["probe_accuracy"][label]
            assert len(accs) == settings.n_layers + 1 and all(0 <= a <= 1 for a in accs)
    assert (tmp_path / "probes.png").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert f"{results['summary']['myopic']['loss'][0]:.3f}" in report


def test_cli_rejects_unknown_mode(tmp_path, capsys):
    assert precaching.main(["--quick", "--modes", "standard,myopc", "--out", str(tmp_path)]) == 2
    assert "gradient_mode" in capsys.readouterr().err
