"""Prove, for every sequence length at once, that myopic gradients carry no cross-position
contributions — or say precisely where they do.

    python -m proofs.myopia --mode myopic            # exit 0: proven, certificate written
    python -m proofs.myopia --mode standard          # exit 1: causal only (reported)
    python -m proofs.myopia --mutant stop_k_only     # exit 1: first equation where positions mix

The analysed program is ``jax.jvp`` of the per-position losses with respect to the layer probes
(``proofs.trace``), with a symbolic T; ``proofs.interpreter`` interprets it abstractly. The myopic
property has two parts (README: "What is proven"):

1. same-position — the tangent dL_t depends on δ^l_s only for s = t (every layer l, every T);
2. diagonal route — some of that dependency flows through the diagonal of the attention grid
   (the live key/value correction). Part 1 alone cannot tell a myopic model from one whose
   diagonal is stopped too: both Jacobians are diagonal, only their values differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from jax._src import core

from myojax.config import GRADIENT_MODES, REMAT_POLICIES, ModelConfig
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
    try:
        from tests.mutants import MUTANTS
    except ImportError as e:  # the mutants live with the tests, importable from the repo root
        raise SystemExit(f"cannot import tests.mutants (run from the repository root): {e}") from e
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


def _weakest(runs: dict[str, Run], holds: Any) -> tuple[bool, list[str], Run]:
    """Whether a property holds, with the fewest assumptions that prove it."""
    for key in ("none", "no_overflow"):
        if holds(runs[key]):
            used = ["finite", *sorted(runs[key].analysis.used & {"no_overflow"})]
            return True, used if key != "none" else ["finite"], runs[key]
    return False, [], runs["no_overflow"]


def prove(
    target: Target, config: ModelConfig, concrete_t: int | None = None, **trace_options: Any
) -> dict[str, Any]:
    """Trace, analyse and return the certificate (a JSON-serialisable dict).

    ``trace_options`` go to ``proofs.trace.trace_jvp`` (another model ``build``, ``loss_fn``,
    real-valued ``input_shape``/``target_shape``)."""
    t0 = time.perf_counter()
    traced = trace_jvp(target.forward(), config, concrete_t, **trace_options)
    trace_s = time.perf_counter() - t0
    cert: dict[str, Any] = {
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

    same, same_assume, same_run = _weakest(
        runs, lambda r: classify(_tangent(r).dep) <= Position.SAME
    )
    causal, causal_assume, causal_run = _weakest(
        runs, lambda r: classify(_tangent(r).dep) <= Position.PAST
    )
    routed = bool(_tangent(same_run).routed)
    blind = same_run.analysis.first("blind", final_only=True)
    mix = runs["none"].analysis.first("mix")

    cert["outputs"] = _output_report(causal_run)
    cert["properties"] = {
        "same_position": {"proven": same, "assumptions": same_assume},
        "causal": {"proven": causal, "assumptions": causal_assume},
        "diagonal_route": {
            "present": routed if same else None,
            "meaning": "some dL_t dependency passes an exact iota mask confined to s = t on "
            "a position x position grid (the live diagonal key/value correction)",
        },
    }
    if same and routed:
        verdict = {
            "myopic": "proven",
            "reason": (
                f"for {traced.sequence}, every layer l and all parameters/tokens: "
                "∂L_t/∂δ^l_s = 0 for s ≠ t, and the same-position gradient includes the "
                "attention diagonal route"
            ),
        }
    elif not same:
        verdict = {
            "myopic": "not proven",
            "reason": "positions mix: dL_t may depend on δ_s "
            f"for {describe(_tangent(causal_run).dep, {0: 't'})}",
            "location": mix.location if mix else "unknown",
            "first_mixing_equation": _event(mix),
        }
    else:
        verdict = {
            "myopic": "not proven",
            "reason": "same-position, but no dependency is "
            "routed through the attention diagonal: the diagonal key/value gradient is "
            "stopped (expected pattern: same-position AND live diagonal route)",
            "location": blind.location if blind else "unknown",
            "first_unrouted_position_sum": _event(blind),
        }
    cert["verdict"] = verdict
    used = sorted({a for p in (same_assume, causal_assume) for a in p})
    cert["assumptions"] = {a: ASSUMPTIONS[a] for a in used or ["finite"]}
    cert["seconds"] = {
        "trace": round(trace_s, 4),
        "analysis": round(same_run.seconds, 4),
        "equations_interpreted": same_run.analysis.equations_seen,
    }
    return cert


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m proofs.myopia",
        description="Sound abstract interpretation of the JVP jaxpr with a symbolic sequence "
        "length T: proves that myopic per-position loss gradients w.r.t. the residual stream "
        "(layer probes) are position-local for every T, or reports where positions mix.",
        epilog="exit status: 0 myopic property proven; 1 not proven (positions mix, the "
        "diagonal route is missing, or the analysis refused: 'cannot analyse ...'); "
        "2 usage error.",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--mode", choices=GRADIENT_MODES, help="gradient mode of the model")
    target.add_argument("--mutant", help="a deliberately broken variant from tests/mutants.py")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON certificate (default: %(default)s, untracked; "
        "proofs/certificates holds the committed ones)",
    )
    p.add_argument("--no-write", action="store_true", help="print only, write no certificate")
    p.add_argument(
        "--concrete-t",
        type=int,
        default=None,
        metavar="T",
        help="analyse one concrete T instead of a symbolic one (for timing)",
    )
    d = ModelConfig()
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="upper bound of symbolic T")
    p.add_argument("--d-model", type=int, default=d.d_model)
    p.add_argument("--n-layers", type=int, default=d.n_layers)
    p.add_argument("--n-heads", type=int, default=d.n_heads)
    p.add_argument("--vocab-size", type=int, default=d.vocab_size)
    p.add_argument("--remat", choices=REMAT_POLICIES, default=d.remat)
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="param and compute dtype"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mutant is not None and args.mutant not in load_mutants():
        _parser().error(f"unknown mutant {args.mutant!r}; known: {sorted(load_mutants())}")
    target = Target(mode=args.mode, mutant=args.mutant)
    try:
        config = ModelConfig(
            vocab_size=args.vocab_size,
            seq_len=args.seq_len,
            d_model=args.d_model,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            remat=args.remat,
            gradient_mode=args.mode or "standard",
            param_dtype=args.dtype,
            compute_dtype=args.dtype,
        )
    except ValueError as e:
        _parser().error(str(e))
    with jax.enable_x64(args.dtype == "float64"):
        cert = prove(target, config, args.concrete_t)
    print(summary(cert))
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{target.name}.json"
        path.write_text(certificate_text(cert))
        print(f"certificate: {path}")
    return 0 if cert["verdict"]["myopic"] == "proven" else 1


if __name__ == "__main__":
    sys.exit(main())
