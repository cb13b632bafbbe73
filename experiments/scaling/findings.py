"""The study's findings in words: the headline (the one-sentence answer), the sections that carry
it (the gap per size and its slope, the undertraining and muP transfer checks) and the README's
copy of them, rendered from the results records alone.

The report (``experiments.scaling.markdown``), the default page's copy of the cpu-large answer
(``experiments.scaling.companions``) and the README sections all render these functions, so
the answer reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from experiments.scaling import records as rec
from experiments.scaling import sections as sec
from experiments.scaling.formats import ci_text, fmt_n


def headline(res: rec.StudyResults) -> list[str]:
    """The PARTIAL banner (for a study not finished) and the one-sentence answer, in bold."""
    an, lines = res.analysis, []
    if not res.finished:
        lines += [
            f"**PARTIAL: this report rests on the {res.cost.distinct_runs} of "
            f"{res.planned_runs} planned runs finished so far (`--report-only`); sizes "
            f"analysed: {', '.join(an.complete_sizes) or 'none'}.**",
            "",
        ]
    answer = an.answer
    return [
        *lines,
        f"**Answer: {answer.text}**" if answer else "**No answer: no finished pair of sizes.**",
        "",
    ]


def answer_sections(res: rec.StudyResults, retitle: Callable[[str], str]) -> list[str]:
    """What a copy of the answer elsewhere carries: the gap per size with its slope, the
    undertraining and the muP transfer checks, their headings passed through ``retitle``."""
    pct = round(100 * res.analysis.level)
    lines: list[str] = []
    for section in (gap_section(res, pct), undertrain_section(res, pct), transfer_section(res)):
        for line in section:
            line = retitle(line) if line.startswith("#") else line
            if line or (lines and lines[-1]):  # no double blank lines
                lines.append(line)
    return lines


def readme_summary(res: rec.StudyResults) -> str:
    """The README's copy of the study's answer (``answer_sections`` under bold titles), written
    by ``--publish`` between the README's markers."""
    answer = res.analysis.answer
    lines = [f"> {answer.text}" if answer else "> No answer: no finished pair of sizes.", ""]
    lines += answer_sections(res, lambda title: f"**{title.lstrip('# ')}**")
    cost = res.cost
    preset = "" if res.preset == "cpu" else f" --preset {res.preset}"
    page = "results/scaling.md" if res.preset == "cpu" else f"results/scaling-{res.preset}.md"
    partial = "" if res.finished else f" of {res.planned_runs} planned (PARTIAL: `--report-only`)"
    lines.append(
        f"Written by `python -m experiments.scaling{preset} --publish` from the study's "
        f"{cost.distinct_runs} runs{partial} ({cost.sum_run_wall_s / 60:.1f} min of run "
        f"wall time; the full report, with the machine's load, is {page})."
    )
    return "\n".join(lines)


def gap_section(res: rec.StudyResults, pct: int) -> list[str]:
    """Per non-standard mode: the gap per size (per seed, relative, both SEs, the plain
    percentile interval) and its slope per decade of N."""
    lines = []
    for mode, g in res.analysis.gaps.items():
        lines += [
            f"## The model-free answer: {mode} - standard test loss per size",
            "",
            f"| size | N | gap (nats) [{pct}% CI] | per seed | relative | SE seeds / SE "
            "sequences | plain percentile CI |",
            "|---|---|---|---|---|---|---|",
        ]
        gp, pl = g.gap, g.plain_percentile
        for i, (s, n) in enumerate(zip(g.sizes, g.n)):
            seeds = ", ".join(f"{v:+.4f}" for v in g.per_seed[i])
            lines.append(
                f"| {s} | {fmt_n(n)} | {gp.point[i]:+.4f} "
                f"{ci_text(gp.lo[i], gp.hi[i], sign=True)} | {seeds} | "
                f"{100 * g.relative[i]:+.2f}% | {gp.se_seed[i]:.4f} / {gp.se_seq[i]:.4f} "
                f"| {ci_text(pl.lo[i], pl.hi[i], sign=True)} |"
            )
        if sl := g.slope_per_decade:
            k, n_seeds = len(g.sizes), len(res.protocol.seeds)
            lines += [
                "",
                f"Slope of the gap against log10 N (least squares over the sizes): "
                f"**{sl.point:+.4f} nats per decade {ci_text(sl.lo, sl.hi, sign=True)}** "
                f"(SE from seeds {sl.se_seed:.4f}, from test sequences {sl.se_seq:.4f}, "
                f"{sl.df:.1f} degrees of freedom; the plain percentile bootstrap would give "
                f"{ci_text(pl.lo[k], pl.hi[k], sign=True)}"
                f", too narrow with {n_seeds} seeds: see the coverage study).",
            ]
        lines.append("")
    return lines


def _gap_change_verdict(c: sec.Interval) -> str:
    if c.lo > 0:
        return "the gap grows with more training"
    if c.hi < 0:
        return "the gap shrinks with more training: part of the measured cost is slower learning"
    return "no change of the gap distinguishable from zero"


def undertrain_section(res: rec.StudyResults, pct: int) -> list[str]:
    """The loss and the gap at each budget factor, and whether the gap moves."""
    ut = res.analysis.undertrain
    if not ut:
        return []
    if not ut.complete:
        return ["## Undertraining check", "", "Not complete (runs missing).", ""]
    tpp = res.protocol.tokens_per_param
    gaps = {m: d for m, d in ut.modes.items() if d.gap is not None}
    lines = [
        f"## Undertraining check: {ut.size} at {', '.join(f'{f:g}x' for f in ut.factors)} "
        "the token budget",
        "",
        "| budget | tokens/param | "
        + " | ".join(f"{m} test loss [{pct}% CI]" for m in ut.modes)
        + " | "
        + " | ".join(f"gap {m} - standard [{pct}% CI]" for m in gaps)
        + " |",
        "|---|---|" + "---|" * (len(ut.modes) + len(gaps)),
    ]
    for i, f in enumerate(ut.factors):
        cells = [
            f"{d.loss.point[i]:.4f} {ci_text(d.loss.lo[i], d.loss.hi[i])}"
            for d in ut.modes.values()
        ]
        cells += [
            f"{d.gap.point[i]:+.4f} {ci_text(d.gap.lo[i], d.gap.hi[i], sign=True)}"
            for d in gaps.values()
        ]
        lines.append(f"| {f:g}x | {f * tpp:g} | " + " | ".join(cells) + " |")
    for m, d in ut.modes.items():
        if (c := d.gap_change) is not None:
            lines += [
                "",
                f"{m}: gap at {ut.factors[-1]:g}x minus gap at 1x = "
                f"**{c.point:+.4f} {ci_text(c.lo, c.hi, sign=True)}**: {_gap_change_verdict(c)}.",
            ]
    return [*lines, ""]


def transfer_section(res: rec.StudyResults) -> list[str]:
    """Per mode: the largest size's re-sweep around the transferred lr and its verdict."""
    tr = res.analysis.transfer or {}
    if not tr:
        return []
    lines = ["## muP transfer check (largest size, validation split)", ""]
    for mode, t in tr.items():
        if not t.complete:
            lines.append(f"- {mode}: not complete (runs missing).")
            continue
        if t.own_optimum is None:  # every run of the re-sweep diverged
            lines.append(
                f"- {mode}: transferred lr {t.transferred_lr:g}; every re-sweep run at "
                f"{t.size} (seeds {list(t.seeds or ())}) diverged, so there is no own optimum "
                "to compare with: **not determined**."
            )
            continue
        means = ", ".join(
            f"lr {x:g}: {v:.4f}" if v is not None else f"lr {x:g}: diverged"
            for x, v in zip(t.lrs, t.mean_val_loss)
        )
        w = t.within_one_step
        verdict = (
            "yes"
            if w
            else "no"
            if w is False
            else "not determined (the size's own optimum is at the edge of the re-sweep, so it "
            "may lie further out)"
        )
        lines.append(
            f"- {mode}: transferred lr {t.transferred_lr:g}; re-sweep at {t.size} "
            f"(seeds {list(t.seeds)}) gives {means}; own optimum {t.own_optimum:g} "
            f"({t.steps_from_transferred:+d} grid steps). Transferred lr within one grid step "
            f"of the size's own optimum: **{verdict}**."
        )
    return [*lines, ""]
