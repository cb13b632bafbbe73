"""``python -m experiments.lm_myopia`` end to end on a smoke study: the page, figures and JSON
(every section, every size), a redraw from the JSON byte for byte, the switched runs cached in
the study, and one-line errors."""

from __future__ import annotations

import json

from experiments.lm_myopia.__main__ import main
from experiments.lm_myopia.records import from_json, to_json
from myojax import cli
from tests.lm_myopia_fixtures import smoke_study  # noqa: F401 (a fixture)

FAST = ["--n-boot", "20", "--probe-sequences", "16"]


def test_command_writes_the_page_and_redraws_it_from_its_json(smoke_study, tmp_path):  # noqa: F811
    out = tmp_path / "page"
    assert main(["--study", str(smoke_study), "--out", str(out), *FAST]) == 0
    obj = json.loads((out / "lm_myopia-smoke.json").read_text())
    results = from_json(obj)
    assert json.loads(json.dumps(to_json(results))) == obj  # the records round-trip
    assert results.sizes == ("L1w16", "L1w32", "L2w32") and results.seeds == (0, 1)
    assert len(results.sacrifice) == 3 and len(results.probes) == 3 * 2 * 2
    assert all(len(p.accuracy) == int(p.size[1]) + 1 for p in results.probes)  # every layer
    assert [a.name for a in results.switch.arms] == [
        "standard", "myopic", "standard -> myopic", "myopic -> standard"
    ]  # fmt: skip
    page = (out / "lm_myopia-smoke.md").read_text()
    for heading in ("## What the measurements show", "## 1. Sacrifice", "## 2. Future-token",
                    "## 3. Breadcrumbs"):  # fmt: skip
        assert heading in page
    assert f"{results.sacrifice[0].gap.point:+.4f}" in page
    assert (out / "sacrifice.png").stat().st_size > 0 and (out / "probes.png").stat().st_size > 0
    redraw = tmp_path / "redraw"
    assert main(["--from-json", str(out / "lm_myopia-smoke.json"), "--out", str(redraw)]) == 0
    assert (redraw / "lm_myopia-smoke.md").read_text() == page
    # The switched runs are cached in the study: a second analysis trains nothing.
    again = tmp_path / "again"
    assert main(["--study", str(smoke_study), "--out", str(again), *FAST]) == 0
    cached = from_json(json.loads((again / "lm_myopia-smoke.json").read_text()))
    assert results.switch.cpu_s > 0 and cached.switch.cpu_s == 0
    assert cached.switch.arms == results.switch.arms


def test_errors_are_one_line(tmp_path, capsys):
    assert cli.run(main, []) == 2
    assert capsys.readouterr().err.startswith("error: give --study DIR")
    assert cli.run(main, ["--study", str(tmp_path)]) == 2
    assert "holds no study" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert cli.run(main, ["--from-json", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --from-json") and len(err.strip().splitlines()) == 1
    assert cli.run(main, ["--study", str(tmp_path), "--n-boot", "3"]) == 2
