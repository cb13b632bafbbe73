"""experiments.scaling (protocol, execute, analysis, report): presets, budgets, parameter
counts, run bookkeeping, analysis, and the report/plots rendered from results.json alone."""

from __future__ import annotations

import dataclasses
import json
import math

import equinox as eqx
import jax
import numpy as np
import pytest

from experiments.scaling import analysis, execute, protocol
from experiments.scaling.protocol import STUDY_PRESETS
from experiments.scaling.report import PLOTS, plot_all, render_report
from myojax.model import GPT, param_counts
from myojax.presets import model_preset as gpt2_preset
from myojax.provenance import environment
from myojax.train.rundir import write_json


def eval_shape_counts(cfg) -> tuple[int, int]:
    abstract = eqx.filter_eval_shape(GPT, cfg, key=jax.random.key(0))
    total = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract))
    return total, total - math.prod(abstract.wte.shape) - math.prod(abstract.wpe.shape)


@pytest.mark.parametrize("name", list(STUDY_PRESETS))
def test_param_counts_match_eval_shape(name):
    p = STUDY_PRESETS[name]
    for size in (*p.sizes, p.proxy):
        cfg = protocol.model_config(p, size, "myopic")
        assert param_counts(cfg) == eval_shape_counts(cfg)
    untied = protocol.model_config(p, p.sizes[0], "standard").replace(tie_embeddings=False)
    assert param_counts(untied) == eval_shape_counts(untied)


def test_gpt2_sizes_are_the_gpt2_presets():
    p = STUDY_PRESETS["gpt2"]
    for size in p.sizes:
        ours = protocol.model_config(p, size, "standard")
        theirs = gpt2_preset(size.name)
        assert param_counts(ours) == param_counts(theirs)
        assert (ours.parametrization, ours.base_width) == ("mup", 256)


def test_cpu_preset_meets_the_issue():
    p = STUDY_PRESETS["cpu"]
    n = [param_counts(protocol.model_config(p, s, "standard"))[1] for s in p.sizes]
    assert len(p.sizes) >= 4 and max(n) / min(n) >= 10 and n == sorted(n)
    assert len(p.lrs) >= 4 and p.data == "shakespeare"
    assert p.proxy == p.sizes[0] and p.base_width == p.sizes[0].d_model


def test_token_budget_rule():
    cpu, gpt2 = STUDY_PRESETS["cpu"], STUDY_PRESETS["gpt2"]
    n0 = param_counts(protocol.model_config(cpu, cpu.proxy, "standard"))[1]
    assert protocol.token_budget(cpu, n0) == (200, 200 * cpu.tokens_per_step)
    steps4, _ = protocol.token_budget(cpu, 4 * n0)  # exponent 0.5: 4x params, 2x tokens
    assert steps4 == 400
    for size in gpt2.sizes:
        n = param_counts(protocol.model_config(gpt2, size, "standard"))[1]
        steps, tokens = protocol.token_budget(gpt2, n)
        assert (
            20 * n <= tokens < 20 * n + gpt2.tokens_per_step
            and tokens == steps * gpt2.tokens_per_step
        )


def test_plan_counts_and_reuse_of_the_proxy_run():
    p = STUDY_PRESETS["cpu"]
    sweep = protocol.sweep_specs(p, ["standard", "myopic"])
    assert len(sweep) == 2 * len(p.lrs)
    sizes = protocol.size_specs(p, "myopic", p.lrs[2])
    assert protocol.same_run(
        sizes[0], next(s for s in sweep if s.mode == "myopic" and s.lr == p.lrs[2])
    )
    assert not protocol.same_run(
        sizes[0], next(s for s in sweep if s.mode == "standard" and s.lr == p.lrs[2])
    )
    assert protocol.n_runs(p, ["standard", "myopic"]) == 2 * (len(p.lrs) + len(p.sizes) - 1)
    assert protocol.n_runs(STUDY_PRESETS["gpt2"], ["standard"]) == 6 + 4
    with pytest.raises(ValueError, match="unknown gradient mode"):
        protocol.model_config(p, p.sizes[0], "sideways")


def test_best_lr_skips_diverged_and_flags_edges():
    rows = [
        {"mode": "m", "lr": 1e-3, "status": "ok", "val_loss": 2.0},
        {"mode": "m", "lr": 2e-3, "status": "ok", "val_loss": 1.5},
        {"mode": "m", "lr": 4e-3, "status": "diverged"},
    ]
    assert analysis.best_lr(rows) == (2e-3, False)
    assert analysis.best_lr(rows[:2]) == (2e-3, True)
    with pytest.raises(RuntimeError, match="every sweep run"):
        analysis.best_lr([rows[2]])


def _fake_train(monkeypatch, outcome):
    from myojax import train

    calls = []

    def fake_run(train_cfg, model_cfg, progress=None):
        calls.append(train_cfg)
        if outcome == "diverge":
            raise train.NonFiniteLoss("loss is nan at step 3")
        return {"step": 1, "loss": 1.0, "preempted": True, "wall_s": 0.1}

    monkeypatch.setattr(train, "run", fake_run)
    return calls


def test_diverged_run_is_recorded_and_not_retried(tmp_path, monkeypatch):
    calls = _fake_train(monkeypatch, "diverge")
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["myopic"])[0]
    row = execute.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert row["status"] == "diverged" and "nan" in row["error"]
    again = execute.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert again["skipped"] and again["status"] == "diverged" and len(calls) == 1


def test_interrupted_run_writes_no_result(tmp_path, monkeypatch):
    _fake_train(monkeypatch, "preempt")
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["standard"])[0]
    row = execute.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert row["status"] == "interrupted"
    assert execute.load_result(spec.run_dir(tmp_path)) is None  # the rerun resumes training


def test_mesh_reaches_the_train_config(tmp_path):
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["standard"])[0]
    cfg = protocol.train_config(p, spec, tmp_path, "shakespeare", mesh="data=1,fsdp=1")
    assert cfg.mesh == "data=1,fsdp=1" and cfg.steps == spec.steps and cfg.lr == spec.lr


@pytest.fixture(scope="module")
def synthetic_doc() -> dict:
    return json.loads(json.dumps(_synthetic_doc()))  # exactly what results.json round-trips to


def _synthetic_doc(gap_per_decade: float = 0.02) -> dict:
    """A results document as run_study + analyze would make it, from a known curve."""
    p = STUDY_PRESETS["cpu"]
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 0.4, 64)
    runs = []
    n0 = None
    for mode in ("standard", "myopic"):
        for lr in p.lrs:
            runs.append(
                {
                    "mode": mode,
                    "role": "sweep",
                    "size": p.proxy.name,
                    "lr": lr,
                    "status": "ok",
                    "val_loss": 3.0 + (math.log2(lr / 8e-3)) ** 2 / 10,
                    "run_dir": f"runs/{mode}/{p.proxy.name}-lr{lr:.3g}",
                    "wall_s": 1.0,
                }
            )
        for size in p.sizes:
            cfg = protocol.model_config(p, size, mode)
            total, n = param_counts(cfg)
            n0 = n0 or n
            loss = (
                1.5
                + 40 * n**-0.35
                + (gap_per_decade * math.log10(n / n0) if mode == "myopic" else 0)
            )
            per_seq = loss + difficulty + rng.normal(0, 0.02, 64)
            runs.append(
                {
                    "mode": mode,
                    "role": "size",
                    "size": size.name,
                    "lr": 8e-3,
                    "status": "ok",
                    "params": total,
                    "non_embedding_params": n,
                    "d_model": size.d_model,
                    "n_layers": size.n_layers,
                    "tokens": 1000,
                    "steps": 10,
                    "val_loss": float(per_seq.mean()),
                    "val_loss_per_sequence": per_seq.tolist(),
                    "val_loss_per_position": list(np.linspace(loss + 1, loss - 0.2, 8)),
                    "run_dir": f"runs/{mode}/{size.name}",
                    "wall_s": 2.0,
                }
            )
    p = dataclasses.replace(p, n_boot=30)
    result = analysis.analyze(p, ["standard", "myopic"], runs)
    env = environment()
    return analysis.results_document(
        p,
        ["standard", "myopic"],
        runs,
        result,
        command="cmd",
        wall_s=12.0,
        env_start=env,
        data="shakespeare",
        trained=10,
    )


def test_analysis_detects_a_growing_gap_and_report_matches_results(tmp_path, synthetic_doc):
    doc = synthetic_doc
    an = doc["analysis"]
    assert set(an["fits"]) == {"standard", "myopic"}
    fit = an["fits"]["standard"]
    assert fit["fit_ci"]["alpha"][0] <= 0.35 <= fit["fit_ci"]["alpha"][1]
    gap = an["gaps"]["myopic"]
    assert gap["trend_ci"][0] > 0 and len(gap["extrapolated"]["gap"]) == 4
    plots = plot_all(doc, tmp_path)
    assert set(plots) == set(PLOTS.values())
    assert all((tmp_path / f).stat().st_size > 5000 for f in plots)
    report = render_report(doc, plots)
    for r in doc["runs"]:
        if r["role"] == "size":
            assert f"{r['val_loss']:.4f}" in report
            assert f"{r['non_embedding_params']:,}" in report
    assert f"{fit['fit']['alpha']:.4f}" in report and f"{gap['trend_per_decade']:+.4f}" in report
    assert "grows with N" in report and "one training seed" in report
    for name in plots:
        assert f"]({name})" in report


def test_report_lists_diverged_runs(synthetic_doc):
    doc = json.loads(json.dumps(synthetic_doc))
    row = next(r for r in doc["runs"] if r["role"] == "size" and r["mode"] == "myopic")
    doc["runs"].append(
        {**row, "role": "sweep", "status": "diverged", "error": "loss is nan", "val_loss": None}
    )
    report = render_report(doc, [])
    assert "did not finish normally" in report and "loss is nan" in report


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "a" / "x.json"
    write_json(path, {"k": 1})
    assert json.loads(path.read_text()) == {"k": 1}
    assert not list(path.parent.glob("*.tmp"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / execute.RESULT_FILE).write_text("{not json")
    assert execute.load_result(tmp_path / "bad") is None
