"""Transfer rules, one per JAX primitive, in one module per primitive family and one registry.

Each rule is a sound abstract semantics of its primitive; ``RULES`` maps every primitive name to
its rule.

A rule maps the abstract values of an equation's inputs to those of its outputs. The only field
the verdict rests on is ``dep`` (may-dependence on δ); the value facts (``nz``, ``zr``,
``index``, ``const``, ``fill``, ``ub``, ``lb``) exist to make ``dep`` precise at masks. Every
rule is written so that dropping a fact (⊤) is always allowed; a primitive without a rule is
refused by the interpreter, never guessed.

Families (a new rule goes into the module of its family, registered with that module's
``@rule``): ``elementwise`` (unary functions, arithmetic, boolean logic), ``dtypes`` (casts and
which values a dtype holds exactly), ``masks`` (iota, comparisons, select_n), ``shapes``
(broadcast, transpose, squeeze, reshape, rev), ``indexing`` (slice, concatenate, pad, gather),
``reductions`` (reduce_*, cumulative ops), ``contractions`` (dot_general), ``windows``
(convolutions, window reductions, max pooling), ``sorting`` (sort, top_k), ``linalg``
(triangular_solve, cholesky), ``opaque`` (every output reads every input: fft, decompositions,
random bits) and ``control_flow`` (jit, calls, remat, cond, scan, while: the ``HIGHER_ORDER``
rules, which interpret nested jaxprs).
``axes`` and ``base`` are what the families share.

Assumptions (see README): values are finite (so 0·x = 0 and 0/x = 0), and — only where the
interpreter's context allows it — entries that a ``reduce_max`` sees outside a mask's fill region
are > -finfo.max/2 (no overflow in live attention scores).
"""

from __future__ import annotations

from proofs.rules import (
    contractions,
    control_flow,
    dtypes,
    elementwise,
    indexing,
    linalg,
    masks,
    opaque,
    reductions,
    shapes,
    sorting,
    windows,
)
from proofs.rules.base import Rule, merge

FAMILIES = (
    elementwise,
    dtypes,
    masks,
    shapes,
    indexing,
    reductions,
    contractions,
    windows,
    sorting,
    linalg,
    opaque,
    control_flow,
)
RULES: dict[str, Rule] = merge(family.RULES for family in FAMILIES)
# Rules that interpret nested jaxprs: the interpreter names them in event paths (scan#9 > ...)
# and runs them once (their bodies carry the routed part themselves).
HIGHER_ORDER: frozenset[str] = frozenset(control_flow.RULES)
