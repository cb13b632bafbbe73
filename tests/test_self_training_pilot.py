"""The power pilot: paired contrasts from tiny runs, reproducible per seed."""

import numpy as np
import pytest

from experiments.self_training import pilot

TINY = pilot.PilotConfig(
    seeds=2, d_model=16, seq_len=8, steps=4, batch_size=8, pool=32, fed_slots=8, every=2,
    eval_windows=32,
)  # fmt: skip


@pytest.mark.slow  # compiles four tiny training scans
def test_pilot_contrasts_are_paired_differences_and_reproducible():
    a = pilot.run(TINY)
    b = pilot.run(TINY)
    assert [c.name for c in a] == [
        "standard: own − control",
        "myopic: own − control",
        "(myopic − standard) × own",
    ]
    for x, y in zip(a, b, strict=True):  # the same seeds give the same numbers
        np.testing.assert_allclose(x.per_seed, y.per_seed)
    std, myo, inter = a
    # the interaction is the per-seed difference of the two modes' own − control contrasts
    np.testing.assert_allclose(inter.per_seed, np.subtract(myo.per_seed, std.per_seed), atol=1e-9)
    assert all(len(c.per_seed) == TINY.seeds and c.mde > 0 for c in a)


def test_pilot_configs_build_valid_model_and_train_configs():
    assert TINY.model("myopic").gradient_mode == "myopic"
    assert TINY.train().steps == 4 and TINY.train().warmup_steps == 1
