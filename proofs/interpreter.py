"""The abstract interpreter: walks a jaxpr equation by equation with ``proofs.rules``, descends
into nested jaxprs (jit, closed_call, remat, custom_jvp/vjp, cond) and solves ``scan`` by a
fixed point over the carry, so one analysis covers every number of iterations.

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
from collections.abc import Callable, Sequence
from typing import Any

from jax._src import core, source_info_util

from proofs import lattice, zones
from proofs.lattice import AVal
from proofs.rules import RULES, Unsupported, const_aval, literal_aval, remap

MAX_FIXPOINT_ITERATIONS = 12  # widening starts half-way


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

HigherOrder = Callable[[core.JaxprEqn, Sequence[AVal], Analysis], list[AVal]]
HIGHER_ORDER: dict[str, HigherOrder] = {}


def higher_order(*names: str) -> Callable[[HigherOrder], HigherOrder]:
    def register(fn: HigherOrder) -> HigherOrder:
        for n in names:
            HIGHER_ORDER[n] = fn
        return fn

    return register


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
        if name in HIGHER_ORDER:
            an.path.append(f"{name}#{index}")
            an.where.append(location(eqn))
            try:
                outs = HIGHER_ORDER[name](eqn, ins, an)
            finally:
                an.path.pop()
                an.where.pop()
        elif name in RULES:
            outs = RULES[name](eqn, ins, an)
            if any(a.routed for a in ins):  # shadow run: the same rule on the routed part only
                shadow = RULES[name](
                    eqn, [a.with_(dep=a.routed, routed=zones.BOTTOM) for a in ins], an.quiet()
                )
                outs = [o.with_(routed=zones.union(o.routed, r.dep)) for o, r in zip(outs, shadow)]
        else:
            raise CannotAnalyse(name, an.locate(eqn), "no transfer rule")
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


# ---- nested jaxprs ------------------------------------------------------------------------------


@higher_order("jit", "pjit")
def _jit(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis) -> list[AVal]:
    return eval_closed(eqn.params["jaxpr"], ins, an)


@higher_order("closed_call", "core_call", "custom_jvp_call", "custom_vjp_call")
def _call(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis) -> list[AVal]:
    # A custom_jvp/vjp call left in a JVP jaxpr is not differentiated there: its values are
    # those of call_jaxpr, so analysing call_jaxpr is exact.
    return eval_closed(eqn.params["call_jaxpr"], ins, an)


@higher_order("remat2", "checkpoint")
def _remat(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis) -> list[AVal]:
    return eval_closed(eqn.params["jaxpr"], ins, an)  # remat only changes what is stored


@higher_order("cond")
def _cond(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis) -> list[AVal]:
    """Either branch may run: join them; a δ-dependent branch index taints every output."""
    index, *args = ins
    results = [eval_closed(b, args, an) for b in eqn.params["branches"]]
    outs = [_join_all(vals) for vals in zip(*results)]
    if index.dep:
        anywhere = zones.project(index.dep, range(index.rank))
        routed = zones.project(index.routed, range(index.rank))
        outs = [
            o.with_(dep=zones.union(o.dep, anywhere), routed=zones.union(o.routed, routed))
            for o in outs
        ]
    return outs


def _join_all(vals: Sequence[AVal]) -> AVal:
    out = vals[0]
    for v in vals[1:]:
        out = lattice.join(out, v)
    return out


def _drop_leading(av: AVal) -> AVal:
    """xs[i] for an unknown iteration i: ∃ over the stacked axis."""
    return remap(av, {a: a - 1 for a in range(1, av.rank)}, av.rank - 1)


def _add_leading(av: AVal) -> AVal:
    """ys stacked over iterations: every iteration satisfies the fixed point, so a new
    unconstrained leading axis is sound."""
    return remap(av, {a: a + 1 for a in range(av.rank)}, av.rank + 1).with_(index=None)


@higher_order("scan")
def _scan(eqn: core.JaxprEqn, ins: Sequence[AVal], an: Analysis) -> list[AVal]:
    """Least fixed point over the carry; independent of ``length`` (every depth at once)."""
    body: core.ClosedJaxpr = eqn.params["jaxpr"]
    n_consts, n_carry = eqn.params["num_consts"], eqn.params["num_carry"]
    consts, init, xs = (
        ins[:n_consts],
        list(ins[n_consts : n_consts + n_carry]),
        ins[n_consts + n_carry :],
    )
    slices = [_drop_leading(x) for x in xs]
    carry = init
    an.final_depth += 1
    try:
        for iteration in range(MAX_FIXPOINT_ITERATIONS):
            outs = eval_closed(body, [*consts, *carry, *slices], an)
            joined = [lattice.join(c, o) for c, o in zip(carry, outs[:n_carry])]
            if joined == carry:
                break
            if iteration >= MAX_FIXPOINT_ITERATIONS // 2:
                joined = [lattice.widen(c, j) for c, j in zip(carry, joined)]
            carry = joined
        else:
            raise Unsupported("scan carry did not reach a fixed point")
    finally:
        an.final_depth -= 1
    outs = eval_closed(body, [*consts, *carry, *slices], an)  # the converged pass: recorded
    assert all(lattice.join(c, o) == c for c, o in zip(carry, outs[:n_carry]))
    return [*carry, *(_add_leading(y) for y in outs[n_carry:])]
