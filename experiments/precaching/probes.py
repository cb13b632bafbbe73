"""Linear probes: how linearly decodable a label is from a set of representations.

A ridge-regression probe onto one-hot labels (closed form, so it is deterministic and cheap),
fitted on one split and scored by argmax accuracy on a held-out split.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int


def ridge_probe_accuracy(
    features: Float[np.ndarray, "N D"],
    labels: Int[np.ndarray, " N"],
    n_classes: int,
    *,
    train_fraction: float = 0.75,
    l2: float = 1e-3,
) -> float:
    """Held-out accuracy of a linear (affine) ridge probe from ``features`` to ``labels``."""
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"need features [N, D] and labels [N], got {features.shape} and {labels.shape}"
        )
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n_train = int(len(labels) * train_fraction)
    if n_train < 1 or n_train == len(labels):
        raise ValueError(f"need samples on both sides of the split, got N={len(labels)}")
    mean, std = features[:n_train].mean(0), features[:n_train].std(0) + 1e-8
    x = np.concatenate([(features - mean) / std, np.ones((len(labels), 1))], axis=1)
    onehot = np.eye(n_classes)[labels]
    xt, yt = x[:n_train], onehot[:n_train]
    weights = np.linalg.solve(xt.T @ xt + l2 * n_train * np.eye(x.shape[1]), xt.T @ yt)
    predicted = np.argmax(x[n_train:] @ weights, axis=1)
    return float(np.mean(predicted == labels[n_train:]))


def chance_accuracy(labels: Int[np.ndarray, " N"]) -> float:
    """Accuracy of always predicting the most frequent label."""
    counts = np.bincount(np.asarray(labels))
    return float(counts.max() / counts.sum())
