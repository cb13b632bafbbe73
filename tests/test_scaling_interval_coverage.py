"""experiments.scaling.interval_coverage and ``python -m experiments.scaling.coverage``: a
small coverage study has the committed page's shape, and the committed page regenerates byte for
byte from its committed JSON (the coverage itself is checked in tests/test_bootstrap.py)."""

from __future__ import annotations

from pathlib import Path

from experiments.scaling import interval_coverage as cov
from experiments.scaling.coverage import main
from myojax import cli

REPO = Path(__file__).resolve().parents[1]


def test_a_small_study_renders_every_regime_and_method(tmp_path):
    assert main(["--studies", "10", "--n-boot", "10", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "scaling-coverage.md").read_text()
    for regime in cov.REGIMES:
        assert f"| {regime} (" in page
    assert page.count("| crossed_t |") == page.count("| plain_percentile |") == len(cov.REGIMES)
    assert "python -m experiments.scaling.coverage --studies 10 --n-boot 10" in page


def test_committed_page_regenerates_from_its_json(tmp_path):
    src = REPO / "results" / "scaling-coverage.json"
    assert main(["--from-json", str(src), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "scaling-coverage.md").read_text()
    assert page == (REPO / "results" / "scaling-coverage.md").read_text()


def test_too_few_studies_is_one_clear_error(capsys):
    assert cli.run(main, ["--studies", "3"]) == 2
    assert "--studies and --n-boot must be >= 10" in capsys.readouterr().err
