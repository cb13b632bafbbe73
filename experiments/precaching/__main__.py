"""Pre-caching experiments: do standard models compute, at position s, features that only later
positions need — and do myopic models not?

    python -m experiments.precaching --task sine [--full] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task facts [--quick] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task map  [--quick] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task saddle [--quick] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task map --from-json results/precaching_map.json \\
        --out results                                  # redraw a page from its JSON

``--task sine`` (``experiments.precaching.sine``): Wu, Morris & Levine (2024)'s lagged-sine task
in a reduced configuration that small CPU models learn (``--full``: the published one, for an
accelerator), gradient modes standard / myopic / myopic_kv at p ∈ {0, 0.1, 0.3, 1}, ridge probes
of sin(k·x_(n−i)) from every layer, and breadcrumbs: the gradient mode switched mid-training.
``--task facts`` (``experiments.precaching.facts``): synthetic facts, the ROME pattern — where a
stored attribute of an entity becomes decodable (its token, filler, the query), per layer.
``--task map`` (``experiments.precaching.map``): the lagged random-map token task at two sizes.
``--task saddle`` (``experiments.precaching.saddle``): why myopic models fail map and facts —
longer training, width, a copy-task curriculum and the mode switch, against "cannot pre-cache".
Each task writes precaching_<task>.json, .png and .md (the results section) to --out.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.precaching import facts, saddle, sine
from experiments.precaching import map as map_task
from experiments.precaching.saddle_page import PAGE as SADDLE_PAGE
from experiments.precaching.sine_page import PAGE as SINE_PAGE
from myojax import cli
from myojax.config import GRADIENT_MODES
from myojax.provenance import command_line

PROG = "python -m experiments.precaching"
TASKS = ("sine", "facts", "map", "saddle")
PAGES = {"sine": SINE_PAGE, "facts": facts.PAGE, "map": map_task.PAGE, "saddle": SADDLE_PAGE}


def _parser():
    p = cli.parser(PROG, __doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--task", choices=TASKS, default="sine", help="which experiment")
    p.add_argument("--out", type=Path, default=Path("runs/precaching"), help="output directory")
    cli.add_config_flags(
        p,
        sine.SineSettings,
        only=("steps", "seeds", "modes"),
        title="training (defaults shown: sine's; facts and map have their own)",
    )
    p.add_argument("--full", action="store_true", help="sine: the published configuration")
    p.add_argument("--quick", action="store_true", help="1 seed, few steps: a smoke run")
    p.add_argument(
        "--workers", type=int, default=2, help="sine, map, saddle: runs trained concurrently"
    )
    epilogue.add_from_json_flag(p, "the task's saved precaching_<task>.json")
    return p


def _settings(args):
    """The task's settings: its defaults (sine: or the published ones), --quick, then flags."""
    if args.full and args.task != "sine":
        raise cli.UsageError("--full applies to --task sine only")
    base = {"sine": sine.SineSettings.full() if args.full else sine.SineSettings(),
            "facts": facts.FactsSettings(), "map": map_task.Settings(),
            "saddle": saddle.SaddleSettings()}[args.task]  # fmt: skip
    settings = cli.config_from_args(base.quick() if args.quick else base, args)
    for name in ("steps", "seeds"):
        if getattr(settings, name) < 1:
            raise cli.UsageError(f"--{name} must be >= 1, got {getattr(settings, name)}")
    bad = [m for m in settings.modes if m not in GRADIENT_MODES]
    if bad:
        raise cli.UsageError(f"unknown gradient_mode(s) {bad}; known: {list(GRADIENT_MODES)}")
    if args.workers < 1:
        raise cli.UsageError(f"--workers must be >= 1, got {args.workers}")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    page = PAGES[args.task]
    if args.from_json:
        results = epilogue.load(args.from_json)
        epilogue.finish(page, results, args.out, write_results=False)
        print(page.render(results, ""))
        return 0
    settings, command, show = _settings(args), command_line(PROG, argv), sys.stderr.isatty()
    if args.task == "sine":
        results = sine.run_all(settings, args.out, command=command, show=show, workers=args.workers)
    elif args.task == "facts":
        results = facts.run_all(settings, args.out, command=command, show=show)
    elif args.task == "saddle":
        results = saddle.run_all(settings, args.out, command=command, workers=args.workers)
    else:
        results = map_task.run(settings, args.out, show=show, command=command, workers=args.workers)
    print(page.render(results, ""))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
