"""``python -m experiments.scaling --preset cpu-isoflop`` (and ``isoflop-smoke``): the design's
dry run, or the study itself (resumable: rerun the same command) and its analysis, written to
OUT/isoflop.json and OUT/isoflop.md."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from experiments import epilogue
from experiments.scaling import (
    isoflop,
    isoflop_analysis,
    isoflop_page,
    isoflop_study,
    pods,
    records,
)
from myojax import cli
from myojax.data import pipeline


def answer(a: isoflop_analysis.IsoflopAnalysis) -> str:
    """The report's first sentence: the multiplier per budget and its trend, with intervals."""
    ms = "; ".join(
        f"C = {b.budget:.3g}: {b.multiplier.point:.3g} [{b.multiplier.lo:.3g}, "
        f"{b.multiplier.hi:.3g}]{' (extrapolated)' if b.extrapolated else ''}"
        f"{' (profile minimum at an edge)' if any(b.at_edge.values()) else ''}"
        for b in a.budgets
    )
    f = a.factor_per_decade
    return (
        f"Myopic training reaches the frontier loss that standard training reaches with m(C) "
        f"times the compute, m = {ms}; m changes by a factor {f.point:.3g} [{f.lo:.3g}, "
        f"{f.hi:.3g}] per decade of C (95% crossed seed x sequence bootstrap intervals)."
    )


def _details(a: isoflop_analysis.IsoflopAnalysis, reads: int) -> list[str]:
    fit = a.frontier_fit
    bounds = f" (at a bound, not findings: {', '.join(fit.at_bounds)})" if fit.at_bounds else ""
    lines = [
        f"Fitted frontiers L*(C) = E + A C^-alpha, E shared: E = {fit.E:.3g}, "
        + ", ".join(f"alpha[{k}] = {v:.3g}" for k, v in fit.alpha.items())
        + bounds
        + ".",
        "N*(C) ~ C^a: "
        + ", ".join(
            f"a[{k}] = {e.point:.2f} [{e.lo:.2f}, {e.hi:.2f}]" for k, e in a.n_opt_exponent.items()
        )
        + ".",
        f"Most times any run read a training token: {reads} (must be 1).",
    ]
    return lines


def main(args: argparse.Namespace, command: str) -> int:
    ip = isoflop.PRESETS[args.preset]
    if args.attention_impl is not None:
        base = dataclasses.replace(ip.base, attention_impl=args.attention_impl)
        ip = dataclasses.replace(ip, base=base)
    data = args.data or ip.base.data
    if ip.budgets is not None:  # a pod-scale design: its plan only
        if not args.dry_run:
            raise cli.UsageError(f"--preset {ip.name} is a plan: add --dry-run --accelerator")
        design = isoflop.design(ip, None)
        for name in [args.accelerator] if args.accelerator else list(pods.ACCELERATORS):
            pods.print_isoflop_pod_plan(design, name, args.mfu)
        return 0
    costs = isoflop.cost_model(isoflop.recorded_costs(ip))
    try:
        split = sum(a.shape[0] for a in pipeline.load_data(data).train)
    except (pipeline.DataError, OSError):
        split = None
    design = isoflop.design(ip, costs, split)
    if args.dry_run:
        print("\n".join(isoflop.dry_run_lines(design)))
        return 0
    out = Path(args.out or f"runs/scaling-{ip.name}")
    ran = isoflop_study.run(design, out, data, progress=args.progress)
    if ran is None:
        print("stopped: finished runs are saved; rerun the same command to resume")
        return 130
    lrs, done = ran
    analysis = isoflop_analysis.analyse(
        isoflop_study.losses(design, done),
        np.random.default_rng(0),
        n_boot=args.n_boot or ip.base.n_boot,
    )
    reads = max(x.max_token_reads for x in done)
    text = [answer(analysis), *_details(analysis, reads)]
    doc = {
        "command": command,
        "preset": ip.name,
        "lrs": lrs,
        "runs": [
            {
                **records.to_json(x.record),
                "budget": x.budget,  # the design's exact C (the record's is rounded)
                "role": x.role,
                "max_token_reads": x.max_token_reads,
            }
            for x in done
        ],
        "analysis": records.to_json(analysis),
        "report": text,
    }
    epilogue.finish(isoflop_page.page(ip.name), doc, out, publish=args.publish)
    print("\n".join(text))
    return 0
