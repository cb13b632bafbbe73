"""The pre-caching experiments: smoke runs of every task write their artifacts, the command's
errors are one line, and a page redraws byte for byte from its JSON."""

import json
import shutil
from pathlib import Path

import pytest

from experiments.precaching import map as map_task
from experiments.precaching import sine
from experiments.precaching.__main__ import main
from myojax import cli

RESULTS = Path(__file__).parents[1] / "results"


def test_map_smoke_run_writes_artifacts_for_both_modes_and_sizes(tmp_path):
    settings = map_task.Settings(
        seeds=1, steps=20, seq_len=8, lag=2, sizes=(16,), probe_sequences=24
    )
    results = map_task.run(settings, tmp_path, show=False, log=False)
    saved = json.loads((tmp_path / "precaching_map.json").read_text())
    assert [r["mode"] for r in saved["runs"]] == ["standard", "myopic"]
    for row in saved["runs"]:
        for label in map_task.LABELS:
            accs = row["probe_accuracy"][label]
            assert len(accs) == settings.n_layers + 1 and all(0 <= a <= 1 for a in accs)
    assert (tmp_path / "precaching_map.png").stat().st_size > 0
    report = (tmp_path / "precaching_map.md").read_text()
    assert f"{results['summary']['d16 myopic']['loss'][0]:.3f}" in report


def test_sine_smoke_run_writes_every_artifact(tmp_path):
    settings = sine.SineSettings(
        seq_len=8, n_lags=2, d_model=8, steps=6, batch_size=4, seeds=1, ps=(0.3,),
        modes=("standard", "myopic"), eval_sequences=8, probe_sequences=16, probe_lags=3,
    )  # fmt: skip
    results = sine.run_all(settings, tmp_path, command="test", log=False)
    modes = [r["mode"] for r in results["runs"]]
    assert sorted(modes) == ["myopic", "myopic->standard", "standard", "standard->myopic"]
    assert results["runs_planned"] == len(results["runs"])
    r2 = results["runs"][0]["probes"]["r2"]
    assert len(r2) == settings.n_layers + 1 and len(r2[0]) == settings.probe_lags + 1
    report = (tmp_path / "precaching_sine.md").read_text()
    assert f"{results['summary']['p=0.3 myopic']['loss'][0]:.4f}" in report
    assert (tmp_path / "precaching_sine.png").stat().st_size > 0


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    out = ["--out", str(tmp_path)]
    assert cli.run(main, ["--task", "map", "--quick", "--modes", "standard,myopc", *out]) == 2
    assert "gradient_mode" in capsys.readouterr().err
    assert cli.run(main, ["--task", "map", "--full", *out]) == 2
    assert cli.run(main, ["--task", "sine", "--seeds", "0", *out]) == 2
    assert capsys.readouterr().err.startswith("error: --full applies to --task sine only")


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_facts_smoke_run_writes_every_artifact(tmp_path):
    from experiments.precaching import facts

    settings = facts.FactsSettings(
        seeds=1, steps=4, d_model=8, n_heads=2, eval_sequences=16, probe_sequences=32
    )
    results = facts.run_all(settings, tmp_path, command="test")
    probes = results["runs"][0]["probes"]
    assert set(probes) >= set(facts.SITES) and len(probes["query"]) == settings.n_layers + 1
    report = (tmp_path / "precaching_facts.md").read_text()
    assert f"{results['runs'][1]['answer_accuracy']:.3f}" in report
    assert (tmp_path / "precaching_facts.png").stat().st_size > 0
    # the saved JSON redraws the same section without training
    (tmp_path / "again").mkdir()
    json_path = str(tmp_path / "precaching_facts.json")
    assert (
        main(["--task", "facts", "--from-json", json_path, "--out", str(tmp_path / "again")]) == 0
    )
    assert (tmp_path / "again" / "precaching_facts.md").read_text() == report


def test_first_decodable_needs_a_margin_over_each_sites_control():
    from experiments.precaching import facts

    flat = [0.3, 0.3, 0.3]
    summary = {
        "planted": {
            "entity": [0.9, 0.95, 0.99], "entity_control": [0.9, 0.9, 0.8],
            "filler": [0.25, 0.5, 0.5], "filler_shuffled": flat,
            "query": [0.3, 0.35, 0.9], "query_shuffled": flat,
        },
        "none": {
            # a high embedding-level accuracy is the token's identity, not a stored attribute
            "entity": [0.9, 0.9, 0.9], "entity_control": [0.5, 0.5, 0.5],
            "filler": flat, "filler_shuffled": flat, "query": flat, "query_shuffled": flat,
        },
    }  # fmt: skip
    found = facts.first_decodable(summary)
    assert found["planted"]["entity"].startswith("layer 2")  # gap 0.19 vs the embedding's 0.0
    assert found["planted"]["filler"].startswith("layer 1")
    assert found["planted"]["query"].startswith("layer 2")
    assert all(v.startswith("nowhere") for v in found["none"].values())


@pytest.mark.parametrize("task", ["sine", "facts", "map"])
def test_the_committed_pages_redraw_byte_for_byte_from_their_json(task, tmp_path):
    saved = tmp_path / f"precaching_{task}.json"
    shutil.copy(RESULTS / f"precaching_{task}.json", saved)
    assert main(["--task", task, "--from-json", str(saved), "--out", str(tmp_path)]) == 0
    page = (tmp_path / f"precaching_{task}.md").read_text()
    assert page == (RESULTS / f"precaching_{task}.md").read_text()
    # negative control: a changed record in the JSON changes the page
    doc = json.loads(saved.read_text())
    saved.write_text(json.dumps({**doc, "wall_s": doc["wall_s"] + 100}))
    assert main(["--task", task, "--from-json", str(saved), "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"precaching_{task}.md").read_text() != page
