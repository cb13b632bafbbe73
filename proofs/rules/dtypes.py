"""Which values a dtype holds exactly, and the cast rule (convert_element_type).

An index fact claims a value *equals* x_axis + k, so it survives only where every index along
the axis is exact in the dtype (no wrap-around, no rounding); value facts survive only casts that
keep every value. Other families ask ``index_fits`` and ``const_op`` the same questions (through
this module, so a test can swap the check everywhere at once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax._src import core

from proofs.lattice import AVal, unknown
from proofs.rules.base import Context, Rule, in_shape, known_leq, registrar

RULES: dict[str, Rule] = {}
rule = registrar(RULES)


def exact_integers(dtype: Any) -> tuple[int, int] | None:
    """[lo, hi]: every integer in it is held exactly by ``dtype`` (no wrap-around, no rounding).
    Integers: the dtype's range. Floats: |n| <= 2^(mantissa bits + 1) (bfloat16: 256)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return None
    if jnp.issubdtype(dt, jnp.integer):
        info = np.iinfo(dt)
        return int(info.min), int(info.max)
    if jnp.issubdtype(dt, jnp.floating):
        info = jnp.finfo(dt)
        hi = min(2 ** (int(info.nmant) + 1), int(float(info.max)))
        return -hi, hi
    return None


def index_fits(offset: int, size: Any, dtype: Any) -> bool:
    """The values offset, offset + 1, ..., offset + size - 1 are all exact in ``dtype`` (size may
    be symbolic: then its declared bound must decide it)."""
    held = exact_integers(dtype)
    if held is None:
        return False
    lo, hi = held
    return lo <= offset and known_leq(size - 1 + offset, hi)


def value_preserving(src: Any, dst: Any) -> bool:
    """Every value of ``src`` converts to ``dst`` exactly, so value facts carry over."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst or src == np.bool_:
        return True
    if dst == np.bool_:
        return False
    if jnp.issubdtype(src, jnp.integer):
        info, held = np.iinfo(src), exact_integers(dst)
        return held is not None and held[0] <= int(info.min) and int(info.max) <= held[1]
    if jnp.issubdtype(src, jnp.floating) and jnp.issubdtype(dst, jnp.floating):
        a, b = jnp.finfo(src), jnp.finfo(dst)
        return b.nmant >= a.nmant and b.maxexp >= a.maxexp and b.minexp <= a.minexp
    return False


def const_op(op: Callable[[Any, Any], Any], a: Any, b: Any, dtype: Any) -> Any:
    """``op`` on two scalar constants in ``dtype`` itself (wrapping / rounding as XLA does), or
    None if a constant does not fit the dtype."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(op(np.asarray(a, dtype), np.asarray(b, dtype)), dtype)[()].item()
    except (OverflowError, ValueError, TypeError):
        return None


def exact_cast(value: Any, src: Any, dst: Any) -> Any:
    """``value`` converted to ``dst`` if that is exact (it converts back unchanged), else None."""
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(value, src).astype(dst)
            return got[()].item() if got.astype(src) == np.asarray(value, src) else None
    except (OverflowError, ValueError, TypeError):
        return None


@rule("convert_element_type")
def convert_element_type(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """0 converts to 0 (or False) in every direction, so ``nz`` always survives. Value facts
    survive only a cast that keeps every value (no wrap-around, no rounding); an index fact only
    if every index value of this axis is exact in the new dtype."""
    (x,) = ins
    src, dst = np.dtype(eqn.invars[0].aval.dtype), np.dtype(eqn.params["new_dtype"])
    out = unknown(x.rank, x.dep).with_(nz=x.nz)
    exact = value_preserving(src, dst)
    if exact or dst == np.bool_:  # a cast to bool is x != 0: zero-ness is exact
        out = out.with_(zr=x.zr)
    if exact:
        out = out.with_(fill=x.fill, ub=x.ub, lb=x.lb, const=x.const)
    elif x.const is not None:
        out = out.with_(const=exact_cast(x.const, src, dst))
    if x.index is not None and index_fits(x.index[1], in_shape(eqn, 0)[x.index[0]], dst):
        out = out.with_(index=x.index)
    return [out]
