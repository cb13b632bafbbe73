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
    isoflop_record,
    isoflop_study,
    pods,
)
from myojax import cli
from myojax.data import pipeline
from myojax.sharding import distributed

# Resamples for the fitted form's intervals: each refit costs up to ~0.2 s, and the interval
# is t-based on the resamples' variance, which 200 resamples estimate well.
FORM_BOOT = 200


def too_wide(e: isoflop_analysis.Estimate) -> bool:
    """A multiplicative interval that allows both half and double: it says nothing."""
    return e.lo <= 0.5 and e.hi >= 2.0


def _ci(e: isoflop_analysis.Estimate, fmt: str = ".3g") -> str:
    return f"{e.point:{fmt}} [{e.lo:{fmt}}, {e.hi:{fmt}}]"


_TRENDS = {
    "too wide": "an interval too wide to say whether the price of myopia grows or shrinks",
    "shrinks": "so m shrinks with compute: the price of myopia grows with scale",
    "grows": "so m grows with compute: the price of myopia shrinks with scale",
    "none": "an interval that contains 1: no trend is detectable",
}


def _trend(f: isoflop_analysis.Estimate) -> str:
    """What the factor per decade says of m's trend: a key of ``_TRENDS``."""
    if too_wide(f):
        return "too wide"
    return "shrinks" if f.hi < 1 else "grows" if f.lo > 1 else "none"


def _trend_reading(f: isoflop_analysis.Estimate) -> str:
    return _TRENDS[_trend(f)]


def answer(a: isoflop_analysis.IsoflopAnalysis) -> str:
    """The report's first sentence: the multiplier per budget and its trend, with intervals,
    saying plainly where an interval is too wide to say anything; then, where L* was also read
    other ways (``isoflop_analysis.READINGS``), whether they give the same trend. The README
    quotes this paragraph, so whether the trend is a finding travels with it."""
    ms = "; ".join(
        f"{_ci(b.multiplier)} at C = {b.budget:.3g}"
        f"{' (too wide to say anything)' if too_wide(b.multiplier) else ''}"
        f"{' (extrapolated)' if b.extrapolated else ''}"
        f"{' (profile minimum at an edge)' if any(b.at_edge.values()) else ''}"
        for b in a.budgets
    )
    f = a.factor_per_decade
    line = (
        f"Myopic training at compute C is worth standard training at m(C) times C: m = {ms}; "
        f"m changes by a factor {_ci(f)} per decade of C, {_trend_reading(f)} (95% crossed "
        "seed x sequence bootstrap intervals)."
    )
    if not a.readings:
        return line
    return f"{line} With L* read {len(a.readings)} other ways from every profile, {_verdict(a)}."


def _verdict(a: isoflop_analysis.IsoflopAnalysis) -> str:
    """Whether the other readings of L* give the answer's trend, and how many of their factors
    per decade and of their m(C) fall outside the answer's intervals."""
    same = all(_trend(r.factor_per_decade) == _trend(a.factor_per_decade) for r in a.readings)
    verdict = (
        "every reading gives the answer's trend"
        if same
        else "the readings disagree on the trend: it rests on how L* is read from a profile, "
        "so it is not a finding"
    )
    f = a.factor_per_decade
    outside = sum(not f.lo <= r.factor_per_decade.point <= f.hi for r in a.readings)
    cells = [
        (r.multiplier[i].point, b.multiplier) for r in a.readings for i, b in enumerate(a.budgets)
    ]
    above, below = sum(m > e.hi for m, e in cells), sum(m < e.lo for m, e in cells)
    off = [f"{outside} of {len(a.readings)} readings' factors per decade"] if outside else []
    if above + below:
        off.append(f"{above + below} of their {len(cells)} m(C) ({above} above, {below} below)")
    if off:
        verdict += (
            f"; {' and '.join(off)} lie outside the answer's intervals, which count seed and "
            "sequence noise, not the choice of reading"
        )
    return verdict


def _difference_reading(d: isoflop_analysis.Estimate, above: str, below: str) -> str:
    if d.lo > 0:
        return above
    if d.hi < 0:
        return below
    return "no detectable difference (the interval contains 0)"


def _form_line(form: isoflop_analysis.FrontierForm) -> str:
    def param(name: str, e: isoflop_analysis.Estimate) -> str:
        if name in form.at_bounds:
            return f"{name} at its bound (the fit's box, not a finding)"
        return f"{name} = {_ci(e)}"

    parts = [param("E", form.E)]
    parts += [param(f"alpha[{k}]", e) for k, e in form.alpha.items()]
    line = "Fitted frontiers L*(C) = E + A C^-alpha, E shared: " + ", ".join(parts)
    if any(k.startswith("alpha") for k in form.at_bounds):
        return line + "; the exponents' difference is not reported (an exponent at its bound)."
    reading = _difference_reading(
        form.alpha_difference,
        "myopic's frontier falls faster with compute",
        "myopic's frontier falls more slowly with compute",
    )
    return line + f"; alpha[myopic] - alpha[standard] = {_ci(form.alpha_difference)}: {reading}."


def _size_line(a: isoflop_analysis.IsoflopAnalysis) -> str:
    """The N*(C) exponents, which mode's optimal size is smaller at each budget, and whether
    edge minima make the N* values extrapolations (then the exponents are not findings)."""
    exps = ", ".join(f"a[{k}] = {_ci(e, '.2f')}" for k, e in a.n_opt_exponent.items())
    d = a.n_opt_exponent_difference
    growth = _difference_reading(
        d,
        "myopic's optimal size grows faster with compute",
        "myopic's optimal size grows more slowly with compute",
    )
    smaller = sum(b.n_opt["myopic"].point < b.n_opt["standard"].point for b in a.budgets)
    line = (
        f"N*(C) ~ C^a: {exps}; a[myopic] - a[standard] = {_ci(d, '.3f')}: {growth}; at the "
        f"same compute myopic's N* is the smaller at {smaller} of {len(a.budgets)} budgets."
    )
    edges = sum(any(b.at_edge.values()) for b in a.budgets)
    if edges:
        line += (
            f" {edges} of {len(a.budgets)} budgets have a profile whose minimum lies at an edge "
            "of the sizes trained: N* there is the parabola's extrapolation beyond them, so "
            "these N* values and exponents are not findings."
        )
    return line


def _readings_line(a: isoflop_analysis.IsoflopAnalysis) -> str:
    """The answer under the other readings of L* (``isoflop_analysis.READINGS``), and whether
    they agree with it on the trend's direction."""
    parts = []
    for r in a.readings:
        ms = ", ".join(
            f"{_ci(m)}{' (extrapolated)' if x else ''}{' (edge)' if e else ''}"
            for m, x, e in zip(r.multiplier, r.extrapolated, r.at_edge, strict=True)
        )
        f = r.factor_per_decade
        parts.append(
            f"with {r.name}, m = {ms} and a factor {_ci(f)} per decade ({_TRENDS[_trend(f)]})"
        )
    return f"Read L* another way from every profile: {'; '.join(parts)}. So {_verdict(a)}."


def details(a: isoflop_analysis.IsoflopAnalysis, reads: int) -> list[str]:
    """The report's sentences after the answer: the fitted form, the N*(C) exponents, the
    answer under the other readings of L*, and the most times any run read a training
    token."""
    once = "at most once" if reads <= 1 else f"up to {reads} times (the design requires once)"
    tokens = f"Every run read each of its training tokens {once} (per run in the last table)."
    readings = [_readings_line(a)] if a.readings else []
    return [_form_line(a.frontier_fit), _size_line(a), *readings, tokens]


def partial_prefix(d: isoflop.Design, done: list[isoflop_study.IsoflopRun], used: int) -> str:
    """The first words of a partial study's answer: what it rests on and how to finish it."""
    return (
        f"PARTIAL (`--report-only`): this answer rests on the {used} of {len(d.budgets)} "
        f"budgets finished so far ({len(done)} of {isoflop_study.planned_runs(d)} planned runs); "
        "rerunning the study's command continues it. "
    )


def results(
    ip: isoflop.IsoflopPreset,
    command: str,
    lrs: dict[str, float],
    done: list[isoflop_study.IsoflopRun],
    analysis: isoflop_analysis.IsoflopAnalysis,
    prefix: str = "",
) -> isoflop_record.IsoflopResults:
    reads = max(x.max_token_reads for x in done)
    report = (prefix + answer(analysis), *details(analysis, reads))
    return isoflop_record.IsoflopResults(
        command, ip.name, lrs, tuple(done), analysis, report, partial=bool(prefix)
    )


# The fitted form L*(C) = E + A_mode C^-alpha_mode has 5 parameters: 3 budgets x 2 modes is
# the fewest frontier points that determine it.
MIN_BUDGETS = 3


def _finished(
    d: isoflop.Design, out: Path, data: str
) -> tuple[dict[str, float], list[isoflop_study.IsoflopRun], tuple[float, ...]]:
    """--report-only: the runs finished so far and the budgets the analysis can rest on."""
    ran = isoflop_study.run(d, out, data, train=False)
    if ran is None:
        raise cli.UsageError(f"--report-only: the lr sweep in {out} has not finished")
    lrs, done = ran
    budgets = isoflop_study.finished_budgets(d, done)
    if len(budgets) < MIN_BUDGETS:
        raise cli.UsageError(
            f"--report-only: {len(budgets)} of {len(d.budgets)} budgets have finished in {out}; "
            f"the analysis needs at least {MIN_BUDGETS}"
        )
    return lrs, done, budgets


def from_json(args: argparse.Namespace, doc: object) -> int:
    """``--from-json`` of an isoFLOP record: its page and figures into --out and/or, with
    --publish, the repository, from the record alone."""
    if args.out is None and not args.publish:
        raise cli.UsageError("--from-json needs --out DIR, --publish or both")
    try:
        res = isoflop_record.from_json(doc)
    except ValueError as e:
        raise cli.UsageError(f"--from-json {args.from_json}: {e}") from None
    page, doc = isoflop_page.page(res.preset), isoflop_record.to_json(res)
    written = epilogue.finish(page, doc, Path(args.out)) if args.out else []
    written += epilogue.publish_page(page, doc, Path.cwd()) if args.publish else []
    print(f"wrote {len(written)} files from {args.from_json}")
    return 0


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
    if args.status:
        if not (out / "runs").is_dir():
            raise cli.UsageError(f"{out} holds no study runs (no {out / 'runs'} directory)")
        print(f"{out}: {isoflop_study.status(design, out).line()}")
        return 0
    if args.share and distributed.maybe_initialize_distributed():
        raise cli.UsageError(
            "--share: every sharing process is a study of its own, but this one is part of a "
            "multi-process JAX job; launch the sharing processes as separate jobs"
        )
    if args.report_only:
        lrs, done, budgets = _finished(design, out, data)
    else:
        try:
            ran = isoflop_study.run(design, out, data, progress=args.progress, share=args.share)
        except isoflop_study.HeldByOthers as e:
            print(
                f"this process is done: {len(e.runs)} run(s) are being trained by other "
                f"processes sharing {out} (first: {e.runs[0]}); the last of them writes the "
                "analysis, or rerun this command once they finish"
            )
            return 0
        if ran is None:
            print("stopped: finished runs are saved; rerun the same command to resume")
            return 130
        (lrs, done), budgets = ran, design.budgets
    partial = len(budgets) < len(design.budgets)
    analysis = isoflop_analysis.analyse(
        isoflop_study.losses(design, done, budgets),
        np.random.default_rng(0),
        n_boot=args.n_boot or ip.base.n_boot,
        n_form_boot=min(args.n_boot or ip.base.n_boot, FORM_BOOT),
    )
    prefix = partial_prefix(design, done, len(budgets)) if partial else ""
    res = results(ip, command, lrs, done, analysis, prefix)
    epilogue.finish(
        isoflop_page.page(ip.name), isoflop_record.to_json(res), out, publish=args.publish
    )
    print("\n".join(res.report))
    return 0
