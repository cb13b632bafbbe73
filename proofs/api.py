"""How the derivative of any JAX function depends on positions (``position_dependency``).

    >>> import jax.numpy as jnp, proofs
    >>> str(proofs.position_dependency(lambda x: jnp.cumsum(x, axis=0), jnp.ones((8, 4))))
    'same-or-past'

The function is traced with ``jax.jvp`` (so ``stop_gradient`` and custom JVP rules mean what
JAX makes them mean) and the tangent output is interpreted abstractly (``proofs.interpreter``):
out[t] may depend on x[s] for the (t, s) the verdict allows, for every value of ``x`` and
``args`` at once. ``proofs.myopia`` uses the same core on the model's per-position losses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import export
from jax._src import core

from proofs import backward, zones
from proofs.interpreter import Analysis, CannotAnalyse, eval_closed
from proofs.lattice import AVal, Position, classify, unknown
from proofs.trace import abstract_call, dead_code_eliminated
from proofs.zones import U

ASSUMPTIONS = {
    "finite": "every intermediate value is finite (so 0·x = 0 and 0/x = 0); derivatives are "
    "only meaningful there",
    "no_overflow": "in a reduce_max over a masked array, the unmasked entries (the live "
    "attention scores) are > -finfo.max/2, so exp(fill - rowmax) underflows to "
    "exactly 0 at masked entries",
}
DEFAULT_ASSUMPTIONS = frozenset({"no_overflow"})  # "finite" is always made
# Which derivative program is analysed: forward mode (jax.jvp) or the backward program training
# runs (jax.vjp, custom VJP rules included; proofs.backward).
ProgramKind = Literal["jvp", "vjp"]
SYMBOLIC_MAX_LEN = 1 << 24  # the symbolic T's declared bound: every index is exact in int32/f32


@dataclasses.dataclass(frozen=True)
class Dependency:
    """The full result: the verdict, the abstract tangent outputs and the interpreter state."""

    verdict: Position
    tangents: list[AVal]
    analysis: Analysis
    jaxpr: core.ClosedJaxpr


def position_dependency(
    fn: Callable[..., Any],
    x: Any,
    *args: Any,
    symbolic: bool = False,
    assume: Iterable[str] = DEFAULT_ASSUMPTIONS,
    max_len: int = SYMBOLIC_MAX_LEN,
    program: ProgramKind = "jvp",
) -> Position:
    """How ``fn(x, *args)`` depends on ``x`` along positions, proven for every ``x`` and ``args``.

    Axis 0 of ``x`` and axis 0 of every output are positions. The result is the least of
    ``none ⊑ same-position ⊑ same-or-past ⊑ any`` that contains, for every output leaf and every
    value of the inputs, the pattern of (t, s) with ∂out[t, ...]/∂x[s, ...] ≠ 0; its ``str()``
    is that name. It is conservative, never wrong: a finer true answer may come out coarser.

    Args:
        fn: a JAX-traceable function; ``x`` must be a floating-point array of rank >= 1.
        x: the differentiated input (only its shape and dtype are used).
        *args: held constant (not differentiated). Array leaves are abstract — the verdict holds
            for every value of them — so a mask that should be exploited must be built inside
            ``fn`` from ``iota`` / ``jnp.tril`` / ``jnp.eye``, not passed in. Other leaves (Python
            numbers, strings, callables) are static.
        symbolic: analyse with the length of axis 0 a symbolic T, 1 <= T <= ``max_len`` (every
            axis of an ``args`` array whose length equals ``x.shape[0]`` becomes T too), so the
            verdict holds for every such T, not only ``x.shape[0]``.
        assume: assumptions besides "finite" the analysis may use (default: "no_overflow", as
            the model-level prover).
        program: ``"jvp"`` analyses ``jax.jvp`` (a ``custom_vjp`` cannot be traced there);
            ``"vjp"`` analyses the backward program ``jax.vjp`` runs — the cotangents of the
            outputs to the cotangent of ``x``, custom backward rules included — whose verdict
            has the same meaning (``proofs.backward``).

    Assumptions (all listed in ``ASSUMPTIONS``):
        * finite — every intermediate is finite, so 0·y = 0 and 0/y = 0 (always);
        * no_overflow — in a reduce_max over a masked array the unmasked entries are
          > -finfo.max/2 (default on; ``assume=()`` turns it off);
        * JAX is correct: ``jax.jvp`` computes J·δ, primitives do what their documentation says,
          and the traced program is the one that runs (for ``symbolic``: for every T).

    Raises:
        proofs.CannotAnalyse: a primitive without a rule, or a case a rule does not handle; the
            message names the primitive and the source line (``.primitive``, ``.location``).
        TypeError / ValueError: ``x`` is not a floating-point array of rank >= 1, or an unknown
            assumption is named.
    """
    return analyse_dependency(
        fn, x, *args, symbolic=symbolic, assume=assume, max_len=max_len, program=program
    ).verdict


def analyse_dependency(
    fn: Callable[..., Any],
    x: Any,
    *args: Any,
    symbolic: bool = False,
    assume: Iterable[str] = DEFAULT_ASSUMPTIONS,
    max_len: int = SYMBOLIC_MAX_LEN,
    program: ProgramKind = "jvp",
) -> Dependency:
    """``position_dependency`` with the abstract values and events (for tests and reports)."""
    allowed = frozenset(assume)
    if unknown_names := allowed - set(ASSUMPTIONS):
        raise ValueError(f"unknown assumption(s) {sorted(unknown_names)}; known: {ASSUMPTIONS}")
    shape, dtype = jnp.shape(x), jnp.result_type(x)
    if not shape or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"x must be a floating-point array of rank >= 1, got {dtype}{shape}")
    length: Any = shape[0]
    if symbolic:
        (length,) = export.symbolic_shape("T", constraints=(f"T <= {max_len}",))
    if program == "vjp":
        closed, n_cotangents = backward.trace_cotangent(fn, x, args, length)
    else:
        closed, n_cotangents = trace_tangent(fn, x, args, length), 1
    inputs = [unknown(len(v.aval.shape)) for v in closed.jaxpr.invars]
    for i in range(len(inputs) - n_cotangents, len(inputs)):  # δ: position u on axis 0
        inputs[i] = tangent_input(inputs[i].rank, axis=0)
    an = Analysis(length, allowed | {"finite"})
    tangents = eval_closed(closed, inputs, an)
    if program == "vjp":
        tangents = [backward.forward_orientation(t, position_axis=0) for t in tangents]
    verdict = max((classify(t.dep) for t in tangents), default=Position.NONE)
    return Dependency(verdict, tangents, an, closed)


def tangent_input(rank: int, axis: int) -> AVal:
    """δ with positions on ``axis``: element i is the input at position u = i[axis]."""
    return unknown(rank, zones.region(zones.eq(U, axis)))


def trace_tangent(fn: Callable[..., Any], x: Any, args: tuple, length: Any) -> core.ClosedJaxpr:
    """The DCE'd jaxpr of (x, *array leaves of args, δ) ↦ tangent leaves of jvp(fn, x, δ)."""
    call, xs, leaves = abstract_call(fn, x, args, length)

    def tangent(x: Any, leaves: list, dx: Any) -> list:
        _, out = jax.jvp(lambda x: call(x, leaves), (x,), (dx,))
        return [t for t in jax.tree.leaves(out) if t.dtype != jax.dtypes.float0]

    closed = jax.make_jaxpr(tangent)(xs, leaves, xs)
    return dead_code_eliminated(closed)


__all__ = [
    "ASSUMPTIONS",
    "CannotAnalyse",
    "Dependency",
    "Position",
    "analyse_dependency",
    "position_dependency",
]
