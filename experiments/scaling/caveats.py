"""The report's caveats, each derived from the numbers it qualifies (a short span of N, few
seeds, undertrained models, an lr at the grid's edge, an unconfirmed transfer, a fit parameter
on its bound, a gap that is not monotone in size, the corpus)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from experiments.scaling import records as rec
from experiments.scaling import sections as sec
from experiments.scaling.formats import fmt_n


def caveats(res: rec.StudyResults) -> list[str]:
    """The caveats that apply to these results, in the report's order."""
    an, proto = res.analysis, res.protocol
    out = []
    n = [v for f in an.losses.values() for v in f.n]
    if n:
        out.append(
            f"{len(an.complete_sizes)} sizes spanning {math.log10(max(n) / min(n)):.2f} "
            f"decades of N ({fmt_n(min(n))}-{fmt_n(max(n))}): a slope over a short span, and "
            "a 3-parameter law per mode is barely constrained"
        )
    out += [c for mode, g in an.gaps.items() if (c := _shape_caveat(mode, g))]
    tpp = proto.tokens_per_param
    if tpp < 20:
        out.append(
            f"**{tpp:g} tokens per parameter, below Chinchilla's 20** (forced by the preset's "
            "time budget): the models are undertrained; the undertraining check measures how "
            f"much the gap moves with {' and '.join(f'{f:g}x' for f in proto.undertrain_factors)}"
            " the budget"
        )
    out.append(
        f"{len(proto.seeds)} training seeds per configuration: the seed level of the "
        "interval rests on few samples (the t quantile with few degrees of freedom is what "
        "keeps its coverage near nominal; see the coverage study)"
    )
    out += _choice_caveats(res)
    if res.data == "shakespeare":
        out.append(
            "byte-level Shakespeare (5 MB, 256 symbols) is not web text; validation and test "
            "are two works each (a play and a poem), so 'test sequences' are windows of few "
            "documents and the sequence level understates document-to-document variation"
        )
    out.append(
        f"the lr was tuned on {proto.proxy.name} at its own token budget and transferred by muP "
        "to the other sizes; muP transfers across width, not across depth or training length"
    )
    return out


def _choice_caveats(res: rec.StudyResults) -> list[str]:
    """The lr choice at a grid edge, the transfer check's verdict and seeds, the fit's bounds."""
    an, out = res.analysis, []
    edge = [m for m, s in an.sweeps.items() if s.at_edge]
    if edge:
        out.append(f"the chosen lr of {', '.join(edge)} is at the edge of the sweep grid")
    for m, t in (an.transfer or {}).items():
        if t.complete and t.within_one_step is not True:
            out.append(f"muP transfer for {m} is not confirmed at the largest size (see the check)")
        if t.complete and len(t.seeds) < len(res.protocol.seeds):
            out.append(f"the transfer check of {m} used seed(s) {list(t.seeds)} only")
    if an.fit is not None and an.fit.at_bounds:
        out.append(
            f"joint-fit parameters on a bound ({', '.join(an.fit.at_bounds)}): the "
            "functional form, not the data, decides them"
        )
    return out


def _shape_caveat(mode: str, g: sec.Gap) -> str | None:
    """A gap per size that peaks before the largest size: a straight-line slope then averages a
    rise and a fall, so the per-size gaps, not the slope alone, describe it."""
    points, sizes = g.gap.point, g.sizes
    peak = int(np.argmax(points))
    if peak == len(points) - 1 or len(points) < 3:
        return None
    after = points[peak:]
    falls = all(b < a for a, b in itertools.pairwise(after))
    return (
        f"the {mode} gap is not monotone in size: largest at {sizes[peak]} "
        f"({points[peak]:+.4f}), then {'smaller at every larger size' if falls else 'lower'} "
        f"down to {points[-1]:+.4f} at {sizes[-1]}; the slope over all sizes averages that "
        "rise and fall, so read the gap per size before the slope"
    )
