"""Control-flow rules (jit, calls, remat, cond, scan, while), which interpret nested jaxprs.

The bodies of these higher-order primitives are interpreted by the same rules with the caller's
abstract values (facts included).

jit / closed_call / remat run their body; a custom_jvp/vjp call left in a JVP jaxpr is
not differentiated there, so its ``call_jaxpr`` is exactly what runs. ``cond`` joins its
branches (a δ-dependent branch index taints every output). ``scan`` slices ``xs`` by ``remap``,
solves the carry as the least fixed point of ``carry ⊔ body(carry)`` (widening after half the
rounds, so it terminates for any body and covers every length) and stacks ``ys`` on a new
unconstrained axis. ``while`` is the same fixed point without ``xs``, tainted by a δ-dependent
trip count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jax._src import core

from proofs import lattice, zones
from proofs.lattice import AVal
from proofs.rules.axes import remap, shift
from proofs.rules.base import Context, Rule, Unsupported, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

MAX_FIXPOINT_ITERATIONS = 12  # widening starts half-way


@rule("jit")
def jit(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    return ctx.evaluate(eqn.params["jaxpr"], ins)


@rule("closed_call", "custom_jvp_call", "custom_vjp_call")
def call(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    # A custom_jvp/vjp call left in a JVP jaxpr is not differentiated there: its values are
    # those of call_jaxpr, so analysing call_jaxpr is exact.
    return ctx.evaluate(eqn.params["call_jaxpr"], ins)


@rule("remat2")
def remat(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    return ctx.evaluate(eqn.params["jaxpr"], ins)  # remat only changes what is stored


@rule("cond")
def cond(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Either branch may run: join them (only the chosen one for a constant index, clamped as
    XLA does); a δ-dependent branch index taints every output."""
    index, *args = ins
    branches = eqn.params["branches"]
    if isinstance(index.const, int) and not index.dep:  # a constant predicate: that branch
        branches = [branches[min(max(index.const, 0), len(branches) - 1)]]
    results = [ctx.evaluate(b, args) for b in branches]
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


def _at_iteration(av: AVal, it: int) -> AVal:
    """xs[i] at iteration i: the stacked axis becomes the iteration variable ``it`` (every fact
    about it holds per iteration), the other axes move down one."""
    moved = remap(av, {a: a - 1 for a in range(1, av.rank)}, av.rank - 1)
    if av.rank == 0:
        return moved
    full = {0: it, **{a: a - 1 for a in range(1, av.rank)}}
    must = lambda f: None if f is None else (zones.rename(f[0], full), f[1])
    return moved.with_(
        dep=zones.rename(av.dep, full),
        nz=zones.rename(av.nz, full),
        zr=zones.rename(av.zr, full),
        routed=zones.rename(av.routed, full),
        fill=must(av.fill),
        ub=must(av.ub),
    )


def _stacked(av: AVal, it: int) -> AVal:
    """ys stacked over iterations: y at iteration i becomes ys[i] (``it`` becomes axis 0)."""
    full = {it: 0, **{a: a + 1 for a in range(av.rank)}}
    must = lambda f: None if f is None else (zones.rename(f[0], full), f[1])
    index = None if av.index is None else (av.index[0] + 1, av.index[1])
    return AVal(
        av.rank + 1,
        zones.rename(av.dep, full),
        zones.rename(av.nz, full),
        zones.rename(av.zr, full),
        index,
        av.const,
        must(av.fill),
        must(av.ub),
        av.lb,
        zones.rename(av.routed, full),
    )


def _advanced(av: AVal, it: int, offset: int) -> AVal:
    """The carry out of iteration i as the carry into the next one (i + 1, or i − 1 reversed):
    its regions shifted along ``it``; must-facts that mention ``it`` dropped."""
    mentions = lambda f: f is not None and any(it in zones.variables(z) for z in f[0])
    return av.with_(
        dep=shift(av.dep, it, offset),
        nz=shift(av.nz, it, offset),
        zr=shift(av.zr, it, offset),
        routed=shift(av.routed, it, offset),
        fill=None if mentions(av.fill) else av.fill,
        ub=None if mentions(av.ub) else av.ub,
    )


def _forget(av: AVal, it: int) -> AVal:
    """The value after the loop, whichever iteration was last: ∃ over ``it``."""
    return _advanced(av, it, 0).with_(
        dep=zones.project(av.dep, [it]),
        nz=zones.project(av.nz, [it]),
        zr=zones.project(av.zr, [it]),
        routed=zones.project(av.routed, [it]),
    )


def _regions(av: AVal) -> list[zones.Region]:
    musts = [f[0] for f in (av.fill, av.ub) if f is not None]
    return [av.dep, av.nz, av.zr, av.routed, *musts]


@rule("scan")
def scan(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Least fixed point over the carry, for every length at once. The iteration i is a variable
    of the zones: iteration i reads xs[i] and writes ys[i], and its carry is the previous
    iteration's shifted by one, so a carry that reads only the past of xs keeps ys causal."""
    body: core.ClosedJaxpr = eqn.params["jaxpr"]
    n_consts, n_carry = eqn.params["num_consts"], eqn.params["num_carry"]
    consts, init, xs = (
        ins[:n_consts],
        list(ins[n_consts : n_consts + n_carry]),
        ins[n_consts + n_carry :],
    )
    it = zones.fresh_global(r for x in ins for r in _regions(x))
    slices = [_at_iteration(x, it) for x in xs]
    step = -1 if not eqn.params["reverse"] else 1  # carry into i is the carry out of i + step

    def advance(carry: list[AVal]) -> list[AVal]:
        outs = ctx.evaluate(body, [*consts, *carry, *slices])
        return [_advanced(o, it, step) for o in outs[:n_carry]]

    carry = _fixed_point(init, advance, ctx)
    outs = ctx.evaluate(body, [*consts, *carry, *slices])  # the converged pass: recorded
    assert all(lattice.join(c, _advanced(o, it, step)) == c for c, o in zip(carry, outs))
    last = [_forget(lattice.join(c, o), it) for c, o in zip(carry, outs[:n_carry])]
    return [*last, *(_stacked(y, it) for y in outs[n_carry:])]


@rule("while")
def while_loop(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """The least fixed point of ``carry ⊔ body(carry)`` from the initial carry, as for scan (any
    number of iterations, zero included). How many iterations run is decided by ``cond``: if its
    predicate depends on δ, every carry may depend on that anywhere."""
    p = eqn.params
    n_cond, n_body = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = (
        ins[:n_cond],
        ins[n_cond : n_cond + n_body],
        ins[n_cond + n_body :],
    )

    def step(carry: list[AVal]) -> list[AVal]:
        (pred,) = ctx.evaluate(p["cond_jaxpr"], [*cond_consts, *carry])
        outs = ctx.evaluate(p["body_jaxpr"], [*body_consts, *carry])
        if pred.dep:  # the trip count reads δ
            anywhere = zones.project(pred.dep, range(pred.rank))
            outs = [o.with_(dep=zones.union(o.dep, anywhere)) for o in outs]
        return outs

    carry = _fixed_point(list(init), step, ctx)
    final = step(carry)  # the converged pass: recorded
    assert all(lattice.join(c, o) == c for c, o in zip(carry, final))
    return carry


def _fixed_point(
    init: list[AVal], step: Callable[[list[AVal]], list[AVal]], ctx: Context
) -> list[AVal]:
    """The least carry ⊒ init with carry ⊒ step(carry): joins, then widening after half the
    rounds (inside ``iterating``: these passes' events are provisional)."""
    carry = init
    with ctx.iterating():
        for iteration in range(MAX_FIXPOINT_ITERATIONS):
            joined = [lattice.join(c, o) for c, o in zip(carry, step(carry))]
            if joined == carry:
                break
            if iteration >= MAX_FIXPOINT_ITERATIONS // 2:
                joined = [lattice.widen(c, j) for c, j in zip(carry, joined)]
            carry = joined
        else:
            raise Unsupported("loop carry did not reach a fixed point")
    return carry
