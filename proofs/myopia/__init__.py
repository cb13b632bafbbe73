"""The model-level prover of myopia, for every sequence length at once.

Myopic gradients carry no cross-position contributions, or the certificate says precisely where
they do.

``prove(target, config)`` returns the certificate, ``certificate_text`` / ``write_certificate``
write it (deterministic bytes), ``summary`` prints it; ``python -m proofs.myopia`` is the command.

Two derivative programs of the per-position losses with respect to the layer probes are traced
with a symbolic T and interpreted abstractly (``proofs.interpreter``; ``proofs.myopia.programs``):
the *backward* program, ``jax.vjp`` — what training runs, custom VJP rules included — and the
*JVP* program, where it exists (not through a custom VJP). The myopic property has two parts
(README: "What is proven"):

1. same-position — ∂L_t/∂δ^l_s may be nonzero only for s = t (every layer l, every T), in every
   program analysed;
2. diagonal route — in the JVP program, some of that dependency flows through the diagonal of
   the attention grid (the live key/value correction). Part 1 alone cannot tell a myopic model
   from one whose diagonal is stopped too: both Jacobians are diagonal, only their values
   differ. A backward program that computes the diagonal terms without a grid (the fast path)
   leaves their values to the verifier.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from myojax import files
from myojax.config import ModelConfig
from proofs.interpreter import CannotAnalyse
from proofs.myopia.programs import (
    PROGRAMS,
    Program,
    analyse,
    findings,
    not_applicable,
    output_report,
    program_header,
    properties,
    used_assumptions,
    verdict,
)
from proofs.trace import Forward, model_forward

# Certificates go outside the tracked tree unless asked (`--out proofs/certificates` regenerates
# the committed ones), and hold no timings, dates or absolute paths: the same JAX, config and
# checkout give the same bytes. Timings are printed only.
DEFAULT_OUT = Path("runs") / "proofs"
VOLATILE = ("seconds",)


def certificate_text(cert: dict[str, Any]) -> str:
    """The certificate as written: deterministic (no timings)."""
    kept = {k: v for k, v in cert.items() if k not in VOLATILE}
    return json.dumps(kept, indent=2, ensure_ascii=False) + "\n"


def certificate_name(target: Target, config: ModelConfig) -> str:
    """``<target name>`` for the default attention, ``<target name>-<impl>`` for another."""
    default = ModelConfig().attention_impl
    impl = config.attention_impl
    return target.name if impl == default else f"{target.name}-{impl}"


def write_certificate(target: Target, cert: dict[str, Any], out: Path) -> Path:
    """Write ``cert`` as ``out/<certificate_name>.json`` (atomically) and return the path."""
    path = out / f"{certificate_name(target, ModelConfig.from_dict(cert['config']))}.json"
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


def load_mutants() -> dict[str, tuple]:
    """The deliberately broken variants of ``tests/mutants.py``: name -> (forward, what the
    verifier reports, whether the prover refuses it)."""
    try:
        from tests.mutants import MUTANTS
    except ImportError as e:  # the mutants live with the tests, importable from the repo root
        raise RuntimeError(
            f"cannot import tests.mutants (run from the repository root): {e}"
        ) from e
    return MUTANTS


def prove(
    target: Target,
    config: ModelConfig,
    concrete_t: int | None = None,
    programs: Sequence[str] = tuple(PROGRAMS),
    **trace_options: Any,
) -> dict[str, Any]:
    """Trace and analyse each of ``programs`` ("backward", "jvp"), and return the certificate
    (a JSON-serialisable dict). Proven iff every program that exists for the model is proven
    (the JVP program does not exist where a custom VJP is: ``programs.not_applicable``).

    ``trace_options`` go to the tracer (another model ``build``, ``loss_fn``, real-valued
    ``input_shape``/``target_shape``)."""
    cert = _header(target, config)
    sections, seconds = {}, {}
    for name in programs:
        sections[name], seconds[name], sequence = _prove_program(
            PROGRAMS[name], target, config, concrete_t, trace_options
        )
        cert["sequence_length"] = sequence
    cert["programs"] = sections
    cert["verdict"] = _overall(sections)
    cert["seconds"] = seconds
    return cert


def _header(target: Target, config: ModelConfig) -> dict[str, Any]:
    return {
        "schema": "myojax.proofs.myopia/2",
        "jax_version": jax.__version__,
        "target": dataclasses.asdict(target),
        "config": config.to_dict(),
        "sequence_length": None,
    }


def _prove_program(
    program: Program,
    target: Target,
    config: ModelConfig,
    concrete_t: int | None,
    trace_options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """One program's section of the certificate, its timings, and how T was chosen."""
    t0 = time.perf_counter()
    traced = program.trace(target.forward(), config, concrete_t, **trace_options)
    seconds: dict[str, Any] = {"trace": round(time.perf_counter() - t0, 4)}
    section: dict[str, Any] = {"program": program_header(program, traced)}
    why_not = not_applicable(program, traced)
    if why_not is not None:
        return {**section, "applicable": False, "reason": why_not}, seconds, traced.sequence
    try:
        runs = {
            "none": analyse(traced, frozenset(), program),
            "no_overflow": analyse(traced, frozenset({"no_overflow"}), program),
        }
    except CannotAnalyse as e:
        section["verdict"] = {
            "myopic": "not proven",
            "reason": f"not proven: {e}",
            "location": e.location,
        }
        return section, seconds, traced.sequence
    found = findings(runs)
    section["assumptions"] = used_assumptions(found)
    section["outputs"] = output_report(found.causal.run, program)
    section["properties"] = properties(found)
    section["verdict"] = verdict(found, traced.sequence, program)
    seconds["analysis"] = round(found.same.run.seconds, 4)
    seconds["equations_interpreted"] = found.same.run.analysis.equations_seen
    return section, seconds, traced.sequence


def _overall(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Proven iff every applicable program is; else the first refusal, naming its program."""
    applicable = {n: s for n, s in sections.items() if s.get("applicable", True)}
    if not applicable:
        return {"myopic": "not proven", "reason": "no requested program exists for this model"}
    for name, section in applicable.items():
        if section["verdict"]["myopic"] != "proven":
            return {"program": name, **section["verdict"]}
    reasons = [f"{name}: {s['verdict']['reason']}" for name, s in applicable.items()]
    return {"myopic": "proven", "programs": sorted(applicable), "reason": "; ".join(reasons)}


def summary(cert: dict[str, Any]) -> str:
    lines = [f"target: {cert['target']}", f"T: {cert['sequence_length']}"]
    seconds = cert.get("seconds", {})
    for name, section in cert["programs"].items():
        lines.append(f"[{name}] jaxpr sha256: {section['program']['jaxpr_sha256'][:16]}...")
        if not section.get("applicable", True):
            lines.append(f"  not applicable: {section['reason']}")
            continue
        lines += _program_lines(section)
        secs = seconds.get(name, {})
        lines.append(f"  time: trace {secs.get('trace')} s, analysis {secs.get('analysis')} s")
    v = cert["verdict"]
    lines.append(
        f"myopic: {v['myopic']}" + (f" ({v['program']} program)" if "program" in v else "")
    )
    return "\n".join(lines)


def _program_lines(section: dict[str, Any]) -> list[str]:
    lines = []
    props = section.get("properties", {})
    for name in ("same_position", "causal"):
        if name in props:
            p = props[name]
            how = f" (assuming: {', '.join(p['assumptions'])})" if p["proven"] else ""
            lines.append(f"  {name}: {'proven' if p['proven'] else 'NOT proven'}{how}")
    for out in section.get("outputs", []):
        lines.append(f"    {out['name']}: {out['verdict']}  {out['depends_on_positions']}")
    v = section["verdict"]
    lines.append(f"  myopic: {v['myopic']} — {v['reason']}")
    if "location" in v:
        lines.append(f"    at {v['location']}")
        event = v.get("first_mixing_equation") or v.get("first_unrouted_position_sum")
        if event:
            lines.append(f"    equation: {event['equation']}  [{event['jaxpr_path']}]")
    return lines
