"""experiments.scaling.publishing: the committed pages regenerate byte for byte from their
committed JSON; --publish writes results/ and only its README section; the default page carries
the cpu-large answer and the memory check, and is redrawn when cpu-large is published."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from experiments.scaling import findings, publishing, records
from tests import scaling_synthetic

REPO = Path(__file__).resolve().parents[1]
PAGES = ("scaling.md", "scaling-cpu-large.md", "scaling-cpu.json", "scaling-cpu-large.json")


def test_committed_pages_regenerate_byte_for_byte(tmp_path):
    (tmp_path / "results").mkdir()
    for name in (*PAGES, "memory_plan.json"):
        shutil.copy(REPO / "results" / name, tmp_path / "results" / name)
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    (tmp_path / "results" / "scaling.md").write_text("stale\n")
    for preset in ("cpu", "cpu-large"):
        obj = json.loads((REPO / "results" / f"scaling-{preset}.json").read_text())
        publishing.publish(records.results_from_json(obj), tmp_path)
    for name in PAGES:
        assert (tmp_path / "results" / name).read_text() == (REPO / "results" / name).read_text()
    assert (tmp_path / "README.md").read_text() == (REPO / "README.md").read_text()


def test_publish_writes_results_and_only_the_readme_section(tmp_path):
    study = scaling_synthetic.study()
    readme = tmp_path / "README.md"
    begin, end = (f"<!-- {w} {publishing.README_KEY} -->" for w in ("begin", "end"))
    readme.write_text(f"# Title\n\nhand-written\n\n{begin}\nstale figure\n{end}\n\nafter\n")
    publishing.publish(study, tmp_path)
    text = readme.read_text()
    assert "stale figure" not in text and "hand-written" in text and text.endswith("after\n")
    assert findings.readme_summary(study) in text and study.analysis.answer.text in text
    assert (tmp_path / "results" / "scaling.md").is_file()
    assert (tmp_path / "docs" / "figures" / "scaling" / "gap_vs_params.png").is_file()
    publishing.publish(dataclasses.replace(study, preset="smoke"), tmp_path)  # README untouched
    assert readme.read_text() == text
    large = dataclasses.replace(study, preset="cpu-large", finished=False, planned_runs=99)
    publishing.publish(large, tmp_path)  # its own section; the default's is kept
    after = readme.read_text()
    assert after.startswith(text.rstrip("\n")) and publishing.README_KEYS["cpu-large"] in after
    assert "--preset cpu-large --publish` from the study's" in after
    assert "of 99 planned (PARTIAL" in after and "results/scaling-cpu-large.md" in after


def test_default_page_carries_the_cpu_large_answer_and_the_memory_check(tmp_path):
    study = scaling_synthetic.study()
    results = tmp_path / "results"
    publishing.publish(study, tmp_path)
    page = (results / "scaling.md").read_text()
    assert "No `scaling-cpu-large.json` in results/" in page
    assert "No `memory_plan.json` in results/" in page
    memory = REPO / "results" / "memory_plan.json"
    shutil.copy(memory, results / "memory_plan.json")
    large = dataclasses.replace(
        study, preset="cpu-large", description="THE LARGER LADDER", finished=False, planned_runs=99
    )
    before = (results / "scaling-cpu.json").read_text()
    publishing.publish(large, tmp_path)  # redraws the default page as well
    page = (results / "scaling.md").read_text()
    assert "No `" not in page and (results / "scaling-cpu-large.md").is_file()
    assert page.index("## The larger CPU ladder") < page.index("## Memory planner vs XLA")
    assert "THE LARGER LADDER" in page and "of 99 planned runs" in page
    assert "### The model-free answer" in page
    assert (results / "scaling-cpu.json").read_text() == before
    rows = json.loads(memory.read_text())["rows"]
    assert any("compare" in r for r in rows)
    for r in rows:
        if "compare" in r:
            assert f"{r['xla']['peak'] / 2**30:.3f}" in page


def test_local_report_has_no_companions(tmp_path):
    study = scaling_synthetic.study()
    written = publishing.write(study, tmp_path)
    assert written[0] == tmp_path / "results.json" and written[-1] == tmp_path / "report.md"
    assert records.read_results(tmp_path / "results.json") == study
    assert "No `" not in (tmp_path / "report.md").read_text()
