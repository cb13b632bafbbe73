"""proofs.rules.opaque: a listed opaque primitive makes every output read every input (sound,
the coarsest), and an unlisted one is still refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from proofs.interpreter import CannotAnalyse
from proofs.lattice import Position
from proofs.rules.opaque import OPAQUE
from tests.proofs_rule_checks import X, analyse, check


def test_fft_reads_everything():
    check(lambda x: jnp.fft.rfft(x, axis=1).real, X, expect=Position.ANY)
    spectrum = lambda x: jnp.fft.rfft(jnp.ones_like(x), axis=1).real[:, :2].sum(1, keepdims=True)
    check(lambda x: x * 0.0 + spectrum(x), X, expect=Position.NONE)


def test_a_random_key_does_not_depend_on_positions():
    check(lambda x: x * jax.random.normal(jax.random.key(0), x.shape), X, expect=Position.SAME)


def test_the_list_says_why_and_unlisted_primitives_are_refused():
    assert all(reason for reason in OPAQUE.values())
    with pytest.raises(CannotAnalyse, match="eig"):
        analyse(lambda x: jnp.linalg.eig(x[:3, :3])[0].real, X)
