"""The isoFLOP study's page, plots and README section, from its JSON alone (so ``--publish``
and a redraw from the JSON write the same bytes): the answer sentence first, the per-budget
table, the fitted forms, and how this answer relates to the fixed-ratio ladders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import epilogue

RELATION = (
    "The cpu and cpu-large studies train every size at one fixed tokens-per-parameter ratio "
    "(7.5 and 20), so they compare the modes along one line through (N, D); this study lets "
    "each mode pick its best size at every compute budget, so m(C) is the compute-optimal "
    "comparison that those ladders approximate."
)


def render(doc: dict[str, Any], prefix: str) -> str:
    rows = [
        "| C (FLOPs) | L* standard | L* myopic | N* standard | N* myopic | m(C) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in doc["analysis"]["budgets"]:
        lo, n, m = b["loss_opt"], b["n_opt"], b["multiplier"]
        notes = [k for k, v in b["at_edge"].items() if v]
        note = (f"edge minimum: {', '.join(notes)}; " if notes else "") + (
            "extrapolated" if b["extrapolated"] else ""
        )
        rows.append(
            f"| {b['budget']:.3g} | {lo['standard']['point']:.4f} | {lo['myopic']['point']:.4f} "
            f"| {n['standard']['point']:.3g} | {n['myopic']['point']:.3g} | {m['point']:.3g} "
            f"[{m['lo']:.3g}, {m['hi']:.3g}] | {note} |"
        )
    figure = f"![isoFLOP profiles, frontiers and m(C)]({prefix}{doc['preset']}-isoflop.png)"
    return (
        "\n\n".join(
            [
                f"# isoFLOP study ({doc['preset']})",
                *doc["report"],
                "\n".join(rows),
                figure,
                RELATION,
            ]
        )
        + "\n"
    )


def readme(doc: dict[str, Any]) -> str:
    return f"{doc['report'][0]}\n\n{RELATION} Details: results/scaling-{doc['preset']}.md."


def plot(doc: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    budgets = doc["analysis"]["budgets"]
    for mode, style in (("standard", "-o"), ("myopic", "--s")):
        for b in budgets:
            runs = [
                r
                for r in doc["runs"]
                if r["role"] == "size" and r["mode"] == mode and r["budget"] == b["budget"]
            ]
            sizes = sorted({r["non_embedding_params"] for r in runs})
            loss = [
                np.mean([r["test_loss"] for r in runs if r["non_embedding_params"] == n])
                for n in sizes
            ]
            ax[0].plot(sizes, loss, style, alpha=0.7)
        c = [b["budget"] for b in budgets]
        ax[1].plot(c, [b["loss_opt"][mode]["point"] for b in budgets], style, label=mode)
    c = np.array([b["budget"] for b in budgets])
    m = np.array([[b["multiplier"][k] for k in ("point", "lo", "hi")] for b in budgets])
    ax[2].plot(c, m[:, 0], "-o")
    ax[2].fill_between(c, m[:, 1], m[:, 2], alpha=0.3)
    ax[2].axhline(1.0, color="gray", lw=0.8)
    for a, title in zip(ax, ("profiles (test loss vs N)", "frontiers L*(C)", "m(C)"), strict=True):
        a.set_xscale("log")
        a.set_title(title)
    ax[1].legend()
    name = f"{doc['preset']}-isoflop.png"
    fig.tight_layout()
    fig.savefig(folder / name, dpi=100)
    plt.close(fig)
    return [name]


def page(preset: str) -> epilogue.Page:
    key = f"{preset} answer, written by python -m experiments.scaling --preset {preset} --publish"
    return epilogue.Page(
        f"scaling-{preset}.json",
        f"scaling-{preset}.md",
        render,
        plot,
        figures="docs/figures/scaling",
        readme=readme,
        readme_key=key,
        local_page="isoflop.md",
        local_json="isoflop.json",
    )
