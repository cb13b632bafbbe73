"""One differential check of a program against its measured Jacobian.

The program is analysed by ``proofs.analyse_dependency`` (at a concrete T and with a symbolic T)
and measured (the nonzero pattern of its Jacobian in float64, one random
direction per input position). Every measured (t, s) must lie in the analysed dependency region
and in the verdict; refusing is allowed, a verdict that misses a measured entry is a
``Counterexample``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import core
from jaxtyping import Array

from proofs import zones
from proofs.api import ProgramKind, analyse_dependency
from proofs.fuzz.edges import draw_inputs
from proofs.fuzz.grammar import Program, build
from proofs.fuzz.steps import D
from proofs.interpreter import CannotAnalyse
from proofs.lattice import Position
from proofs.zones import U

COLUMNS_BIG = 16  # measured input positions at a big T (all of them at a small T)


@dataclasses.dataclass
class Outcome:
    t: int
    verdict: str  # a label, or "refused"
    symbolic: str  # a label, "refused" or "untraceable"
    measured: str  # the finest label containing the measured pattern
    primitives: set[str]
    refused: str | None = None  # the refused primitive
    skipped: str | None = None  # non-finite values: outside the "finite" assumption


class Counterexample(AssertionError):
    pass


# XLA's cheapest compile: a fresh jit per program dominates the run time otherwise
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def measure(
    fn: Callable, x: Array, rest: tuple, columns: Sequence[int], seed: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(fn(x, *rest), changed, finite) with changed[t, j] = out[t] changes with x[columns[j]]
    (one random direction per position; NaN counts as a change) and finite = every primal and
    tangent value is finite (a 0 tangent through an infinite derivative, acosh'(1), is NaN
    wherever it lands: outside the "finite" assumption)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=x.shape[1:]) + 0.5
    basis = np.zeros((len(columns), *x.shape), x.dtype)
    for k, s in enumerate(columns):
        basis[k, s] = direction
    push = jax.vmap(lambda dx: jax.jvp(lambda y: fn(y, *rest), (x,), (dx,)))
    compiled = jax.jit(push).lower(jnp.asarray(basis)).compile(compiler_options=FAST_COMPILE)
    primal, tangent = (np.asarray(o) for o in compiled(jnp.asarray(basis)))
    flat = tangent.reshape(len(columns), tangent.shape[1], -1)
    changed = (np.abs(flat) > 0) | np.isnan(flat)
    finite = bool(np.all(np.isfinite(primal)) and np.all(np.isfinite(tangent)))
    return primal[0], changed.any(-1).T, finite


def finest(pattern: np.ndarray, columns: Sequence[int]) -> Position:
    ts, ks = np.nonzero(pattern)
    ss = np.asarray(columns)[ks]
    if not len(ts):
        return Position.NONE
    if np.all(ss == ts):
        return Position.SAME
    if np.all(ss <= ts):
        return Position.PAST
    return Position.ANY


def _contains(dep: zones.Region, rank: int, t: int, s: int) -> bool:
    return zones.contains(zones.project(dep, range(1, rank)), {0: t, U: s})


def primitives_of(jaxpr: core.Jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in core.jaxprs_in_params(eqn.params):
            names |= primitives_of(sub)
    return names


def check(program: Program, t: int, seed: int = 0, inputs: str = "normal") -> Outcome:
    """Analyse ``program`` at concrete ``t`` and symbolically, measure it at ``t`` on inputs
    drawn as ``inputs`` says (``proofs.fuzz.edges.INPUTS``), and raise ``Counterexample`` if a
    measured dependency is outside an analysed one."""
    fn = build(program)
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        x, a = (jnp.asarray(draw_inputs(rng, (t, D), inputs)) for _ in range(2))
        w = jnp.asarray(rng.normal(size=(D, D)) / 2.0)
        columns = list(range(t)) if t <= 16 else _big_columns(t, rng)
        _, pattern, finite = measure(fn, x, (a, w), columns, seed)
        out = Outcome(t, "refused", "refused", finest(pattern, columns).label, set())
        if not finite:
            out.skipped = "non-finite"
        pairs = [(int(ti), columns[k]) for ti, k in zip(*np.nonzero(pattern))]
        for sym in (False, True):
            analyse_into(out, fn, (x, a, w), sym, pairs, f"{inputs} inputs: {program!r}")
        if not out.primitives:  # refused: count what the program holds
            out.primitives = primitives_of(jax.make_jaxpr(fn)(x, a, w).jaxpr)
    return out


def analyse_into(
    out: Outcome,
    fn: Callable,
    args: tuple,
    sym: bool,
    pairs: Sequence[tuple[int, int]],
    what: str,
    program: ProgramKind = "jvp",
) -> None:
    """Analyse ``fn(*args)`` (``program``, at the concrete T or a symbolic one) into ``out``,
    and raise ``Counterexample`` if a measured pair (t, s) — out[t] depends on x[s] — lies
    outside the analysed region or verdict. A refusal is recorded, not raised."""
    try:
        dep = analyse_dependency(fn, *args, symbolic=sym, program=program)
    except CannotAnalyse as e:
        out.refused = out.refused or e.primitive
        return
    except Exception as e:  # a program that cannot be traced with a symbolic T
        if not sym:
            raise
        out.symbolic = f"untraceable ({type(e).__name__})"
        return
    label = dep.verdict.label
    out.primitives |= primitives_of(dep.jaxpr.jaxpr)
    if sym:
        out.symbolic = label
    else:
        out.verdict = label
    if out.skipped:
        return
    (tan,) = dep.tangents
    for t, s in pairs:
        if not (_contains(tan.dep, tan.rank, t, s) and _allows(dep.verdict, t, s)):
            raise Counterexample(
                f"{'symbolic' if sym else f'T={out.t}'} ({program}): out[{t}] depends on "
                f"x[{s}] (measured) but the analyser says {label} / {tan.dep}: {what}"
            )


def _allows(v: Position, t: int, s: int) -> bool:
    return v == Position.ANY or (v == Position.PAST and s <= t) or (v == Position.SAME and s == t)


def _big_columns(t: int, rng: np.random.Generator) -> list[int]:
    """Input positions to measure at a big T: both ends, the int8/bf16 wrap points, random."""
    fixed = {0, 1, 2, t // 2, 127, 128, 129, 255, 256, 257, t - 2, t - 1}
    extra = rng.choice(t, size=COLUMNS_BIG, replace=False)
    return sorted({s for s in fixed | set(extra.tolist()) if 0 <= s < t})[: COLUMNS_BIG + 12]
