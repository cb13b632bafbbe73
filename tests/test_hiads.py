"""The HI-ADS command: bad input, a short run's files, --from-json, and the committed page."""

import json
from pathlib import Path

import pytest

from experiments import epilogue
from experiments.hiads import page
from experiments.hiads.__main__ import main
from myojax import cli

RESULTS = Path(__file__).parents[1] / "results"


def test_cli_rejects_bad_arguments(capsys):
    assert cli.run(main, ["--seeds", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: need --seeds >= 2")
    assert cli.run(main, ["--steps", "5"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--only", "nonsense"])
    assert e.value.code == 2 and "unknown setting" in capsys.readouterr().err


def test_a_short_run_writes_its_page_and_redraws_it_from_its_json(tmp_path):
    out = tmp_path / "run"
    covering = "q_paper,q_paper_swap,pbt_paper_n10_k1,pbt_paper_n10_k1_swap,q_paper_beta_0"
    argv = ["--seeds", "2", "--agents", "4", "--steps", "40", "--only", covering]
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["setting"]["name"] for r in results["rows"]] == covering.split(",")
    assert all(r["setting"]["steps"] == 40 for r in results["rows"])
    report = (out / "report.md").read_text()
    assert "| q_paper | 2 × 4 × 40 |" in report and "![HI-ADS unit test](hiads.png)" in report
    assert "q_paper_beta_0 |" not in report  # no twin, no verdict
    again = tmp_path / "again"
    assert main(["--from-json", str(out / "results.json"), "--out", str(again)]) == 0
    assert (again / "report.md").read_text() == report
    assert not (again / "results.json").exists()
    root = tmp_path / "repo"
    epilogue.finish(page.PAGE, results, tmp_path / "pub", publish=True, root=root)
    assert "](../docs/figures/hiads.png)" in (root / "results" / "hiads.md").read_text()
    assert (root / "docs" / "figures" / "hiads.png").is_file()


def test_the_committed_page_is_its_json_rendered():
    results = json.loads((RESULTS / "hiads.json").read_text())
    assert page.report(results, "../docs/figures/") == (RESULTS / "hiads.md").read_text()
    # Every published verdict is the swapped-twin excess: no other rule appears.
    text = (RESULTS / "hiads.md").read_text()
    assert "in at least one seed" not in text and "excess" in text
