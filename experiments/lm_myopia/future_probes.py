"""Future-token probes: how far ahead does the residual stream at position s encode the text?

For every site (the embedding, then the stream after each layer) and every k = 1..``max_ahead``,
a linear probe (``myojax.analysis.probes.classification_probe``: ridge onto one-hot classes,
penalty chosen by cross-validation over the probe's training sequences, accuracy on held-out
sequences) reads the identity of the token at s + k from the stream at s, at every position s
that has k tokens after it for every k. Each probe also fits a shuffled-label control (the same
procedure on permuted training labels), which must sit at chance.

Standard and myopic models see the same windows. The embedding site holds only the current
token: its accuracy is what the token alone gives (bigram-like statistics), so what a layer
adds beyond it is computed context. A standard model that pre-caches should encode tokens
further ahead than a myopic one at equal next-token accuracy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float, Int

from myojax.analysis.capture import capture
from myojax.analysis.probes import classification_probe
from myojax.model import GPT

MAX_AHEAD = 8


@dataclasses.dataclass(frozen=True)
class ProbeRun:
    """One model's probe accuracies, ``[site][k - 1]`` (site 0: the embedding)."""

    mode: str
    size: str
    seed: int
    accuracy: tuple[tuple[float, ...], ...]
    control: tuple[tuple[float, ...], ...]  # shuffled training labels
    chance: tuple[float, ...]  # majority class of the training split, per k


def future_labels(
    windows: Int[np.ndarray, "M T1"], max_ahead: int
) -> tuple[Int[np.ndarray, "M P K"], int]:
    """Dense class ids of the token at s + k for positions s < P = T1 − max_ahead and
    k = 1..max_ahead, and the number of classes (the distinct tokens present)."""
    n_pos = windows.shape[1] - max_ahead
    if n_pos < 1:
        raise ValueError(
            f"windows of {windows.shape[1]} tokens leave no position {max_ahead} ahead"
        )
    ahead = np.stack([windows[:, k : k + n_pos] for k in range(1, max_ahead + 1)], axis=-1)
    values, dense = np.unique(ahead, return_inverse=True)
    return dense.reshape(ahead.shape), len(values)


def stream_sites(model: GPT, windows: Int[np.ndarray, "M T1"]) -> list[Float[np.ndarray, "M T D"]]:
    """The residual stream at every site: the embedding, then after each layer."""
    acts = capture(model, windows[:, :-1], windows[:, 1:])
    resid_in, resid_out = np.asarray(acts.resid_in), np.asarray(acts.resid_out)
    return [resid_in[:, 0]] + [resid_out[:, i] for i in range(resid_out.shape[1])]


def probe_sites(
    sites: list[Float[np.ndarray, "M T D"]],
    windows: Int[np.ndarray, "M T1"],
    max_ahead: int = MAX_AHEAD,
    *,
    seed: int = 0,
) -> tuple[list[list[float]], list[list[float]], list[float]]:
    """(accuracy [site][k], control [site][k], chance [k]) for the token at s + k."""
    labels, n_classes = future_labels(windows, max_ahead)
    n_pos = labels.shape[1]
    accuracy, control, chance = [], [], [0.0] * max_ahead
    for site in sites:
        feats = site[:, :n_pos]
        row_acc, row_ctl = [], []
        for k in range(max_ahead):
            p = classification_probe(feats, labels[..., k], n_classes, seed=seed)
            row_acc.append(p.accuracy)
            row_ctl.append(p.control_accuracy)
            chance[k] = p.chance
        accuracy.append(row_acc)
        control.append(row_ctl)
    return accuracy, control, chance


def probe_model(
    model: GPT,
    windows: Int[np.ndarray, "M T1"],
    *,
    mode: str,
    size: str,
    seed: int,
    max_ahead: int = MAX_AHEAD,
) -> ProbeRun:
    acc, ctl, chance = probe_sites(stream_sites(model, windows), windows, max_ahead, seed=seed)
    as_rows = lambda rows: tuple(tuple(r) for r in rows)
    return ProbeRun(mode, size, seed, as_rows(acc), as_rows(ctl), tuple(chance))
