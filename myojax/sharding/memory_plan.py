"""Per-device memory plan for FSDP / data-parallel training (the command:
``python -m myojax.sharding plan``).

Parameters, AdamW state and gradients are measured exactly from ``jax.eval_shape`` trees
(nothing is allocated) and the partition rules of ``myojax.sharding.rules``: a sharded leaf costs
``size / fsdp`` per device, a replicated one its full size.

Activations follow an analytic model of what the backward pass keeps, per token of the
per-device microbatch (``b = global_batch / (data * fsdp * microbatches)`` sequences of ``T``
tokens), with ``L`` layers, width ``D``, MLP width ``F``, ``H`` heads and vocabulary ``V``.
Counted in elements per token; linear terms in the compute dtype, softmax / residual / logits
terms in the accumulation dtype (float32, or float64 when computing in float64). The
coefficients were checked against XLA's own buffer assignment of the sharded train step
(``python -m experiments.memory_check``, results/memory_plan.md):

* one block, stored for its backward (``A_block``): ``8 D + 2 F`` linear — LN1 input and output
  (2D), fused QKV (3D), attention output before its projection (D), the residual after
  attention (D), LN2 output (D), MLP pre-activation and GELU output (2F) — plus, per head, a
  ``T x T`` causal score matrix kept three times in the accumulation dtype (scores, their
  exponentials, the probabilities) and once as a boolean mask: ``H T (3 acc + 1)`` bytes;
* the head (``A_head``): logits, their softmax and their gradient, ``3 V``, alive together in
  the loss's backward pass;
* ``remat="none"``: ``L * A_block + A_head``;
* ``remat="full"`` (save nothing inside a block): the scan carry, ``L * D``, plus the larger of
  ``A_head`` and one block's ``A_block`` while it is recomputed (the head's buffers are freed
  before the first block is recomputed);
* ``remat="dots"`` (save matmul outputs without batch dimensions): ``L * (D + 5 D + F)`` — carry,
  QKV, both projection outputs and the MLP pre-activation — plus the larger of ``A_head`` and
  one recomputed ``A_block``.

FSDP gather buffers: inside the scan each device all-gathers one layer's parameters and
holds that layer's full gradient before the reduce-scatter (twice one layer); the non-layer
parameters (the tied embedding) are held four times — gathered, transposed for the readout,
and a full gradient from each of its two uses (embedding and readout) — in the parameter
dtype; 0 when ``fsdp == 1``.

Gradient accumulation (``microbatches > 1``) adds a running sum of the (sharded) gradients in
float32 or wider beside each microbatch's gradient.

Not counted: XLA's temporary buffers, fragmentation and the runtime itself — which is what the
``--headroom`` fraction of device memory (default 10%) is kept free for.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import numpy as np
import optax
from jaxtyping import PyTree

from myojax.config import DTYPES, REMAT_POLICIES, ModelConfig
from myojax.model import GPT
from myojax.sharding.mesh import MeshConfig
from myojax.sharding.rules import (
    DEFAULT_MIN_SHARD_SIZE,
    STACKED_NAMES,
    fsdp_partition_spec,
    is_stacked_path,
)

GIB: int = 2**30


def sharded_bytes(
    tree: PyTree,
    fsdp_size: int,
    *,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
    stacked_names: Sequence[str] = STACKED_NAMES,
) -> int:
    """Bytes one device holds of ``tree`` (arrays or ``ShapeDtypeStruct``s) under FSDP rules."""
    total = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        spec = fsdp_partition_spec(
            leaf.shape,
            fsdp_size,
            stacked=is_stacked_path(path, stacked_names),
            min_shard_size=min_shard_size,
        )
        divisor = fsdp_size if any(axis is not None for axis in spec) else 1
        total += math.prod(leaf.shape) // divisor * np.dtype(leaf.dtype).itemsize
    return total


def _acc_itemsize(config: ModelConfig) -> int:
    return 8 if config.compute_dtype == "float64" else 4


def activation_bytes(config: ModelConfig, seqs_per_device: int, remat: str) -> int:
    """Activation bytes per device for ``seqs_per_device`` sequences in flight (one
    microbatch) under the model in the module docstring."""
    if remat not in REMAT_POLICIES:
        raise ValueError(f"remat must be one of {REMAT_POLICIES}, got {remat!r}")
    d, f, h, t = config.d_model, config.ff_dim, config.n_heads, config.seq_len
    layers, vocab = config.n_layers, config.vocab_size
    cb, ab = DTYPES[config.compute_dtype].itemsize, _acc_itemsize(config)
    block = (8 * d + 2 * f) * cb + h * t * (3 * ab + 1)
    head = 3 * vocab * ab
    carry = d * ab
    per_token = {
        "none": layers * block + head,
        "full": layers * carry + max(block, head),
        "dots": layers * (carry + (5 * d + f) * cb) + max(block, head),
    }[remat]
    return seqs_per_device * t * per_token


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Per-device bytes of one training configuration (see the module docstring)."""

    name: str
    config: ModelConfig
    n_params: int
    data: int
    fsdp: int
    batch_size: int
    microbatches: int
    params: int
    optimizer: int
    gradients: int
    accumulator: int
    gather: int
    activations: dict[str, int]  # remat policy -> bytes
    remat: str
    device_memory: int | None  # bytes
    headroom: float

    @property
    def n_devices(self) -> int:
        return self.data * self.fsdp

    @property
    def seqs_per_device(self) -> int:
        return self.batch_size // self.n_devices

    @property
    def seqs_per_microbatch(self) -> int:
        return self.seqs_per_device // self.microbatches

    def total(self, remat: str | None = None) -> int:
        remat = self.remat if remat is None else remat
        return (
            self.params
            + self.optimizer
            + self.gradients
            + self.accumulator
            + self.gather
            + self.activations[remat]
        )

    @property
    def usable(self) -> int | None:
        if self.device_memory is None:
            return None
        return int(self.device_memory * (1.0 - self.headroom))

    def fits(self, remat: str | None = None) -> bool | None:
        usable = self.usable
        return None if usable is None else self.total(remat) <= usable


def _check_plan_inputs(
    mesh: MeshConfig,
    n_devices: int | None,
    batch_size: int | None,
    microbatches: int,
    device_memory_gib: float | None,
    headroom: float,
) -> tuple[int, int]:
    """The device count and the global batch size, every input checked (one clear error)."""
    if n_devices is None:
        if -1 in (mesh.data, mesh.fsdp):
            raise ValueError(f"mesh {mesh} has a -1 axis: give the device count (--num-devices)")
        n_devices = mesh.data * mesh.fsdp
    data, fsdp = mesh.resolve(n_devices)
    batch_size = n_devices if batch_size is None else batch_size
    if batch_size < 1 or batch_size % n_devices:
        raise ValueError(
            f"global batch size {batch_size} must be a positive multiple of data*fsdp = "
            f"{data}*{fsdp} = {n_devices}"
        )
    if microbatches < 1 or (batch_size // n_devices) % microbatches:
        raise ValueError(
            f"microbatches ({microbatches}) must divide the per-device batch "
            f"({batch_size} / {n_devices} = {batch_size // n_devices} sequences)"
        )
    if not 0.0 <= headroom < 1.0:
        raise ValueError(f"headroom must be in [0, 1), got {headroom}")
    if device_memory_gib is not None and not 0 < device_memory_gib < math.inf:
        raise ValueError(
            f"--device-memory must be a positive number of GiB, got {device_memory_gib}"
        )
    return n_devices, batch_size


def make_plan(
    config: ModelConfig,
    mesh: MeshConfig,
    *,
    name: str = "custom",
    n_devices: int | None = None,
    batch_size: int | None = None,
    microbatches: int = 1,
    device_memory_gib: float | None = None,
    headroom: float = 0.1,
    min_shard_size: int = DEFAULT_MIN_SHARD_SIZE,
) -> MemoryPlan:
    """Plan for ``config`` on ``mesh``; ``batch_size`` defaults to one sequence per device,
    split into ``microbatches`` (gradient accumulation) on every device."""
    n_devices, batch_size = _check_plan_inputs(
        mesh, n_devices, batch_size, microbatches, device_memory_gib, headroom
    )
    data, fsdp = mesh.resolve(n_devices)

    # A GPT's leaves are all arrays, so the ShapeDtypeStruct tree *is* the parameter tree.
    params = jax.eval_shape(lambda: GPT(config, key=jax.random.key(0)))
    opt_state = jax.eval_shape(optax.adamw(1e-3).init, params)
    n_params = sum(math.prod(a.shape) for a in jax.tree.leaves(params))

    def nbytes(tree: PyTree) -> int:
        return sharded_bytes(tree, fsdp, min_shard_size=min_shard_size)

    gather = 0
    if fsdp > 1:
        itemsize = DTYPES[config.param_dtype].itemsize
        layer_elems = sum(math.prod(a.shape) for a in jax.tree.leaves(params.blocks))
        other_elems = n_params - layer_elems
        gather = (2 * (layer_elems // config.n_layers) + 4 * other_elems) * itemsize
    seqs = batch_size // n_devices // microbatches
    grads = nbytes(params)  # gradients take the parameters' shardings
    # Accumulating: a float32 (or wider) running sum beside each microbatch's gradient.
    acc_scale = max(4, DTYPES[config.param_dtype].itemsize) / DTYPES[config.param_dtype].itemsize
    return MemoryPlan(
        name=name,
        config=config,
        n_params=n_params,
        data=data,
        fsdp=fsdp,
        batch_size=batch_size,
        microbatches=microbatches,
        params=nbytes(params),
        optimizer=nbytes(opt_state),
        gradients=grads,
        accumulator=0 if microbatches == 1 else int(grads * acc_scale),
        gather=gather,
        activations={r: activation_bytes(config, seqs, r) for r in REMAT_POLICIES},
        remat=config.remat,
        device_memory=None if device_memory_gib is None else int(device_memory_gib * GIB),
        headroom=headroom,
    )


def format_plan(plan: MemoryPlan) -> str:
    c = plan.config

    def row(label: str, n: int) -> str:
        return f"  {label:<34}{n:>18,}  {n / GIB:>9.3f}"

    lines = [
        f"memory plan: {plan.name} ({plan.n_params:,} parameters; {c.n_layers} layers x "
        f"d_model {c.d_model}, {c.n_heads} heads, vocab {c.vocab_size}, context {c.seq_len})",
        f"mesh data={plan.data},fsdp={plan.fsdp} ({plan.n_devices} devices); global batch "
        f"{plan.batch_size} x {c.seq_len} tokens = {plan.seqs_per_device} sequence(s) per device "
        f"in {plan.microbatches} microbatch(es) of {plan.seqs_per_microbatch}; "
        f"params {c.param_dtype}, compute {c.compute_dtype}; optimizer AdamW",
        f"  {'per device':<34}{'bytes':>18}  {'GiB':>9}",
        row("parameters", plan.params),
        row("optimizer state (AdamW m, v)", plan.optimizer),
        row("gradients", plan.gradients),
        row("gradient accumulator", plan.accumulator),
        row("FSDP gather buffers", plan.gather),
    ]
    for r in REMAT_POLICIES:
        lines.append(row(f"activations, remat={r}", plan.activations[r]))
    for r in REMAT_POLICIES:
        mark = "  <- selected" if r == plan.remat else ""
        lines.append(row(f"total, remat={r}", plan.total(r)) + mark)
    if plan.usable is None:
        lines.append("device memory not given (--device-memory GiB): no fit check")
        return "\n".join(lines)
    assert plan.device_memory is not None
    budget = (
        f"budget {plan.device_memory / GIB:.2f} GiB per device, {plan.usable / GIB:.2f} GiB "
        f"usable after {plan.headroom:.0%} headroom"
    )
    total = plan.total()
    verdict = "FITS" if plan.fits() else "DOES NOT FIT"
    lines.append(budget)
    lines.append(
        f"remat={plan.remat}: {total / GIB:.3f} GiB of {plan.usable / GIB:.2f} GiB usable "
        f"({total / plan.usable:.0%}) -> {verdict}"
    )
    if not plan.fits():
        ok = [r for r in ("dots", "full") if plan.fits(r)]  # least recomputation first
        lines.append(
            f"fits with remat={ok[0]}"
            if ok
            else "fits with no remat policy: add fsdp devices or lower the batch size"
        )
    return "\n".join(lines)
