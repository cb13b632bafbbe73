"""experiments.scaling.estimates: the lr choice, the analysis of a simulated study with a known
answer (gap slope, undertraining, transfer, joint fit) and the transfer check's verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments.scaling import estimates, records, sections
from experiments.scaling.protocol import STUDY_PRESETS
from tests import scaling_synthetic


def _row(
    lr: float, seed: int, val: float, status: str = "ok", role: str = "sweep", size: str = "L2w32"
) -> records.RunRecord:
    return records.RunRecord(
        mode="m",
        role=role,
        size=size,
        seed=seed,
        d_model=32,
        n_layers=2,
        params=1,
        non_embedding_params=1,
        tokens=1,
        steps=1,
        lr=lr,
        run_dir="r",
        status=status,
        val_loss=val,
    )


def test_choose_lr_pools_seeds_skips_diverged_and_flags_edges():
    rows = [
        _row(lr, s, v)
        for lr, vs in ((1e-3, (2.0, 2.0)), (2e-3, (1.4, 1.8)), (4e-3, (1.5, 1.5)))
        for s, v in enumerate(vs)
    ]
    assert estimates.choose_lr(rows) == (4e-3, True)  # mean 1.5 < 1.6 though seed 0 prefers 2e-3
    rows[-1] = dataclasses.replace(rows[-1], status="diverged")
    assert estimates.choose_lr(rows) == (2e-3, False)
    with pytest.raises(RuntimeError, match="every sweep lr"):
        estimates.choose_lr([dataclasses.replace(r, status="diverged") for r in rows])


@pytest.fixture(scope="module")
def analysis() -> sections.Analysis:
    return scaling_synthetic.study().analysis


def test_analysis_recovers_the_simulated_answers(analysis):
    an = analysis
    assert an.sweeps["myopic"].chosen_lr == 8e-3 and not an.sweeps["myopic"].at_edge
    gap = an.gaps["myopic"]
    sl = gap.slope_per_decade
    assert sl.lo <= 0.02 <= sl.hi and sl.lo > 0
    assert all(lo <= hi for lo, hi in zip(gap.gap.lo, gap.gap.hi))
    assert np.array(gap.per_seed).shape == (len(gap.sizes), 3)
    assert an.answer.verdict == "grows with size" and f"{sl.point:+.4f}" in an.answer.text
    ut = an.undertrain.modes["myopic"]
    assert ut.gap_change.hi < 0 and an.undertrain.factors == (1.0, 2.0, 4.0)
    assert ut.gap.point[0] == pytest.approx(ut.gap.point[2] + 0.02, abs=0.01)
    tr = an.transfer["myopic"]
    assert tr.complete and tr.own_optimum == 8e-3 and tr.within_one_step is True
    assert an.fit.params["alpha[standard]"].point > 0 and an.fit.params["E"].scale == "log"


def test_no_growth_gives_no_trend():
    """Negative control: a gap that does not grow with size has a slope interval around 0."""
    flat = scaling_synthetic.study(scaling_synthetic.runs(gap_per_decade=0.0)).analysis
    sl = flat.gaps["myopic"].slope_per_decade
    assert sl.lo < 0 < sl.hi
    assert flat.answer.verdict == "shows no trend with size distinguishable from zero"


def test_a_partial_study_analyses_only_the_sweeps():
    sweeps_only = [r for r in scaling_synthetic.runs() if r.role == "sweep"]
    an = estimates.analyze(scaling_synthetic.PRESET, scaling_synthetic.MODES, sweeps_only)
    assert an.complete_sizes == () and an.transfer is None and an.answer is None
    assert set(an.sweeps) == set(scaling_synthetic.MODES)


def test_transfer_check_verdicts():
    p = STUDY_PRESETS["cpu"]
    sweeps = {"m": dataclasses.replace(_sweep(), chosen_lr=8e-3)}

    def rows(losses):
        return [
            _row(lr, 0, v, size=p.sizes[-1].name, role="size" if lr == 8e-3 else "transfer")
            for lr, v in zip((4e-3, 8e-3, 1.6e-2), losses)
        ]

    transfer = estimates._transfer
    assert transfer(p, rows((2.0, 1.9, 2.1)), ["m"], sweeps)["m"].within_one_step is True
    edge = transfer(p, rows((1.8, 1.9, 2.1)), ["m"], sweeps)["m"]
    assert edge.within_one_step is None and edge.own_optimum_at_local_edge
    assert not transfer(p, rows((1.8, 1.9, 2.1))[:2], ["m"], sweeps)["m"].complete


def _sweep() -> sections.Sweep:
    return sections.Sweep(
        lrs=(8e-3,),
        seeds=(0,),
        val_loss=((1.0,),),
        mean_val_loss=(1.0,),
        chosen_lr=8e-3,
        at_edge=False,
        per_seed_best_lr=(8e-3,),
    )
