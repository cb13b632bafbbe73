"""Custom-VJP programs for the differential fuzzer: a grammar program wrapped in a
``jax.custom_vjp`` whose backward rule is the exact one or deliberately wrong, checked on the
backward program (``proofs.api`` with ``program="vjp"``) against the cotangent map that runs.

A wrong rule is still a program, and the analysis must describe the program that runs, not the
function it was meant to differentiate. ``BACKWARD_RULES`` lists them: the exact VJP, the VJP of
another random program, the exact VJP shifted along positions (to the past or the future),
cumulated over positions, scaled, replaced by a position-local map, or zero. A measured
dependency of the input cotangent at s on the output cotangent at t outside the analysed region
is a ``proofs.fuzz.differential.Counterexample``; refusing is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from jaxtyping import Array

from proofs.fuzz.differential import (
    FAST_COMPILE,
    Outcome,
    _big_columns,
    analyse_into,
    finest,
    primitives_of,
)
from proofs.fuzz.edges import draw_inputs
from proofs.fuzz.grammar import Program, build, programs
from proofs.fuzz.steps import D


def _shift(g: Array, k: int) -> Array:
    """out[s] = g[s + k] (zero beyond the ends): k > 0 reads later positions."""
    zeros = jnp.zeros((abs(k), g.shape[1]), g.dtype)
    if k > 0:
        return jnp.concatenate([g[k:], zeros])
    return jnp.concatenate([zeros, g[: g.shape[0] + k]])


# name -> (static parameters, dx from (ct, x, a, w, the exact pullback))
BACKWARD_RULES: dict[str, tuple[st.SearchStrategy, Callable[..., Array]]] = {
    "exact": (st.just(()), lambda p, ct, x, a, w, pull: pull(ct)),
    "shift": (
        st.tuples(st.sampled_from((-2, -1, 1, 2))),
        lambda p, ct, x, a, w, pull: _shift(pull(ct), p[0]),
    ),
    "cumulated": (
        st.tuples(st.booleans()),
        lambda p, ct, x, a, w, pull: jax.lax.cumsum(pull(ct), axis=0, reverse=p[0]),
    ),
    "scaled": (st.just(()), lambda p, ct, x, a, w, pull: 2.0 * pull(ct)),
    "local": (st.just(()), lambda p, ct, x, a, w, pull: ct * jnp.tanh(x) + ct @ w.T),
    "zero": (st.just(()), lambda p, ct, x, a, w, pull: jnp.zeros_like(x)),
}


@dataclasses.dataclass(frozen=True)
class CustomVjp:
    """``program`` as a custom VJP whose backward rule is ``rule`` (with ``params``), or the
    exact VJP of ``other`` when ``other`` is a program."""

    program: Program
    rule: str
    params: tuple = ()
    other: Program | None = None


def reverse_differentiable(program: Program) -> bool:
    """Whether JAX can build ``program``'s VJP (some grammar steps, e.g. a product window or a
    while loop, have no reverse-mode rule): traced only, at T = 3."""
    x = jax.ShapeDtypeStruct((3, D), jnp.float32)
    w = jax.ShapeDtypeStruct((D, D), jnp.float32)
    fn = build(program)
    try:
        jax.eval_shape(lambda x, a, w: jax.vjp(fn, x, a, w)[1](fn(x, a, w)), x, x, w)
    except Exception:  # JAX's refusal to linearise comes as several exception types
        return False
    return True


def custom_vjp_programs(max_ops: int = 4) -> st.SearchStrategy[CustomVjp]:
    """Random programs with a random backward rule; one in four takes another program's VJP.
    Only programs JAX can differentiate in reverse mode are drawn."""
    drawn = programs(max_ops).filter(reverse_differentiable)
    by_rule = st.sampled_from(sorted(BACKWARD_RULES)).flatmap(
        lambda r: st.builds(CustomVjp, drawn, st.just(r), BACKWARD_RULES[r][0])
    )
    other = st.builds(CustomVjp, drawn, st.just("other"), st.just(()), drawn)
    return st.one_of(by_rule, by_rule, by_rule, other)


def build_custom_vjp(cv: CustomVjp) -> Callable[[Array, Array, Array], Array]:
    """The function ``(x, a, w) -> [T, D]`` whose backward rule is ``cv``'s."""
    fn = build(cv.program)
    differentiated = fn if cv.other is None else build(cv.other)

    def backward_rule(res: tuple, ct: Array) -> tuple[Array, Array, Array]:
        x, a, w = res
        pull = jax.vjp(lambda y: differentiated(y, a, w), x)[1]
        if cv.other is not None:
            dx = pull(ct)[0]
        else:
            dx = BACKWARD_RULES[cv.rule][1](cv.params, ct, x, a, w, lambda c: pull(c)[0])
        return dx.astype(x.dtype), jnp.zeros_like(a), jnp.zeros_like(w)

    wrapped = jax.custom_vjp(fn)
    wrapped.defvjp(lambda x, a, w: (fn(x, a, w), (x, a, w)), backward_rule)
    return wrapped


def measure_backward(
    fn: Callable, x: Array, rest: tuple, columns: Sequence[int], seed: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(fn(x, *rest), changed, finite) with changed[t, s] = x̄[s] changes with ȳ[t], for the
    output positions t in ``columns`` (False in the other rows; one random direction per
    position, NaN counts as a change) and finite = every primal and cotangent is finite."""
    out = jax.eval_shape(lambda y: fn(y, *rest), x)
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=out.shape[1:]) + 0.5
    basis = np.zeros((len(columns), *out.shape), out.dtype)
    for k, t in enumerate(columns):
        basis[k, t] = direction

    def pulled(cts: Array) -> tuple[Array, Array]:
        primal, pull = jax.vjp(lambda y: fn(y, *rest), x)
        return primal, jax.vmap(lambda c: pull(c)[0])(cts)

    compiled = jax.jit(pulled).lower(jnp.asarray(basis)).compile(compiler_options=FAST_COMPILE)
    primal, dx = (np.asarray(o) for o in compiled(jnp.asarray(basis)))
    flat = dx.reshape(len(columns), dx.shape[1], -1)
    changed = np.zeros((out.shape[0], x.shape[0]), bool)
    changed[list(columns)] = ((np.abs(flat) > 0) | np.isnan(flat)).any(-1)
    finite = bool(np.all(np.isfinite(primal)) and np.all(np.isfinite(dx)))
    return primal, changed, finite


def check_custom_vjp(cv: CustomVjp, t: int, seed: int = 0, inputs: str = "normal") -> Outcome:
    """Analyse ``cv``'s backward program at concrete ``t`` and symbolically, measure it at ``t``
    on inputs drawn as ``inputs`` says (``proofs.fuzz.edges.INPUTS``), and raise
    ``Counterexample`` if a measured dependency is outside an analysed one."""
    fn = build_custom_vjp(cv)
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        x, a = (jnp.asarray(draw_inputs(rng, (t, D), inputs)) for _ in range(2))
        w = jnp.asarray(rng.normal(size=(D, D)) / 2.0)
        columns = list(range(t)) if t <= 16 else _big_columns(t, rng)
        _, pattern, finite = measure_backward(fn, x, (a, w), columns, seed)  # [t out, s in]
        out = Outcome(t, "refused", "refused", finest(pattern, range(t)).label, set())
        if not finite:
            out.skipped = "non-finite"
        pairs = [(int(t), int(s)) for t, s in zip(*np.nonzero(pattern))]
        for sym in (False, True):
            analyse_into(out, fn, (x, a, w), sym, pairs, f"{inputs} inputs: {cv!r}", program="vjp")
        if not out.primitives:  # refused: count what the backward program holds
            out.primitives = primitives_of(jax.make_jaxpr(jax.vjp(fn, x, a, w)[1])(x).jaxpr)
    return out
