"""experiments.scaling.isoflop_page: from a simulated study's JSON, the page opens with the
answer, flags edges and extrapolation, draws its figure, and the README section points to it."""

from __future__ import annotations

import numpy as np

from experiments.scaling import isoflop_analysis, isoflop_command, isoflop_page, records
from tests import scaling_isoflop_sim as sim


def _doc() -> dict:
    study = sim.simulate(np.random.default_rng(0))
    analysis = isoflop_analysis.analyse(study, np.random.default_rng(1), n_boot=30)
    runs = [
        {
            "role": "size",
            "mode": mode,
            "budget": float(c),
            "non_embedding_params": float(n),
            "test_loss": float(study.loss[i, b, k].mean()),
        }
        for i, mode in enumerate(isoflop_analysis.MODES)
        for b, c in enumerate(study.budgets)
        for k, n in enumerate(study.sizes[b])
    ]
    report = [isoflop_command.answer(analysis), *isoflop_command._details(analysis, 1)]
    return {"preset": "sim", "runs": runs, "analysis": records.to_json(analysis), "report": report}


def test_page_opens_with_the_answer_and_marks_extrapolation(tmp_path):
    doc = _doc()
    page = isoflop_page.render(doc, "")
    lines = page.splitlines()
    assert lines[0] == "# isoFLOP study (sim)"
    assert lines[2].startswith("Myopic training reaches the frontier loss")
    assert "per decade of C" in lines[2] and "extrapolated" in page
    assert "fixed tokens-per-parameter ratio" in page
    assert isoflop_page.plot(doc, tmp_path) == ["sim-isoflop.png"]
    assert (tmp_path / "sim-isoflop.png").stat().st_size > 1000
    assert "results/scaling-sim.md" in isoflop_page.readme(doc)
