"""Analysis of the study: a pure function of the run rows (no training, no JAX).

Fits L(N) = E + A·N^(−α) per mode (``myojax.scaling_laws``) with a paired bootstrap over
held-out sequences; gaps (myopic − standard) per size, their trend per decade of N and the
fits' extrapolations to the GPT-2 sizes get the same bootstrap intervals. ``results_document``
is what lands in results.json; the report and plots are computed from it alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.scaling.protocol import EVAL_SEED, GPT2_TOKENS_PER_PARAM, StudyPreset
from myojax import scaling_laws as sl
from myojax.model import param_counts
from myojax.presets import GPT2_SHAPES, model_preset
from myojax.provenance import environment

SCHEMA_VERSION = 1


def best_lr(rows: Sequence[dict[str, Any]]) -> tuple[float, bool]:
    """(lr with the lowest held-out loss among finished sweep runs, whether it is an edge lr)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        raise RuntimeError(f"every sweep run of mode {rows[0]['mode']} diverged; lower the lrs")
    best = min(ok, key=lambda r: r["val_loss"])
    lrs = sorted(r["lr"] for r in rows)
    return best["lr"], best["lr"] in (lrs[0], lrs[-1])


def analyze(
    p: StudyPreset,
    modes: Sequence[str],
    runs: Sequence[dict[str, Any]],
    *,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Fits per mode, per-size gaps against ``standard``, gap trend and extrapolations."""
    rng = np.random.default_rng(seed)
    sizes = [s.name for s in p.sizes]
    table = {(r["mode"], r["size"]): r for r in runs if r["role"] == "size" and r["status"] == "ok"}
    n_items = {len(r["val_loss_per_sequence"]) for r in table.values()}
    if len(n_items) > 1:
        raise ValueError(f"runs were evaluated on different held-out sets (sizes {n_items})")
    out: dict[str, Any] = {
        "level": level,
        "n_boot": p.n_boot,
        "fits": {},
        "gaps": {},
        "extrapolation": {},
        "bootstrap": "paired over held-out sequences",
    }
    if not n_items:
        return out
    idx = sl.bootstrap_indices(rng, n_items.pop(), p.n_boot)
    extrap_names = list(GPT2_SHAPES)
    extrap_n = np.array([param_counts(model_preset(n))[1] for n in extrap_names], float)
    boots: dict[str, dict[str, Any]] = {}
    for mode in modes:
        names = [s for s in sizes if (mode, s) in table]
        rows = [table[mode, s] for s in names]
        n = np.array([r["non_embedding_params"] for r in rows], float)
        per_item = np.array([r["val_loss_per_sequence"] for r in rows])
        mean_boot = sl.resampled_means(per_item, idx)
        lo, hi = sl.interval(mean_boot, level)
        entry: dict[str, Any] = {
            "sizes": names,
            "n": n.tolist(),
            "loss": per_item.mean(axis=1).tolist(),
            "loss_ci": [lo.tolist(), hi.tolist()],
        }
        if len(names) >= 3:
            fit = sl.fit_power_law(n, per_item.mean(axis=1))
            params = sl.bootstrap_fits(n, per_item, idx, point=fit)
            plo, phi = sl.interval(params, level)
            pred = sl.predict(params, extrap_n)
            elo, ehi = sl.interval(pred, level)
            entry.update(
                fit=fit.to_dict(),
                fit_ci={
                    k: [float(plo[i]), float(phi[i])] for i, k in enumerate(("E", "A", "alpha"))
                },
            )
            out["extrapolation"][mode] = {
                "sizes": extrap_names,
                "n": extrap_n.tolist(),
                "loss": fit.predict(extrap_n).tolist(),
                "ci": [elo.tolist(), ehi.tolist()],
            }
            boots[mode] = {"params": params, "fit": fit}
        boots.setdefault(mode, {})["per_item"] = dict(zip(names, per_item))
        out["fits"][mode] = entry
    if "standard" in modes:
        for mode in (m for m in modes if m != "standard"):
            common = [s for s in sizes if (mode, s) in table and ("standard", s) in table]
            if not common:
                continue
            d_items = np.array(
                [boots[mode]["per_item"][s] - boots["standard"]["per_item"][s] for s in common]
            )
            n = np.array([table[mode, s]["non_embedding_params"] for s in common], float)
            gap_boot = sl.resampled_means(d_items, idx)
            glo, ghi = sl.interval(gap_boot, level)
            gap = {
                "sizes": common,
                "n": n.tolist(),
                "gap": d_items.mean(axis=1).tolist(),
                "ci": [glo.tolist(), ghi.tolist()],
                "relative": (
                    d_items.mean(axis=1)
                    / np.array([table["standard", s]["val_loss"] for s in common])
                ).tolist(),
            }
            if len(common) >= 2:
                slope_boot = sl.trend_slope(n, gap_boot)
                slo, shi = sl.interval(slope_boot, level)
                gap["trend_per_decade"] = float(sl.trend_slope(n, d_items.mean(axis=1)))
                gap["trend_ci"] = [float(slo), float(shi)]
            if "params" in boots.get(mode, {}) and "params" in boots["standard"]:
                pred_gap = sl.predict(boots[mode]["params"], extrap_n) - sl.predict(
                    boots["standard"]["params"], extrap_n
                )
                xlo, xhi = sl.interval(pred_gap, level)
                point = boots[mode]["fit"].predict(extrap_n) - boots["standard"]["fit"].predict(
                    extrap_n
                )
                gap["extrapolated"] = {
                    "sizes": extrap_names,
                    "n": extrap_n.tolist(),
                    "gap": point.tolist(),
                    "ci": [xlo.tolist(), xhi.tolist()],
                }
            out["gaps"][mode] = gap
    return out


def results_document(
    p: StudyPreset,
    modes: Sequence[str],
    runs: list[dict[str, Any]],
    analysis: dict[str, Any],
    *,
    command: str,
    wall_s: float,
    env_start: dict[str, Any],
    data: str,
    trained: int,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results.json document. ``invocations`` keeps every command that contributed (a
    resumed study took several), with its wall time, load and how many runs it trained."""
    invocation = {
        "command": command,
        "wall_s": wall_s,
        "runs_trained": trained,
        "environment_start": env_start,
        "environment_end": environment(),
    }
    invocations = [*(previous or {}).get("invocations", []), invocation]
    sweeps = {}
    for mode in modes:
        rs = sorted(
            (r for r in runs if r["mode"] == mode and r["role"] == "sweep"), key=lambda r: r["lr"]
        )
        if rs:
            lr, edge = best_lr(rs)
            sweeps[mode] = {
                "lrs": [r["lr"] for r in rs],
                "val_loss": [r.get("val_loss") if r["status"] == "ok" else None for r in rs],
                "status": [r["status"] for r in rs],
                "best_lr": lr,
                "best_at_edge": edge,
            }
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": p.name,
        "description": p.description,
        "modes": list(modes),
        "command": command,
        "data": data,
        "protocol": {
            "sizes": [dataclasses.asdict(s) for s in p.sizes],
            "proxy": dataclasses.asdict(p.proxy),
            "base_width": p.base_width,
            "lrs": list(p.lrs),
            "seq_len": p.seq_len,
            "batch_size": p.batch_size,
            "token_rule": {
                "formula": (
                    "D(N) = ref_tokens * (N / N_proxy) ** exponent, rounded up to whole steps"
                ),
                "ref_tokens": p.ref_tokens or f"{GPT2_TOKENS_PER_PARAM} * N_proxy",
                "exponent": p.budget_exponent,
            },
            "warmup_frac": p.warmup_frac,
            "seed": p.seed,
            "eval_seed": EVAL_SEED,
            "eval_sequences": p.eval_batches * p.batch_size,
            "n_boot": p.n_boot,
            "fit": "L(N) = E + A N^-alpha; Huber(delta=1e-3) on log L; L-BFGS-B from a grid",
        },
        "wall_s": wall_s,
        "environment_start": env_start,
        "environment_end": invocation["environment_end"],
        "invocations": invocations,
        "runs": runs,
        "sweeps": sweeps,
        "analysis": analysis,
    }


def runs_fingerprint(runs: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the analysis depends on: used to make a rerun with nothing new a no-op."""
    return sorted(
        (r["mode"], r["role"], r["size"], r["lr"], r["status"], r.get("val_loss")) for r in runs
    )
