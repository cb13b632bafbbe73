"""The two derivative programs the model-level prover analyses, and the analysis of one of them.

* ``backward`` — the VJP of the per-position losses with respect to the layer probes, the program
  training runs (``proofs.backward.trace_vjp``; a custom VJP rule is inlined as what it runs):
  the cotangents L̄ [T] are δ, the probes' cotangent [L, T, D] is analysed.
* ``jvp`` — the JVP of the same losses (``proofs.trace.trace_jvp``): δ [L, T, D] on the probes,
  the losses' tangent analysed. It exists only where the model has no custom VJP (forward mode
  cannot run one).

Both answer the same question — for which (t, s) may ∂L_t/∂δ^l_s be nonzero — so the backward
output is read in the JVP's orientation (``proofs.backward.forward_orientation``) and one verdict
logic serves both (README: "What is proven"). The diagonal route (dependency through an exact
s = t mask of the attention grid) is required by the JVP program, where it is what tells a live
diagonal from a stopped one. In a backward program it is reported but not required: the fast
backward computes the own-position key/value terms in O(T·D), with no T×T grid to see, so their
values are the verifier's to check (``myojax.verify``, against the column-local reference).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from jax._src import core

from proofs.api import ASSUMPTIONS, tangent_input
from proofs.backward import forward_orientation, trace_vjp
from proofs.interpreter import Analysis, Event, eval_closed
from proofs.lattice import AVal, Position, classify, describe, unknown
from proofs.trace import Traced, trace_jvp


@dataclasses.dataclass(frozen=True)
class Program:
    """How one derivative program is traced and read."""

    name: str
    what: str  # the certificate's description of the analysed program
    output: str  # the analysed output's name
    trace: Callable[..., Traced]
    delta: AVal  # the abstract value of δ, the program's last input
    orient: Callable[[AVal], AVal]  # the analysed output in the JVP's orientation
    route_required: bool


PROGRAMS: dict[str, Program] = {
    "backward": Program(
        "backward",
        "jax.vjp of myojax.per_position_loss w.r.t. the layer probes [L, T, D]: the losses' "
        "cotangents L̄ [T] to the probes' cotangent (custom VJP rules inlined as what they run), "
        "all parameters and tokens abstract, dead code removed",
        "∂L/∂δ^l_s = Σ_t ∂L_t/∂δ^l_s · L̄_t (cotangent)",
        trace_vjp,
        tangent_input(1, axis=0),  # L̄[t] is the cotangent at position u = t
        lambda av: forward_orientation(av, position_axis=1),
        route_required=False,
    ),
    "jvp": Program(
        "jvp",
        "jax.jvp of myojax.per_position_loss w.r.t. the layer probes [L, T, D], all parameters "
        "and tokens abstract, dead code removed",
        "dL_t = Σ_l,s ∂L_t/∂δ^l_s · δ^l_s (tangent)",
        trace_jvp,
        tangent_input(3, axis=1),  # δ[l, s, d] is the input at position u = s
        lambda av: av,
        route_required=True,
    ),
}
# A JVP traced through a custom VJP holds this primitive, which forward mode cannot evaluate.
CUSTOM_LIN = "custom_lin"


@dataclasses.dataclass(frozen=True)
class Run:
    """One abstract interpretation of a traced program under a set of assumptions; ``outputs``
    are (the primal losses, the analysed output in the JVP's orientation)."""

    outputs: list[AVal]
    analysis: Analysis
    seconds: float


def input_avals(traced: Traced, program: Program) -> list[AVal]:
    """Everything is unconstrained and independent of δ, except δ itself."""
    avals = [unknown(len(v.aval.shape)) for v in traced.jaxpr.jaxpr.invars]
    avals[-1] = program.delta
    return avals


def analyse(traced: Traced, allowed: frozenset[str], program: Program = PROGRAMS["jvp"]) -> Run:
    an = Analysis(traced.position_size, allowed)
    start = time.perf_counter()
    losses, analysed = eval_closed(traced.jaxpr, input_avals(traced, program), an)
    return Run([losses, program.orient(analysed)], an, time.perf_counter() - start)


def primitive_counts(jaxpr: core.Jaxpr) -> Counter[str]:
    counts: Counter[str] = Counter()
    for eqn in jaxpr.eqns:
        counts[eqn.primitive.name] += 1
        for sub in core.jaxprs_in_params(eqn.params):
            counts.update(primitive_counts(sub))
    return counts


def program_header(program: Program, traced: Traced) -> dict[str, Any]:
    return {
        "what": program.what,
        "jaxpr_sha256": traced.sha256,
        "primitives": dict(sorted(primitive_counts(traced.jaxpr.jaxpr).items())),
    }


def not_applicable(program: Program, traced: Traced) -> str | None:
    """Why ``program`` does not exist for this model, or None."""
    if program.name == "jvp" and CUSTOM_LIN in primitive_counts(traced.jaxpr.jaxpr):
        return (
            "jax.jvp cannot run this model: it holds a jax.custom_vjp (the fast myopic "
            "attention), which has no forward-mode rule; the backward program is what trains"
        )
    return None


def output_report(run: Run, program: Program) -> list[dict[str, Any]]:
    names = ["L_t (primal losses)", program.output]
    return [
        {
            "name": name,
            "verdict": classify(av.dep).label,
            "depends_on_positions": describe(av.dep, {0: "t"}),
            "diagonal_route": bool(av.routed),
        }
        for name, av in zip(names, run.outputs)
    ]


def _analysed(run: Run) -> AVal:
    return run.outputs[1]


def _event(e: Event | None) -> dict[str, str] | None:
    return None if e is None else e.to_json()


@dataclasses.dataclass(frozen=True)
class Property:
    """Whether a property holds, with the fewest assumptions that prove it and the run that
    proved it (the run with every assumption allowed when it does not hold)."""

    proven: bool
    assumptions: list[str]
    run: Run


@dataclasses.dataclass(frozen=True)
class Findings:
    same: Property  # ∂L_t/∂δ_s may be nonzero only for s = t
    causal: Property  # ... only for s <= t
    mix: Event | None  # the first equation where positions mix (no assumption)


def _weakest(runs: dict[str, Run], holds: Callable[[Run], bool]) -> Property:
    """Whether a property holds, with the fewest assumptions that prove it."""
    for key in ("none", "no_overflow"):
        if holds(runs[key]):
            used = ["finite", *sorted(runs[key].analysis.used & {"no_overflow"})]
            return Property(True, used if key != "none" else ["finite"], runs[key])
    return Property(False, [], runs["no_overflow"])


def findings(runs: dict[str, Run]) -> Findings:
    return Findings(
        same=_weakest(runs, lambda r: classify(_analysed(r).dep) <= Position.SAME),
        causal=_weakest(runs, lambda r: classify(_analysed(r).dep) <= Position.PAST),
        mix=runs["none"].analysis.first("mix"),
    )


def properties(found: Findings) -> dict[str, Any]:
    routed = bool(_analysed(found.same.run).routed)
    return {
        "same_position": {"proven": found.same.proven, "assumptions": found.same.assumptions},
        "causal": {"proven": found.causal.proven, "assumptions": found.causal.assumptions},
        "diagonal_route": {
            "present": routed if found.same.proven else None,
            "meaning": "some same-position dependency passes an exact iota mask confined to "
            "s = t on a position x position grid (the live diagonal key/value correction)",
        },
    }


def verdict(found: Findings, sequence: str, program: Program) -> dict[str, Any]:
    analysed = _analysed(found.causal.run)
    if not found.same.proven:
        mix = found.mix
        return {
            "myopic": "not proven",
            "reason": "positions mix: ∂L_t/∂δ_s may be nonzero "
            f"for {describe(analysed.dep, {0: 't'})}",
            "location": mix.location if mix else "unknown",
            "first_mixing_equation": _event(mix),
        }
    every = f"for {sequence}, every layer l and all parameters/tokens: ∂L_t/∂δ^l_s = 0 for s ≠ t"
    if _analysed(found.same.run).routed:
        return {
            "myopic": "proven",
            "reason": f"{every}, and the same-position gradient includes the attention diagonal "
            "route",
        }
    if not program.route_required:
        return {
            "myopic": "proven",
            "reason": f"{every} in the {program.name} program; no same-position dependency "
            "passes a T×T diagonal mask here (the fast backward computes the own-position "
            "key/value terms in O(T·D)), so whether they are present and right is the "
            "verifier's to check (python -m myojax.verify: diagonal and parameter gradients "
            "against the column-local reference)",
        }
    blind = found.same.run.analysis.first("blind", final_only=True)
    return {
        "myopic": "not proven",
        "reason": "same-position, but no dependency is "
        "routed through the attention diagonal: the diagonal key/value gradient is "
        "stopped (expected pattern: same-position AND live diagonal route)",
        "location": blind.location if blind else "unknown",
        "first_unrouted_position_sum": _event(blind),
    }


def used_assumptions(found: Findings) -> dict[str, str]:
    used = sorted({a for p in (found.same.assumptions, found.causal.assumptions) for a in p})
    return {a: ASSUMPTIONS[a] for a in used or ["finite"]}
