"""experiments.scaling.step_costs and ``python -m experiments.scaling.costs``: the projection
adds up the measured costs over the preset's runs, the committed JSON reads as records and
writes back byte for byte, and the committed page regenerates byte for byte from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.scaling import protocol, records, step_costs
from experiments.scaling.costs import main
from myojax import cli

REPO = Path(__file__).resolve().parents[1]
SMOKE = protocol.STUDY_PRESETS["smoke"]


def _rows(cpu_per_step: float, compile_s: float) -> list[step_costs.SizeCost]:
    return [
        step_costs.SizeCost(
            size=s.name,
            non_embedding_params=1,
            compile_cpu_s=compile_s,
            compile_wall_s=compile_s,
            cpu_per_step_s=cpu_per_step,
            wall_per_step_s=cpu_per_step,
            load_avg_1_5_15=None,
        )
        for s in SMOKE.sizes
    ]


def test_projection_adds_steps_compiles_and_a_cost_per_run():
    specs = protocol.plan_specs(SMOKE, ("standard", "myopic"))
    pr = step_costs.project(SMOKE, _rows(0.01, 2.0), per_run_s=1.0)
    assert pr.runs == len(specs) and pr.per_run_cpu_s == len(specs)
    assert pr.train_cpu_s == pytest.approx(sum(s.steps for s in specs) * 0.01)
    assert pr.compile_cpu_s == pytest.approx(2.0 * pr.compiled_programs)
    total = pr.train_cpu_s + pr.compile_cpu_s + pr.per_run_cpu_s
    assert pr.total_cpu_s == pytest.approx(total)
    # Negative control: twice the step cost doubles the training part only.
    double = step_costs.project(SMOKE, _rows(0.02, 2.0), per_run_s=1.0)
    assert double.train_cpu_s == pytest.approx(2 * pr.train_cpu_s)
    assert double.compile_cpu_s == pr.compile_cpu_s


def test_committed_json_reads_as_records_and_writes_back_byte_for_byte():
    text = (REPO / "results" / "scaling-costs-cpu.json").read_text()
    doc = step_costs.from_json(json.loads(text))
    assert doc.preset == "cpu" and len(doc.sizes) == len(protocol.STUDY_PRESETS["cpu"].sizes)
    assert json.dumps(records.to_json(doc), indent=1) + "\n" == text
    # Negative control: what is not a costs record is one clear error.
    with pytest.raises(ValueError, match="malformed scaling-costs JSON"):
        step_costs.from_json({k: v for k, v in json.loads(text).items() if k != "projection"})


def test_committed_page_regenerates_from_its_json(tmp_path):
    src = REPO / "results" / "scaling-costs-cpu.json"
    assert main(["--from-json", str(src), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "scaling-costs-cpu.md").read_text()
    assert page == (REPO / "results" / "scaling-costs-cpu.md").read_text()
    assert not (tmp_path / "scaling-costs-cpu.json").exists()  # the JSON is not rewritten
    assert json.loads(src.read_text())["command"] in page


def test_bad_steps_is_one_clear_error(capsys):
    assert cli.run(main, ["--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps must be >= 1"


def test_from_json_of_another_file_is_one_clear_error(tmp_path, capsys):
    src = REPO / "results" / "scaling-coverage.json"
    assert cli.run(main, ["--from-json", str(src), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: malformed scaling-costs JSON")
    assert not list(tmp_path.iterdir())
