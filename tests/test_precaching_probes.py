import numpy as np
import pytest

from experiments.precaching.probes import chance_accuracy, ridge_probe_accuracy


def test_probe_decodes_a_linearly_encoded_label():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    centers = rng.normal(size=(4, 16)) * 3
    features = centers[labels] + rng.normal(size=(2000, 16))
    assert ridge_probe_accuracy(features, labels, 4) > 0.95


def test_probe_is_at_chance_on_labels_independent_of_the_features():  # negative control
    rng = np.random.default_rng(1)
    features = rng.normal(size=(4000, 16))
    labels = rng.integers(0, 4, 4000)
    acc = ridge_probe_accuracy(features, labels, 4)
    assert abs(acc - chance_accuracy(labels)) < 0.06


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="features"):
        ridge_probe_accuracy(np.zeros(5), np.zeros(5, int), 2)
    with pytest.raises(ValueError, match="split"):
        ridge_probe_accuracy(np.zeros((1, 2)), np.zeros(1, int), 2)
