"""What every rule family shares (the rule signature, the context a rule sees, refusal and a
family's registrar).

A rule maps the abstract values of an equation's inputs to those of its outputs. It may raise
``Unsupported`` for a form it does not handle; the interpreter turns that into a refusal
(``CannotAnalyse``), never a guess.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from jax._src import core

from proofs.lattice import AVal
from proofs.zones import Region

FRESH = 10_000  # scratch variables (never an array axis)


class Unsupported(Exception):
    """A pattern the analysis cannot handle soundly (it refuses instead of guessing)."""


class Context(Protocol):
    """What a rule may ask of the interpreter that runs it."""

    def assume(self, name: str) -> bool:
        """Whether a named assumption may be used (and record that it was)."""

    def is_position(self, size: Any) -> bool:
        """Whether an axis of this size is a sequence-position axis (size T)."""

    def contraction(self, eqn: core.JaxprEqn, sizes: Sequence[Any], routed: bool) -> None:
        """Called when an equation sums/maximises over axes of a δ-dependent operand;
        ``routed``: whether some of that dependency came through a diagonal route."""

    def evaluate(self, jaxpr: core.ClosedJaxpr | core.Jaxpr, args: Sequence[AVal]) -> list[AVal]:
        """The abstract outputs of a nested jaxpr on these inputs (control-flow rules)."""

    def iterating(self) -> contextlib.AbstractContextManager[None]:
        """A scope whose events are provisional: a fixed point's passes before it converged."""


Rule = Callable[[core.JaxprEqn, Sequence[AVal], Context], list[AVal]]


def registrar(table: dict[str, Rule]) -> Callable[..., Callable[[Rule], Rule]]:
    """A family's ``@rule("primitive", ...)`` decorator: it enters the rule into ``table`` under
    each primitive name (two rules for one primitive are an error)."""

    def rule(*names: str) -> Callable[[Rule], Rule]:
        def register(fn: Rule) -> Rule:
            for name in names:
                if name in table:
                    raise ValueError(f"two rules for the primitive {name!r}")
                table[name] = fn
            return fn

        return register

    return rule


def merge(tables: Iterable[dict[str, Rule]]) -> dict[str, Rule]:
    """One registry from the families' tables; a primitive with a rule in two families is an
    error (which rule would run would depend on the import order)."""
    merged: dict[str, Rule] = {}
    for table in tables:
        clash = sorted(merged.keys() & table.keys())
        if clash:
            raise ValueError(f"primitives with a rule in two families: {clash}")
        merged.update(table)
    return merged


def out_rank(eqn: core.JaxprEqn, i: int = 0) -> int:
    return len(eqn.outvars[i].aval.shape)


def in_shape(eqn: core.JaxprEqn, i: int) -> tuple:
    return tuple(eqn.invars[i].aval.shape)


def known_leq(a: Any, b: Any) -> bool:
    """a <= b, decided (a symbolic size by its declared bound); False when undecidable."""
    try:
        return bool(a <= b)
    except core.InconclusiveDimensionOperation:
        return False


def report_contraction(
    eqn: core.JaxprEqn, ctx: Context, dep: Region, routed: bool, sizes: Sequence[Any]
) -> None:
    """Tell the context about a sum over axes of ``sizes`` of an operand that depends on δ."""
    if dep:
        ctx.contraction(eqn, sizes, routed)
