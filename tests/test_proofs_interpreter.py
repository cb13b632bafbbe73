"""proofs.interpreter: nested jaxprs, the scan fixed point, events and refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import zones
from proofs.interpreter import Analysis, CannotAnalyse, eval_closed
from proofs.lattice import Position, classify, unknown
from proofs.zones import U

T, D = 5, 3
X = np.random.default_rng(1).normal(size=(T, D)).astype(np.float32)


def analyse(f, *args, allowed=frozenset()):
    closed = jax.make_jaxpr(f)(*args)
    ins = [unknown(np.ndim(a)) for a in args]
    ins[0] = unknown(np.ndim(args[0]), zones.region(zones.eq(U, 0)))
    an = Analysis(T, frozenset(allowed))
    return eval_closed(closed, ins, an), an


def verdict(f, *args, **kw) -> Position:
    (out, *_), _ = analyse(f, *args, **kw)
    return classify(out.dep)


def past_sum(x):
    return jnp.tril(jnp.ones((T, T))) @ x


def test_jit_and_closed_call_are_entered():
    assert verdict(jax.jit(past_sum), X) == Position.PAST
    assert verdict(jax.jit(lambda x: jnp.sin(x)), X) == Position.SAME


def test_remat_is_entered():
    assert verdict(jax.checkpoint(past_sum), X) == Position.PAST
    assert verdict(jax.checkpoint(jnp.tanh), X) == Position.SAME


def test_custom_jvp_and_vjp_calls_are_analysed_by_their_primal_jaxpr():
    @jax.custom_jvp
    def f(x):
        return past_sum(x)

    f.defjvp(lambda p, t: (f(p[0]), t[0]))  # a (wrong) jvp rule: not what is analysed

    @jax.custom_vjp
    def g(x):
        return x * 2.0

    g.defvjp(lambda x: (g(x), None), lambda _, ct: (ct,))
    assert verdict(f, X) == Position.PAST
    assert verdict(g, X) == Position.SAME


def test_cond_joins_branches():
    f = lambda x, p: jax.lax.cond(p, past_sum, jnp.tanh, x)
    assert verdict(f, X, True) == Position.PAST


def test_scan_fixed_point_covers_every_length():
    """A carry that moves one position per step reaches every past position — for any
    number of steps, so the fixed point must widen beyond 'same-or-one-back'."""

    def shift_down(c, _):
        return jnp.concatenate([jnp.zeros((1, D)), c[:-1]]) + c, None

    for length in (1, 3):
        f = lambda x, n=length: jax.lax.scan(shift_down, x, None, length=n)[0]
        (out, *_), _ = analyse(f, X)
        assert classify(out.dep) == Position.PAST
        assert zones.contains(out.dep, {0: 4, U: 0})  # 4 steps back: needs the fixed point


def test_scan_with_local_body_stays_local_and_ys_are_stacked():
    def body(c, x_l):
        return jnp.tanh(c) + x_l, c * 2.0

    f = lambda x: jax.lax.scan(body, x, jnp.broadcast_to(x, (2, T, D)))
    (carry, ys), _ = analyse(f, X)
    assert classify(carry.dep) == Position.SAME
    assert classify(ys.dep, axis=1) == Position.SAME  # [layers, T, D]: positions on axis 1


def test_mix_event_names_the_first_mixing_equation():
    def f(x):
        y = jnp.tanh(x)  # local
        z = jnp.cumsum(y, axis=0)  # positions mix here
        return jnp.sum(z, axis=0)  # (mixes further, but is not the first)

    _, an = analyse(f, X)
    first = an.first("mix")
    assert first is not None and first.primitive == "cumsum"
    assert "test_proofs_interpreter.py" in first.location


def test_while_loop_is_refused():
    f = lambda x: jax.lax.while_loop(lambda c: c[0, 0] < 10.0, lambda c: c + 1.0, x)
    with pytest.raises(CannotAnalyse, match="cannot analyse while"):
        analyse(f, X)


def test_routed_dependency_follows_only_diagonal_routes():
    eye = lambda x: jnp.sum(
        jnp.where(jnp.eye(T, dtype=bool)[:, :, None], x[None] * x[:, None], 0.0), 1
    )
    causal = lambda x: jnp.sum(
        jnp.where(jnp.tril(jnp.ones((T, T), bool))[:, :, None], x[None] * x[:, None], 0.0), 1
    )
    (routed, *_), _ = analyse(eye, X)
    (plain, *_), an = analyse(causal, X)
    assert routed.routed and not plain.routed
    blind = an.first("blind", final_only=True)
    assert blind is not None and blind.primitive == "reduce_sum"
