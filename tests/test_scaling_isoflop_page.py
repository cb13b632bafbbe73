"""experiments.scaling.isoflop_page and isoflop_record: from a simulated study's record, the
page opens with the answer (too-wide intervals said plainly), flags edges and extrapolation,
lists every run's token reads, draws each profile's parabola; the record round-trips through
its one writer and reader, refuses other kinds and schema versions; --from-json redraws the
same bytes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments import epilogue
from experiments.scaling import (
    isoflop_analysis,
    isoflop_command,
    isoflop_page,
    isoflop_record,
    isoflop_study,
    records,
)
from experiments.scaling.__main__ import main
from myojax import cli
from tests import scaling_isoflop_sim as sim


def _run(mode: str, budget: float, size: int, n: float, loss: float, reads: int = 1):
    record = records.RunRecord(
        mode=mode, role="size", size=f"s{size}", seed=0, budget=budget, d_model=16,
        n_layers=1, params=int(n) + 100, non_embedding_params=int(n), tokens=1000, steps=10,
        lr=0.004, run_dir="x", status="ok", test_loss=loss,
    )  # fmt: skip
    return isoflop_study.IsoflopRun(record, budget, reads, "size")


def _results(reads: int = 1, **sim_args) -> isoflop_record.IsoflopResults:
    study = sim.simulate(np.random.default_rng(0), **sim_args)
    analysis = isoflop_analysis.analyse(study, np.random.default_rng(1), n_boot=20)
    runs = tuple(
        _run(mode, float(c), k, n, float(study.loss[i, b, k].mean()), reads)
        for i, mode in enumerate(isoflop_analysis.MODES)
        for b, c in enumerate(study.budgets)
        for k, n in enumerate(study.sizes[b])
    )
    report = (isoflop_command.answer(analysis), *isoflop_command.details(analysis, reads))
    lrs = {"standard": 0.004, "myopic": 0.004}
    return isoflop_record.IsoflopResults("cmd", "sim", lrs, runs, analysis, report)


def test_record_round_trips_and_refuses_other_kinds_and_versions():
    res = _results()
    doc = json.loads(json.dumps(isoflop_record.to_json(res)))
    assert isoflop_record.from_json(doc) == res
    assert doc["kind"] == "isoflop" and doc["schema_version"] == isoflop_record.SCHEMA_VERSION
    with pytest.raises(ValueError, match="schema version 0"):
        isoflop_record.from_json({**doc, "schema_version": 0})
    with pytest.raises(ValueError, match="not an isoFLOP results record"):
        isoflop_record.from_json({"runs": []})
    with pytest.raises(ValueError, match="malformed isoFLOP results"):
        isoflop_record.from_json({k: v for k, v in doc.items() if k != "analysis"})


def test_page_opens_with_the_answer_and_lists_every_runs_token_reads(tmp_path):
    res = _results()
    page = isoflop_page.render(isoflop_record.to_json(res), "")
    lines = page.splitlines()
    assert lines[0] == "# isoFLOP study (sim)"
    assert lines[2].startswith("Myopic training at compute C is worth standard training")
    assert "per decade of C" in lines[2] and "extrapolated" in page
    assert "fixed tokens-per-parameter ratio" in page
    assert "read each of its training tokens at most once" in page
    run_rows = [x for x in lines if x.startswith("| s")]
    assert len(run_rows) == len(res.runs) and all("| 1 |  |  |  /  |" in x for x in run_rows)
    # negative control: a run that read its tokens twice is said so
    assert "up to 2 times" in isoflop_page.render(isoflop_record.to_json(_results(2)), "")
    assert "results/scaling-sim.md" in isoflop_page.readme(isoflop_record.to_json(res))


def test_an_interval_too_wide_to_say_anything_is_said_plainly():
    wide = isoflop_analysis.Estimate(1.0, 0.2, 5.0)
    narrow = isoflop_analysis.Estimate(0.8, 0.7, 0.9)
    assert isoflop_command.too_wide(wide) and not isoflop_command.too_wide(narrow)
    res = _results()
    a = dataclasses.replace(res.analysis, factor_per_decade=wide)
    assert "too wide to say whether the price of myopia grows" in isoflop_command.answer(a)
    a = dataclasses.replace(res.analysis, factor_per_decade=narrow)
    assert "price of myopia grows with scale" in isoflop_command.answer(a)
    assert "too wide" not in isoflop_command.answer(a)


def test_figure_draws_each_profiles_fitted_parabola(tmp_path, monkeypatch):
    drawn = []
    original = np.polyval
    monkeypatch.setattr(np, "polyval", lambda p, x: drawn.append(tuple(p)) or original(p, x))
    res = _results()
    assert isoflop_page.plot(isoflop_record.to_json(res), tmp_path) == ["sim-isoflop.png"]
    assert (tmp_path / "sim-isoflop.png").stat().st_size > 1000
    expected = {tuple(b.parabola[k]) for b in res.analysis.budgets for k in b.parabola}
    assert set(drawn) == expected and len(expected) == 2 * len(res.analysis.budgets)


def test_from_json_redraws_the_same_bytes(tmp_path, capsys):
    res = _results()
    first, second = tmp_path / "a", tmp_path / "b"
    doc = isoflop_record.to_json(res)
    epilogue.finish(isoflop_page.page("sim"), doc, first)
    assert main(["--from-json", str(first / "isoflop.json"), "--out", str(second)]) == 0
    for name in ("isoflop.json", "isoflop.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "schema_version": 99}))
    with pytest.raises(cli.UsageError, match="schema version 99"):
        main(["--from-json", str(bad), "--out", str(tmp_path / "c")])


def test_a_parameter_at_its_bound_is_flagged_not_reported():
    res = _results()
    form = dataclasses.replace(res.analysis.frontier_fit, at_bounds=("E",))
    line = isoflop_command.details(dataclasses.replace(res.analysis, frontier_fit=form), 1)[0]
    assert "E at its bound (the fit's box, not a finding)" in line and "E = " not in line
    assert "alpha[myopic] - alpha[standard] = " in line
    form = dataclasses.replace(form, at_bounds=("alpha[myopic]",))
    line = isoflop_command.details(dataclasses.replace(res.analysis, frontier_fit=form), 1)[0]
    assert "alpha[myopic] at its bound" in line and "difference is not reported" in line
    # negative control: nothing at a bound, every value reported
    line = isoflop_command.details(res.analysis, 1)[0]
    assert "E = " in line and "at its bound" not in line


def test_a_partial_studys_page_says_so_in_its_title_and_first_sentence(tmp_path):
    res = _results()
    prefix = "PARTIAL (`--report-only`): this answer rests on 3 of 4 budgets. "
    partial = dataclasses.replace(
        res, report=(prefix + res.report[0], *res.report[1:]), partial=True
    )
    doc = json.loads(json.dumps(isoflop_record.to_json(partial)))
    page = isoflop_page.render(doc, "")
    assert page.splitlines()[0] == "# isoFLOP study (sim, PARTIAL)"
    assert isoflop_page.readme(doc).startswith("PARTIAL (`--report-only`)")
    assert isoflop_page.render(isoflop_record.to_json(res), "").splitlines()[0] == (
        "# isoFLOP study (sim)"
    )  # the negative control: a finished study's title


def test_each_runs_cost_and_the_total_are_on_the_page():
    res = _results()
    loads = {"load_start": (1.96, 1.5, 1.2), "load_end": (2.04, 1.9, 1.4)}
    costly = dataclasses.replace(res.runs[0].record, wall_s=3600.0, cpu_s=5400.0, **loads)
    runs = (dataclasses.replace(res.runs[0], record=costly), *res.runs[1:])
    page = isoflop_page.render(isoflop_record.to_json(dataclasses.replace(res, runs=runs)), "")
    assert "| 1 | 3600 | 5400 | 2.0 / 2.0 |" in page
    assert f"{len(runs)} runs took 1.00 h of wall time and 1.50 h of CPU time in all" in page


def test_n_opt_sentence_reads_the_exponents_as_growth_and_flags_edge_minima():
    """a[myopic] > a[standard] says myopic's N* grows faster with C, not that it is larger at
    the same C; and an N* from an edge minimum is an extrapolation, not a finding."""
    res = _results()
    a = res.analysis
    (line,) = [x for x in isoflop_command.details(a, 1) if x.startswith("N*(C)")]
    assert "want to be" not in line
    smaller = sum(b.n_opt["myopic"].point < b.n_opt["standard"].point for b in a.budgets)
    assert f"myopic's N* is the smaller at {smaller} of {len(a.budgets)} budgets" in line
    assert ("not findings" in line) == any(any(b.at_edge.values()) for b in a.budgets)
    edge = dataclasses.replace(a.budgets[0], at_edge={"standard": False, "myopic": True})
    flagged = dataclasses.replace(a, budgets=(edge, *a.budgets[1:]))
    (line,) = [x for x in isoflop_command.details(flagged, 1) if x.startswith("N*(C)")]
    assert "of the sizes trained" in line and "not findings" in line


def _fit_cells(rows: list[str]) -> dict[tuple[str, str], list[str]]:
    cells = [[c.strip() for c in row.split("|")[1:-1]] for row in rows[2:]]
    return {(c[0], c[1]): c for c in cells}


def test_fit_table_shows_how_far_each_vertex_lies_from_its_profile():
    """Lowering one profile's best measured loss by 0.2 moves that row's vertex - best by
    exactly +0.2 and raises its residual; every other row is the unchanged control."""
    res = _results()
    before = _fit_cells(isoflop_page._fit_rows(res))
    assert len(before) == 2 * len(res.analysis.budgets)
    c0 = res.analysis.budgets[0].budget
    key = (f"{c0:.3g}", "myopic")
    best = min((x for x in res.runs if x.budget == c0 and x.record.mode == "myopic"),
               key=lambda x: x.record.test_loss)  # fmt: skip
    low = dataclasses.replace(best.record, test_loss=best.record.test_loss - 0.2)
    lowered = tuple(dataclasses.replace(x, record=low) if x is best else x for x in res.runs)
    after = _fit_cells(isoflop_page._fit_rows(dataclasses.replace(res, runs=lowered)))
    assert float(after[key][4]) - float(before[key][4]) == pytest.approx(0.2, abs=2e-4)
    assert float(after[key][5]) > float(before[key][5]) + 0.02
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    assert "How closely each profile's parabola" in isoflop_page.render(
        isoflop_record.to_json(res), ""
    )


def test_other_readings_of_l_star_are_tabled_and_a_disagreement_on_the_trend_is_said():
    """The page tables m(C) and its trend per reading (the answer first); the report says
    every reading gives the answer's trend, and, once one reading's factor per decade is
    planted on the other side of 1, that the trend is not a finding."""
    res = _results()
    a = res.analysis
    rows = isoflop_page._reading_rows(res)
    assert len(rows) == 2 + 1 + len(isoflop_analysis.READINGS)
    assert rows[2].startswith("| a parabola through every size (the answer) |")
    assert all(r.count("|") == len(a.budgets) + 3 for r in rows)
    assert "How far the answer rests on the parabola" in isoflop_page.render(
        isoflop_record.to_json(res), ""
    )
    (line,) = [x for x in isoflop_command.details(a, 1) if x.startswith("Read L* another way")]
    assert line.endswith("So every reading gives the answer's trend.")  # the control
    # the answer (the README's paragraph) carries the same verdict
    assert isoflop_command.answer(a).endswith(
        "With L* read 2 other ways from every profile, every reading gives the answer's trend."
    )
    # (the simulated profiles are parabolic: every reading's factor is inside the interval)
    f = a.factor_per_decade
    flipped = isoflop_analysis.Estimate(1 / f.point, 1 / f.hi, 1 / f.lo)
    planted = (dataclasses.replace(a.readings[0], factor_per_decade=flipped), *a.readings[1:])
    other = dataclasses.replace(a, readings=planted)
    (line,) = [x for x in isoflop_command.details(other, 1) if x.startswith("Read L* another way")]
    assert "the readings disagree on the trend" in line and "not a finding" in line
    assert "1 of 2 readings' factors per decade lie outside the answer's intervals" in line
    assert "m(C) (" not in line  # every reading's m(C) is still inside
    # a reading's m(C) planted above the answer's interval at one budget is counted
    m0 = a.budgets[0].multiplier
    high = (isoflop_analysis.Estimate(2 * m0.hi, m0.hi, 3 * m0.hi), *a.readings[1].multiplier[1:])
    planted = (a.readings[0], dataclasses.replace(a.readings[1], multiplier=high))
    line = isoflop_command.answer(dataclasses.replace(a, readings=planted))
    n = len(a.readings) * len(a.budgets)
    assert line.endswith(
        f"every reading gives the answer's trend; 1 of their {n} m(C) (1 above, 0 below) lie "
        "outside the answer's intervals, which count seed and sequence noise, not the choice "
        "of reading."
    )
    verdict = isoflop_command.answer(other).split("With L* read 2 other ways", 1)[1]
    assert "the readings disagree on the trend" in verdict and "not a finding" in verdict
    assert "the readings disagree" not in isoflop_command.answer(
        dataclasses.replace(a, readings=())
    )
    # a record written before the readings existed still renders, without the table
    old = {**isoflop_record.to_json(res)}
    old["analysis"] = {k: v for k, v in old["analysis"].items() if k != "readings"}
    assert "How far the answer rests" not in isoflop_page.render(old, "")
