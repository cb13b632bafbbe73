"""The self-training command: bad input, the committed page, and a tiny end-to-end run."""

import json
from pathlib import Path

import pytest

from experiments.self_training import page
from experiments.self_training.__main__ import main
from myojax import cli

RESULTS = Path(__file__).parents[1] / "results"
TINY = [
    "--pilot-seeds=2", "--min-seeds=2", "--max-seeds=2", "--generations=2", "--mixes=1.0",
    "--d-model=16", "--n-heads=2", "--seq-len=8", "--steps=4", "--batch-size=4",
    "--pool-windows=16", "--feed-every=2", "--feed-windows=2", "--eval-windows=8",
]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["--feed-windows=0"], ["--mixes=1.5"], ["--max-seeds=1"], ["--target-effect=0"]],
)
def test_bad_arguments_exit_2(args, capsys, tmp_path):
    assert cli.run(main, ["--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_from_json_rejects_a_file_that_is_not_a_self_training_record(capsys, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"config": {}}')
    assert cli.run(main, ["--out", str(tmp_path), "--from-json", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not a self-training record" in err


def test_the_committed_page_renders_byte_for_byte_from_its_json():
    """The published page is the render of its JSON; negative control: another loss, another
    page."""
    results = json.loads((RESULTS / "self_training.json").read_text())
    text = page.render(results, "../docs/figures/")
    assert text == (RESULTS / "self_training.md").read_text()
    results["losses"]["myopic/own"][0] += 0.5
    assert page.render(results, "../docs/figures/") != text


@pytest.mark.slow  # trains every condition of a tiny study: minutes on the shared 2 cores
def test_tiny_study_writes_every_condition_and_rerenders(tmp_path):
    assert main(["--out", str(tmp_path / "a"), *TINY]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(results["losses"]) == {
        f"{m}/{c}" for m in ("standard", "myopic") for c in ("gen0", "gen1/mix1", "own", "control")
    }
    assert all(len(v) == 2 for v in results["losses"].values())
    report = (tmp_path / "a" / "report.md").read_text()
    assert "minimum detectable effect" in report and "Own-consequence" in report
    assert (
        main(["--out", str(tmp_path / "b"), "--from-json", str(tmp_path / "a/results.json")]) == 0
    )
    assert (tmp_path / "b" / "report.md").read_text() == report  # rerendered byte for byte
