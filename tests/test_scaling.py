"""experiments.scaling end to end: the smoke preset's artifacts, restorable checkpoints, the
verifier on a restored myopic model, a no-op rerun, and the GPT-2 dry-run plan."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from experiments.scaling import cli as scaling
from experiments.scaling import execute, protocol
from experiments.scaling.protocol import STUDY_PRESETS
from myojax import checkpoint, verify
from myojax.model import GPT, count_params

MODES = ("standard", "myopic")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("scaling") / "smoke"
    t0 = time.perf_counter()
    code = scaling.main(["--preset", "smoke", "--out", str(out), "--progress", "off"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    print(f"smoke study took {time.perf_counter() - t0:.0f}s")
    return out, doc, (out / "report.md").read_text()


def test_artifacts_and_both_modes(smoke):
    out, doc, report = smoke
    p = STUDY_PRESETS["smoke"]
    assert doc["modes"] == list(MODES) and doc["preset"] == "smoke"
    for mode in MODES:
        sweep = [r for r in doc["runs"] if r["mode"] == mode and r["role"] == "sweep"]
        sizes = [r for r in doc["runs"] if r["mode"] == mode and r["role"] == "size"]
        assert sorted((r["lr"], r["seed"]) for r in sweep) == [
            (lr, s) for lr in p.lrs for s in p.seeds
        ]
        assert [(r["size"], r["seed"]) for r in sizes] == [
            (z.name, s) for z in p.sizes for s in p.seeds
        ]
        assert all(r["status"] == "ok" for r in sweep + sizes)
        assert {r["lr"] for r in sizes} == {doc["analysis"]["sweeps"][mode]["chosen_lr"]}
        for r in sizes:
            assert len(r["test_loss_per_position"]) == p.seq_len
            assert len(r["test_loss_per_sequence"]) == p.eval_batches * p.batch_size
            assert len(r["val_loss_per_sequence"]) == p.eval_batches * p.batch_size
            assert r["val_loss"] != r["test_loss"]  # two different held-out splits
            assert r["tokens"] == r["steps"] * p.tokens_per_step
            assert r["wall_s"] > 0 and r["cpu_s"] > 0 and len(r["load_start"]) == 3
        assert len(doc["analysis"]["losses"][mode]["per_seed"][0]) == len(p.seeds)
    gap = doc["analysis"]["gaps"]["myopic"]
    assert len(gap["gap"]["point"]) == len(p.sizes) and gap["slope_per_decade"] is not None
    assert {"E", "alpha[myopic]", "alpha[standard]"} <= set(doc["analysis"]["fit"]["params"])
    assert doc["cost"]["distinct_runs"] == protocol.n_runs(p, MODES)
    assert report.startswith("# Scaling study") and "**Answer: " in report
    for name in ("loss_vs_params.png", "gap_vs_params.png", "lr_sweep.png"):
        assert (out / name).stat().st_size > 5000
        assert f"]({name})" in report
    for r in doc["runs"]:
        if r["role"] == "size":
            assert f"{r['test_loss']:.4f}" in report


def test_checkpoints_restore_and_reproduce_the_reported_loss(smoke):
    out, doc, _ = smoke
    p = STUDY_PRESETS["smoke"]
    windows = execute.heldout_windows(p, "shakespeare")
    for r in (r for r in doc["runs"] if r["role"] == "size"):
        cfg, model = checkpoint.restore(out / r["run_dir"])
        assert cfg.gradient_mode == r["mode"] and cfg.d_model == r["d_model"]
        assert count_params(model, non_embedding=True) == r["non_embedding_params"]
        assert count_params(model) == r["params"]
        if r["size"] == p.sizes[-1].name and r["seed"] == 0:  # one evaluation per mode
            again = execute.evaluate_heldout(model, windows)
            assert math.isclose(again["test_loss"], r["test_loss"], rel_tol=1e-6)
            assert math.isclose(again["val_loss"], r["val_loss"], rel_tol=1e-6)


def test_verifier_passes_on_a_restored_myopic_model(smoke):
    out, doc, _ = smoke
    row = next(
        r
        for r in doc["runs"]
        if r["mode"] == "myopic"
        and r["role"] == "size"
        and r["size"] == STUDY_PRESETS["smoke"].sizes[-1].name
    )
    _, model = checkpoint.restore(out / row["run_dir"])
    windows = execute.heldout_windows(STUDY_PRESETS["smoke"], "shakespeare")
    window = np.asarray(windows["test"][0][0])
    report = verify.check(model, window[:-1], window[1:])
    assert report.passed, report.failures
    assert report.expect == "myopic" and all(layer.past_max == 0.0 for layer in report.layers)


def test_rerun_is_a_fast_no_op(smoke, capsys):
    out, _, _ = smoke
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    t0 = time.perf_counter()
    assert scaling.main(["--preset", "smoke", "--out", str(out), "--progress", "off"]) == 0
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
    assert (
        scaling.main(
            ["--preset", "gpt2", "--dry-run", "--mesh", "fsdp=-1", "--out", "gs://bucket/run"]
        )
        == 0
    )
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "gs://b/x"], "gs:// --out is not supported"),
        (["--modes", "standard,sideways"], "--modes must be"),
        (["--preset", "gpt2"], "needs --data"),
        (["--mesh", "tensor=2", "--dry-run"], "unknown axis"),
        (["--mfu", "0", "--dry-run"], "--mfu"),
    ],
)
def test_bad_arguments_are_one_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        scaling.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_the_cli(capsys):
    with pytest.raises(SystemExit):
        scaling.main(["--help"])
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
        "cpu:",
        "smoke:",
        "gpt2:",
    ):
        assert needle in text


def test_publish_writes_results_and_only_the_readme_section(smoke, tmp_path):
    """--publish copies the report into results/ and, for the default preset, rewrites the
    README's marked section from the same results, leaving the hand-written text alone."""
    _, doc, _ = smoke
    from experiments.scaling.report import readme_summary

    readme = tmp_path / "README.md"
    begin, end = (f"<!-- {w} {scaling.README_KEY} -->" for w in ("begin", "end"))
    readme.write_text(f"# Title\n\nhand-written\n\n{begin}\nstale figure\n{end}\n\nafter\n")
    scaling.publish(doc, "cpu", tmp_path)
    text = readme.read_text()
    assert "stale figure" not in text and "hand-written" in text and text.endswith("after\n")
    assert readme_summary(doc) in text and doc["analysis"]["answer"]["text"] in text
    assert (tmp_path / "results" / "scaling.md").is_file()
    scaling.publish(doc, "smoke", tmp_path)  # other presets leave the README alone
    assert readme.read_text() == text
    large = {**doc, "preset": "cpu-large", "finished": False, "planned_runs": 99}
    scaling.publish(large, "cpu-large", tmp_path)  # its own section; the default's is kept
    after = readme.read_text()
    assert after.startswith(text.rstrip("\n")) and scaling.README_KEYS["cpu-large"] in after
    assert "--preset cpu-large --publish` from the study's" in after
    assert "of 99 planned (PARTIAL" in after and "results/scaling-cpu-large.md" in after


def test_default_page_carries_the_cpu_large_answer_and_the_memory_check(smoke, tmp_path):
    """results/scaling.md holds the companion sections from their JSON, says which are absent,
    and is redrawn when cpu-large is published after it."""
    _, doc, _ = smoke
    results = tmp_path / "results"
    scaling.publish(doc, "cpu", tmp_path)
    page = (results / "scaling.md").read_text()
    assert "No `scaling-cpu-large.json` in results/" in page
    assert "No `memory_plan.json` in results/" in page
    memory = Path(__file__).parents[1] / "results" / "memory_plan.json"
    shutil.copy(memory, results / "memory_plan.json")
    large = {**doc, "description": "THE LARGER LADDER", "finished": False, "planned_runs": 99}
    scaling.publish(large, "cpu-large", tmp_path)  # redraws the default page as well
    page = (results / "scaling.md").read_text()
    assert "No `" not in page and (results / "scaling-cpu-large.md").is_file()
    assert page.index("## The larger CPU ladder") < page.index("## Memory planner vs XLA")
    assert "THE LARGER LADDER" in page and "of 99 planned runs" in page
    assert "### The model-free answer" in page
    rows = json.loads(memory.read_text())["rows"]
    assert any("compare" in r for r in rows)
    for r in rows:
        if "compare" in r:
            assert f"{r['xla']['peak'] / 2**30:.3f}" in page
