"""experiments.scaling.isoflop: the design derived from recorded step costs meets the issue's
shape (budgets, decades, sizes, D = C/(6N), disjoint windows, hours) and the dry run says so."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from experiments.scaling import isoflop, step_costs


def _design(preset=isoflop.CPU_ISOFLOP):
    return isoflop.design(preset, isoflop.cost_model(isoflop.recorded_costs(preset)), 201_000_000)


def test_cpu_isoflop_design_has_the_required_shape_and_fits_the_hours():
    d = _design()
    assert len(d.budgets) >= 4 and math.log10(d.budgets[-1] / d.budgets[0]) >= 1.5 - 1e-9
    for c in d.budgets:
        runs = [r for r in d.runs if r.budget == c]
        assert len({r.size for r in runs}) == len(runs) >= 5
        for r in runs:  # D = C / (6N), rounded up to whole steps
            assert 0 <= r.tokens - c / (6 * r.non_embedding) < d.preset.base.tokens_per_step
    assert len(d.preset.base.seeds) >= 3 and d.preset.base.disjoint_windows
    assert d.preset.base.data == "pycode"
    grid = _design(dataclasses.replace(d.preset, smaller_sizes=0))
    assert grid.total_s <= d.preset.hours * 3600 * 1.001 < d.total_s
    assert max(r.tokens for r in d.runs) < 201_000_000


def test_smaller_sizes_extend_each_profile_downward_and_keep_every_budget_and_run():
    d = _design()
    grid = _design(dataclasses.replace(d.preset, smaller_sizes=0))
    assert d.preset.smaller_sizes >= 1 and d.budgets == grid.budgets and d.sweep == grid.sweep
    assert set(grid.runs) < set(d.runs)  # every run already trained keeps its place and cache
    for c in d.budgets:
        runs = [r.non_embedding for r in d.runs if r.budget == c]
        low = min(r.non_embedding for r in grid.runs if r.budget == c)
        extra = [n for n in runs if n < low]
        assert runs == sorted(runs) and len(extra) == d.preset.smaller_sizes
        assert len(runs) == d.preset.sizes_per_budget + d.preset.smaller_sizes


def test_smaller_sizes_beyond_the_smallest_shape_are_one_clear_error():
    p = dataclasses.replace(isoflop.CPU_ISOFLOP, smaller_sizes=40)
    with pytest.raises(ValueError, match="no 40 shapes below"):
        _design(p)


def test_budgets_scale_with_the_measured_cost():
    costs = isoflop.cost_model(isoflop.recorded_costs(isoflop.CPU_ISOFLOP))
    slower = dataclasses.replace(costs, intercept=costs.intercept + math.log(2))
    fast = isoflop.design(isoflop.CPU_ISOFLOP, costs)
    slow = isoflop.design(isoflop.CPU_ISOFLOP, slower)
    assert slow.budgets[-1] < fast.budgets[-1]  # twice the step cost: smaller budgets


def test_dry_run_states_the_cost_source_its_load_and_the_total():
    text = "\n".join(isoflop.dry_run_lines(_design()))
    assert "scaling-costs-cpu" in text and "load 1/5/15" in text
    assert "(5.00 h the grid the budgets were sized to" in text


def test_measurement_preset_lists_the_design_sizes(tmp_path):
    d = _design()
    p = isoflop.measurement_preset(d)
    assert {s.name for s in p.sizes} == {r.size.name for r in d.runs}


def test_missing_cost_files_are_one_clear_error(tmp_path):
    p = dataclasses.replace(isoflop.CPU_ISOFLOP, costs_files=(tmp_path / "none.json",))
    with pytest.raises(FileNotFoundError, match="experiments.scaling.costs --preset cpu-isoflop"):
        isoflop.recorded_costs(p)


def test_cost_model_fits_the_recorded_per_step_times():
    path = isoflop.recorded_costs(isoflop.CPU_ISOFLOP)
    rows = step_costs.from_json(json.loads(path.read_text())).sizes
    m = isoflop.cost_model(path)
    for r in rows:
        assert (
            abs(math.log(m.per_step_s(r.non_embedding_params) / r.wall_per_step_s)) < 0.5
        )  # noisy, measured under load


def test_gpt2_isoflop_plan_spans_the_gpt2_range_and_fits_a_v5p_slice(capsys):
    from experiments.scaling import pods

    d = isoflop.design(isoflop.GPT2_ISOFLOP, None)
    n = [r.non_embedding for r in d.runs]
    assert 2e7 < min(n) < 1e8 and 1e9 < max(n) < 2e9
    assert math.log10(d.budgets[-1] / d.budgets[0]) >= 1.5 - 1e-9
    pods.print_isoflop_pod_plan(d, "v5p-128", 0.4)
    text = capsys.readouterr().out
    assert "does not fit" not in text and "total:" in text
