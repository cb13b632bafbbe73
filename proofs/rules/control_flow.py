"""Control-flow rules (jit, calls, remat, cond, scan, while), which interpret nested jaxprs.

The bodies of these higher-order primitives are interpreted by the same rules with the caller's
abstract values (facts included).

jit / pjit / closed_call / remat run their body; a custom_jvp/vjp call left in a JVP jaxpr is
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
from proofs.rules.axes import remap
from proofs.rules.base import Context, Rule, Unsupported, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

MAX_FIXPOINT_ITERATIONS = 12  # widening starts half-way


@rule("jit", "pjit")
def jit(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    return ctx.evaluate(eqn.params["jaxpr"], ins)


@rule("closed_call", "core_call", "custom_jvp_call", "custom_vjp_call")
def call(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    # A custom_jvp/vjp call left in a JVP jaxpr is not differentiated there: its values are
    # those of call_jaxpr, so analysing call_jaxpr is exact.
    return ctx.evaluate(eqn.params["call_jaxpr"], ins)


@rule("remat2", "checkpoint")
def remat(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    return ctx.evaluate(eqn.params["jaxpr"], ins)  # remat only changes what is stored


@rule("cond")
def cond(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Either branch may run: join them; a δ-dependent branch index taints every output."""
    index, *args = ins
    results = [ctx.evaluate(b, args) for b in eqn.params["branches"]]
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


@rule("scan")
def scan(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
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
    with ctx.iterating():
        for iteration in range(MAX_FIXPOINT_ITERATIONS):
            outs = ctx.evaluate(body, [*consts, *carry, *slices])
            joined = [lattice.join(c, o) for c, o in zip(carry, outs[:n_carry])]
            if joined == carry:
                break
            if iteration >= MAX_FIXPOINT_ITERATIONS // 2:
                joined = [lattice.widen(c, j) for c, j in zip(carry, joined)]
            carry = joined
        else:
            raise Unsupported("scan carry did not reach a fixed point")
    outs = ctx.evaluate(body, [*consts, *carry, *slices])  # the converged pass: recorded
    assert all(lattice.join(c, o) == c for c, o in zip(carry, outs[:n_carry]))
    return [*carry, *(_add_leading(y) for y in outs[n_carry:])]


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

    return _fixed_point(list(init), step, ctx)


def _fixed_point(
    init: list[AVal], step: Callable[[list[AVal]], list[AVal]], ctx: Context
) -> list[AVal]:
    """The least carry ⊒ init with carry ⊒ step(carry): joins, then widening after half the
    rounds; the converged pass runs once more outside ``iterating`` so its events are final."""
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
    final = step(carry)  # the converged pass: recorded
    assert all(lattice.join(c, o) == c for c, o in zip(carry, final))
    return carry
