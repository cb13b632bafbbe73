"""python -m experiments.self_training: train on self-generated text over generations.

Generation 0 trains on human text (the embedded Shakespeare, bytes). Generation k+1 trains a
fresh model on a pool of windows of which a fraction MIX was sampled from generation k (same
mode, seed and mix) and the rest is human text. For every model: loss on held-out human text
(held-out works), loss on its own samples, and the drift of its samples from held-out human
text (unigram/bigram KL, entropy, repetition and distinct-n rates).

Writes results.json, self_training.png and report.md to --out (plus every model's pool,
samples and record under --out/<mode>/seed<s>/...); --publish also writes
results/self_training.md, results/self_training.json and docs/figures/self_training.png (run
from the repository root). --quick runs a small grid (2 seeds, 4 generations, shorter
training) to check the pipeline; its numbers are not the published ones.

Exit status 2 on bad arguments; set MYOJAX_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from experiments.self_training.grid import GridConfig, run_grid
from experiments.self_training.report import plot, report
from myojax.analysis import sampling
from myojax.provenance import command_line, environment, run_record

PROG = "python -m experiments.self_training"
QUICK = dict(seeds=2, generations=4, steps=120, pool_windows=768, metric_rows=128)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    d = GridConfig()
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--out", default="runs/self_training", help="output directory (%(default)s)")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds ({d.seeds})")
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        help=f"generations including generation 0 ({d.generations})",
    )
    p.add_argument(
        "--mixes",
        type=_floats,
        default=None,
        help=f"fractions of sampled windows in the pool ({','.join(map(str, d.mixes))})",
    )
    p.add_argument(
        "--modes", default=None, help=f"gradient modes, comma-separated ({','.join(d.modes)})"
    )
    p.add_argument("--steps", type=int, default=None, help=f"steps per model ({d.steps})")
    p.add_argument(
        "--pool-windows",
        type=int,
        default=None,
        help=f"windows in each generation's training pool ({d.pool_windows})",
    )
    p.add_argument("--quick", action="store_true", help=f"a small grid: {QUICK}")
    p.add_argument(
        "--report-from",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="train nothing: rewrite the plot and report (and with --publish the results page) "
        "from a results.json, or from the results.partial.json an interrupted run left",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="also write results/self_training.{md,json} and docs/figures/self_training.png",
    )
    return p


def _config(args: argparse.Namespace) -> GridConfig:
    fields = dict(QUICK) if args.quick else {}
    for name in ("seeds", "generations", "mixes", "steps", "pool_windows"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.modes is not None:
        fields["modes"] = tuple(args.modes.split(","))
    return GridConfig(**fields)


def main(argv: Sequence[str] | None = None, *, config: GridConfig | None = None) -> int:
    """The command line; ``config`` replaces the grid the flags describe (the tests' tiny
    grid)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _parser()
    args = p.parse_args(argv)
    try:
        cfg = _config(args) if config is None else config
    except (TypeError, ValueError) as e:
        if os.environ.get("MYOJAX_DEBUG"):
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_from is not None:
        try:
            results = json.loads(args.report_from.read_text())
            results["meta"]
        except (OSError, json.JSONDecodeError, KeyError) as e:
            print(
                f"{PROG}: error: cannot read results from {args.report_from}: {e}", file=sys.stderr
            )
            return 2
        now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results["meta"]["page_rewritten"] = f"`{command_line(PROG, argv)}` on {now}"
    else:
        load_before = os.getloadavg()
        t0, c0 = time.perf_counter(), time.process_time()

        def meta() -> dict:
            rec = run_record(PROG, argv, time.perf_counter() - t0, load_before)
            return rec | {
                "cpu_s": time.process_time() - c0,
                "environment": environment(),
                # which sampler produced the text (myojax/analysis/sampling.py, by content)
                "sampler_sha256": hashlib.sha256(Path(sampling.__file__).read_bytes()).hexdigest(),
            }

        results = run_grid(cfg, out, meta=meta)
        results["meta"] = meta()
        (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "self_training.png")
    (out / "report.md").write_text(report(results, "self_training.png"))
    if args.publish:
        Path("docs/figures").mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "self_training.png", "docs/figures/self_training.png")
        Path("results/self_training.json").write_text(json.dumps(results, indent=1))
        Path("results/self_training.md").write_text(
            report(results, "../docs/figures/self_training.png")
        )
    m = results["meta"]
    print(f"wall {m['wall_s']:.1f} s, CPU {m['cpu_s']:.1f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
