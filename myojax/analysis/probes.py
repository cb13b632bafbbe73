"""Linear probes in closed form: how linearly decodable a quantity is from representations.

Features are ``[S, P, D]`` (sequences × positions × width; ``[S, D]`` means one position per
sequence). The sequences are split into a probe-training and a held-out test split — by
*sequence*, never by position, since positions of one sequence share context and would leak. On
the training split, ridge regression (standardised features, an unpenalised intercept) is solved
for a grid of penalties at once from one SVD; the penalty is chosen per target by k-fold
cross-validation over training sequences; the refitted probe is scored on the test split.

* ``regression_probe`` — targets ``[S, P]`` or ``[S, P, K]``: held-out R² per target column;
* ``classification_probe`` — integer labels ``[S, P]``: ridge onto one-hot classes, argmax,
  held-out accuracy, and the majority-class accuracy as chance.

Both also fit a *shuffled-label control*: the same procedure (CV included) with the training
labels permuted across training rows, scored on the true test labels. A probe is only
informative where its score clearly exceeds this control (R² ≈ 0, accuracy ≈ chance).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float, Int

# Penalties λ on the standardised design, per training row (scale-free: λ·n is added to XᵀX).
DEFAULT_L2: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclasses.dataclass(frozen=True)
class RegressionProbe:
    r2: Float[np.ndarray, " K"]  # held-out R² per target column
    control_r2: Float[np.ndarray, " K"]  # the same with shuffled training labels
    l2: Float[np.ndarray, " K"]  # penalty chosen by cross-validation, per column
    n_train: int  # training rows (sequences × positions)
    n_test: int


@dataclasses.dataclass(frozen=True)
class ClassificationProbe:
    accuracy: float  # held-out accuracy
    control_accuracy: float  # the same with shuffled training labels
    chance: float  # accuracy of the majority training class on the test split
    l2: float
    n_train: int
    n_test: int


def split_sequences(
    n_sequences: int, test_fraction: float, rng: np.random.Generator
) -> tuple[Int[np.ndarray, " A"], Int[np.ndarray, " B"]]:
    """Random (train, test) sequence indices, both non-empty."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(n_sequences * test_fraction)
    if n_sequences < 4 or not 1 <= n_test < n_sequences - 1:
        raise ValueError(f"need at least 4 sequences and both splits non-empty, got {n_sequences}")
    order = rng.permutation(n_sequences)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _as_sequences(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    targets = np.asarray(targets)
    if features.ndim == 2:  # one position per sequence
        features, targets = features[:, None], targets[:, None]
    if features.ndim != 3 or targets.shape[:2] != features.shape[:2]:
        raise ValueError(
            f"need features [S, P, D] (or [S, D]) and targets [S, P, ...] (or [S, ...]) with "
            f"matching S, P; got {features.shape} and {targets.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain non-finite values")
    return features, targets


class _Ridge:
    """Ridge solutions for every penalty in ``l2s`` from one SVD of the standardised design."""

    def __init__(self, x: np.ndarray, y: np.ndarray, l2s: np.ndarray):
        self.mean, self.std = x.mean(0), x.std(0) + 1e-12
        self.y_mean = y.mean(0)
        u, s, vt = np.linalg.svd((x - self.mean) / self.std, full_matrices=False)
        shrink = s[None, :] / (s[None, :] ** 2 + l2s[:, None] * len(x))  # [L, r]
        uty = u.T @ (y - self.y_mean)  # [r, K]
        self.weights = np.einsum("rd,lr,rk->ldk", vt, shrink, uty)  # [L, D, K]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[L, N, K]: one prediction per penalty."""
        return np.einsum("nd,ldk->lnk", (x - self.mean) / self.std, self.weights) + self.y_mean


def _r2(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R² per column; pred may carry a leading penalty axis."""
    sse = np.sum((pred - y) ** 2, axis=-2)
    sst = np.sum((y - y.mean(0)) ** 2, axis=0)
    return 1.0 - sse / np.maximum(sst, 1e-300)


def _rows(features: np.ndarray, targets: np.ndarray, seqs: np.ndarray):
    x = features[seqs].reshape(-1, features.shape[-1])
    return x, targets[seqs].reshape(len(x), *targets.shape[2:])


def _cv_scores(
    features: np.ndarray,
    y_of: callable,
    targets: np.ndarray,
    train: np.ndarray,
    l2s: np.ndarray,
    folds: int,
    score: callable,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean held-out-fold score [L, K] over ``folds`` folds of the training sequences."""
    folds = min(folds, len(train))
    fold_of = rng.permutation(len(train)) % folds
    total = 0.0
    for f in range(folds):
        fit_x, fit_t = _rows(features, targets, train[fold_of != f])
        val_x, val_t = _rows(features, targets, train[fold_of == f])
        ridge = _Ridge(fit_x, y_of(fit_t), l2s)
        total = total + score(val_t, ridge.predict(val_x))
    return total / folds


def _fit_and_score(features, targets, train, test, l2s, folds, y_of, score, rng):
    """(test score per column at the CV-chosen penalty, chosen penalties)."""
    cv = _cv_scores(features, y_of, targets, train, l2s, folds, score, rng)
    best = np.argmax(cv, axis=0)  # [K]; ties -> the smallest penalty (grid is ascending)
    train_x, train_t = _rows(features, targets, train)
    test_x, test_t = _rows(features, targets, test)
    tested = score(test_t, _Ridge(train_x, y_of(train_t), l2s).predict(test_x))  # [L, K]
    return tested[best, np.arange(tested.shape[1])], l2s[best]


def _shuffled(targets: np.ndarray, train: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Targets with the training rows' labels permuted across all training positions."""
    out = targets.copy()
    rows = out[train].reshape(-1, *out.shape[2:])
    out[train] = rows[rng.permutation(len(rows))].reshape(out[train].shape)
    return out


def regression_probe(
    features: Float[np.ndarray, "S P D"],
    targets: Float[np.ndarray, "S P K"],
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    folds: int = 5,
    l2_grid: tuple[float, ...] = DEFAULT_L2,
) -> RegressionProbe:
    """Held-out R² of ridge probes from ``features`` to each target column (see module doc)."""
    features, targets = _as_sequences(features, targets)
    targets = np.asarray(targets, np.float64)
    if targets.ndim == 2:
        targets = targets[..., None]
    rng = np.random.default_rng(seed)
    train, test = split_sequences(len(features), test_fraction, rng)
    l2s = np.asarray(sorted(l2_grid), np.float64)
    identity = lambda t: t
    r2, chosen = _fit_and_score(features, targets, train, test, l2s, folds, identity, _r2, rng)
    shuffled = _shuffled(targets, train, rng)
    control, _ = _fit_and_score(features, shuffled, train, test, l2s, folds, identity, _r2, rng)
    n_pos = features.shape[1]
    return RegressionProbe(r2, control, chosen, len(train) * n_pos, len(test) * n_pos)


def classification_probe(
    features: Float[np.ndarray, "S P D"],
    labels: Int[np.ndarray, "S P"],
    n_classes: int,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    folds: int = 5,
    l2_grid: tuple[float, ...] = DEFAULT_L2,
) -> ClassificationProbe:
    """Held-out accuracy of a ridge probe onto one-hot ``labels`` (see module doc)."""
    features, labels = _as_sequences(features, labels)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be integers in [0, {n_classes}), got {labels.dtype}")
    rng = np.random.default_rng(seed)
    train, test = split_sequences(len(features), test_fraction, rng)
    l2s = np.asarray(sorted(l2_grid), np.float64)
    onehot = lambda t: np.eye(n_classes)[t]

    def accuracy(t: np.ndarray, pred_LxNxC: np.ndarray) -> np.ndarray:
        return np.mean(np.argmax(pred_LxNxC, axis=-1) == t[None], axis=-1)[:, None]  # [L, 1]

    acc, chosen = _fit_and_score(features, labels, train, test, l2s, folds, onehot, accuracy, rng)
    shuffled = _shuffled(labels, train, rng)
    control, _ = _fit_and_score(features, shuffled, train, test, l2s, folds, onehot, accuracy, rng)
    majority = np.argmax(np.bincount(labels[train].ravel(), minlength=n_classes))
    chance = float(np.mean(labels[test] == majority))
    n_pos = features.shape[1]
    return ClassificationProbe(
        float(acc[0]),
        float(control[0]),
        chance,
        float(chosen[0]),
        len(train) * n_pos,
        len(test) * n_pos,
    )
