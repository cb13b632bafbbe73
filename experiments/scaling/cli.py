"""The scaling study: standard vs myopic transformers across sizes, muP-tuned, with fitted laws.

    python -m experiments.scaling                      # cpu preset: 5 sizes x 2 modes, ~13 min idle
    python -m experiments.scaling --preset smoke       # plumbing check, 1-2 minutes
    python -m experiments.scaling --preset gpt2 --dry-run   # GPT-2 plan: params, tokens, FLOPs
    python -m experiments.scaling --modes standard,myopic,myopic_kv --out runs/scaling-all

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

Not yet supported (an error, not a silent fallback): gs:// --out paths. The trainer writes its
run directory with local file I/O; use a local disk or a gcsfuse mount of the bucket.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.scaling import pods, protocol
from experiments.scaling.protocol import STUDY_PRESETS, StudyPreset
from myojax.config import GRADIENT_MODES
from myojax.model import param_counts, train_flops_per_token
from myojax.progress import Progress
from myojax.train.monitor import StopFlag, stop_on_signals

DEFAULT_PEAK_TFLOPS = 275.0  # TPU v4 chip, bf16 dense
DEFAULT_MFU = 0.4


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in GRADIENT_MODES]
    if not modes or bad or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(
            f"--modes must be distinct comma-separated modes from {GRADIENT_MODES}, got {text!r}"
        )
    return modes


def build_parser() -> argparse.ArgumentParser:
    summary = "\n".join(f"  {name}: {p.description}" for name, p in STUDY_PRESETS.items())
    parser = argparse.ArgumentParser(
        prog="python -m experiments.scaling",
        description=__doc__,
        epilog="presets:\n" + summary,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        choices=list(STUDY_PRESETS),
        default="cpu",
        help="model ladder and training protocol (default: cpu)",
    )
    parser.add_argument(
        "--modes",
        type=_modes,
        default=("standard", "myopic"),
        help="comma-separated gradient modes (default: standard,myopic; "
        "myopic_kv available); the gap is reported against standard",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="study directory (default: runs/scaling-PRESET); local paths only",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="'shakespeare' (embedded bytes; default for cpu/smoke) or a directory "
        "of token shards (required for gpt2)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (models, parameters, tokens, FLOPs, accelerator-hours) "
        "and run nothing",
    )
    parser.add_argument(
        "--mesh",
        default=None,
        help="device mesh for every run, e.g. 'fsdp=-1' or 'data=2,fsdp=4' "
        "(passed to myojax.train as TrainConfig.mesh; default: the trainer's)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="after the study (finished runs are skipped), also write the report to "
        "results/scaling.md (other presets: results/scaling-PRESET.md), results.json to "
        "results/scaling-PRESET.json and the plots to docs/figures/scaling/ (other presets: a "
        "PRESET subfolder): the published copy is generated, never edited by hand",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: analyse and report the runs finished so far (a partial study's "
        "report says how many of the planned runs it rests on)",
    )
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="recompute fits, plots and report from the finished runs even when no run changed",
    )
    parser.add_argument(
        "--mfu",
        type=float,
        default=DEFAULT_MFU,
        help=f"model FLOPs utilization assumed by --dry-run (default {DEFAULT_MFU})",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=DEFAULT_PEAK_TFLOPS,
        help="peak dense TFLOP/s per accelerator assumed by --dry-run "
        f"(default {DEFAULT_PEAK_TFLOPS:g}: TPU v4 bf16)",
    )
    parser.add_argument(
        "--accelerator",
        choices=list(pods.ACCELERATORS),
        default=None,
        help="with --dry-run: per run, the mesh, microbatches, remat, planned memory per device "
        "and hours on this slice or node (its own peak replaces --peak-tflops there)",
    )
    parser.add_argument(
        "--n-boot", type=int, default=None, help="bootstrap replicates (default: the preset's)"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="progress bars (auto: only on a terminal; otherwise log lines)",
    )
    return parser


# ----------------------------------------------------------------------------------------------
# Dry run


def plan_rows(p: StudyPreset, modes: Sequence[str]) -> list[dict[str, Any]]:
    """Every distinct run of the plan (sweep runs and sizes; the lr of sizes is not known yet)."""
    rows = []
    for spec in protocol.plan_specs(p, modes):
        total, non_emb = param_counts(spec.model)
        flops = train_flops_per_token(spec.model) * spec.tokens
        rows.append(
            {
                "mode": spec.mode,
                "role": spec.role,
                "size": spec.size.name,
                "n_layers": spec.size.n_layers,
                "d_model": spec.size.d_model,
                "params": total,
                "non_embedding_params": non_emb,
                "tokens": spec.tokens,
                "steps": spec.steps,
                "seed": spec.seed,
                "budget": spec.budget,
                "lr": spec.lr if spec.role == "sweep" else None,
                "flops": flops,
            }
        )
    return rows


def print_plan(p: StudyPreset, modes: Sequence[str], args: argparse.Namespace) -> None:
    rows = plan_rows(p, modes)
    peak = args.peak_tflops * 1e12 * args.mfu
    print(
        f"scaling study plan: preset {p.name}, modes {','.join(modes)}, out {args.out}, "
        f"data {args.data or '(none given)'}" + (f", mesh {args.mesh}" if args.mesh else "")
    )
    print(f"  {p.description}")
    print(
        f"  muP base width {p.base_width} (proxy {p.proxy.name}: {p.proxy.n_layers} layers x "
        f"{p.proxy.d_model}); lr sweep {list(p.lrs)} per mode; batch {p.batch_size} x "
        f"{p.seq_len} tokens; D = {p.tokens_per_param:g} tokens per non-embedding parameter; "
        f"seeds {list(p.seeds)}"
    )
    print(
        f"  accelerator-hours assume {args.peak_tflops:g} TFLOP/s peak per accelerator at "
        f"{args.mfu:.0%} MFU; FLOPs = tokens x 3 x (2N + 2dV + 4LTd)"
    )
    head = (
        f"{'mode':<10} {'role':<6} {'size':<12} {'shape':>9} {'params':>15} "
        f"{'N (non-emb)':>15} {'tokens':>17} {'steps':>8} {'lr':>8} {'FLOPs':>9} {'acc-h':>9}"
    )
    print(head)
    total_flops = 0.0
    for r in rows:
        total_flops += r["flops"]
        lr = f"{r['lr']:g}" if r["lr"] is not None else "best"
        print(
            f"{r['mode']:<10} {r['role']:<6} {r['size'] + '/s' + str(r['seed']):<12} "
            f"{r['n_layers']:>3}x{r['d_model']:<5} "
            f"{r['params']:>15,} {r['non_embedding_params']:>15,} {r['tokens']:>17,} "
            f"{r['steps']:>8,} {lr:>8} {r['flops']:>9.2e} {r['flops'] / peak / 3600:>9.1f}"
        )
    reused = len(rows) - protocol.n_runs(p, modes)
    print(
        f"total: {protocol.n_runs(p, modes)} distinct runs"
        + (f" ({reused} size runs are also sweep runs)" if reused else "")
        + f", {total_flops:.3e} FLOPs, {total_flops / peak / 3600:,.1f} accelerator-hours"
    )


# ----------------------------------------------------------------------------------------------
# Running


class _RunCounter:
    """Overall progress over runs: the shared ``Progress`` bar plus numbered log lines."""

    def __init__(self, total: int, tty: bool):
        self.total, self.done, self.trained = total, 0, 0
        self.bar = Progress(total, enabled=tty, unit="run", desc="scaling study")

    def update(self, n: int, trained: bool = False) -> None:
        self.done += n
        self.trained += n if trained else 0
        self.bar.update(self.done)

    def say(self, message: str) -> None:
        self.bar.write(f"[scaling {self.done}/{self.total}] {message}")

    def close(self) -> None:
        self.bar.close()


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace, p: StudyPreset) -> None:
    if args.out.startswith("gs://") and not args.dry_run:
        parser.error(
            "gs:// --out is not supported yet: the trainer writes run directories with "
            "local file I/O. Use a local disk or mount the bucket (gcsfuse) and pass its path"
        )
    if args.mesh is not None:
        from myojax.sharding import MeshConfig

        try:
            MeshConfig.parse(args.mesh)
        except ValueError as e:
            parser.error(str(e))
    if not 0 < args.mfu <= 1 or not args.peak_tflops > 0:
        parser.error("--mfu must be in (0, 1] and --peak-tflops > 0")
    if args.n_boot is not None and args.n_boot < 10:
        parser.error("--n-boot must be >= 10")
    if p.name == "gpt2" and not args.dry_run and not args.data:
        parser.error(
            "--preset gpt2 needs --data DIR (GPT-2 BPE token shards, see "
            "`python -m myojax.data.prepare`)"
        )


def _compilation_cache(out: Path) -> None:
    """Persist compiled steps under --out: every seed of a configuration compiles the same
    program, and on a small CPU compiling costs more than training the smallest models."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str((out / "jax-cache").resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    p = STUDY_PRESETS[args.preset]
    if args.n_boot is not None:
        p = dataclasses.replace(p, n_boot=args.n_boot)
    args.out = args.out or f"runs/scaling-{p.name}"
    args.data = args.data or (p.data or None)
    _check_args(parser, args, p)
    modes = args.modes
    if args.dry_run:
        print_plan(p, modes, args)
        if args.accelerator:
            pods.print_pod_plan(p, modes, args.accelerator, args.mfu)
        return 0

    from experiments.scaling import analysis as study_analysis
    from experiments.scaling import execute
    from experiments.scaling.report import plot_all, render_report
    from myojax import sharding
    from myojax.data import pipeline
    from myojax.files import read_json, write_json
    from myojax.provenance import environment

    sharding.maybe_initialize_distributed()
    write = sharding.is_main_process()
    out = Path(args.out)
    _compilation_cache(out)
    command = (
        "python -m experiments.scaling " + shlex.join(sys.argv[1:] if argv is None else argv)
    ).strip()
    tty = sys.stderr.isatty() if args.progress == "auto" else args.progress == "on"
    t0, c0 = time.perf_counter(), time.process_time()
    env_start = environment()
    stop = StopFlag()
    bar = _RunCounter(protocol.n_runs(p, modes), tty)
    try:
        with stop_on_signals(stop):  # between runs; the trainer installs its own while training
            runs, finished = execute.run_study(
                p,
                modes,
                out,
                data=args.data,
                write=write,
                stop=stop,
                say=bar.say,
                bar=bar,
                progress=tty,
                mesh=args.mesh,
                train=not args.report_only,
            )
    except (pipeline.DataError, ValueError, OSError, RuntimeError) as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    bar.close()
    if not finished and not args.report_only:
        name = signal.Signals(stop.signum or signal.SIGTERM).name
        print(
            f"stopped by {name}: finished runs are saved and the current run is checkpointed; "
            "rerun the same command to resume",
            file=sys.stderr,
            flush=True,
        )
        return 128 + (stop.signum or signal.SIGTERM)
    if not write:
        return 0
    results_path = out / "results.json"
    old = read_json(results_path)
    if (
        old is not None
        and not args.rerender
        and (out / "report.md").exists()
        and old.get("schema_version") == study_analysis.SCHEMA_VERSION
        and study_analysis.runs_fingerprint(old["runs"]) == study_analysis.runs_fingerprint(runs)
        and old.get("modes") == list(modes)
        and old.get("finished", True) == finished
    ):
        print(f"nothing new: every run was already finished and {results_path} is up to date")
        if args.publish:
            publish(old, p.name, Path.cwd())
        return 0
    bar.say("fitting scaling laws (bootstrap)")
    analysis = study_analysis.analyze(p, modes, runs)
    doc = study_analysis.results_document(
        p,
        modes,
        runs,
        analysis,
        command=command,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
        env_start=env_start,
        data=args.data,
        trained=bar.trained,
        previous=old,
        finished=finished,
        planned_runs=protocol.n_runs(p, modes),
    )
    write_json(results_path, doc)
    plots = plot_all(doc, out)
    (out / "report.md").write_text(render_report(doc, plots))
    print(
        f"wrote {out / 'report.md'}, {results_path}, {', '.join(plots)} "
        f"({time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    if answer := doc["analysis"].get("answer"):
        print(answer["text"], flush=True)
    if args.publish:
        publish(doc, p.name, Path.cwd())
    return 0


README_KEY = "scaling answer, written by python -m experiments.scaling --publish"
# The presets whose answer --publish copies into the README, each between its own markers.
README_KEYS = {
    "cpu": README_KEY,
    "cpu-large": "cpu-large answer, written by python -m experiments.scaling --preset cpu-large "
    "--publish",
}


def publish(doc: dict[str, Any], preset: str, root: Path) -> None:
    """Copy a finished study into the repository: results/, docs/figures/scaling/ and, for the
    presets in ``README_KEYS``, the README's section between that preset's markers. The default
    page, results/scaling.md, also carries the cpu-large answer and the gpt2 memory check
    (``experiments.scaling.companions``), so publishing cpu-large redraws it too."""
    from experiments.scaling.report import readme_summary
    from myojax.files import read_json, write_json
    from myojax.provenance import write_section

    _write_page(doc, preset, root)
    write_json(root / "results" / f"scaling-{preset}.json", doc)
    print(f"published results/scaling-{preset}.json")
    readme = root / "README.md"
    key = README_KEYS.get(preset)
    if key is not None and readme.is_file():  # the quick start's study and the larger ladder
        write_section(readme, key, readme_summary(doc))
    default = read_json(root / "results" / "scaling-cpu.json")
    if preset != "cpu" and default is not None:
        _write_page(default, "cpu", root)


def _write_page(doc: dict[str, Any], preset: str, root: Path) -> None:
    from experiments.scaling.companions import companion_sections
    from experiments.scaling.report import plot_all, render_report

    suffix = "" if preset == "cpu" else f"-{preset}"
    figures = root / "docs" / "figures" / "scaling" / ("" if preset == "cpu" else preset)
    figures.mkdir(parents=True, exist_ok=True)
    plots = plot_all(doc, figures)
    prefix = "../" + figures.relative_to(root).as_posix() + "/"
    report = root / "results" / f"scaling{suffix}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(doc, plots, figure_prefix=prefix)
    if preset == "cpu":
        text = text.rstrip("\n") + "\n\n" + companion_sections(report.parent)
    report.write_text(text)
    print(f"published {report} and {len(plots)} plots in {figures}")
