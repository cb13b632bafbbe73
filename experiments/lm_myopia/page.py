"""The generated page (``results/lm_myopia.md``): every number from ``LmMyopiaResults``."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments import epilogue
from experiments.lm_myopia import claims, plots
from experiments.lm_myopia.records import LmMyopiaResults, from_json
from myojax.bootstrap import mean_t_interval
from myojax.provenance import load_summary

PROG = "python -m experiments.lm_myopia"
FUTURE_PAPERS = (
    "Wu, Morris & Levine (2024, *Do language models plan ahead for future tokens?*, code "
    "FutureGPT2) trained GPT-2-style models myopically on natural language and read the "
    "results as breadcrumbs at small scale, with pre-caching growing with scale; Pal et al. "
    "(2023, *Future Lens*) decoded tokens two and more positions ahead from single GPT-J-6B "
    "hidden states. Here the same question is asked of byte-level models 3-4 orders of "
    "magnitude smaller, with the myopic twin of every model as the control those probes lack."
)


def name(preset: str) -> str:
    """``lm_myopia`` for the cpu study, ``lm_myopia-PRESET`` for another preset."""
    return "lm_myopia" if preset == "cpu" else f"lm_myopia-{preset}"


def _sacrifice_section(r: LmMyopiaResults) -> list[str]:
    lines = [
        "## 1. Sacrifice: where does myopic predict the next token better?",
        "",
        "Gap = myopic − standard test loss (nats per token; negative: myopic better), paired by "
        "seed and test sequence. Fraction better: the share of predicted tokens whose loss is "
        "lower under the myopic model.",
        "",
        "| size | N | gap, all positions | gap at t = 0 | positions where myopic is better "
        "| fraction of tokens myopic predicts better |",
        "|---|---|---|---|---|---|",
    ]
    where = claims.better_positions(r)
    for s in r.sacrifice:
        ts = where[s.size]
        lines.append(
            f"| {s.size} | {s.params:,} | {claims.ci(s.gap)} | {claims.ci(s.gap_by_position[0])} "
            f"| {', '.join(map(str, ts)) or '—'} | {claims.ci(s.fraction_better, 3, False)} |"
        )
    names = [c.name for c in r.sacrifice[0].by_class]
    lines += [
        "",
        f"By {r.class_kind} (share of tokens): gap, and fraction myopic predicts better.",
        "",
        "| class | " + " | ".join(s.size for s in r.sacrifice) + " |",
        "|---|" + "---|" * len(r.sacrifice),
    ]
    for j, cname in enumerate(names):
        cells = []
        for s in r.sacrifice:
            c = s.by_class[j]
            cells.append(f"{claims.ci(c.gap, 3)}; {c.fraction_better.point:.3f}")
        lines.append(
            f"| {cname} ({r.sacrifice[0].by_class[j].share:.1%}) | " + " | ".join(cells) + " |"
        )
    t = r.trends
    lines += [
        "",
        "Trends over sizes (slope per decade of non-embedding parameters): gap at t = 0 "
        f"{claims.ci(t.gap_first_position)} (its mean over the sizes "
        f"{claims.ci(t.gap_first_position_pooled)}); gap at t ≥ 1 {claims.ci(t.gap_rest)}; "
        "fraction "
        f"better {claims.ci(t.fraction_better, 3)}.",
        "",
        f"![sacrifice map]({{prefix}}{plots.SACRIFICE})",
        "",
    ]
    return lines


def _probe_section(r: LmMyopiaResults) -> list[str]:
    k_max = len(r.probes[0].chance)
    ks = range(1, k_max + 1)
    chance = np.mean([p.chance for p in r.probes], axis=0)
    lines = [
        f"## 2. Future-token probes: the token at s + k from the stream at s, k = 1…{k_max}",
        "",
        "Held-out accuracy of linear probes (ridge onto the byte's identity, penalty by 5-fold "
        "cross-validation over the probe's training sequences, scored on held-out sequences) "
        "from the residual stream after the last layer; mean ± 95% t-interval over seeds. "
        "Embedding: the same probe from the embedding (the current token alone). Chance "
        "(majority byte) per k: " + " / ".join(f"{c:.3f}" for c in chance) + ".",
        "",
        "| size | mode | " + " | ".join(f"k = {k}" for k in ks) + " | shuffled control, max |",
        "|---|---|" + "---|" * (k_max + 1),
    ]
    for size in r.sizes:
        for mode in ("standard", "myopic", "embedding"):
            site, m = (0, "standard") if mode == "embedding" else (-1, mode)
            rows = [p for p in r.probes if p.size == size and p.mode == m]
            cells = [
                "{:.3f} ± {:.3f}".format(*mean_t_interval([p.accuracy[site][k] for p in rows]))
                for k in range(k_max)
            ]
            control = max(max(p.control[site]) for p in rows)
            lines.append(f"| {size} | {mode} | " + " | ".join(cells) + f" | {control:.3f} |")
    lines += [
        "",
        "Standard − myopic at the last layer, paired by seed (mean ± 95% t-interval):",
        "",
        "| size | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "|---|" + "---|" * k_max,
    ]
    for size in r.sizes:
        gaps = claims.probe_gaps(r, size)
        lines.append(f"| {size} | " + " | ".join(f"{m:+.3f} ± {h:.3f}" for m, h in gaps) + " |")
    lines += ["", FUTURE_PAPERS, "", f"![probes]({{prefix}}{plots.PROBES})", ""]
    return lines


def _switch_section(r: LmMyopiaResults) -> list[str]:
    sw = r.switch
    if sw is None:
        return []
    lines = [
        "## 3. Breadcrumbs vs pre-caching: the gradient mode switched halfway",
        "",
        f"{sw.size}: each seed's standard (myopic) run retrained exactly as the study trained it "
        f"(same initialisation, data order, optimizer and schedule) with the mode switched to "
        f"myopic (standard) at step {sw.switch_step} of {sw.steps}; the unswitched arms are the "
        "study's own runs. Test loss with the study's crossed interval.",
        "",
        "| arm | test loss [95% CI] | per seed |",
        "|---|---|---|",
    ]
    for a in sw.arms:
        per_seed = ", ".join(f"{x:.4f}" for x in a.per_seed)
        lines.append(f"| {a.name} | {claims.ci(a.loss, 4, False)} | {per_seed} |")
    lines += ["", claims.switch_claim(r), ""]
    return lines


def render(obj: dict[str, Any], prefix: str = "") -> str:
    r = from_json(obj)
    lines = [
        f"# The seed's claims on the study's language models ({r.preset} study)",
        "",
        f"Command: `{r.command}`; wall {r.wall_s:.0f} s, process CPU {r.cpu_s:.0f} s"
        + (f" (the mode switch's training {r.switch.cpu_s:.0f} s of it)" if r.switch else "")
        + f"; {load_summary(r.environment_end, r.environment_start)}.",
        "",
        f"Study: `{r.study}` — {r.description}. Sizes {', '.join(r.sizes)}; seeds "
        f"{', '.join(map(str, r.seeds))}; {r.sequences} test windows of {r.positions} predicted "
        f"tokens (the study's own). Intervals: the study's crossed bootstrap over seeds and "
        f"sequences ({r.n_boot} resamples per level, Student-t), unless a table says otherwise.",
        "",
        "## What the measurements show",
        "",
        claims.sacrifice_claim(r),
        "",
        claims.probe_claim(r),
        "",
        claims.switch_claim(r),
        "",
        claims.cost_claim(r),
        "",
    ]
    lines += _sacrifice_section(r) + _probe_section(r) + _switch_section(r)
    return "\n".join(lines).replace("{prefix}", prefix)


def readme(obj: dict[str, Any]) -> str:
    r = from_json(obj)
    return claims.readme_paragraph(r, f"results/{name(r.preset)}.md")


def page_for(preset: str) -> epilogue.Page:
    """The page of a study of ``preset``; the cpu study's also writes the README section."""
    stem = name(preset)
    return epilogue.Page(
        f"{stem}.json",
        f"{stem}.md",
        render,
        plots.plot,
        figures=f"docs/figures/{stem}",
        readme=readme if preset == "cpu" else None,
        readme_key=f"lm myopia, written by {PROG} --study runs/scaling-cpu --publish"
        if preset == "cpu"
        else None,
        local_page=f"{stem}.md",
        local_json=f"{stem}.json",
    )
