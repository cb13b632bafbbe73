"""Shared by the proofs.rules tests: run the analyser on a small hand-written function and check
its answer two ways — the analysed dependency must *contain* the numerically measured Jacobian
pattern (soundness), and its verdict must be the expected one (precision)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from proofs import zones
from proofs.interpreter import Analysis, eval_closed
from proofs.lattice import AVal, Position, classify, unknown
from proofs.zones import U

T, D = 5, 3  # sequence length and a feature size that differs from it

rng = np.random.default_rng(0)
X = rng.normal(size=(T, D)).astype(np.float32)
A = rng.normal(size=(T, T)).astype(np.float32)


def analyse_all(f, *args, allowed=frozenset(), position_size=T) -> tuple[list[AVal], Analysis]:
    """Every abstract output of f, where args[0] is the differentiated input (positions on
    axis 0), and the interpreter state."""
    closed = jax.make_jaxpr(f)(*args)
    ins = [unknown(np.ndim(a)) for a in args]
    ins[0] = unknown(np.ndim(args[0]), zones.region(zones.eq(U, 0)))
    an = Analysis(position_size, frozenset(allowed))
    return eval_closed(closed, ins, an), an


def analyse(f, *args, allowed=frozenset(), position_size=T) -> tuple[AVal, Analysis]:
    """Abstract output 0 of f, and the interpreter state."""
    outs, an = analyse_all(f, *args, allowed=allowed, position_size=position_size)
    return outs[0], an


def verdict(f, *args, **kw) -> Position:
    return classify(analyse(f, *args, **kw)[0].dep)


def measured_pattern(f, *args) -> np.ndarray:
    """Boolean [*out_shape, T]: |∂out/∂x[u, ...]| > 0 somewhere over x's other axes."""
    with jax.enable_x64(True):
        args64 = [
            jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a
            for a in args
        ]
        jac = np.asarray(jax.jacfwd(f)(*args64))
    out_ndim = jac.ndim - np.ndim(args[0])
    jac = np.abs(jac).reshape(*jac.shape[: out_ndim + 1], -1).sum(-1)
    return jac > 0


def assert_sound(out: AVal, pattern: np.ndarray) -> None:
    for idx in zip(*np.nonzero(pattern)):
        *where, u = (int(i) for i in idx)
        point = {U: u, **dict(enumerate(where))}
        assert zones.contains(out.dep, point), f"measured dependency {point} not in {out.dep}"


def check(f, *args, expect: Position, allowed=frozenset()) -> AVal:
    out, _ = analyse(f, *args, allowed=allowed)
    assert_sound(out, measured_pattern(f, *args))
    assert classify(out.dep) == expect, classify(out.dep)
    return out


def iotas(shape, dims=(0, 1), dtype=jnp.int32):
    return [jax.lax.broadcasted_iota(dtype, shape, d) for d in dims]


def live_exp(s, x):
    """exp(s - max(0·x, 0)): the subtracted row max has lb = 0, so a -1e30 fill gets an ub."""
    return jnp.exp(s - jnp.maximum(x * 0.0, 0.0))
