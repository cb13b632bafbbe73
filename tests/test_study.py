"""myojax.study and myojax.study_report: presets, budgets, parameter counts, run bookkeeping,
analysis, and the report/plots rendered from results.json alone."""

from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import numpy as np
import pytest

from myojax import study
from myojax.model import GPT
from myojax.model_presets import preset as gpt2_preset
from myojax.study_report import PLOTS, plot_all, render_report


def eval_shape_counts(cfg) -> tuple[int, int]:
    abstract = eqx.filter_eval_shape(GPT, cfg, key=jax.random.key(0))
    total = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract))
    return total, total - math.prod(abstract.wte.shape) - math.prod(abstract.wpe.shape)


@pytest.mark.parametrize("name", list(study.PRESETS))
def test_param_counts_match_eval_shape(name):
    p = study.PRESETS[name]
    for size in (*p.sizes, p.proxy):
        cfg = study.model_config(p, size, "myopic")
        assert study.param_counts(cfg) == eval_shape_counts(cfg)
    untied = study.model_config(p, p.sizes[0], "standard").replace(tie_embeddings=False)
    assert study.param_counts(untied) == eval_shape_counts(untied)


def test_gpt2_sizes_are_the_gpt2_presets():
    p = study.PRESETS["gpt2"]
    for size in p.sizes:
        ours = study.model_config(p, size, "standard")
        theirs = gpt2_preset(size.name)
        assert study.param_counts(ours) == study.param_counts(theirs)
        assert (ours.parametrization, ours.base_width) == ("mup", 256)


def test_cpu_preset_meets_the_issue():
    p = study.PRESETS["cpu"]
    n = [study.param_counts(study.model_config(p, s, "standard"))[1] for s in p.sizes]
    assert len(p.sizes) >= 4 and max(n) / min(n) >= 10 and n == sorted(n)
    assert len(p.lrs) >= 4 and p.data == "shakespeare"
    assert p.proxy == p.sizes[0] and p.base_width == p.sizes[0].d_model


def test_token_budget_rule():
    cpu, gpt2 = study.PRESETS["cpu"], study.PRESETS["gpt2"]
    n0 = study.param_counts(study.model_config(cpu, cpu.proxy, "standard"))[1]
    assert study.token_budget(cpu, n0) == (200, 200 * cpu.tokens_per_step)
    steps4, _ = study.token_budget(cpu, 4 * n0)  # exponent 0.5: 4x params, 2x tokens
    assert steps4 == 400
    for size in gpt2.sizes:
        n = study.param_counts(study.model_config(gpt2, size, "standard"))[1]
        steps, tokens = study.token_budget(gpt2, n)
        assert (
            20 * n <= tokens < 20 * n + gpt2.tokens_per_step
            and tokens == steps * gpt2.tokens_per_step
        )


def test_plan_counts_and_reuse_of_the_proxy_run():
    p = study.PRESETS["cpu"]
    sweep = study.sweep_specs(p, ["standard", "myopic"])
    assert len(sweep) == 2 * len(p.lrs)
    sizes = study.size_specs(p, "myopic", p.lrs[2])
    assert study.same_run(
        sizes[0], next(s for s in sweep if s.mode == "myopic" and s.lr == p.lrs[2])
    )
    assert not study.same_run(
        sizes[0], next(s for s in sweep if s.mode == "standard" and s.lr == p.lrs[2])
    )
    assert study.n_runs(p, ["standard", "myopic"]) == 2 * (len(p.lrs) + len(p.sizes) - 1)
    assert study.n_runs(study.PRESETS["gpt2"], ["standard"]) == 6 + 4
    with pytest.raises(ValueError, match="unknown gradient mode"):
        study.model_config(p, p.sizes[0], "sideways")


def test_best_lr_skips_diverged_and_flags_edges():
    rows = [
        {"mode": "m", "lr": 1e-3, "status": "ok", "val_loss": 2.0},
        {"mode": "m", "lr": 2e-3, "status": "ok", "val_loss": 1.5},
        {"mode": "m", "lr": 4e-3, "status": "diverged"},
    ]
    assert study.best_lr(rows) == (2e-3, False)
    assert study.best_lr(rows[:2]) == (2e-3, True)
    with pytest.raises(RuntimeError, match="every sweep run"):
        study.best_lr([rows[2]])


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
    p = study.PRESETS["smoke"]
    spec = study.sweep_specs(p, ["myopic"])[0]
    row = study.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert row["status"] == "diverged" and "nan" in row["error"]
    again = study.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert again["skipped"] and again["status"] == "diverged" and len(calls) == 1


def test_interrupted_run_writes_no_result(tmp_path, monkeypatch):
    _fake_train(monkeypatch, "preempt")
    p = study.PRESETS["smoke"]
    spec = study.sweep_specs(p, ["standard"])[0]
    row = study.execute(p, spec, tmp_path, "shakespeare", [], write=True)
    assert row["status"] == "interrupted"
    assert study.load_result(spec.run_dir(tmp_path)) is None  # the rerun resumes training


def test_mesh_reaches_the_train_config(tmp_path):
    p = study.PRESETS["smoke"]
    spec = study.sweep_specs(p, ["standard"])[0]
    cfg = study.train_config(p, spec, tmp_path, "shakespeare", mesh="data=1,fsdp=1")
    assert cfg.mesh == "data=1,fsdp=1" and cfg.steps == spec.steps and cfg.lr == spec.lr


@pytest.fixture(scope="module")
def synthetic_doc() -> dict:
    return json.loads(json.dumps(_synthetic_doc()))  # exactly what results.json round-trips to


def _synthetic_doc(gap_per_decade: float = 0.02) -> dict:
    """A results document as run_study + analyze would make it, from a known curve."""
    p = study.PRESETS["cpu"]
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
            cfg = study.model_config(p, size, mode)
            total, n = study.param_counts(cfg)
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
    p = study.dataclasses.replace(p, n_boot=30)
    analysis = study.analyze(p, ["standard", "myopic"], runs)
    env = study.environment()
    return study.results_document(
        p,
        ["standard", "myopic"],
        runs,
        analysis,
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
    study.write_json(path, {"k": 1})
    assert json.loads(path.read_text()) == {"k": 1}
    assert not list(path.parent.glob("*.tmp"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / study.RESULT_FILE).write_text("{not json")
    assert study.load_result(tmp_path / "bad") is None
