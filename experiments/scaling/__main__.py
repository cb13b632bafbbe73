"""The scaling study: standard vs myopic transformers across sizes, muP-tuned, with fitted laws.

    python -m experiments.scaling                      # cpu preset: 5 sizes x 2 modes, ~13 min idle
    python -m experiments.scaling --preset smoke       # plumbing check, 1-2 minutes
    python -m experiments.scaling --preset gpt2 --dry-run   # GPT-2 plan: params, tokens, FLOPs
    python -m experiments.scaling --preset cpu-isoflop --dry-run   # isoFLOP design, projected hours
    python -m experiments.scaling --modes standard,myopic,myopic_kv --out runs/scaling-all
    python -m experiments.scaling --from-json results/scaling-cpu.json --publish   # redraw pages

Per mode: a muP learning-rate sweep on the base-width proxy, then every size at the best lr,
the same seed, data order and held-out sequences; then L(N) = E + A·N^-alpha fits with paired
bootstrap intervals, the myopic - standard gap per size, its trend, and extrapolations to the
GPT-2 sizes. Artifacts in --out: report.md, results.json, PNG plots, and runs/MODE/RUN/ (an orbax
checkpoint per trained model, restorable with myojax.checkpoint.restore). Protocol and schema:
docs/scaling.md.

Rerunning the same command skips finished runs and resumes an interrupted one from its last
checkpoint; with nothing new to do it changes nothing. Ctrl-C / SIGTERM checkpoint the current
run and exit (code 130 / 143); a run whose loss becomes NaN/Inf is recorded as diverged and the
study goes on. Only JAX process 0 writes study files.

--from-json FILE runs nothing: it redraws the report and plots of saved results (a study's
results.json) into --out and, with --publish, into the repository.

Not yet supported (an error, not a silent fallback): gs:// --out paths. The trainer writes its
run directory with local file I/O; use a local disk or a gcsfuse mount of the bucket.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from experiments import epilogue
from experiments.scaling import (
    isoflop,
    isoflop_command,
    isoflop_record,
    pods,
    publishing,
    records,
)
from experiments.scaling.plan import DEFAULT_MFU, DEFAULT_PEAK_TFLOPS, plan_lines
from experiments.scaling.protocol import STUDY_PRESETS, StudyPreset
from myojax import cli
from myojax.config import ATTENTION_IMPLS, GRADIENT_MODES
from myojax.orbax_noise import quiet_failed_saves
from myojax.provenance import command_line
from myojax.sharding.distributed import fail_everywhere
from myojax.train.track import TRACKERS

PROG = "python -m experiments.scaling"
PUBLISHED = (
    "the report (results/scaling.md; other presets results/scaling-PRESET.md), the results "
    "(results/scaling-PRESET.json), the plots (docs/figures/scaling/, other presets a PRESET "
    "subfolder) and, for cpu and cpu-large, the README's answer"
)


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in GRADIENT_MODES]
    if not modes or bad or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(
            f"--modes must be distinct comma-separated modes from {GRADIENT_MODES}, got {text!r}"
        )
    return modes


def _progress(text: str) -> bool | None:
    """``--progress BOOL`` as the trainer spells it; the study's earlier auto/on/off (in the
    command lines its results record) still mean the same."""
    earlier = {"auto": None, "on": True, "off": False}
    return earlier[text.lower()] if text.lower() in earlier else cli.parse_bool(text)


def _add_study_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the study")
    g.add_argument(
        "--preset",
        choices=[*STUDY_PRESETS, *isoflop.PRESETS],
        default="cpu",
        help="model ladder and training protocol (default: cpu)",
    )
    g.add_argument(
        "--modes",
        type=_modes,
        default=("standard", "myopic"),
        help="comma-separated gradient modes (default: standard,myopic; myopic_kv available); "
        "the gap is reported against standard",
    )
    g.add_argument(
        "--out",
        default=None,
        help="study directory (default: runs/scaling-PRESET); local paths only",
    )
    g.add_argument(
        "--data",
        default=None,
        help="'shakespeare' (embedded bytes; default for cpu/smoke) or a directory of token "
        "shards (required for gpt2)",
    )
    g.add_argument(
        "--mesh",
        default=None,
        help="device mesh for every run, e.g. 'fsdp=-1' or 'data=2,fsdp=4' (passed to "
        "myojax.train as TrainConfig.mesh; default: the trainer's)",
    )
    g.add_argument(
        "--attention-impl",
        choices=ATTENTION_IMPLS,
        default=None,
        help="ModelConfig.attention_impl of every run (default: the preset's, the fast path); "
        "a study never mixes implementations: continuing one trained with another is refused",
    )
    g.add_argument(
        "--share",
        action="store_true",
        help="isoFLOP presets: run this same command in several processes (or jobs on machines "
        "sharing --out's filesystem) to train the design's runs in parallel; each claims a run, "
        "passes over runs others hold, and the last to finish writes the analysis",
    )
    g.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: analyse and report the runs finished so far (a partial study's "
        "report says how many of the planned runs it rests on)",
    )
    g.add_argument(
        "--rerender",
        action="store_true",
        help="recompute fits, plots and report from the finished runs even when no run changed",
    )
    g.add_argument(
        "--n-boot", type=int, default=None, help="bootstrap replicates (default: the preset's)"
    )
    g.add_argument(
        "--progress",
        type=_progress,
        default=None,
        metavar="BOOL",
        help="progress bars (default: only on a terminal; otherwise log lines)",
    )
    g.add_argument(
        "--tracker",
        choices=TRACKERS,
        default=None,
        help="every run also logs to TensorBoard or W&B offline, tagged with its mode, size, "
        "seed and budget (`tensorboard --logdir OUT` shows them side by side); default: "
        "tensorboard when tensorboardX is installed, else none",
    )
    g.add_argument(
        "--status",
        action="store_true",
        help="print runs done / total, elapsed and ETA of the study in --out (running here or "
        "elsewhere) and exit; reads its files only",
    )


def _add_plan_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the plan (--dry-run)")
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (models, parameters, tokens, FLOPs, accelerator-hours) and run "
        "nothing",
    )
    g.add_argument(
        "--mfu",
        type=float,
        default=DEFAULT_MFU,
        help=f"model FLOPs utilization assumed by --dry-run (default {DEFAULT_MFU})",
    )
    g.add_argument(
        "--peak-tflops",
        type=float,
        default=DEFAULT_PEAK_TFLOPS,
        help="peak dense TFLOP/s per accelerator assumed by --dry-run (default "
        f"{DEFAULT_PEAK_TFLOPS:g}: TPU v4 bf16)",
    )
    g.add_argument(
        "--accelerator",
        choices=list(pods.ACCELERATORS),
        default=None,
        help="with --dry-run: per run, the mesh, microbatches, remat, planned memory per device "
        "and hours on this slice or node (its own peak replaces --peak-tflops there)",
    )


def build_parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name}: {p.description}" for name, p in STUDY_PRESETS.items())
    p = cli.parser(PROG, __doc__, epilog="presets:\n" + presets)
    _add_study_flags(p)
    _add_plan_flags(p)
    epilogue.add_flags(p, PUBLISHED + " (after the study: finished runs are skipped)")
    return p


def _preset(args: argparse.Namespace) -> StudyPreset:
    """The preset with --n-boot applied, once every flag is checked (one clear error)."""
    p = STUDY_PRESETS[args.preset]
    if (args.out or "").startswith("gs://") and not args.dry_run:
        raise cli.UsageError(
            "gs:// --out is not supported yet: the trainer writes run directories with local "
            "file I/O. Use a local disk or mount the bucket (gcsfuse) and pass its path"
        )
    if args.mesh is not None:
        from myojax.sharding import MeshConfig

        MeshConfig.parse(args.mesh)  # a ValueError names the bad axis
    if not 0 < args.mfu <= 1 or not args.peak_tflops > 0:
        raise cli.UsageError("--mfu must be in (0, 1] and --peak-tflops > 0")
    if args.n_boot is not None and args.n_boot < 10:
        raise cli.UsageError("--n-boot must be >= 10")
    if p.name == "gpt2" and not args.dry_run and not args.data:
        raise cli.UsageError(
            "--preset gpt2 needs --data DIR (GPT-2 BPE token shards, see "
            "`python -m myojax.data.prepare`)"
        )
    if args.attention_impl is not None:
        p = dataclasses.replace(p, attention_impl=args.attention_impl)
    return p if args.n_boot is None else dataclasses.replace(p, n_boot=args.n_boot)


def _written(paths: Sequence[Path]) -> str:
    pages = [str(p) for p in paths if p.suffix != ".png"]
    plots = sum(p.suffix == ".png" for p in paths)
    return ", ".join(pages) + (f" and {plots} plots" if plots else "")


def _from_json(args: argparse.Namespace) -> int:
    """Redraw the pages of saved results: into --out, and with --publish the repository's."""
    if args.dry_run or args.report_only or args.rerender:
        raise cli.UsageError("--from-json runs nothing: no --dry-run, --report-only, --rerender")
    doc = epilogue.load(args.from_json)
    if isoflop_record.is_isoflop(doc):  # an isoFLOP study's record: its own page
        return isoflop_command.from_json(args, doc)
    if args.out is None and not args.publish:
        raise cli.UsageError("--from-json needs --out DIR, --publish or both")
    results = records.results_from_json(doc)
    written = publishing.write(results, Path(args.out)) if args.out else []
    written += publishing.publish(results, Path.cwd()) if args.publish else []
    print(f"wrote {_written(written)} from {args.from_json}")
    return 0


def _dry_run(args: argparse.Namespace, p: StudyPreset, out: str, data: str | None) -> int:
    where = f"out {out}, data {data or '(none given)'}"
    where += f", mesh {args.mesh}" if args.mesh else ""
    lines = plan_lines(p, args.modes, where=where, peak_tflops=args.peak_tflops, mfu=args.mfu)
    print("\n".join(lines))
    if args.accelerator:
        pods.print_pod_plan(p, args.modes, args.accelerator, args.mfu)
    return 0


def _status(p: StudyPreset, modes: Sequence[str], out: Path) -> int:
    from experiments.scaling import watch

    if not (out / "runs").is_dir():
        raise cli.UsageError(f"{out} holds no study runs (no {out / 'runs'} directory)")
    print(f"{out}: {watch.study_status(p, modes, out).line()}")
    return 0


def _study(
    args: argparse.Namespace, p: StudyPreset, out: Path, data: str, command: str, debug: bool
) -> int:
    from experiments.scaling import study

    options = study.Options(
        out,
        data,
        args.mesh,
        not args.report_only,
        args.rerender,
        args.publish,
        args.progress,
        args.tracker,
    )
    t0 = time.perf_counter()
    # As the trainer's command: orbax's copies of a failed background save (a full disk) are
    # dropped, so the fault is the one `error:` line (--debug keeps them).
    with contextlib.nullcontext() if debug else quiet_failed_saves():
        try:
            outcome = study.run(p, args.modes, options, command)
        except Exception as e:  # on a pod: end every process now, naming this one
            if debug:
                traceback.print_exc()
            fail_everywhere(f"error: {cli.describe(e)}", 1)
            raise
    if outcome.signum is not None:
        print(
            f"stopped by {signal.Signals(outcome.signum).name}: finished runs are saved and the "
            "current run is checkpointed; rerun the same command to resume",
            file=sys.stderr,
            flush=True,
        )
        return 128 + outcome.signum
    if outcome.nothing_new:
        print(f"nothing new: every run was already finished and {out}/results.json is up to date")
    elif outcome.results is not None:
        print(f"wrote {_written(outcome.written)} ({time.perf_counter() - t0:.0f}s)")
        if answer := outcome.results.analysis.answer:
            print(answer.text, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.from_json:
        return _from_json(args)
    if args.share and args.preset not in isoflop.PRESETS:
        raise cli.UsageError("--share runs an isoFLOP preset's design in several processes")
    if args.preset in isoflop.PRESETS:  # the isoFLOP design: its own plan, runs and analysis
        return isoflop_command.main(args, command_line(PROG, argv))
    p = _preset(args)
    out = args.out or f"runs/scaling-{p.name}"
    if args.status:
        return _status(p, args.modes, Path(out))
    data = args.data or p.data or None
    if args.dry_run:
        return _dry_run(args, p, out, data)
    command = command_line(PROG, argv)
    return _study(args, p, Path(out), data, command, cli.debug_requested(argv))


if __name__ == "__main__":
    sys.exit(cli.run(main))
