"""Future-token probes: a planted future signal is recovered at its own k and nowhere else, and
the shuffled-label control reports chance."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.lm_myopia.future_probes import future_labels, probe_sites

VOCAB = 6


def _windows(rng: np.random.Generator, n: int = 160, length: int = 21) -> np.ndarray:
    return rng.integers(0, VOCAB, (n, length))  # i.i.d. tokens: nothing predicts another


def test_future_labels_are_the_tokens_k_ahead_as_dense_classes():
    windows = np.array([[5, 9, 5, 7, 9, 5], [7, 7, 9, 5, 5, 9]])
    labels, n_classes = future_labels(windows, max_ahead=2)
    assert n_classes == 3 and labels.shape == (2, 4, 2)  # positions s = 0..3, k = 1, 2
    dense = {5: 0, 7: 1, 9: 2}
    for s in range(4):
        for k in (1, 2):
            assert labels[0, s, k - 1] == dense[windows[0, s + k]]
    with pytest.raises(ValueError, match="no position"):
        future_labels(windows, max_ahead=6)


def test_planted_signal_at_k2_is_recovered_and_controls_sit_at_chance():
    rng = np.random.default_rng(0)
    windows = _windows(rng)
    t = windows.shape[1] - 1
    # Site 0: noise. Site 1: the one-hot of the token two ahead, plus noise (the planted signal).
    noise = lambda: rng.normal(size=(len(windows), t, 8))
    ahead = np.zeros((len(windows), t, VOCAB))
    ahead[:, : t - 1] = np.eye(VOCAB)[windows[:, 2 : t + 1]]
    planted = np.concatenate([ahead * 3.0, noise()], axis=-1)
    acc, control, chance = probe_sites([noise(), planted], windows, max_ahead=4, seed=0)
    assert acc[1][1] > 0.95  # k = 2 from the planted site
    for k in (0, 2, 3):  # the other k: i.i.d. tokens, so chance
        assert acc[1][k] < chance[k] + 0.12
    assert max(acc[0]) < max(chance) + 0.12  # the noise site reads nothing
    # The shuffled-label control of the planted site is at chance, far below the probe.
    assert control[1][1] < chance[1] + 0.12 and control[1][1] < acc[1][1] - 0.5
    assert all(1 / VOCAB - 0.1 < c < 0.5 for c in chance)
