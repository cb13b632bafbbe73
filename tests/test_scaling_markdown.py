"""experiments.scaling.markdown, findings and caveats: the report of a simulated study states its
numbers from the results record, flags what it must, and the caveats follow the numbers."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.scaling import findings, markdown, sections
from experiments.scaling.caveats import caveats
from tests import scaling_synthetic


@pytest.fixture(scope="module")
def study():
    return scaling_synthetic.study()


def test_report_states_the_answer_and_every_run(study):
    report = markdown.render_report(study, ["gap_vs_params.png"], figure_prefix="../f/")
    lines = report.splitlines()
    assert lines[0] == "# Scaling study: standard vs myopic (cpu preset)"
    assert lines[2].startswith("**Answer: ") and "95% CI" in lines[2]
    for r in study.distinct_runs:
        assert f"{r.test_loss:.4f}" in report
    sl = study.analysis.gaps["myopic"].slope_per_decade
    assert f"{sl.point:+.4f} nats per decade" in report
    assert "## Caveats" in report and "below Chinchilla's 20" in report
    assert "![gap_vs_params.png](../f/gap_vs_params.png)" in report
    assert "PARTIAL" not in report


def test_partial_study_says_so_everywhere(study):
    partial = dataclasses.replace(study, finished=False, planned_runs=99)
    assert "**PARTIAL: this report rests on the" in markdown.render_report(partial, [])
    assert "of 99 planned (PARTIAL" in findings.readme_summary(partial)


def test_fit_parameter_on_a_bound_and_an_edge_lr_are_flagged(study):
    assert "not a finding" not in markdown.render_report(study, [])  # negative control
    an = study.analysis
    fit = dataclasses.replace(an.fit, at_bounds=("E",))
    sweeps = {**an.sweeps, "myopic": dataclasses.replace(an.sweeps["myopic"], at_edge=True)}
    flagged = dataclasses.replace(study, analysis=dataclasses.replace(an, fit=fit, sweeps=sweeps))
    report = markdown.render_report(flagged, [])
    assert "Parameters on a bound: E" in report and "not a finding" in report
    assert "at the grid's edge" in report


def test_a_gap_that_peaks_before_the_largest_size_is_a_caveat(study):
    """Negative control: the simulated gap grows with size, so no shape caveat; planting a
    peak at the second size makes one that names the peak and the fall after it."""
    assert not any("not monotone" in c for c in caveats(study))
    g = study.analysis.gaps["myopic"]
    k = len(g.sizes)
    points = (0.0, 0.3, *(0.3 - 0.05 * i for i in range(1, k - 1)))
    peaked = dataclasses.replace(g, gap=dataclasses.replace(g.gap, point=points))
    an = dataclasses.replace(study.analysis, gaps={"myopic": peaked})
    (shape,) = [c for c in caveats(dataclasses.replace(study, analysis=an)) if "not monotone" in c]
    assert f"largest at {g.sizes[1]} (+0.3000)" in shape
    assert "smaller at every larger size" in shape


def test_readme_summary_carries_the_answer_sections(study):
    text = findings.readme_summary(study)
    assert text.startswith(f"> {study.analysis.answer.text}")
    assert "**The model-free answer: myopic - standard test loss per size**" in text
    assert "\n\n\n" not in text and text.endswith("the machine's load, is results/scaling.md).")
    assert isinstance(study.analysis.undertrain, sections.Undertrain)


def test_undertraining_heading_and_caveat_name_the_studys_own_factors(study):
    """A study trained at 2x only (smoke-full) must not claim 2x and 4x; the simulated study's
    (2, 4) is the negative control."""
    ut, proto = study.analysis.undertrain, study.protocol
    assert ut.complete and tuple(ut.factors) == (1.0, 2.0, 4.0)
    full = "\n".join(findings.undertrain_section(study, 95))
    assert "at 1x, 2x, 4x the token budget" in full
    short = dataclasses.replace(
        study,
        analysis=dataclasses.replace(
            study.analysis, undertrain=dataclasses.replace(ut, factors=(1.0, 2.0))
        ),
        protocol=dataclasses.replace(proto, tokens_per_param=7.5, undertrain_factors=(2,)),
    )
    text = "\n".join(findings.undertrain_section(short, 95))
    assert "at 1x, 2x the token budget" in text and "4x" not in text.split("\n")[0]
    (tpp,) = [c for c in caveats(short) if "tokens per parameter" in c]
    assert "with 2x the budget" in tpp and "4x" not in tpp
