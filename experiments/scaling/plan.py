"""The study's plan for ``--dry-run``: every distinct run with its shape, parameters, tokens,
steps, lr and training FLOPs, and the accelerator-hours they take at a stated peak and MFU.
Nothing runs: it needs only the protocol and the closed-form parameter and FLOP counts."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.scaling import protocol
from experiments.scaling.protocol import StudyPreset
from experiments.scaling.records import RunRecord, planned
from myojax.model import train_flops_per_token

DEFAULT_PEAK_TFLOPS = 275.0  # TPU v4 chip, bf16 dense
DEFAULT_MFU = 0.4


def planned_runs(p: StudyPreset, modes: Sequence[str]) -> list[tuple[RunRecord, float]]:
    """Every distinct run of the plan (sweep runs and sizes; a size's lr is known only after the
    sweep), with its training FLOPs."""
    return [
        (planned(spec), train_flops_per_token(spec.model) * spec.tokens)
        for spec in protocol.plan_specs(p, modes)
    ]


def plan_lines(
    p: StudyPreset,
    modes: Sequence[str],
    *,
    where: str,
    peak_tflops: float = DEFAULT_PEAK_TFLOPS,
    mfu: float = DEFAULT_MFU,
) -> list[str]:
    """The plan as printed: a header (``where``: out, data and mesh), one line per run and the
    totals."""
    rows = planned_runs(p, modes)
    peak = peak_tflops * 1e12 * mfu
    lines = [
        f"scaling study plan: preset {p.name}, modes {','.join(modes)}, {where}",
        f"  {p.description}",
        f"  muP base width {p.base_width} (proxy {p.proxy.name}: {p.proxy.n_layers} layers x "
        f"{p.proxy.d_model}); lr sweep {list(p.lrs)} per mode; batch {p.batch_size} x "
        f"{p.seq_len} tokens; D = {p.tokens_per_param:g} tokens per non-embedding parameter; "
        f"seeds {list(p.seeds)}",
        f"  accelerator-hours assume {peak_tflops:g} TFLOP/s peak per accelerator at "
        f"{mfu:.0%} MFU; FLOPs = tokens x 3 x (2N + 2dV + 4LTd)",
        f"{'mode':<10} {'role':<6} {'size':<12} {'shape':>9} {'params':>15} "
        f"{'N (non-emb)':>15} {'tokens':>17} {'steps':>8} {'lr':>8} {'FLOPs':>9} {'acc-h':>9}",
    ]
    for r, flops in rows:
        lr = f"{r.lr:g}" if r.role == "sweep" else "best"
        lines.append(
            f"{r.mode:<10} {r.role:<6} {r.size + '/s' + str(r.seed):<12} "
            f"{r.n_layers:>3}x{r.d_model:<5} "
            f"{r.params:>15,} {r.non_embedding_params:>15,} {r.tokens:>17,} "
            f"{r.steps:>8,} {lr:>8} {flops:>9.2e} {flops / peak / 3600:>9.1f}"
        )
    total_flops = sum(flops for _, flops in rows)
    reused = len(rows) - protocol.n_runs(p, modes)
    lines.append(
        f"total: {protocol.n_runs(p, modes)} distinct runs"
        + (f" ({reused} size runs are also sweep runs)" if reused else "")
        + f", {total_flops:.3e} FLOPs, {total_flops / peak / 3600:,.1f} accelerator-hours"
    )
    return lines
