"""The abstract interpreter, which walks a jaxpr equation by equation with ``proofs.rules``.

The control-flow rules (``proofs.rules.control_flow``) descend into nested jaxprs through it (jit,
closed_call, remat, custom_jvp/vjp, cond) and solve ``scan`` by a fixed point over the carry, so
one analysis covers every number of iterations.

It also records two kinds of events, each with the equation's primitive and user source line:

* ``mix``   — the first equation whose inputs depend on δ only at their own positions
  (u = x_k for some axis k) but whose output does not: where positions first mix;
* ``blind`` — a sum/max/contraction over a position axis (size T) whose δ-dependent operand is
  never anchored to that axis: gradient crosses the attention grid only along the query axis,
  i.e. no key/value (diagonal or otherwise) passes any tangent.

Anything without a rule raises ``CannotAnalyse`` — the prover refuses, it never passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from jax._src import core, source_info_util

from proofs import lattice, zones
from proofs.lattice import AVal
from proofs.rules import HIGHER_ORDER, RULES
from proofs.rules.base import Unsupported


class CannotAnalyse(Exception):
    def __init__(self, primitive: str, location: str, why: str = ""):
        self.primitive, self.location, self.why = primitive, location, why
        super().__init__(f"cannot analyse {primitive} at {location}" + (f" ({why})" if why else ""))


@dataclasses.dataclass(frozen=True)
class Event:
    kind: str  # "mix" | "blind"
    primitive: str
    location: str
    path: str
    equation: str
    detail: str
    final: bool  # recorded in the converged pass of every enclosing scan

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "primitive": self.primitive,
            "location": self.location,
            "jaxpr_path": self.path,
            "equation": self.equation,
            "detail": self.detail,
        }


def location(eqn: core.JaxprEqn) -> str:
    """The innermost user frame (outside site-packages) of the equation's traceback."""
    frames = list(source_info_util.user_frames(eqn.source_info.traceback))
    chosen = next((f for f in frames if "site-packages" not in f.file_name), None)
    if chosen is None:
        return "" if not frames else source_info_util.summarize(eqn.source_info)
    name = chosen.file_name
    with contextlib.suppress(ValueError):  # another drive on Windows
        name = os.path.relpath(name)
    return f"{name}:{chosen.start_line} ({chosen.function_name})"


def short(eqn: core.JaxprEqn, limit: int = 160) -> str:
    text = " ".join(str(eqn).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class Analysis:
    """Interpreter state: the context the rules see, and the events found."""

    position_size: Any  # the sequence length as it appears in shapes (symbolic or int)
    allowed: frozenset[str] = frozenset()
    used: set[str] = dataclasses.field(default_factory=set)
    events: list[Event] = dataclasses.field(default_factory=list)
    path: list[str] = dataclasses.field(default_factory=list)
    where: list[str] = dataclasses.field(default_factory=list)  # enclosing user locations
    final_depth: int = 0  # number of enclosing scans currently *not* in their final pass
    equations_seen: int = 0
    index: int = 0  # of the equation being evaluated, within its jaxpr
    silent: bool = False

    # -- the rules' Context protocol --
    def assume(self, name: str) -> bool:
        if name in self.allowed:
            self.used.add(name)
            return True
        return False

    def is_position(self, size: Any) -> bool:
        return _same_size(size, self.position_size)

    def contraction(self, eqn: core.JaxprEqn, sizes: Sequence[Any], routed: bool) -> None:
        if routed or not any(self.is_position(s) for s in sizes):
            return
        self._record(
            "blind",
            eqn,
            "a sum over positions of a δ-dependent operand none of "
            "whose dependency came through a diagonal route (the live key/value "
            "correction on the attention grid's s = t entries)",
        )

    def evaluate(self, jaxpr: core.ClosedJaxpr | core.Jaxpr, args: Sequence[AVal]) -> list[AVal]:
        return eval_closed(jaxpr, args, self)

    @contextlib.contextmanager
    def iterating(self) -> Iterator[None]:
        """Events recorded inside are not final (a scan's passes before its fixed point)."""
        self.final_depth += 1
        try:
            yield
        finally:
            self.final_depth -= 1

    def locate(self, eqn: core.JaxprEqn) -> str:
        """The equation's user source line, or that of the nearest enclosing equation (the
        bodies of library functions such as jnp.sort carry no user frame)."""
        here = location(eqn)
        return here or next((w for w in reversed(self.where) if w), "unknown location")

    def quiet(self) -> Analysis:
        """The same context recording no events (for the shadow run that computes ``routed``)."""
        return dataclasses.replace(self, silent=True, path=list(self.path), where=list(self.where))

    # -- events --
    def _record(self, kind: str, eqn: core.JaxprEqn, detail: str) -> None:
        if self.silent:
            return
        self.events.append(
            Event(
                kind,
                eqn.primitive.name,
                self.locate(eqn),
                " > ".join([*self.path, f"eqn {self.index}"]),
                short(eqn),
                detail,
                self.final_depth == 0,
            )
        )

    def first(self, kind: str, final_only: bool = False) -> Event | None:
        return next(
            (e for e in self.events if e.kind == kind and (e.final or not final_only)), None
        )


def _same_size(a: Any, b: Any) -> bool:
    try:
        return core.definitely_equal(a, b)
    except Exception:  # incomparable symbolic expressions are not the same size
        return False


# ---- evaluation ---------------------------------------------------------------------------------


def literal_aval(value: Any, rank: int) -> AVal:
    return lattice.constant(rank, np.asarray(value).item())


def const_aval(value: Any) -> AVal:
    """A closed-over concrete array: independent of δ; a constant if all elements agree."""
    arr = np.asarray(value)
    if arr.size and arr.size <= 1 << 20 and np.all(arr == arr.flat[0]):
        return lattice.constant(arr.ndim, arr.flat[0].item())
    return lattice.unknown(arr.ndim)


def eval_jaxpr(
    jaxpr: core.Jaxpr, consts: Sequence[AVal], args: Sequence[AVal], an: Analysis
) -> list[AVal]:
    env: dict[core.Var, AVal] = {}

    def read(v: Any) -> AVal:
        if isinstance(v, core.Literal):
            return literal_aval(v.val, len(v.aval.shape))
        return env[v]

    for v, a in zip(jaxpr.constvars, consts, strict=True):
        env[v] = a
    for v, a in zip(jaxpr.invars, args, strict=True):
        env[v] = a
    for i, eqn in enumerate(jaxpr.eqns):
        ins = [read(v) for v in eqn.invars]
        outs = eval_equation(eqn, ins, an, i)
        for v, a in zip(eqn.outvars, outs, strict=True):
            env[v] = a
    return [read(v) for v in jaxpr.outvars]


def eval_closed(
    closed: core.ClosedJaxpr | core.Jaxpr, args: Sequence[AVal], an: Analysis
) -> list[AVal]:
    if isinstance(closed, core.ClosedJaxpr):
        return eval_jaxpr(closed.jaxpr, [const_aval(c) for c in closed.consts], args, an)
    return eval_jaxpr(closed, [], args, an)


def eval_equation(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis, index: int) -> list[AVal]:
    name = eqn.primitive.name
    an.equations_seen += 1
    an.index = index
    try:
        if name not in RULES:
            raise CannotAnalyse(name, an.locate(eqn), "no transfer rule")
        if name in HIGHER_ORDER:
            an.path.append(f"{name}#{index}")
            an.where.append(location(eqn))
            try:
                outs = RULES[name](eqn, ins, an)
            finally:
                an.path.pop()
                an.where.pop()
        else:
            outs = RULES[name](eqn, ins, an)
            if any(a.routed for a in ins):  # shadow run: the same rule on the routed part only
                shadow = RULES[name](
                    eqn, [a.with_(dep=a.routed, routed=zones.BOTTOM) for a in ins], an.quiet()
                )
                outs = [o.with_(routed=zones.union(o.routed, r.dep)) for o, r in zip(outs, shadow)]
    except Unsupported as e:
        raise CannotAnalyse(name, an.locate(eqn), str(e)) from e
    except (ValueError, TypeError, KeyError, IndexError, core.InconclusiveDimensionOperation) as e:
        # a rule met a form of its primitive it was not written for: refuse, never guess
        raise CannotAnalyse(name, an.locate(eqn), f"rule failed: {type(e).__name__}: {e}") from e
    if len(outs) != len(eqn.outvars):
        raise CannotAnalyse(name, an.locate(eqn), "rule returned the wrong number of outputs")
    for v, a in zip(eqn.outvars, outs):
        if a.rank != len(v.aval.shape):
            raise CannotAnalyse(name, an.locate(eqn), "rule returned the wrong rank")
    an.index = index  # nested jaxprs changed it
    if all(_local(a) for a in ins) and not all(_local(a) for a in outs):
        an._record(
            "mix", eqn, "inputs depend on δ only at their own positions; the output does not"
        )
    return outs


def _local(av: AVal) -> bool:
    return all(lattice.is_local(z, av.rank) for z in av.dep)
