"""experiments.scaling.plots: every plot the results support is drawn (and named beforehand by
``plot_names``, which the report links), and none that they do not."""

from __future__ import annotations

import dataclasses

from experiments.scaling import plots
from tests import scaling_synthetic


def test_every_supported_plot_is_drawn(tmp_path):
    study = scaling_synthetic.study()
    names = plots.plot_all(study, tmp_path)
    assert names == plots.plot_names(study) == list(plots.PLOTS.values())
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)


def test_a_partial_study_draws_only_what_it_has(tmp_path):
    sweeps_only = [r for r in scaling_synthetic.runs() if r.role == "sweep"]
    study = scaling_synthetic.study(sweeps_only)
    assert plots.plot_all(study, tmp_path) == plots.plot_names(study) == ["lr_sweep.png"]
    no_positions = [
        dataclasses.replace(r, test_loss_per_position=None) for r in scaling_synthetic.runs()
    ]
    assert "per_position_largest.png" not in plots.plot_names(scaling_synthetic.study(no_positions))
