"""experiments.scaling.interval_coverage and ``python -m experiments.scaling.coverage``: a
small coverage study has the committed page's shape, the committed JSON reads as records and
writes back byte for byte, and the committed page regenerates byte for byte from it (the
coverage itself is checked in tests/test_bootstrap.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.scaling import interval_coverage as cov
from experiments.scaling import records
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


def test_committed_json_reads_as_records_and_writes_back_byte_for_byte():
    text = (REPO / "results" / "scaling-coverage.json").read_text()
    doc = cov.from_json(json.loads(text))
    assert set(doc.results) == set(cov.REGIMES)
    assert all(set(by_method) == set(cov.METHODS) for by_method in doc.results.values())
    assert json.dumps(records.to_json(doc), indent=1) + "\n" == text
    # Negative control: a row without its coverage is one clear error.
    obj = json.loads(text)
    del obj["results"]["balanced"]["crossed_t"]["slope_coverage"]
    with pytest.raises(ValueError, match="malformed scaling-coverage JSON"):
        cov.from_json(obj)


def test_too_few_studies_is_one_clear_error(capsys):
    assert cli.run(main, ["--studies", "3"]) == 2
    assert "--studies and --n-boot must be >= 10" in capsys.readouterr().err
