"""proofs.fuzz.grammar: every kind of step is drawn, builds a [T, D] stream at every length the
fuzzer uses (square and rectangular grids), and reads the streams it names."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.fuzz.grammar import KINDS, D, Op, apply, build, programs


@settings(max_examples=60, derandomize=True)
@given(programs(max_ops=3))
def test_drawn_programs_are_well_formed(program):
    assert 1 <= len(program) <= 3
    for op in program:
        assert op.kind in KINDS and len(op.args) == KINDS[op.kind].n_args


def test_every_kind_is_drawn():
    seen = set()

    @settings(max_examples=300, derandomize=True)
    @given(programs())
    def collect(program):
        seen.update(op.kind for op in program)

    collect()
    assert seen == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=6, derandomize=True)
@given(data=st.data(), t=st.sampled_from([3, 8, 260]))
def test_every_kind_builds_a_stream(kind, data, t):
    params = data.draw(KINDS[kind].params)
    op = Op(kind, params, (0,) * KINDS[kind].n_args)
    rng = np.random.default_rng(0)
    x, a = (jnp.asarray(rng.normal(size=(t, D)), jnp.float32) for _ in range(2))
    w = jnp.asarray(rng.normal(size=(D, D)), jnp.float32)
    out = jax.eval_shape(build((op,)), x, a, w)
    assert out.shape == (t, D)


def test_args_count_back_from_the_latest_stream():
    a, x = jnp.zeros((3, D)), jnp.ones((3, D))
    neg = Op("unary", ("neg",), (1,))  # 1: the stream before the latest, here a
    assert float(apply(neg, [a, x], a, jnp.eye(D)).sum()) == 0.0
    with pytest.raises(ValueError, match="unknown op"):
        apply(Op("nope", (), (0,)), [a, x], a, jnp.eye(D))
