"""Differential testing: random JAX programs over a position axis, analysed and measured.

A hypothesis strategy (``programs``) draws programs from a grammar that covers every primitive
the analyser has a rule for (elementwise arithmetic, exp/log/max, comparisons, ``where`` with
iota masks — triangular, banded, eye, rectangular — in several index dtypes and integer casts,
reshape splits and merges, broadcasts, transposes, reductions, cumulative ops both ways,
``dot_general``, masked softmax, ``scan``, ``cond``, ``stop_gradient``, slices, concatenates,
pads, reversals and gathers). Each program is a function ``(x, a, w) -> [T, D]`` of a
differentiated ``x [T, D]`` and constants ``a [T, D]``, ``w [D, D]``. ``check`` analyses it with
``proofs.analyse_dependency`` (concrete T and symbolic T) and measures the nonzero pattern of
its Jacobian in float64 (columns s of ∂out[t]/∂x[s], one random direction per position): every
measured (t, s) must lie in the analysed dependency region and in the verdict. Refusing is
allowed; a verdict that misses a measured entry is a counterexample.

    python -m proofs.fuzz --programs 3000 --record proofs/fuzz_record.json   # the long mode

The record (number of programs, primitives covered, verdict distribution, refusals, wall time,
command, date) is written by the command itself.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jax._src import core
from jaxtyping import Array, Float

from proofs import zones
from proofs.api import analyse_dependency
from proofs.interpreter import HIGHER_ORDER, CannotAnalyse
from proofs.lattice import Position
from proofs.rules import RULES
from proofs.zones import U

D = 4  # features (even: reshape splits it in two)
SMALL_T = (3, 5, 8)
BIG_T = (260, 300)  # > 256: int8 iotas wrap, bfloat16 iotas round
COLUMNS_BIG = 16  # measured input positions at a big T (all of them at a small T)

Stream = Float[Array, "T D"]


@dataclasses.dataclass(frozen=True)
class Op:
    """One step: ``kind`` with static parameters, reading streams ``args``: k is the k-th most
    recent stream (modulo their number); the streams start as [a, x], so 0 is x at first."""

    kind: str
    params: tuple
    args: tuple[int, ...]

    def __repr__(self) -> str:
        return f"Op({self.kind!r}, {self.params!r}, {self.args!r})"


Program = tuple[Op, ...]

# ---- the grammar ---------------------------------------------------------------------------------

UNARY: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "neg": jnp.negative,
    "square": jnp.square,
    "cube": lambda h: jax.lax.integer_pow(h, 3),
    "sqrt": lambda h: jnp.sqrt(1.0 + h * h),
    "log": lambda h: jnp.log(1.0 + h * h),
    "exp": lambda h: jnp.exp(jnp.tanh(h)),
    "logistic": jax.nn.sigmoid,
    "abs": jnp.abs,
    "floor": jnp.floor,  # zero derivative
    "stop_gradient": jax.lax.stop_gradient,
    "bf16": lambda h: h.astype(jnp.bfloat16).astype(h.dtype),
    "f32": lambda h: h.astype(jnp.float32).astype(h.dtype),
    "reduce_precision": lambda h: jax.lax.reduce_precision(h, exponent_bits=8, mantissa_bits=7),
}
BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": lambda u, v: u / (1.0 + v * v),
    "max": jnp.maximum,
    "min": jnp.minimum,
    "where_data": lambda u, v: jnp.where(u > v, u, v * 2.0),
    "int_gate": lambda u, v: (u > 0).astype(jnp.int8).astype(v.dtype) * v,
}
CUMULATIVE = ("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
RELATIONS = ("ge", "gt", "le", "lt", "eq", "ne", "band")
INDEX_DTYPES = ("int32", "int16", "int8", "uint8", "float32", "float16", "bfloat16")
FILLS = (0.0, 1.0, -1e30, "min")
COMPARE = {
    "ge": jnp.greater_equal,
    "gt": jnp.greater,
    "le": jnp.less_equal,
    "lt": jnp.less,
    "eq": jnp.equal,
    "ne": jnp.not_equal,
}


def _ops() -> st.SearchStrategy[Op]:
    arg = st.sampled_from((0, 0, 0, 1, 2, 3))  # mostly the latest stream

    def op(kind: str, params: st.SearchStrategy, n_args: int) -> st.SearchStrategy[Op]:
        return st.builds(Op, st.just(kind), params, st.tuples(*[arg] * n_args))

    mask = st.tuples(
        st.sampled_from(RELATIONS),
        st.sampled_from(INDEX_DTYPES),
        st.booleans(),  # iota in the dtype (True) or int32 iota cast to it
        st.sampled_from((0, 1, 100)),  # added to both indices
        st.sampled_from((-1, 0, 1, 2)),  # added to the position index only
        st.booleans(),  # rectangular: S = T // 2 + 1 key positions
    )
    return st.one_of(
        op("unary", st.tuples(st.sampled_from(sorted(UNARY))), 1),
        op("binary", st.tuples(st.sampled_from(sorted(BINARY))), 2),
        op("matmul_w", st.tuples(), 1),
        op("feature_reduce", st.tuples(st.sampled_from(("sum", "max", "min", "prod"))), 1),
        op("position_reduce", st.tuples(st.sampled_from(("sum", "max"))), 1),
        op(
            "cumulative",
            st.tuples(st.sampled_from(CUMULATIVE), st.sampled_from((0, 1)), st.booleans()),
            1,
        ),
        op("masked_sum", st.tuples(mask, st.sampled_from((0.0, 1.0))), 2),
        op("masked_max", st.tuples(mask, st.sampled_from(FILLS)), 2),
        op("masked_softmax", st.tuples(mask, st.sampled_from(FILLS)), 3),
        op("attention", st.tuples(), 3),
        op("reshape", st.tuples(st.sampled_from(("split_features", "merge_positions"))), 1),
        op("transpose_cumsum", st.tuples(st.booleans()), 1),
        op("broadcast", st.tuples(), 2),
        op("scan", st.tuples(st.booleans(), st.booleans()), 1),
        op("cond", st.tuples(), 2),
        op("shift", st.tuples(st.sampled_from((-2, -1, 1, 2))), 1),
        op("take", st.tuples(), 1),
        op("pad", st.tuples(st.sampled_from((1, 2))), 1),
        op("reverse", st.tuples(st.sampled_from((0, 1))), 1),
    )


def programs(max_ops: int = 5) -> st.SearchStrategy[Program]:
    """Random programs of 1 to ``max_ops`` steps; the output is the last stream."""
    return st.lists(_ops(), min_size=1, max_size=max_ops).map(tuple)


# ---- building a program --------------------------------------------------------------------------


def _mask(spec: tuple, t: Any, s: Any) -> Array:
    relation, dtype_name, native, both, ahead, _ = spec
    dtype = jnp.dtype(dtype_name)
    shape = (t, s)
    if native:
        it, js = (jax.lax.broadcasted_iota(dtype, shape, d) for d in (0, 1))
    else:
        it, js = (jax.lax.broadcasted_iota(jnp.int32, shape, d).astype(dtype) for d in (0, 1))
    if both:
        it, js = it + jnp.asarray(both, dtype), js + jnp.asarray(both, dtype)
    if ahead:
        it = it + jnp.asarray(ahead, dtype) if ahead > 0 else it - jnp.asarray(-ahead, dtype)
    if relation == "band":
        return (it >= js) & (it <= js + jnp.asarray(2, dtype))
    return COMPARE[relation](it, js)


def _fill(fill: Any, dtype: Any) -> Any:
    return jnp.finfo(dtype).min if fill == "min" else fill


def _keys(h: Array, spec: tuple) -> Array:
    """The key positions: all T, or the first T // 2 + 1 (a rectangular grid)."""
    return h[: h.shape[0] // 2 + 1] if spec[5] else h


def apply(op: Op, streams: Sequence[Array], a: Array, w: Array) -> Array:
    """The [T, D] result of one step."""
    u, *rest = (streams[-1 - i % len(streams)] for i in op.args)
    t = u.shape[0]
    kind, p = op.kind, op.params
    if kind == "unary":
        return UNARY[p[0]](u)
    if kind == "binary":
        return BINARY[p[0]](u, rest[0])
    if kind == "matmul_w":
        return u @ w
    if kind == "feature_reduce":
        r = getattr(jnp, p[0])(jnp.tanh(u), axis=1, keepdims=True)
        return jnp.broadcast_to(r, u.shape)  # a size-1 axis stretched
    if kind == "position_reduce":
        return jnp.broadcast_to(getattr(jnp, p[0])(u, axis=0, keepdims=True), u.shape)
    if kind == "cumulative":
        name, axis, reverse = p
        v = jnp.tanh(u) if name in ("cumprod", "cumlogsumexp") else u
        return getattr(jax.lax, name)(v, axis=axis, reverse=reverse)
    if kind == "masked_sum":
        spec, fill = p
        keys = _keys(rest[0], spec)
        m = _mask(spec, t, keys.shape[0])
        grid = u[:, None, :] * keys[None, :, :]
        return jnp.sum(jnp.where(m[:, :, None], grid, fill), axis=1)
    if kind == "masked_max":
        spec, fill = p
        keys = _keys(rest[0], spec)
        m = _mask(spec, t, keys.shape[0])
        grid = u[:, None, :] + keys[None, :, :]
        return jnp.tanh(jnp.max(jnp.where(m[:, :, None], grid, _fill(fill, u.dtype)), axis=1))
    if kind == "masked_softmax":
        spec, fill = p
        keys, values = _keys(rest[0], spec), _keys(rest[1], spec)
        m = _mask(spec, t, keys.shape[0])
        scores = jnp.where(m, u @ keys.T / 2.0, _fill(fill, u.dtype))
        return jax.nn.softmax(scores, axis=1) @ values
    if kind == "attention":
        return jax.nn.softmax(u @ rest[0].T / 2.0, axis=1) @ rest[1]
    if kind == "reshape":
        if p[0] == "split_features":
            return jnp.transpose(u.reshape(t, 2, D // 2), (0, 2, 1)).reshape(t, D)
        return jnp.cumsum(u.reshape(-1)).reshape(t, D)  # merges the position axis
    if kind == "transpose_cumsum":
        return jax.lax.cumsum(u.T, axis=1, reverse=p[0]).T
    if kind == "broadcast":
        return jnp.sum(u[:, None, :] * jnp.tanh(rest[0])[:, :, None], axis=1)
    if kind == "scan":
        reverse, use_w = p

        def body(c: Array, row: Array) -> tuple[Array, Array]:
            c = jnp.tanh((c @ w if use_w else c * 0.5) + row)
            return c, c

        return jax.lax.scan(body, jnp.zeros((D,), u.dtype), u, reverse=reverse)[1]
    if kind == "cond":
        return jax.lax.cond(
            a[0, 0] > 0, lambda x, y: x * y, lambda x, y: x + jnp.cumsum(y, axis=0), u, rest[0]
        )
    if kind == "shift":
        (k,) = p
        zeros = jnp.zeros((abs(k), D), u.dtype)
        if k > 0:  # out[t] = u[t - k]: the past
            return jnp.concatenate([zeros, u[: t - k]])
        return jnp.concatenate([u[-k:], zeros])  # out[t] = u[t + |k|]: the future
    if kind == "take":
        idx = jnp.argmax(a, axis=1)[:, None]
        return jnp.broadcast_to(jnp.take_along_axis(u, idx, axis=1), u.shape)
    if kind == "pad":
        return jnp.pad(u, ((p[0], 0), (0, 0)))[:t]  # out[t] = u[t - k]
    if kind == "reverse":
        return jnp.flip(u, axis=p[0])
    raise ValueError(f"unknown op {kind}")


def build(program: Program) -> Callable[[Array, Array, Array], Array]:
    def fn(x: Array, a: Array, w: Array) -> Array:
        streams = [a, x]
        for op in program:
            streams.append(apply(op, streams, a, w))
        return streams[-1]

    return fn


# ---- one differential check ----------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    t: int
    verdict: str  # a label, or "refused"
    symbolic: str  # a label, "refused" or "untraceable"
    measured: str  # the finest label containing the measured pattern
    primitives: set[str]
    refused: str | None = None  # the refused primitive
    skipped: str | None = None  # non-finite values: outside the "finite" assumption


class Counterexample(AssertionError):
    pass


# XLA's cheapest compile: a fresh jit per program dominates the run time otherwise
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def measure(
    fn: Callable, x: Array, rest: tuple, columns: Sequence[int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(fn(x, *rest), changed) with changed[t, j] = out[t] changes with x[columns[j]] (one random
    direction per position; NaN counts as a change)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=x.shape[1:]) + 0.5
    basis = np.zeros((len(columns), *x.shape), x.dtype)
    for k, s in enumerate(columns):
        basis[k, s] = direction
    push = jax.vmap(lambda dx: jax.jvp(lambda y: fn(y, *rest), (x,), (dx,)))
    compiled = jax.jit(push).lower(jnp.asarray(basis)).compile(compiler_options=FAST_COMPILE)
    primal, tangent = (np.asarray(o) for o in compiled(jnp.asarray(basis)))
    flat = tangent.reshape(len(columns), tangent.shape[1], -1)
    changed = (np.abs(flat) > 0) | np.isnan(flat)
    return primal[0], changed.any(-1).T


def finest(pattern: np.ndarray, columns: Sequence[int]) -> Position:
    ts, ks = np.nonzero(pattern)
    ss = np.asarray(columns)[ks]
    if not len(ts):
        return Position.NONE
    if np.all(ss == ts):
        return Position.SAME
    if np.all(ss <= ts):
        return Position.PAST
    return Position.ANY


def _contains(dep: zones.Region, rank: int, t: int, s: int) -> bool:
    return zones.contains(zones.project(dep, range(1, rank)), {0: t, U: s})


def primitives_of(jaxpr: core.Jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in core.jaxprs_in_params(eqn.params):
            names |= primitives_of(sub)
    return names


def check(program: Program, t: int, seed: int = 0) -> Outcome:
    """Analyse ``program`` at concrete ``t`` and symbolically, measure it at ``t``, and raise
    ``Counterexample`` if a measured dependency is outside an analysed one."""
    fn = build(program)
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        x, a = (jnp.asarray(rng.normal(size=(t, D))) for _ in range(2))
        w = jnp.asarray(rng.normal(size=(D, D)) / 2.0)
        columns = list(range(t)) if t <= 16 else _big_columns(t, rng)
        primal, pattern = measure(fn, x, (a, w), columns, seed)
        out = Outcome(t, "refused", "refused", finest(pattern, columns).label, set())
        if not np.all(np.isfinite(primal)):
            out.skipped = "non-finite"
        for sym in (False, True):
            try:
                dep = analyse_dependency(fn, x, a, w, symbolic=sym)
            except CannotAnalyse as e:
                out.refused = out.refused or e.primitive
                continue
            except Exception as e:  # a program that cannot be traced with a symbolic T
                if not sym:
                    raise
                out.symbolic = f"untraceable ({type(e).__name__})"
                continue
            label = dep.verdict.label
            out.primitives |= primitives_of(dep.jaxpr.jaxpr)
            if sym:
                out.symbolic = label
            else:
                out.verdict = label
            if out.skipped:
                continue
            (tan,) = dep.tangents
            for ti, k in zip(*np.nonzero(pattern)):
                s = columns[k]
                if not (_contains(tan.dep, tan.rank, int(ti), s) and _allows(dep.verdict, ti, s)):
                    raise Counterexample(
                        f"{'symbolic' if sym else f'T={t}'}: out[{ti}] depends on x[{s}] "
                        f"(measured) but the analyser says {label} / {tan.dep}: {program!r}"
                    )
        if not out.primitives:  # refused: count what the program holds
            out.primitives = primitives_of(jax.make_jaxpr(fn)(x, a, w).jaxpr)
    return out


def _allows(v: Position, t: int, s: int) -> bool:
    return v == Position.ANY or (v == Position.PAST and s <= t) or (v == Position.SAME and s == t)


def _big_columns(t: int, rng: np.random.Generator) -> list[int]:
    """Input positions to measure at a big T: both ends, the int8/bf16 wrap points, random."""
    fixed = {0, 1, 2, t // 2, 127, 128, 129, 255, 256, 257, t - 2, t - 1}
    extra = rng.choice(t, size=COLUMNS_BIG, replace=False)
    return sorted({s for s in fixed | set(extra.tolist()) if 0 <= s < t})[: COLUMNS_BIG + 12]


# ---- a run: many programs, one record ------------------------------------------------------------


@dataclasses.dataclass
class Stats:
    programs: int = 0
    verdicts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    symbolic: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    measured: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    refused: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    lengths: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped: int = 0
    primitives: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    exact: int = 0  # verdict equal to the measured finest label

    def add(self, o: Outcome) -> None:
        self.programs += 1
        self.verdicts[o.verdict] += 1
        self.symbolic[o.symbolic.split(" ")[0]] += 1
        self.measured[o.measured] += 1
        self.lengths["big" if o.t > 256 else "small"] += 1
        self.primitives.update(o.primitives)
        self.skipped += bool(o.skipped)
        self.exact += o.verdict == o.measured
        if o.refused:
            self.refused[o.refused] += 1

    @property
    def definite(self) -> int:
        return self.programs - self.verdicts["refused"]

    def acceptable(self) -> list[str]:
        """What makes a run test nothing: too many refusals, a verdict kind that never occurs."""
        problems = []
        if 2 * self.definite < self.programs:
            problems.append(f"only {self.definite}/{self.programs} definite verdicts")
        missing = [p.label for p in Position if not self.verdicts[p.label]]
        if missing:
            problems.append(f"verdicts never produced: {missing}")
        if not self.lengths["big"]:
            problems.append("no program checked at T > 256")
        return problems

    def to_json(self) -> dict[str, Any]:
        analysed = sorted(self.primitives)
        with_rule = [p for p in analysed if p in RULES or p in HIGHER_ORDER]
        return {
            "programs": self.programs,
            "definite_verdicts": self.definite,
            "verdicts_concrete_t": dict(sorted(self.verdicts.items())),
            "verdicts_symbolic_t": dict(sorted(self.symbolic.items())),
            "measured_finest": dict(sorted(self.measured.items())),
            "verdict_equals_measured": self.exact,
            "refused_by_primitive": dict(sorted(self.refused.items())),
            "skipped_non_finite": self.skipped,
            "lengths": dict(self.lengths),
            "primitives_covered": {p: self.primitives[p] for p in with_rule},
            "primitives_without_rule": [p for p in analysed if p not in with_rule],
        }


def run(n_programs: int, seed: int = 0, big_every: int = 8) -> Stats:
    """Check ``n_programs`` hypothesis-drawn programs (about one in ``big_every`` at T > 256);
    raises ``Counterexample`` (shrunk by hypothesis) on the first unsound verdict."""
    stats = Stats()
    failing = [False]

    @settings(
        max_examples=n_programs,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(
        program=programs(),
        small=st.sampled_from(SMALL_T),
        big=st.sampled_from(BIG_T),
        use_big=st.sampled_from([False] * (big_every - 1) + [True]),
        data_seed=st.integers(0, 2**16),
    )
    def one(program: Program, small: int, big: int, use_big: bool, data_seed: int) -> None:
        try:
            outcome = check(program, big if use_big else small, seed=data_seed)
        except Counterexample:
            failing[0] = True
            raise
        if not failing[0]:
            stats.add(outcome)

    hypothesis.seed(seed)(one)()
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m proofs.fuzz",
        description="Differential testing of proofs.position_dependency against numeric "
        "Jacobians on random programs; writes a record of the run.",
    )
    p.add_argument("--programs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--big-every", type=int, default=8, help="about 1 in N programs at T > 256")
    p.add_argument("--record", type=Path, default=None, help="JSON record to write")
    args = p.parse_args(argv)
    start = time.perf_counter()
    started = datetime.datetime.now(datetime.UTC)
    error = None
    try:
        stats = run(args.programs, args.seed, args.big_every)
    except Counterexample as e:
        error, stats = str(e), None
    wall = time.perf_counter() - start
    record: dict[str, Any] = {
        "command": "python -m proofs.fuzz " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(wall, 1),
        "jax_version": jax.__version__,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "seed": args.seed,
        "counterexample": error,
    }
    if stats is not None:
        record |= stats.to_json()
        record["acceptance_problems"] = stats.acceptable()
    text = json.dumps(record, indent=2) + "\n"
    print(text, end="")
    if args.record is not None:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(text)
    return 0 if error is None and not record.get("acceptance_problems") else 1


if __name__ == "__main__":
    sys.exit(main())
