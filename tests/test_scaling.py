"""``python -m experiments.scaling`` end to end: the smoke preset's artifacts, restorable
checkpoints, the verifier on a restored myopic model, a no-op rerun, redrawing from saved
results, the GPT-2 dry-run plan and the command line's errors and help."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from experiments.scaling import execute, protocol, records
from experiments.scaling.__main__ import main
from experiments.scaling.protocol import STUDY_PRESETS
from myojax import checkpoint, cli, verify
from myojax.model import GPT, count_params

MODES = ("standard", "myopic")
RESULTS = Path(__file__).resolve().parents[1] / "results"
CPU_JSON = str(RESULTS / "scaling-cpu.json")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, records.StudyResults, str]:
    out = tmp_path_factory.mktemp("scaling") / "smoke"
    t0 = time.perf_counter()
    code = main(["--preset", "smoke", "--out", str(out), "--progress", "false"])
    assert code == 0
    res = records.read_results(out / "results.json")
    print(f"smoke study took {time.perf_counter() - t0:.0f}s")
    return out, res, (out / "report.md").read_text()


def test_artifacts_and_both_modes(smoke):
    out, res, report = smoke
    p = STUDY_PRESETS["smoke"]
    assert res.modes == MODES and res.preset == "smoke"
    assert (
        res.command == f"python -m experiments.scaling --preset smoke --out {out} --progress false"
    )
    for mode in MODES:
        sweep = [r for r in res.runs if r.mode == mode and r.role == "sweep"]
        sizes = [r for r in res.runs if r.mode == mode and r.role == "size"]
        assert sorted((r.lr, r.seed) for r in sweep) == [(lr, s) for lr in p.lrs for s in p.seeds]
        assert [(r.size, r.seed) for r in sizes] == [(z.name, s) for z in p.sizes for s in p.seeds]
        assert all(r.ok for r in sweep + sizes)
        assert {r.lr for r in sizes} == {res.analysis.sweeps[mode].chosen_lr}
        for r in sizes:
            assert len(r.test_loss_per_position) == p.seq_len
            assert len(r.test_loss_per_sequence) == p.eval_batches * p.batch_size
            assert len(r.val_loss_per_sequence) == p.eval_batches * p.batch_size
            assert r.val_loss != r.test_loss  # two different held-out splits
            assert r.tokens == r.steps * p.tokens_per_step
            assert r.wall_s > 0 and r.cpu_s > 0 and len(r.load_start) == 3
        assert len(res.analysis.losses[mode].per_seed[0]) == len(p.seeds)
    gap = res.analysis.gaps["myopic"]
    assert len(gap.gap.point) == len(p.sizes) and gap.slope_per_decade is not None
    assert {"E", "alpha[myopic]", "alpha[standard]"} <= set(res.analysis.fit.params)
    assert res.cost.distinct_runs == protocol.n_runs(p, MODES)
    assert report.startswith("# Scaling study") and "**Answer: " in report
    for name in ("loss_vs_params.png", "gap_vs_params.png", "lr_sweep.png"):
        assert (out / name).stat().st_size > 5000
        assert f"]({name})" in report
    for r in res.runs:
        if r.role == "size":
            assert f"{r.test_loss:.4f}" in report
        assert records.read_run(out / r.run_dir) == dataclasses.replace(
            r, role="sweep" if r.same_run_as_sweep else r.role, same_run_as_sweep=False
        )


def test_checkpoints_restore_and_reproduce_the_reported_loss(smoke):
    out, res, _ = smoke
    p = STUDY_PRESETS["smoke"]
    windows = execute.heldout_windows(p, "shakespeare")
    for r in (r for r in res.runs if r.role == "size"):
        cfg, model = checkpoint.restore(out / r.run_dir)
        assert cfg.gradient_mode == r.mode and cfg.d_model == r.d_model
        assert count_params(model, non_embedding=True) == r.non_embedding_params
        assert count_params(model) == r.params
        if r.size == p.sizes[-1].name and r.seed == 0:  # one evaluation per mode
            again = execute.evaluate_heldout(model, windows)
            assert math.isclose(again["test"].mean, r.test_loss, rel_tol=1e-6)
            assert math.isclose(again["validation"].mean, r.val_loss, rel_tol=1e-6)


def test_verifier_passes_on_a_restored_myopic_model(smoke):
    out, res, _ = smoke
    largest = STUDY_PRESETS["smoke"].sizes[-1].name
    row = next(r for r in res.runs if r.mode == "myopic" and r.role == "size" and r.size == largest)
    _, model = checkpoint.restore(out / row.run_dir)
    windows = execute.heldout_windows(STUDY_PRESETS["smoke"], "shakespeare")
    window = np.asarray(windows["test"][0][0])
    report = verify.check(model, window[:-1], window[1:])
    assert report.passed, report.failures
    assert report.expect == "myopic" and all(layer.past_max == 0.0 for layer in report.layers)


def test_rerun_is_a_fast_no_op(smoke, capsys):
    out, _, _ = smoke
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    t0 = time.perf_counter()
    assert main(["--preset", "smoke", "--out", str(out), "--progress", "off"]) == 0  # old spelling
    elapsed = time.perf_counter() - t0
    text = capsys.readouterr().out
    assert "nothing new" in text and text.count("(done before)") == protocol.n_runs(
        STUDY_PRESETS["smoke"], MODES
    )
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    assert elapsed < 60, elapsed  # no training, no compiles; generous for a loaded machine


def _eval_shape_counts(cfg) -> tuple[int, int]:
    abstract = eqx.filter_eval_shape(GPT, cfg, key=jax.random.key(0))
    total = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract))
    return total, total - math.prod(abstract.wte.shape) - math.prod(abstract.wpe.shape)


def test_gpt2_dry_run_plan_matches_eval_shape(capsys):
    argv = ["--preset", "gpt2", "--dry-run", "--mesh", "fsdp=-1", "--out", "gs://bucket/run"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    p = STUDY_PRESETS["gpt2"]
    rows = re.findall(
        r"^(standard|myopic)\s+(\w+)\s+(\S+)/s\d+\s+\d+x\d+\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)",
        text,
        flags=re.M,
    )
    assert len(rows) == protocol.n_runs(p, MODES)
    for mode, role, size, total, non_emb, tokens in rows:
        s = p.proxy if role == "sweep" else next(x for x in p.sizes if x.name == size)
        expected = _eval_shape_counts(protocol.model_config(p, s, mode))
        assert (int(total.replace(",", "")), int(non_emb.replace(",", ""))) == expected
        assert int(tokens.replace(",", "")) >= 20 * expected[1]
    assert {r[2] for r in rows} == {
        "proxy-w256",
        "gpt2-117m",
        "gpt2-345m",
        "gpt2-762m",
        "gpt2-1.5b",
    }
    assert {r[1] for r in rows} == {"sweep", "size", "undertrain", "transfer"}
    assert "accelerator-hours" in text and "TFLOP/s" in text and "mesh fsdp=-1" in text


def _exit_code(argv: list[str]) -> int:
    """What ``python -m experiments.scaling ARGV`` exits with (argparse's errors included)."""
    try:
        return cli.run(main, argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "gs://b/x"], "gs:// --out is not supported"),
        (["--modes", "standard,sideways"], "--modes must be"),
        (["--preset", "gpt2"], "needs --data"),
        (["--mesh", "tensor=2", "--dry-run"], "unknown axis"),
        (["--mfu", "0", "--dry-run"], "--mfu"),
        (["--n-boot", "3", "--dry-run"], "--n-boot must be >= 10"),
        (["--progress", "sometimes"], "expected true/false"),
        (["--from-json", "no/such.json", "--publish"], "no such file"),
        (["--from-json", CPU_JSON], "needs --out DIR, --publish"),
        (["--from-json", CPU_JSON, "--dry-run"], "runs nothing"),
        (["--from-json", str(RESULTS / "memory_plan.json"), "--out", "x"], "not a scaling study's"),
    ],
)
def test_bad_arguments_are_one_clear_error(argv, message, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for needle in (
        "--preset",
        "--modes",
        "myopic_kv",
        "--dry-run",
        "--data",
        "--out",
        "gs://",
        "--mesh",
        "--publish",
        "--report-only",
        "--rerender",
        "--n-boot",
        "--mfu",
        "--peak-tflops",
        "--accelerator",
        "--progress BOOL",
        "--from-json FILE",
        "--debug",
        "cpu:",
        "smoke:",
        "gpt2:",
    ):
        assert needle in text


def test_from_json_redraws_the_report_of_saved_results(smoke, tmp_path, capsys):
    out, res, report = smoke
    assert main(["--from-json", str(out / "results.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text() == report
    assert records.read_results(tmp_path / "results.json") == res
    assert "report.md" in capsys.readouterr().out
