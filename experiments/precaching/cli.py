"""Pre-caching experiments: do standard models compute, at position s, features that only later
positions need — and do myopic models not?

    python -m experiments.precaching --task sine [--full] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task facts [--quick] [--seeds N] [--steps N] [--out DIR]
    python -m experiments.precaching --task map  [--quick] [--seeds N] [--steps N] [--out DIR]

``--task sine`` (``experiments.precaching.sine``): Wu, Morris & Levine (2024)'s lagged-sine task
in a reduced configuration that small CPU models learn (``--full``: the published one, for an
accelerator), gradient modes standard / myopic / myopic_kv at p ∈ {0, 0.1, 0.3, 1}, ridge probes
of sin(k·x_(n−i)) from every layer, and breadcrumbs: the gradient mode switched mid-training.
``--task facts`` (``experiments.precaching.facts``): synthetic facts, the ROME pattern — where a
stored attribute of an entity becomes decodable (its token, filler, the query), per layer.
``--task map`` (``experiments.precaching.map``): the lagged random-map token task at two sizes.
Each task writes precaching_<task>.json, .png and .md (the results section) to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.precaching import facts, sine
from experiments.precaching import map as map_task
from myojax.config import GRADIENT_MODES

TASKS = ("sine", "facts", "map")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.precaching",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--task", choices=TASKS, default="sine", help="which experiment")
    p.add_argument("--out", default="runs/precaching", help="output directory")
    p.add_argument("--steps", type=int, help="training steps per run (default: the task's)")
    p.add_argument("--seeds", type=int, help="seeds per configuration (default 3)")
    p.add_argument("--modes", help="comma-separated gradient modes (default: the task's)")
    p.add_argument("--full", action="store_true", help="sine: the published configuration")
    p.add_argument("--quick", action="store_true", help="1 seed, few steps: a smoke run")
    p.add_argument("--workers", type=int, default=2, help="sine, map: runs trained concurrently")
    p.add_argument(
        "--from-json",
        metavar="FILE",
        help="rewrite the task's plots and markdown from its saved precaching_<task>.json "
        "(no training)",
    )
    p.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    return p


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    changes: dict[str, object] = {}
    for name in ("steps", "seeds"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}")
            changes[name] = value
    if args.modes:
        modes = tuple(args.modes.split(","))
        bad = [m for m in modes if m not in GRADIENT_MODES]
        if bad:
            raise ValueError(f"unknown gradient_mode(s) {bad}; known: {list(GRADIENT_MODES)}")
        changes["modes"] = modes
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = "python -m experiments.precaching " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    show = sys.stderr.isatty()
    try:
        changes = _overrides(args)
        if args.from_json:
            import json

            path = Path(args.from_json)
            if not path.is_file():
                raise ValueError(f"--from-json: no such file {path}")
            module = {"sine": sine, "facts": facts, "map": map_task}[args.task]
            results = json.loads(path.read_text())
            module.render(results, Path(args.out))
            print(module.report(results))
        elif args.task == "sine":
            settings = sine.SineSettings.full() if args.full else sine.SineSettings()
            if args.quick:
                settings = dataclasses.replace(
                    settings, seeds=1, steps=60, ps=(0.3,), probe_sequences=32, eval_sequences=64
                )
            settings = dataclasses.replace(settings, **changes)
            if args.workers < 1:
                raise ValueError(f"--workers must be >= 1, got {args.workers}")
            results = sine.run_all(
                settings, Path(args.out), command=command, show=show, workers=args.workers
            )
            print(sine.report(results))
        elif args.full:
            raise ValueError("--full applies to --task sine only")
        elif args.task == "facts":
            settings = facts.FactsSettings()
            if args.quick:
                settings = dataclasses.replace(settings, seeds=1, steps=100, probe_sequences=64)
            settings = dataclasses.replace(settings, **changes)
            results = facts.run_all(settings, Path(args.out), command=command, show=show)
            print(facts.report(results))
        else:
            settings = map_task.Settings()
            if args.quick:
                settings = dataclasses.replace(settings, seeds=1, steps=300, probe_sequences=48)
            settings = dataclasses.replace(settings, **changes)
            results = map_task.run(
                settings, Path(args.out), show=show, command=command, workers=args.workers
            )
            print(map_task.report(results))
    except (ValueError, FloatingPointError) as err:
        if args.debug or os.environ.get("MYOJAX_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
