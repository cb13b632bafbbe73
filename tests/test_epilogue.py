"""experiments.epilogue: one ending for every experiment (JSON, plots, page, publish) and
--from-json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import epilogue
from myojax import cli


def _plot(results, folder: Path) -> list[str]:
    (folder / "fig.png").write_bytes(b"png" + str(results["x"]).encode())
    return ["fig.png"]


PAGE = epilogue.Page(
    json_name="toy.json",
    page_name="toy.md",
    render=lambda r, prefix: f"# toy\n\nx = {r['x']}\n\n![fig]({prefix}fig.png)\n",
    plot=_plot,
    figures="docs/figures/toy",
    readme=lambda r: f"x is {r['x']}",
    readme_key="toy answer",
)


def test_finish_writes_json_plots_and_page_last(tmp_path):
    written = epilogue.finish(PAGE, {"x": 3}, tmp_path / "out")
    assert [p.name for p in written] == ["toy.json", "fig.png", "report.md"]
    assert json.loads((tmp_path / "out" / "toy.json").read_text()) == {"x": 3}
    assert "![fig](fig.png)" in (tmp_path / "out" / "report.md").read_text()


def test_publish_links_figures_from_the_results_page(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("# readme\n")
    epilogue.finish(PAGE, {"x": 5}, tmp_path / "out", publish=True, root=root)
    page = (root / "results" / "toy.md").read_text()
    assert "![fig](../docs/figures/toy/fig.png)" in page
    assert (root / "docs/figures/toy/fig.png").read_bytes() == b"png5"
    assert json.loads((root / "results" / "toy.json").read_text()) == {"x": 5}
    readme = (root / "README.md").read_text()
    assert "<!-- begin toy answer -->\nx is 5\n<!-- end toy answer -->" in readme
    # A second publish replaces the section instead of appending another.
    epilogue.finish(PAGE, {"x": 6}, tmp_path / "out", publish=True, root=root)
    assert (root / "README.md").read_text().count("begin toy answer") == 1


def test_figures_beside_the_page_need_no_prefix(tmp_path):
    page = epilogue.Page("t.json", "t.md", render=PAGE.render, plot=_plot, figures="results")
    epilogue.finish(page, {"x": 1}, tmp_path / "out", publish=True, root=tmp_path)
    assert "![fig](fig.png)" in (tmp_path / "results" / "t.md").read_text()


def test_from_json_errors_are_one_line(tmp_path):
    with pytest.raises(cli.UsageError, match="no such file"):
        epilogue.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(cli.UsageError, match="not valid JSON"):
        epilogue.load(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text('{"x": 1}')
    assert epilogue.load(tmp_path / "ok.json") == {"x": 1}


def test_flags_are_spelled_once():
    p = cli.parser("prog", "doc")
    epilogue.add_flags(p, "results/toy.md")
    args = p.parse_args(["--publish", "--from-json", "r.json"])
    assert args.publish and args.from_json == Path("r.json")


def test_report_page_keeps_the_local_names_and_publishes_under_its_own(tmp_path):
    page = epilogue.report_page("toy", PAGE.render, _plot)
    epilogue.finish(page, {"x": 2}, tmp_path / "out", publish=True, root=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "fig.png", "report.md", "results.json",
    ]  # fmt: skip
    assert json.loads((tmp_path / "results" / "toy.json").read_text()) == {"x": 2}
    assert "![fig](../docs/figures/fig.png)" in (tmp_path / "results" / "toy.md").read_text()


def test_results_page_and_page_at_keep_their_own_names(tmp_path):
    beside = epilogue.results_page("toy", PAGE.render, _plot)
    epilogue.finish(beside, {"x": 3}, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["fig.png", "toy.json", "toy.md"]
    at = epilogue.page_at(tmp_path / "b" / "plan.md", lambda r, prefix: f"x = {r['x']}\n")
    epilogue.finish(at, {"x": 4}, tmp_path / "b")
    assert (tmp_path / "b" / "plan.md").read_text() == "x = 4\n"
    assert json.loads((tmp_path / "b" / "plan.json").read_text()) == {"x": 4}


def test_redrawing_writes_no_results_into_a_new_folder(tmp_path):
    written = epilogue.finish(PAGE, {"x": 7}, tmp_path / "new" / "out", write_results=False)
    assert [p.name for p in written] == ["fig.png", "report.md"]
    assert not (tmp_path / "new" / "out" / "toy.json").exists()


def test_from_json_alone_for_commands_without_a_page_to_publish():
    p = cli.parser("prog", "doc")
    epilogue.add_from_json_flag(p, "a sweep's JSON")
    assert "a sweep's JSON" in p.format_help() and "--publish" not in p.format_help()
    assert p.parse_args(["--from-json", "s.json"]).from_json == Path("s.json")
