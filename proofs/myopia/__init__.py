"""The model-level prover of myopia, for every sequence length at once.

Myopic gradients carry no cross-position contributions, or the certificate says precisely where
they do.

``prove(target, config)`` returns the certificate, ``certificate_text`` / ``write_certificate``
write it (deterministic bytes), ``summary`` prints it; ``python -m proofs.myopia`` is the command.

The analysed program is ``jax.jvp`` of the per-position losses with respect to the layer probes
(``proofs.trace``), with a symbolic T; ``proofs.interpreter`` interprets it abstractly. The myopic
property has two parts (README: "What is proven"):

1. same-position — the tangent dL_t depends on δ^l_s only for s = t (every layer l, every T);
2. diagonal route — some of that dependency flows through the diagonal of the attention grid
   (the live key/value correction). Part 1 alone cannot tell a myopic model from one whose
   diagonal is stopped too: both Jacobians are diagonal, only their values differ.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from jax._src import core

from myojax import files
from myojax.config import ModelConfig
from proofs.api import ASSUMPTIONS, tangent_input
from proofs.interpreter import Analysis, CannotAnalyse, Event, eval_closed
from proofs.lattice import AVal, Position, classify, describe, unknown
from proofs.trace import Forward, Traced, model_forward, trace_jvp

# Certificates go outside the tracked tree unless asked (`--out proofs/certificates` regenerates
# the committed ones), and hold no timings, dates or absolute paths: the same JAX, config and
# checkout give the same bytes. Timings are printed only.
DEFAULT_OUT = Path("runs") / "proofs"
VOLATILE = ("seconds",)


def certificate_text(cert: dict[str, Any]) -> str:
    """The certificate as written: deterministic (no timings)."""
    kept = {k: v for k, v in cert.items() if k not in VOLATILE}
    return json.dumps(kept, indent=2, ensure_ascii=False) + "\n"


def write_certificate(target: Target, cert: dict[str, Any], out: Path) -> Path:
    """Write ``cert`` as ``out/<target name>.json`` (atomically) and return the path."""
    path = out / f"{target.name}.json"
    files.write_text(path, certificate_text(cert))
    return path


@dataclasses.dataclass(frozen=True)
class Target:
    """What is analysed: a gradient mode of the model, or one of the test mutants."""

    mode: str | None = None
    mutant: str | None = None

    @property
    def name(self) -> str:
        return self.mode if self.mode is not None else f"mutant-{self.mutant}"

    def forward(self) -> Forward:
        if self.mutant is None:
            return model_forward
        return load_mutants()[self.mutant][0]


def load_mutants() -> dict[str, tuple[Forward, str]]:
    """The deliberately broken variants of ``tests/mutants.py``: name -> (forward, what the
    verifier must report)."""
    try:
        from tests.mutants import MUTANTS
    except ImportError as e:  # the mutants live with the tests, importable from the repo root
        raise RuntimeError(
            f"cannot import tests.mutants (run from the repository root): {e}"
        ) from e
    return MUTANTS


@dataclasses.dataclass(frozen=True)
class Run:
    """One abstract interpretation of the traced program under a set of assumptions."""

    outputs: list[AVal]
    analysis: Analysis
    seconds: float


def input_avals(traced: Traced) -> list[AVal]:
    """Everything is unconstrained and independent of δ, except δ itself: δ[l, s, d] is the
    input at position u = s, so its dependency region is {u = x_1}."""
    avals = [unknown(len(v.aval.shape)) for v in traced.jaxpr.jaxpr.invars]
    avals[-1] = tangent_input(3, axis=1)
    return avals


def analyse(traced: Traced, allowed: frozenset[str]) -> Run:
    an = Analysis(traced.position_size, allowed)
    start = time.perf_counter()
    outs = eval_closed(traced.jaxpr, input_avals(traced), an)
    return Run(outs, an, time.perf_counter() - start)


def _primitive_counts(jaxpr: core.Jaxpr) -> Counter[str]:
    counts: Counter[str] = Counter()
    for eqn in jaxpr.eqns:
        counts[eqn.primitive.name] += 1
        for sub in core.jaxprs_in_params(eqn.params):
            counts.update(_primitive_counts(sub))
    return counts


def _output_report(run: Run) -> list[dict[str, Any]]:
    names = ["L_t (primal losses)", "dL_t = Σ_l,s ∂L_t/∂δ^l_s · δ^l_s (tangent)"]
    return [
        {
            "name": name,
            "verdict": classify(av.dep).label,
            "depends_on_positions": describe(av.dep, {0: "t"}),
            "diagonal_route": bool(av.routed),
        }
        for name, av in zip(names, run.outputs)
    ]


def _tangent(run: Run) -> AVal:
    return run.outputs[1]


def _event(e: Event | None) -> dict[str, str] | None:
    return None if e is None else e.to_json()


def _weakest(runs: dict[str, Run], holds: Callable[[Run], bool]) -> Property:
    """Whether a property holds, with the fewest assumptions that prove it."""
    for key in ("none", "no_overflow"):
        if holds(runs[key]):
            used = ["finite", *sorted(runs[key].analysis.used & {"no_overflow"})]
            return Property(True, used if key != "none" else ["finite"], runs[key])
    return Property(False, [], runs["no_overflow"])


def prove(
    target: Target, config: ModelConfig, concrete_t: int | None = None, **trace_options: Any
) -> dict[str, Any]:
    """Trace, analyse and return the certificate (a JSON-serialisable dict).

    ``trace_options`` go to ``proofs.trace.trace_jvp`` (another model ``build``, ``loss_fn``,
    real-valued ``input_shape``/``target_shape``)."""
    t0 = time.perf_counter()
    traced = trace_jvp(target.forward(), config, concrete_t, **trace_options)
    trace_s = time.perf_counter() - t0
    cert = _header(target, config, traced)
    try:
        runs = {
            "none": analyse(traced, frozenset()),
            "no_overflow": analyse(traced, frozenset({"no_overflow"})),
        }
    except CannotAnalyse as e:
        cert["verdict"] = {
            "myopic": "not proven",
            "reason": f"not proven: {e}",
            "location": e.location,
        }
        cert["seconds"] = {"trace": trace_s}
        return cert
    found = _findings(runs)
    cert["outputs"] = _output_report(found.causal.run)
    cert["properties"] = _properties(found)
    cert["verdict"] = _verdict(found, traced.sequence)
    used = sorted({a for p in (found.same.assumptions, found.causal.assumptions) for a in p})
    cert["assumptions"] = {a: ASSUMPTIONS[a] for a in used or ["finite"]}  # keeps its place
    cert["seconds"] = {
        "trace": round(trace_s, 4),
        "analysis": round(found.same.run.seconds, 4),
        "equations_interpreted": found.same.run.analysis.equations_seen,
    }
    return cert


def _header(target: Target, config: ModelConfig, traced: Traced) -> dict[str, Any]:
    """What was analysed; ``assumptions`` is filled in last but sits here in the file."""
    return {
        "schema": "myojax.proofs.myopia/1",
        "jax_version": jax.__version__,
        "target": dataclasses.asdict(target),
        "config": config.to_dict(),
        "sequence_length": traced.sequence,
        "program": {
            "what": "jax.jvp of myojax.per_position_loss w.r.t. the layer probes [L, T, D], "
            "all parameters and tokens abstract, dead code removed",
            "jaxpr_sha256": traced.sha256,
            "primitives": dict(sorted(_primitive_counts(traced.jaxpr.jaxpr).items())),
        },
        "assumptions": {},
    }


@dataclasses.dataclass(frozen=True)
class Property:
    """Whether a property holds, with the fewest assumptions that prove it and the run that
    proved it (the run with every assumption allowed when it does not hold)."""

    proven: bool
    assumptions: list[str]
    run: Run


@dataclasses.dataclass(frozen=True)
class Findings:
    same: Property  # dL_t depends on δ_s only for s = t
    causal: Property  # ... only for s <= t
    mix: Event | None  # the first equation where positions mix (no assumption)


def _findings(runs: dict[str, Run]) -> Findings:
    return Findings(
        same=_weakest(runs, lambda r: classify(_tangent(r).dep) <= Position.SAME),
        causal=_weakest(runs, lambda r: classify(_tangent(r).dep) <= Position.PAST),
        mix=runs["none"].analysis.first("mix"),
    )


def _properties(found: Findings) -> dict[str, Any]:
    routed = bool(_tangent(found.same.run).routed)
    return {
        "same_position": {"proven": found.same.proven, "assumptions": found.same.assumptions},
        "causal": {"proven": found.causal.proven, "assumptions": found.causal.assumptions},
        "diagonal_route": {
            "present": routed if found.same.proven else None,
            "meaning": "some dL_t dependency passes an exact iota mask confined to s = t on "
            "a position x position grid (the live diagonal key/value correction)",
        },
    }


def _verdict(found: Findings, sequence: str) -> dict[str, Any]:
    if not found.same.proven:
        mix = found.mix
        return {
            "myopic": "not proven",
            "reason": "positions mix: dL_t may depend on δ_s "
            f"for {describe(_tangent(found.causal.run).dep, {0: 't'})}",
            "location": mix.location if mix else "unknown",
            "first_mixing_equation": _event(mix),
        }
    if _tangent(found.same.run).routed:
        return {
            "myopic": "proven",
            "reason": (
                f"for {sequence}, every layer l and all parameters/tokens: "
                "∂L_t/∂δ^l_s = 0 for s ≠ t, and the same-position gradient includes the "
                "attention diagonal route"
            ),
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


def summary(cert: dict[str, Any]) -> str:
    v = cert["verdict"]
    lines = [
        f"target: {cert['target']}",
        f"T: {cert['sequence_length']}",
        f"jaxpr sha256: {cert['program']['jaxpr_sha256'][:16]}...",
    ]
    props = cert.get("properties", {})
    for name in ("same_position", "causal"):
        if name in props:
            p = props[name]
            how = f" (assuming: {', '.join(p['assumptions'])})" if p["proven"] else ""
            lines.append(f"{name}: {'proven' if p['proven'] else 'NOT proven'}{how}")
    for out in cert.get("outputs", []):
        lines.append(f"  {out['name']}: {out['verdict']}  {out['depends_on_positions']}")
    lines.append(f"myopic: {v['myopic']} — {v['reason']}")
    if "location" in v:
        lines.append(f"  at {v['location']}")
        event = v.get("first_mixing_equation") or v.get("first_unrouted_position_sum")
        if event:
            lines.append(f"  equation: {event['equation']}  [{event['jaxpr_path']}]")
    secs = cert.get("seconds", {})
    lines.append(f"time: trace {secs.get('trace')} s, analysis {secs.get('analysis')} s")
    return "\n".join(lines)
