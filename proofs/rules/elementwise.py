"""Elementwise rules (unary functions, arithmetic, max/min and boolean logic).

Output i depends on what operand i depends on; the value facts say where a result is zero (a
zero factor absorbs, f(0) = 0 keeps zeros), where exp underflows to exactly 0, and which sums of
an index and a constant are still an index (how ``jnp.tril`` / ``jnp.eye`` offsets stay exact).
Assumption: values are finite, so 0·x = 0 and 0/x = 0 for floats. Integers wrap around and
their 0/0 is -1, so value bounds are claimed for floats only and integer division makes no
zero claim where the divisor may be 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax._src import core

from proofs import zones
from proofs.lattice import AVal, constant, unknown
from proofs.rules import dtypes
from proofs.rules.axes import binary_operands, broadcast_operand
from proofs.rules.base import Context, Rule, out_rank, registrar
from proofs.zones import TOP

RULES: dict[str, Rule] = {}
rule = registrar(RULES)

# exp(x) is exactly 0.0 in float32/float64 (XLA flushes below log(min subnormal) ≈ -745).
EXP_UNDERFLOW = -1.0e4

# f(0) = 0, so the result is nonzero only where the operand is.
ZERO_PRESERVING_UNARY = (
    "neg",
    "square",
    "sqrt",
    "cbrt",
    "abs",
    "sign",
    "tanh",
    "sin",
    "tan",
    "asin",
    "atan",
    "sinh",
    "asinh",
    "atanh",
    "erf",
    "expm1",
    "log1p",
    "floor",
    "ceil",
    "round",
    "real",
    "copy",
    "reduce_precision",  # rounds values (0 stays 0): not an identity
    "stop_gradient",
    "optimization_barrier",
)
OTHER_UNARY = (
    "exp",
    "exp2",
    "log",
    "rsqrt",
    "logistic",
    "cos",
    "cosh",
    "acos",
    "acosh",
    "erf_inv",
    "erfc",
    "lgamma",
    "digamma",
    "is_finite",
    "imag",
    "conj",
    "population_count",
    "clz",
)


@rule(*ZERO_PRESERVING_UNARY, *OTHER_UNARY)
def unary(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Elementwise: output i depends on exactly what operand i depends on."""
    (x,) = ins
    name = eqn.primitive.name
    out = unknown(x.rank, x.dep)
    if name in ZERO_PRESERVING_UNARY:
        out = out.with_(nz=x.nz)
        if name in ("stop_gradient", "copy", "optimization_barrier"):
            out = x  # identity on values (stop_gradient is the identity on primals)
    if name == "exp" and x.ub is not None and x.ub[1] <= EXP_UNDERFLOW:
        out = out.with_(nz=zones.complement(x.ub[0]))  # exp underflows to exactly 0 there
    return [out]


@rule("device_put")
def device_put(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Moves its operands (to a device or memory kind): each output is its operand."""
    return list(ins)


@rule("integer_pow")
def integer_pow(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    (x,) = ins
    nz = x.nz if eqn.params["y"] > 0 else TOP
    return [unknown(x.rank, x.dep).with_(nz=nz)]


@rule("add", "sub", "add_any")
def add_sub(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    a, b, rank = binary_operands(eqn, ins)
    out = unknown(rank, zones.union(a.dep, b.dep)).with_(nz=zones.union(a.nz, b.nz))
    sub = eqn.primitive.name == "sub"
    aval = eqn.outvars[0].aval
    if a.const is not None and b.const is not None:
        value = dtypes.const_op(np.subtract if sub else np.add, a.const, b.const, aval.dtype)
        if value is not None:
            return [constant(rank, value).with_(dep=out.dep)]
    # iota + k is still an index value (jnp.tril / jnp.eye build their masks this way), as long
    # as no value of it wraps around or rounds in this dtype
    sign = -1 if sub else 1
    index = None
    ka, kb = _integral(a.const), _integral(b.const)
    if a.index is not None and kb is not None:
        index = (a.index[0], a.index[1] + sign * kb)
    elif b.index is not None and not sub and ka is not None:
        index = (b.index[0], b.index[1] + ka)
    if index is not None and dtypes.index_fits(index[1], aval.shape[index[0]], aval.dtype):
        out = out.with_(index=index)
    if sub and b.lb is not None and math.isfinite(b.lb) and _is_float(aval.dtype):
        # x - m <= ub(x) - lb(m): the masked scores minus their row max stay hugely negative.
        # Floats only: rounding is monotone, but an integer difference wraps around (int16
        # -32768 - 32767 is 1), and without an upper bound on m nothing excludes that.
        if a.fill is not None:
            out = out.with_(ub=(a.fill[0], a.fill[1] - b.lb))
        elif a.ub is not None:
            out = out.with_(ub=(a.ub[0], a.ub[1] - b.lb))
    return [out]


def _integral(value: Any) -> int | None:
    """A constant's value as an int if it is a whole number (1, 1.0), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return int(value) if float(value).is_integer() else None


def _is_float(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


@rule("mul")
def mul(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """d(a·b) only where the other factor may be nonzero: a zero factor absorbs (finite values)."""
    a, b, rank = binary_operands(eqn, ins)
    dep = zones.union(zones.meet(a.dep, b.nz), zones.meet(b.dep, a.nz))
    dtype = np.dtype(eqn.outvars[0].aval.dtype)
    # a product of nonzero numbers can still be 0 (float underflow, integer wrap-around)
    zr = zones.union(a.zr, b.zr) if dtype == np.bool_ else TOP
    out = unknown(rank, dep).with_(nz=zones.meet(a.nz, b.nz), zr=zr)
    if a.const is not None and b.const is not None:
        out = out.with_(const=dtypes.const_op(np.multiply, a.const, b.const, dtype))
    for x, y in ((a, b), (b, a)):
        if _integral(y.const) == 1:  # x · 1 = x exactly: every fact (jnp.arange's index) holds
            return [x.with_(dep=zones.union(x.dep, y.dep), routed=zones.union(x.routed, y.routed))]
    return [out]


@rule("div")
def div(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """a/b is 0 wherever a is 0, so b matters only where a may be nonzero — for floats (finite
    values: 0/0 is NaN, excluded) and for integers where b cannot be 0: XLA's integer 0/0 is
    -1 (all ones unsigned), so where b may be 0 the quotient may be nonzero and b's value
    matters."""
    a, b, rank = binary_operands(eqn, ins)
    live = a.nz if _is_float(eqn.outvars[0].aval.dtype) else zones.union(a.nz, b.zr)
    dep = zones.union(a.dep, zones.meet(b.dep, live))
    return [unknown(rank, dep).with_(nz=live)]  # a/b may underflow to 0: zr unknown


@rule(
    "max",
    "min",
    "pow",
    "atan2",
    "rem",
    "nextafter",
    "and",
    "or",
    "xor",
    "not",
    "shift_left",
    "shift_right_logical",
    "shift_right_arithmetic",
    "clamp",
    "igamma",
    "polygamma",
    "zeta",
    "igammac",
    "igamma_grad_a",
    "bessel_i1e",
    "bessel_i0e",
    "complex",
)
def other_elementwise(eqn: core.JaxprEqn, ins: Sequence[AVal], ctx: Context) -> list[AVal]:
    """Generic elementwise: the union of the operands' dependencies, plus boolean logic."""
    rank = out_rank(eqn)
    args = [broadcast_operand(x, rank) for x in ins]
    out = unknown(rank, zones.union(*(x.dep for x in args)))
    name = eqn.primitive.name
    is_bool = np.dtype(eqn.outvars[0].aval.dtype) == np.bool_
    if is_bool and name == "not":
        (x,) = args
        out = out.with_(nz=x.zr, zr=x.nz)
    elif is_bool and name == "and":
        a, b = args
        out = out.with_(nz=zones.meet(a.nz, b.nz), zr=zones.union(a.zr, b.zr))
    elif is_bool and name == "or":
        a, b = args
        out = out.with_(nz=zones.union(a.nz, b.nz), zr=zones.meet(a.zr, b.zr))
    elif name == "max":
        lbs = [x.lb if x.lb is not None else x.const for x in args]
        known = [float(v) for v in lbs if v is not None]
        if known:  # max(a, b) >= each operand's lower bound
            out = out.with_(lb=max(known))
    return [out]
