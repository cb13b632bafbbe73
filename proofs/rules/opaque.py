"""Opaque rules: primitives analysed as "every output element may depend on every input
element" (fft, the decompositions, random bits, bitcasts, custom linear solves).

That is sound for any primitive that is a function of its inputs — the output cannot depend on
δ at a position no input depends on — and it is the whole claim: each output's dependency is the
∃-projection of all inputs' dependencies over every axis, with no value facts. A rule here is an
explicit choice, listed with its reason; a primitive nobody listed is still refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from jax._src import core

from proofs import zones
from proofs.lattice import AVal, unknown
from proofs.rules.base import Context, Rule, out_rank, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

# name: why its output elements are not tied to the input's positions
OPAQUE = {
    "fft": "every frequency reads every position along the transformed axes",
    "lu": "pivoting moves rows by data",
    "qr": "each column of Q and R reads every earlier column of the whole matrix",
    "eigh": "every eigenpair reads the whole matrix",
    "svd": "every singular triple reads the whole matrix",
    "householder_product": "each reflector reads the whole matrix",
    "custom_linear_solve": "the solve reads the whole system (its jaxprs are not interpreted)",
    "bitcast_convert_type": "may regroup bytes across the trailing axis",
    "random_bits": "a key's bits, not tied to positions",
    "random_seed": "a key from a seed",
    "random_wrap": "a key from raw key data",
    "random_unwrap": "raw key data from a key",
    "random_fold_in": "a key from a key and data",
    "random_split": "keys from a key",
    "threefry2x32": "a hash of the key and the counters",
}


@rule(*OPAQUE)
def opaque(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    anywhere = zones.union(*(zones.project(x.dep, range(x.rank)) for x in ins))
    return [unknown(out_rank(eqn, k), anywhere) for k in range(len(eqn.outvars))]
