"""Probes: recover a planted linear signal, stay at chance on shuffled labels and on noise,
choose a sensible penalty by cross-validation, split by sequence."""

from __future__ import annotations

import numpy as np
import pytest

from myojax.analysis.probes import (
    DEFAULT_L2,
    classification_probe,
    regression_probe,
    split_sequences,
)


def planted(seed: int = 0, s: int = 80, p: int = 8, d: int = 12, noise: float = 0.3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(s, p, d))
    w = rng.normal(size=(d, 2))
    y = x @ w + noise * rng.normal(size=(s, p, 2))
    return x, y


def test_regression_recovers_a_planted_linear_signal():
    x, y = planted()
    probe = regression_probe(x, y)
    # Signal variance |w|² ≈ 12 against noise 0.09: R² ≈ 0.99.
    assert np.all(probe.r2 > 0.97), probe.r2
    assert np.all(np.abs(probe.control_r2) < 0.1), probe.control_r2
    assert probe.n_train + probe.n_test == 80 * 8


def test_noise_targets_are_not_decodable():
    x, _ = planted()
    noise = np.random.default_rng(5).normal(size=x.shape[:2])
    probe = regression_probe(x, noise)
    assert probe.r2.shape == (1,) and probe.r2[0] < 0.05


def test_classification_recovers_planted_classes_and_control_is_chance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 6, 10))
    labels = np.argmax(x[..., :3], axis=-1)  # a linearly separable 3-class rule
    probe = classification_probe(x, labels, 3)
    assert probe.accuracy > 0.9
    assert abs(probe.control_accuracy - 1 / 3) < 0.1 and probe.chance < 0.45


def test_cross_validation_picks_a_sensible_penalty():
    # Few rows, many noisy dimensions, one informative: heavy shrinkage must win...
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 1, 60))
    y = x[..., 0] + 2.0 * rng.normal(size=(40, 1))
    heavy = regression_probe(x, y).l2[0]
    # ...while a clean, well-determined signal wants (almost) none.
    x2, y2 = planted(noise=0.01, s=200)
    light = regression_probe(x2, y2).l2
    assert heavy >= 0.1 and np.all(light <= 1e-3), (heavy, light)
    assert heavy in DEFAULT_L2


def test_split_is_by_sequence_and_inputs_are_checked():
    train, test = split_sequences(20, 0.25, np.random.default_rng(0))
    assert len(test) == 5 and not set(train) & set(test) and len(train) + len(test) == 20
    with pytest.raises(ValueError, match="matching S, P"):
        regression_probe(np.zeros((10, 4, 3)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\)"):
        classification_probe(np.zeros((10, 4, 3)), np.full((10, 4), 2), 2)
