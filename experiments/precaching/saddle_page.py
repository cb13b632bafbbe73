"""The saddle experiment's records and page (``experiments.precaching.saddle``): a table per
task of every arm's held-out accuracy, attention on the source and pre-caching margin with
intervals over seeds, the training curves, and the verdict the numbers support."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from experiments import epilogue
from myojax.bootstrap import mean_t_interval
from myojax.provenance import load_summary

FIGURE = "precaching_saddle.png"
LEARNED = 0.9  # held-out accuracy from which a run counts as having learnt its task
NO_PRECACHE = 0.10  # a pre-caching margin below this is no more than an arbitrary function's
# The arms the verdict reads (experiments.precaching.saddle names every arm)
STANDARD, SCRATCH, CURRICULUM = "standard", "myopic", "myopic after a myopic copy stage"


@dataclasses.dataclass(frozen=True)
class ArmRun:
    """One arm, one seed: the final model's held-out score and what it computes where."""

    task: str
    arm: str
    seed: int
    loss: float
    accuracy: float
    attention: tuple[float, ...]  # per layer: attention on the source, most attentive head
    precache_future: tuple[float, ...]  # per site: probe of the future-useful feature
    precache_unused: tuple[float, ...]  # per site: probe of an unused function (control)
    chance: float
    curve: tuple[float, ...]  # training loss, mean per 50 steps
    pretrain_accuracy: float | None  # the copy stage's held-out accuracy (curriculum arm)
    wall_s: float
    cpu_s: float

    @property
    def learned(self) -> bool:
        return self.accuracy >= LEARNED

    @property
    def precache_margin(self) -> float:
        return float(np.max(np.subtract(self.precache_future, self.precache_unused)))


@dataclasses.dataclass(frozen=True)
class SaddleResults:
    settings: dict[str, Any]
    command: str
    wall_s: float
    cpu_s: float
    environment_start: dict[str, Any]
    environment: dict[str, Any]
    runs_planned: int
    runs: tuple[ArmRun, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SaddleResults:
        tuples = lambda d: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        runs = tuple(ArmRun(**tuples(r)) for r in obj["runs"])
        return cls(**{**obj, "runs": runs})

    def arms(self, task: str) -> list[str]:
        return list(dict.fromkeys(r.arm for r in self.runs if r.task == task))

    def of(self, task: str, arm: str) -> list[ArmRun]:
        return [r for r in self.runs if r.task == task and r.arm == arm]


def _ci(values: list[float], digits: int = 3) -> str:
    mean, half = mean_t_interval(values)
    return f"{mean:.{digits}f} ± {half:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _row(arm: str, rows: list[ArmRun]) -> str:
    attention = [max(r.attention) for r in rows]
    pre = [r.pretrain_accuracy for r in rows if r.pretrain_accuracy is not None]
    return (
        f"| {arm} | {sum(r.learned for r in rows)} of {len(rows)} "
        f"| {_ci([r.accuracy for r in rows])} | {', '.join(f'{r.accuracy:.3f}' for r in rows)} "
        f"| {_ci([r.loss for r in rows])} | {_ci(attention, 2)} "
        f"| {_ci([r.precache_margin for r in rows], 2)} "
        f"| {_ci(pre) if pre else '—'} |"
    )


def _mean(rows: list[ArmRun], field: str) -> float:
    return float(np.mean([getattr(r, field) for r in rows])) if rows else float("nan")


def verdict(results: SaddleResults, task: str) -> str:
    """Which explanation the arms support, from the counts of seeds that learnt, then what the
    longer run and the switch add."""
    scratch, curriculum = results.of(task, SCRATCH), results.of(task, CURRICULUM)
    standard = results.of(task, STANDARD)
    if not (scratch and curriculum and standard):
        return "Not enough arms finished for a verdict."
    n, learnt = len(curriculum), sum(r.learned for r in curriculum)
    margin, std_margin = _mean(curriculum, "precache_margin"), _mean(standard, "precache_margin")
    facts = (
        f"myopic from scratch learnt in {sum(r.learned for r in scratch)} of {len(scratch)} "
        f"seeds; the copy variant (the curriculum's first stage) in "
        f"{sum((r.pretrain_accuracy or 0) >= LEARNED for r in curriculum)} of {n}; myopic "
        f"started from the copy-trained model in {learnt} of {n} (pre-caching margin "
        f"{margin:.2f}, standard {std_margin:.2f})"
    )
    if learnt == n and margin < NO_PRECACHE:
        head = (
            f"**The saddle.** {facts}. A myopic model learns the task once attention to the "
            "source is in place, and it does so without pre-caching: it looks the answer up at "
            "the answering position. Myopic training can represent and reach the solution; "
            "from scratch it stalls near the constant prediction, which is an optimisation "
            "saddle, not an inability to pre-cache."
        )
    elif learnt == n:
        head = (
            f"**Undecided.** {facts}. The curriculum model learns, but its source position holds "
            "the answer beyond an arbitrary function of the token, so it may not be the lookup "
            "at the answering position that the saddle explanation predicts."
        )
    elif learnt == 0:
        head = (
            f"**Not the saddle.** {facts}. Even with attention to the source in place, myopic "
            "training does not learn the task: consistent with the reading that the task, at "
            "this size and budget, needs the answer computed at the source (pre-caching)."
        )
    else:
        head = f"**Undecided.** {facts}: the seeds disagree, so neither explanation is shown."
    return " ".join([head, *_supporting(results, task, scratch)])


def _supporting(results: SaddleResults, task: str, scratch: list[ArmRun]) -> list[str]:
    """What the longer myopic run and the standard -> myopic switch add, where they ran."""
    out = []
    attention = lambda rows: float(np.mean([max(r.attention) for r in rows]))
    for arm in results.arms(task):
        rows = results.of(task, arm)
        if arm.startswith("myopic, ") and arm.endswith("x steps"):
            moved = _mean(rows, "accuracy") - _mean(scratch, "accuracy")
            out.append(
                f"Trained {arm.split(', ')[1].split('x')[0]}x longer from scratch, myopic reaches "
                f"accuracy {_mean(rows, 'accuracy'):.3f} (from {_mean(scratch, 'accuracy'):.3f}) "
                f"with attention on the source {attention(rows):.2f} (from "
                f"{attention(scratch):.2f}): "
                + ("it leaves the plateau, slowly." if moved > 0.2 else "still on the plateau.")
            )
        if arm == "standard -> myopic":
            out.append(
                f"Switched standard -> myopic halfway: accuracy {_mean(rows, 'accuracy'):.3f}, "
                f"pre-caching margin {_mean(rows, 'precache_margin'):.2f} at the end."
            )
    return out


def task_section(results: SaddleResults, task: str, title: str) -> list[str]:
    lines = [
        f"## {title}",
        "",
        "| arm | seeds learnt (accuracy ≥ 0.9) | held-out accuracy | per seed | held-out loss "
        "| attention on the source (best head, best layer) | pre-caching margin "
        "| copy stage accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(arm, results.of(task, arm)) for arm in results.arms(task)]
    chance = results.of(task, results.arms(task)[0])[0].chance
    lines += ["", f"Chance accuracy {chance:.2f}.", "", verdict(results, task), ""]
    return lines


TITLES = {"map": "The lagged random map", "facts": "Synthetic facts"}


def report(obj: dict[str, Any], figure_prefix: str = "") -> str:
    results = SaddleResults.from_json(obj)
    s, env = results.settings, results.environment
    lines = [
        "# Why myopic models fail the synthetic tasks: pre-caching or a saddle?",
        "",
        f"Command: `{results.command}`; wall {results.wall_s:.0f} s, process CPU "
        f"{results.cpu_s:.0f} s; {load_summary(env, results.environment_start)}. "
        f"Runs finished: {len(results.runs)} of {results.runs_planned}.",
        "",
        f"GPT d_model {s['d_model']} (unless the arm says otherwise), {s['n_layers']} layers, "
        f"{s['n_heads']} heads, batch {s['batch_size']}, lr {s['lr']} (warmup then cosine), "
        f"{s['steps']} steps (the pages' budget) unless the arm says otherwise, {s['seeds']} "
        "seeds; every arm of a seed sees the same task and data order. ± is a 95% t-interval "
        "over seeds. Attention on the source: the probability the answering position puts on "
        "the source position (map: t − lag; facts: the queried entity), mean over held-out "
        "sequences, for the most attentive head of the most attentive layer (a diffuse head "
        "gives about 1/position). Pre-caching margin: at the source position, the largest "
        "over sites (embedding, after each layer) of the probe accuracy for the feature only "
        "the later position needs (f(x_s); the entity's attribute) minus that for an unused "
        f"function of the same token; below {NO_PRECACHE} the source holds no more of it than "
        "of an arbitrary function. The curriculum arm's first stage trains myopically on the "
        "copy variant (target: the source token itself) for as many steps, then a fresh "
        "optimizer trains on the task.",
        "",
    ]
    for task in dict.fromkeys(r.task for r in results.runs):
        lines += task_section(results, task, TITLES.get(task, task))
    lines += [f"![training curves]({figure_prefix}{FIGURE})", ""]
    return "\n".join(lines)


def plot(obj: dict[str, Any], folder: Path) -> list[str]:
    """Training-loss curves, one panel per task, one line per arm (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = SaddleResults.from_json(obj)
    tasks = list(dict.fromkeys(r.task for r in results.runs))
    fig, axes = plt.subplots(
        1, max(1, len(tasks)), figsize=(6 * max(1, len(tasks)), 4), squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=False):
        for i, arm in enumerate(results.arms(task)):
            rows = results.of(task, arm)
            n = min(len(r.curve) for r in rows)
            curve = np.mean([r.curve[:n] for r in rows], axis=0)
            style = ("-", "--", "-.", ":")[i % 4]
            ax.plot(np.arange(n) * 50, curve, label=arm, lw=1.4, ls=style)
        ax.set(title=TITLES.get(task, task), xlabel="training step", yscale="log",
               ylabel="training loss, all positions (mean over seeds)")  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(folder) / FIGURE, dpi=110)
    plt.close(fig)
    return [FIGURE]


PAGE = epilogue.results_page("precaching_saddle", report, plot)
