"""The analysed program, the JVP of the per-position losses with respect to the layer probes,
traced with a symbolic sequence length and every parameter abstract.

    (params, tokens, targets, probes, δ)  ->  (L, dL = ∂L/∂probes · δ)

(``trace_model`` traces any such program of the losses, ``proofs.backward`` the backward one;
``abstract_call`` is the function-level counterpart of the model's abstract inputs.)

``jax.jvp`` is traced, not re-derived: the jaxpr is exactly what JAX computes for forward-mode
derivatives (stop_gradient has become a zero tangent, custom_jvp rules are inlined), and dead
code (e.g. the tangent of a stopped softmax max) is removed by JAX's own DCE before analysis.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import export
from jax._src import core
from jax._src.interpreters import partial_eval as pe
from jaxtyping import Array, Float, Int

from myojax.config import DTYPES, ModelConfig
from myojax.loss import PositionLoss, cross_entropy, per_position_loss
from myojax.model import GPT

Forward = Callable[[GPT, Int[Array, " T"], Float[Array, "L T D"] | None], Float[Array, "T V"]]


def model_forward(model: GPT, tokens: Array, probes: Array | None) -> Array:
    return model(tokens, probes)


@dataclasses.dataclass(frozen=True)
class Traced:
    jaxpr: core.ClosedJaxpr  # DCE'd; inputs: *params, tokens, targets, probes, δ
    n_params: int
    position_size: Any  # the symbolic T (or a concrete int)
    sequence: str  # how T was chosen, for the certificate

    @property
    def sha256(self) -> str:
        return hashlib.sha256(str(self.jaxpr).encode()).hexdigest()

    @property
    def n_inputs(self) -> int:
        return len(self.jaxpr.jaxpr.invars)


class _Bound:
    """A forward function bound to a model, with the ``model(tokens, probes)`` call protocol
    that ``per_position_loss`` uses (so mutants go through the very same loss code)."""

    def __init__(self, forward: Forward, model: GPT):
        self.forward, self.model = forward, model

    def __call__(self, tokens: Array, probes: Array | None) -> Array:
        return self.forward(self.model, tokens, probes)


def sequence_length(config: ModelConfig, concrete: int | None = None) -> tuple[Any, str]:
    """A symbolic T with 1 <= T <= seq_len (the lengths the model accepts), or a concrete T."""
    if concrete is not None:
        if not 1 <= concrete <= config.seq_len:
            raise ValueError(f"concrete T={concrete} must be in [1, seq_len={config.seq_len}]")
        return concrete, f"concrete T = {concrete}"
    (t,) = export.symbolic_shape("T", constraints=(f"T <= {config.seq_len}",))
    return t, f"symbolic T, 1 <= T <= {config.seq_len}"


@dataclasses.dataclass(frozen=True)
class ModelInputs:
    """The abstract inputs of a model-level program: parameter leaves (``model`` rebuilds the
    module from them), tokens, targets and probes [L, T, D], with T symbolic or concrete."""

    leaves: list
    treedef: Any
    static: Any
    tokens: jax.ShapeDtypeStruct
    targets: jax.ShapeDtypeStruct
    probes: jax.ShapeDtypeStruct
    length: Any
    described: str

    def model(self, leaves: list) -> Any:
        return eqx.combine(jax.tree.unflatten(self.treedef, leaves), self.static)


def model_inputs(
    config: ModelConfig,
    concrete_t: int | None = None,
    *,
    build: Callable[..., Any] = GPT,
    input_shape: tuple[int, ...] = (),
    target_shape: tuple[int, ...] = (),
) -> ModelInputs:
    """``build(config, key=...)``'s parameters as abstract leaves, and per-position inputs. Empty
    ``input_shape``/``target_shape`` mean integer tokens per position; otherwise real-valued
    inputs [T, *input_shape] / targets [T, *target_shape]."""
    t, described = sequence_length(config, concrete_t)
    skeleton = eqx.filter_eval_shape(build, config, key=jax.random.key(0))
    is_leaf = lambda x: isinstance(x, jax.ShapeDtypeStruct)
    params, static = eqx.partition(skeleton, is_leaf, is_leaf=is_leaf)
    leaves, treedef = jax.tree.flatten(params, is_leaf=is_leaf)
    dtype = DTYPES[config.compute_dtype]

    def per_position(shape: tuple[int, ...]) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((t, *shape), dtype if shape else jnp.int32)

    probes = jax.ShapeDtypeStruct((config.n_layers, t, config.d_model), dtype)
    return ModelInputs(
        leaves,
        treedef,
        static,
        per_position(input_shape),
        per_position(target_shape),
        probes,
        t,
        described,
    )


# How a program differentiates the losses: (losses of the probes, probes, δ) -> its outputs.
Differentiate = Callable[[Callable[[Array], Array], Array, Array], Any]


def trace_model(
    differentiate: Differentiate,
    delta: Callable[[ModelInputs], jax.ShapeDtypeStruct],
    forward: Forward,
    config: ModelConfig,
    concrete_t: int | None = None,
    *,
    build: Callable[..., Any] = GPT,
    loss_fn: PositionLoss = cross_entropy,
    input_shape: tuple[int, ...] = (),
    target_shape: tuple[int, ...] = (),
) -> Traced:
    """The DCE'd jaxpr of (params, tokens, targets, probes, δ) ↦ ``differentiate(losses, probes,
    δ)``, with ``delta(inputs)`` the shape of δ, for ``build(config, key=...)`` (default
    ``GPT``; e.g. a ``myojax.heads.Transformer``) and ``loss_fn`` (``model_inputs``: the shapes
    of the inputs)."""
    ins = model_inputs(
        config, concrete_t, build=build, input_shape=input_shape, target_shape=target_shape
    )

    def program(leaves: list, tokens: Array, targets: Array, probes: Array, d: Array) -> Any:
        bound = _Bound(forward, ins.model(leaves))
        losses = lambda p: per_position_loss(bound, tokens, targets, p, loss_fn)
        return differentiate(losses, probes, d)

    closed = jax.make_jaxpr(program)(ins.leaves, ins.tokens, ins.targets, ins.probes, delta(ins))
    return Traced(dead_code_eliminated(closed), len(ins.leaves), ins.length, ins.described)


def trace_jvp(
    forward: Forward, config: ModelConfig, concrete_t: int | None = None, **options: Any
) -> Traced:
    """The JVP program (module docstring); ``options`` are ``trace_model``'s."""
    jvp = lambda losses, probes, d: jax.jvp(losses, (probes,), (d,))
    return trace_model(jvp, lambda ins: ins.probes, forward, config, concrete_t, **options)


def abstract_call(
    fn: Callable[..., Any], x: Any, args: tuple, length: Any
) -> tuple[Callable[[Any, list], Any], jax.ShapeDtypeStruct, list[jax.ShapeDtypeStruct]]:
    """``fn(x, *args)`` as ``call(x, leaves)`` of the array leaves of ``args`` (other leaves are
    static), and the abstract ``x`` and leaves with every axis of x's length (axis 0 of ``x``)
    replaced by ``length``: what the function-level analyses trace."""
    n = jnp.shape(x)[0]
    arrays, static = eqx.partition(args, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)

    def abstract(a: Any) -> jax.ShapeDtypeStruct:
        dims = tuple(length if d == n else d for d in jnp.shape(a))
        return jax.ShapeDtypeStruct(dims, jnp.result_type(a))

    def call(x: Any, leaves: list) -> Any:
        return fn(x, *eqx.combine(jax.tree.unflatten(treedef, leaves), static))

    xs = jax.ShapeDtypeStruct((length, *jnp.shape(x)[1:]), jnp.result_type(x))
    return call, xs, [abstract(a) for a in leaves]


def dead_code_eliminated(closed: core.ClosedJaxpr) -> core.ClosedJaxpr:
    """JAX's DCE, keeping every input (so inputs stay aligned with their abstract values)."""
    n_consts = len(closed.jaxpr.constvars)
    opened = pe.convert_constvars_jaxpr(closed.jaxpr)
    pruned, _ = pe.dce_jaxpr(opened, [True] * len(opened.outvars), instantiate=True)
    # move the constants back to constvars
    constvars, invars = pruned.invars[:n_consts], pruned.invars[n_consts:]
    rebuilt = pruned.replace(constvars=constvars, invars=invars)
    return core.ClosedJaxpr(rebuilt, closed.consts)
