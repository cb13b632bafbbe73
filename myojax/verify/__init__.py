"""Jacobian verifier: per-token gradients carry no cross-position contributions (README: verifier).

Zero probes δ^l are added to the residual stream at every layer input. For the per-position
losses L ∈ R^T this computes ∂L_t/∂δ^l_s exactly in float64 by batched, chunked VJPs (one
cotangent e_t per row, ``lax.map`` over chunks; never a dense ``jacrev``) and reports per layer:

* ``past``   — max |∂L_t/∂δ^l_s| over s < t: must be exactly 0.0 in the myopic modes;
* ``future`` — max over s > t: must be exactly 0.0 in every mode (causality);
* ``diag``   — min over t of ‖∂L_t/∂δ^l_t‖: must be > 0, or a pass would be vacuous;
* ``diag_err`` — max deviation of that diagonal from the independent column-local reference,
  so a stopped diagonal (a silent way to get a zero past) fails too.

It also checks the parameter gradients: ∇θ L_t for every t against the column-local
reference of ``myojax.reference`` (1e-10 in float64), and that ``loss_and_grad`` — the one
function training uses — equals the mean of the reference's per-token gradients.

The model is a ``GPT`` or a ``myojax.heads.Transformer`` built from heads the reference knows,
with any per-position loss (``loss_fn``, default cross-entropy). A ``forward=`` hook must compute
the model's own function (it is how gradient mutants are checked); one that computes different
losses is refused with ``ValueError`` — the reference could not follow it.

The command: ``python -m myojax.verify --gradient-mode myopic`` (``myojax.verify.__main__``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from myojax.config import ModelConfig
from myojax.heads import LinearInput, LinearReadout, TiedLogits, TokenEmbedding, Transformer
from myojax.loss import Batch, PositionLoss, cross_entropy, loss_and_grad
from myojax.model import GPT, cast_model
from myojax.reference import PastConstants, column_loss, full_forward_losses

Forward = Callable[[GPT, Int[Array, " T"], Float[Array, "L T D"] | None], Float[Array, "T V"]]
FORWARD_TOL = 1e-9  # float64: a forward hook computing the model's function agrees to ~1e-15
Expect = Literal["myopic", "none"]
GRAD_TOL = 1e-10


def model_forward(model: GPT, tokens: Array, probes: Array | None) -> Array:
    return model(tokens, probes)


@dataclasses.dataclass(frozen=True)
class LayerReport:
    layer: int
    past_max: float
    future_max: float
    diag_min: float
    diag_err: float


@dataclasses.dataclass(frozen=True)
class Report:
    mode: str
    expect: Expect
    seq_len: int
    layers: tuple[LayerReport, ...]
    param_grad_err: float
    train_grad_err: float
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def table(self) -> str:
        head = (
            f"{'layer':>5} {'past max':>12} {'future max':>12} {'diag min':>12} "
            f"{'diag err':>10}  verdict"
        )
        lines = [head]
        for r in self.layers:
            bad = [f for f in self.failures if f.startswith(f"layer {r.layer}:")]
            lines.append(
                f"{r.layer:>5} {r.past_max:>12.3e} {r.future_max:>12.3e} {r.diag_min:>12.3e} "
                f"{r.diag_err:>10.1e}  {'FAIL' if bad else 'ok'}"
            )
        lines.append(f"param-grad vs column-local reference: max |Δ| = {self.param_grad_err:.1e}")
        lines.append(f"loss_and_grad vs mean per-token grad:  max |Δ| = {self.train_grad_err:.1e}")
        return "\n".join(lines)


def _max_abs_diff(a: object, b: object) -> Array:
    diffs = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.max(jnp.abs(x - y)), a, b))
    return jnp.max(jnp.stack(diffs))


def _reference_grad(
    model: GPT, static: GPT, tokens: Array, targets: Array, loss_fn: PositionLoss
) -> Callable[[GPT, Array, Array], tuple[GPT, Array]]:
    """(params, probes, t) -> reference (∇θ L_t, ∇δ L_t); myopic modes take column t's probes."""
    if model.config.gradient_mode == "standard":

        def full(p: GPT, d: Array, t: Array) -> Array:
            return full_forward_losses(eqx.combine(p, static), tokens, targets, d, loss_fn)[0][t]

        return jax.grad(full, argnums=(0, 1))
    # Constants held fixed by the column come from a forward pass outside differentiation.
    _, past = full_forward_losses(model, tokens, targets, None, loss_fn)
    return jax.grad(
        lambda p, d, t: column_loss(eqx.combine(p, static), tokens, targets, t, d, past, loss_fn),
        argnums=(0, 1),
    )


@eqx.filter_jit
def _row_statistics(
    model: GPT,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    forward: Forward,
    chunk: int,
    with_reference: bool = True,
    loss_fn: PositionLoss = cross_entropy,
) -> tuple[Array, Array, Array, Array]:
    """Per row t: max |∂L_t/∂δ^l_s| [L T S], diagonal norms and errors [L T], param-grad error [T].

    Without the reference the errors are returned as zeros (only the Jacobian is wanted).
    """
    cfg = model.config
    n_layers, seq, dim = cfg.n_layers, tokens.shape[0], cfg.d_model
    probes = jnp.zeros((n_layers, seq, dim), model.lnf_gain.dtype)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def losses(p: GPT, d: Array) -> Array:
        return loss_fn(forward(eqx.combine(p, static), tokens, d), targets)

    _, pullback = jax.vjp(losses, params, probes)
    myopic = cfg.gradient_mode in ("myopic", "myopic_kv")
    ref_grad = _reference_grad(model, static, tokens, targets, loss_fn) if with_reference else None

    def row(t: Array) -> tuple[Array, Array, Array, Array]:
        g_params, g_probes_LxSxD = pullback(jax.nn.one_hot(t, seq, dtype=probes.dtype))
        abs_LxS = jnp.max(jnp.abs(g_probes_LxSxD), axis=-1)
        diag_LxD = g_probes_LxSxD[:, t, :]
        if ref_grad is None:
            zero = jnp.zeros((), probes.dtype)
            return (
                abs_LxS,
                jnp.linalg.norm(diag_LxD, axis=-1),
                jnp.zeros((n_layers,), probes.dtype),
                zero,
            )
        if myopic:
            r_params, r_diag_LxD = ref_grad(params, jnp.zeros((n_layers, dim), probes.dtype), t)
        else:
            r_params, r_probes = ref_grad(params, probes, t)
            r_diag_LxD = r_probes[:, t, :]
        diag_err_L = jnp.max(jnp.abs(diag_LxD - r_diag_LxD), axis=-1)
        return (
            abs_LxS,
            jnp.linalg.norm(diag_LxD, axis=-1),
            diag_err_L,
            _max_abs_diff(g_params, r_params),
        )

    abs_TxLxS, diag_TxL, diag_err_TxL, param_err_T = jax.lax.map(
        row, jnp.arange(seq), batch_size=chunk
    )
    return jnp.transpose(abs_TxLxS, (1, 0, 2)), diag_TxL.T, diag_err_TxL.T, param_err_T


@eqx.filter_jit
def _train_gradient_error(
    model: GPT, batch: Batch, forward: Forward, loss_fn: PositionLoss = cross_entropy
) -> Array:
    """max |training gradient − mean over (b, t) of the reference per-token gradients|."""
    if forward is model_forward:
        _, train_grad = loss_and_grad(model, batch, loss_fn)
    else:

        def loss(m: GPT) -> Array:
            return jnp.mean(jax.vmap(lambda x, y: loss_fn(forward(m, x, None), y))(*batch))

        train_grad = eqx.filter_grad(loss)(model)
    seq = batch.inputs.shape[1]
    # The constants a column holds fixed come from a forward pass outside the differentiation.
    pasts = jax.vmap(lambda x, y: full_forward_losses(model, x, y, None, loss_fn)[1])(*batch)

    def reference_mean(m: GPT) -> Array:
        def one(tokens: Array, targets: Array, past: PastConstants) -> Array:
            if m.config.gradient_mode == "standard":
                return jnp.mean(full_forward_losses(m, tokens, targets, None, loss_fn)[0])
            zeros = jnp.zeros((m.config.n_layers, m.config.d_model), m.lnf_gain.dtype)
            cols = jax.vmap(lambda t: column_loss(m, tokens, targets, t, zeros, past, loss_fn))(
                jnp.arange(seq)
            )
            return jnp.mean(cols)

        return jnp.mean(jax.vmap(one)(*batch, pasts))

    ref_grad = eqx.filter_grad(reference_mean)(model)
    return _max_abs_diff(
        eqx.filter(train_grad, eqx.is_inexact_array), eqx.filter(ref_grad, eqx.is_inexact_array)
    )


def check(
    model: GPT,
    tokens: Int[Array, " T"],
    targets: Int[Array, " T"],
    *,
    expect: Expect | None = None,
    forward: Forward = model_forward,
    batch: Batch | None = None,
    chunk: int = 16,
    loss_fn: PositionLoss = cross_entropy,
) -> Report:
    """Verify ``model``'s gradient mode on one sequence (and a batch for the training gradient).

    ``expect="myopic"`` requires an exactly zero past Jacobian in every layer; ``"none"`` only
    checks causality, non-vacuity and agreement with the reference. Defaults to the declared
    mode's expectation. ``forward`` replaces ``model(tokens, probes)`` (used for mutants) and must
    compute the same losses (else ``ValueError``). ``tokens``/``targets`` are whatever the model
    and ``loss_fn`` take (real-valued [T, I] / [T, O] for ``LinearInput`` / ``LinearReadout``).
    """
    _check_supported(model)
    mode = model.config.gradient_mode
    expect = expect or ("none" if mode == "standard" else "myopic")
    with jax.enable_x64(True):
        m64 = cast_model(model, "float64")
        tokens, targets = _as_float64(tokens), _as_float64(targets)
        if batch is None:
            batch = Batch(tokens[None], targets[None])
        batch = Batch(_as_float64(batch.inputs), _as_float64(batch.targets))
        if forward is not model_forward:
            _check_forward_matches(m64, tokens, targets, forward, loss_fn)
        past_LxTxS, diag_LxT, diag_err_LxT, param_err_T = _row_statistics(
            m64, tokens, targets, forward, min(chunk, tokens.shape[0]), True, loss_fn
        )
        train_err = float(_train_gradient_error(m64, batch, forward, loss_fn))
        past_LxTxS = np.asarray(past_LxTxS)
        diag_LxT, diag_err_LxT = np.asarray(diag_LxT), np.asarray(diag_err_LxT)
        param_err = float(np.max(np.asarray(param_err_T)))

    seq = tokens.shape[0]
    layers, failures = _layer_reports(past_LxTxS, diag_LxT, diag_err_LxT, expect)
    if not param_err <= GRAD_TOL:
        failures.append(
            f"parameter gradients differ from the column-local reference by {param_err:.2e}"
        )
    if not train_err <= GRAD_TOL:
        failures.append(
            f"loss_and_grad differs from the mean of per-token reference gradients by "
            f"{train_err:.2e}"
        )
    return Report(mode, expect, seq, tuple(layers), param_err, train_err, tuple(failures))


def _layer_reports(
    past_LxTxS: np.ndarray, diag_LxT: np.ndarray, diag_err_LxT: np.ndarray, expect: Expect
) -> tuple[list[LayerReport], list[str]]:
    """Each layer's statistics and every expectation they break."""
    seq = past_LxTxS.shape[1]
    strictly_past = np.tril(np.ones((seq, seq), bool), k=-1)
    layers, failures = [], []
    for layer, jac in enumerate(past_LxTxS):
        past = float(jac[strictly_past].max(initial=0.0))
        future = float(jac[strictly_past.T].max(initial=0.0))
        r = LayerReport(
            layer, past, future, float(diag_LxT[layer].min()), float(diag_err_LxT[layer].max())
        )
        layers.append(r)
        if expect == "myopic" and past != 0.0:
            t, s = np.argwhere((jac > 0) & strictly_past)[0]
            failures.append(
                f"layer {layer}: past cross-position gradient {past:.3e} != 0 "
                f"(first at t={t}, s={s}): gradients leak to earlier positions"
            )
        if future != 0.0:
            failures.append(f"layer {layer}: future gradient {future:.3e} != 0: causality broken")
        if not r.diag_min > 0.0:
            failures.append(f"layer {layer}: a diagonal gradient is zero: the check is vacuous")
        if not r.diag_err <= GRAD_TOL:
            failures.append(
                f"layer {layer}: diagonal gradient differs from the column-local reference by "
                f"{r.diag_err:.2e}: the own-position path is not live (diagonal stopped?)"
            )
    leaking = [r.layer for r in layers if r.past_max != 0.0]
    if expect == "myopic" and leaking:
        failures.append(
            f"leak enters at layer {leaking[-1]}: the deepest layer whose input leaks, so its "
            f"attention passes gradient to past positions (first leaking layer: {leaking[0]})"
        )
    return layers, failures


def _as_float64(a: Array) -> Array:
    """Integer tokens unchanged; real-valued inputs/targets in float64 like the model."""
    a = jnp.asarray(a)
    return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a


def _check_supported(model: object) -> None:
    if not isinstance(model, (GPT, Transformer)):
        raise TypeError(
            f"verify.check: the reference covers GPT and myojax.heads.Transformer only, got "
            f"{type(model).__name__}; build the model from myojax pieces (myojax.heads)"
        )
    if isinstance(model, Transformer):
        known = {"embed": (TokenEmbedding, LinearInput), "readout": (TiedLogits, LinearReadout)}
        for field, types in known.items():
            head = getattr(model, field)
            if not isinstance(head, types):
                raise TypeError(
                    f"verify.check: the reference has no rule for the {field} head "
                    f"{type(head).__name__}; known: {[t.__name__ for t in types]}"
                )


def _check_forward_matches(
    model: GPT, tokens: Array, targets: Array, forward: Forward, loss_fn: PositionLoss
) -> None:
    """Refuse a ``forward`` hook whose losses are not the model's (the reference follows the
    model, so any verdict on another function would be wrong)."""
    hooked = loss_fn(forward(model, tokens, None), targets)
    reference, _ = full_forward_losses(model, tokens, targets, None, loss_fn)
    gap = float(jnp.max(jnp.abs(hooked - reference)))
    if not gap <= FORWARD_TOL:
        raise ValueError(
            f"verify.check: the forward hook computes different losses from the model "
            f"(max |Δ| = {gap:.2e}); the reference follows only the model's own function, so "
            "a custom architecture must be built from myojax pieces (myojax.heads) and passed "
            "as the model, not as forward="
        )


def random_problem(
    config: ModelConfig, key: PRNGKeyArray, batch_size: int = 2
) -> tuple[GPT, Array, Array, Batch]:
    """A fresh model and random tokens/targets (first batch row is the checked sequence)."""
    k_model, k_data = jax.random.split(key)
    model = GPT(config, key=k_model)
    data = jax.random.randint(k_data, (batch_size, config.seq_len + 1), 0, config.vocab_size)
    batch = Batch.from_windows(data)
    return model, batch.inputs[0], batch.targets[0], batch


def probe_jacobian_norms(
    forward: Forward, model: GPT, tokens: Int[Array, " T"], targets: Int[Array, " T"]
) -> Float[np.ndarray, "L T S"]:
    """max over D of |∂L_t/∂δ^l_s|, indexed [l, t, s], in float64."""
    with jax.enable_x64(True):
        m64 = cast_model(model, "float64")
        jac, *_ = _row_statistics(
            m64, _as_float64(tokens), _as_float64(targets), forward, 16, with_reference=False
        )
        return np.asarray(jac)


class Problem(NamedTuple):
    """A model and the sequence (and batch) to verify it on."""

    name: str
    model: GPT
    tokens: Int[Array, " T"]
    targets: Int[Array, " T"]
    batch: Batch


def random_problems(config: ModelConfig, seeds: int) -> list[Problem]:
    """``seeds`` fresh models of ``config`` on random tokens (``random_problem``)."""
    return [
        Problem(f"seed {seed}", *random_problem(config, jax.random.key(seed)))
        for seed in range(seeds)
    ]


def checkpoint_problem(run_dir: str, seq_len: int) -> Problem:
    """The latest finite checkpoint of ``run_dir`` on random tokens of at most ``seq_len``;
    an unreadable run is a ``ValueError`` (a request that cannot be met)."""
    from myojax.checkpoint import CheckpointError, restore_step  # only this path: orbax

    try:  # non-finite steps are reported and skipped; none left is an error
        step, _, model = restore_step(run_dir)
    except CheckpointError as err:
        raise ValueError(str(err)) from err
    seq = min(seq_len, model.config.seq_len)
    data = jax.random.randint(jax.random.key(0), (2, seq + 1), 0, model.config.vocab_size)
    b = Batch.from_windows(data)
    return Problem(f"checkpoint {run_dir} step {step}", model, b.inputs[0], b.targets[0], b)
