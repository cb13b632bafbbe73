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
from myojax.files import write_json
from myojax.model import GPT, param_counts
from myojax.presets import model_preset as gpt2_preset
from myojax.provenance import environment


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


def test_presets_meet_the_issue():
    for name, min_sizes, min_decades, min_tpp in (("cpu", 5, 0.85, 2), ("cpu-large", 6, 1.5, 20)):
        p = STUDY_PRESETS[name]
        n = [param_counts(protocol.model_config(p, s, "standard"))[1] for s in p.sizes]
        assert len(p.sizes) >= min_sizes and n == sorted(n)
        assert math.log10(max(n) / min(n)) >= min_decades and p.tokens_per_param >= min_tpp
        assert len(p.seeds) >= 3 and len(p.lrs) >= 5 and p.data == "shakespeare"
        assert len({s.n_layers for s in p.sizes}) >= 2  # depth grows too
        assert p.proxy in p.sizes and p.base_width == p.proxy.d_model  # the sweep is a rung
        assert p.undertrain_size in {s.name for s in p.sizes} and p.undertrain_factors == (2, 4)
        assert -1 in p.transfer_steps and 1 in p.transfer_steps


def test_token_budget_is_a_constant_ratio():
    cpu, gpt2 = STUDY_PRESETS["cpu"], STUDY_PRESETS["gpt2"]
    for p in (cpu, gpt2):
        for size in p.sizes:
            n = param_counts(protocol.model_config(p, size, "standard"))[1]
            steps, tokens = protocol.token_budget(p, n)
            assert tokens == steps * p.tokens_per_step
            assert p.tokens_per_param * n <= tokens < p.tokens_per_param * n + p.tokens_per_step
            assert protocol.token_budget(p, n, 4.0)[1] >= 4 * p.tokens_per_param * n
    assert gpt2.tokens_per_param == 20


def test_plan_counts_seeds_and_reuse_of_the_proxy_run():
    p = STUDY_PRESETS["cpu"]
    modes = ["standard", "myopic"]
    sweep = protocol.sweep_specs(p, modes)
    assert len(sweep) == 2 * len(p.lrs) * len(p.seeds)
    assert len({s.run_dir(protocol.Path("o")) for s in sweep}) == len(sweep)
    sizes = protocol.size_specs(p, "myopic", p.lrs[2])
    assert [s.seed for s in sizes[: len(p.seeds)]] == list(p.seeds)
    first = sizes[1]  # the proxy, seed 1
    assert protocol.same_run(
        first, next(s for s in sweep if s.mode == "myopic" and s.lr == p.lrs[2] and s.seed == 1)
    )
    assert not protocol.same_run(
        first, next(s for s in sweep if s.mode == "myopic" and s.lr == p.lrs[2] and s.seed == 0)
    )
    under = protocol.undertrain_specs(p, "myopic", 8e-3)
    base = next(s for s in sizes if s.size.name == p.undertrain_size)
    n = param_counts(base.model)[1]
    assert sorted({s.tokens >= s.budget * p.tokens_per_param * n for s in under}) == [True]
    assert all(abs(s.steps - s.budget * base.steps) < s.budget for s in under)
    transfer = protocol.transfer_specs(p, "myopic", 8e-3)
    assert sorted({s.lr for s in transfer}) == [4e-3, 1.6e-2]
    assert {s.size for s in transfer} == {p.sizes[-1]}
    plan = protocol.plan_specs(p, modes)
    assert len(plan) == protocol.n_runs(p, modes)
    with pytest.raises(ValueError, match="unknown gradient mode"):
        protocol.model_config(p, p.sizes[0], "sideways")


def test_choose_lr_pools_seeds_skips_diverged_and_flags_edges():
    rows = [
        {"mode": "m", "lr": lr, "seed": s, "status": "ok", "val_loss": v}
        for lr, vs in ((1e-3, (2.0, 2.0)), (2e-3, (1.4, 1.8)), (4e-3, (1.5, 1.5)))
        for s, v in enumerate(vs)
    ]
    assert analysis.choose_lr(rows) == (4e-3, True)  # mean 1.5 < 1.6, although seed 0 prefers 2e-3
    rows[-1] = {**rows[-1], "status": "diverged"}
    assert analysis.choose_lr(rows) == (2e-3, False)
    with pytest.raises(RuntimeError, match="every sweep lr"):
        analysis.choose_lr([{**r, "status": "diverged"} for r in rows])


def _fake_train(monkeypatch, outcome):
    from myojax import train

    calls = []

    def fake_run(train_cfg, model_cfg, progress=None, heldout=None):
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
    row = execute.execute(p, spec, tmp_path, "shakespeare", {}, write=True)
    assert row["status"] == "diverged" and "nan" in row["error"]
    again = execute.execute(p, spec, tmp_path, "shakespeare", {}, write=True)
    assert again["skipped"] and again["status"] == "diverged" and len(calls) == 1


def test_interrupted_run_writes_no_result(tmp_path, monkeypatch):
    _fake_train(monkeypatch, "preempt")
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["standard"])[0]
    row = execute.execute(p, spec, tmp_path, "shakespeare", {}, write=True)
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


def _row(p, mode, role, size, lr, seed, loss, rng, difficulty, budget=1.0) -> dict:
    total, n = param_counts(protocol.model_config(p, size, mode))
    steps, tokens = protocol.token_budget(p, n, budget)
    per_seq = loss + difficulty + rng.normal(0, 0.02, difficulty.size)
    val = loss + (math.log2(lr / 8e-3)) ** 2 / 20 + rng.normal(0, 0.003)
    return {
        "mode": mode,
        "role": role,
        "size": size.name,
        "seed": seed,
        "budget": budget,
        "lr": lr,
        "status": "ok",
        "params": total,
        "non_embedding_params": n,
        "d_model": size.d_model,
        "n_layers": size.n_layers,
        "tokens": tokens,
        "steps": steps,
        "val_loss": val,
        "val_loss_per_sequence": [val] * 4,
        "test_loss": float(per_seq.mean()),
        "test_loss_per_sequence": per_seq.tolist(),
        "test_loss_per_position": list(np.linspace(loss + 1, loss - 0.2, 8)),
        "run_dir": f"runs/{mode}/{size.name}-lr{lr:.3g}-x{budget:g}-s{seed}",
        "wall_s": 2.0,
        "cpu_s": 1.5,
        "load_start": [1.0, 1.0, 1.0],
    }


def _synthetic_doc(gap_per_decade: float = 0.02) -> dict:
    """A results document as run_study + analyze would make it, from a known law: the myopic
    gap grows by ``gap_per_decade`` and shrinks by 0.01 per doubling of the token budget."""
    p = dataclasses.replace(STUDY_PRESETS["cpu"], n_boot=40, n_boot_fit=10)
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 0.4, 48)
    n0 = param_counts(protocol.model_config(p, p.sizes[0], "standard"))[1]
    seed_effect = rng.normal(0, 0.003, (len(p.sizes), len(p.seeds)))

    def loss(mode, size, seed, budget=1.0):
        n = param_counts(protocol.model_config(p, size, mode))[1]
        k = p.sizes.index(size)
        gap = gap_per_decade * math.log10(n / n0) + 0.02 - 0.01 * math.log2(budget)
        return 1.5 + 40 * n**-0.35 + (gap if mode == "myopic" else 0) + seed_effect[k, seed]

    runs = []
    for mode in ("standard", "myopic"):
        for lr in p.lrs:
            for seed in p.seeds:
                runs.append(
                    _row(
                        p,
                        mode,
                        "sweep",
                        p.proxy,
                        lr,
                        seed,
                        loss(mode, p.proxy, seed),
                        rng,
                        difficulty,
                    )
                )
        for size in p.sizes:
            for seed in p.seeds:
                if size == p.proxy:
                    sweep = next(
                        r
                        for r in runs
                        if r["lr"] == 8e-3
                        and r["seed"] == seed
                        and r["mode"] == mode
                        and r["role"] == "sweep"
                    )
                    runs.append({**sweep, "role": "size", "same_run_as_sweep": True})
                    continue
                runs.append(
                    _row(p, mode, "size", size, 8e-3, seed, loss(mode, size, seed), rng, difficulty)
                )
        ut = next(s for s in p.sizes if s.name == p.undertrain_size)
        for f in p.undertrain_factors:
            for seed in p.seeds:
                runs.append(
                    _row(
                        p,
                        mode,
                        "undertrain",
                        ut,
                        8e-3,
                        seed,
                        loss(mode, ut, seed, f),
                        rng,
                        difficulty,
                        float(f),
                    )
                )
        for lr in protocol.transfer_lrs(p, 8e-3):
            for seed in p.seeds[: p.transfer_seeds]:
                big = p.sizes[-1]
                runs.append(
                    _row(p, mode, "transfer", big, lr, seed, loss(mode, big, seed), rng, difficulty)
                )
    result = analysis.analyze(p, ["standard", "myopic"], runs)
    env = environment()
    return analysis.results_document(
        p,
        ["standard", "myopic"],
        runs,
        result,
        command="cmd",
        wall_s=12.0,
        cpu_s=10.0,
        env_start=env,
        data="shakespeare",
        trained=10,
    )


def test_analysis_recovers_the_simulated_answers_and_report_matches(tmp_path, synthetic_doc):
    doc = synthetic_doc
    an = doc["analysis"]
    assert an["sweeps"]["myopic"]["chosen_lr"] == 8e-3 and not an["sweeps"]["myopic"]["at_edge"]
    gap = an["gaps"]["myopic"]
    sl = gap["slope_per_decade"]
    assert sl["lo"] <= 0.02 <= sl["hi"] and sl["lo"] > 0
    assert all(lo <= hi for lo, hi in zip(gap["gap"]["lo"], gap["gap"]["hi"]))
    assert np.array(gap["per_seed"]).shape == (len(gap["sizes"]), 3)
    assert an["answer"]["verdict"] == "grows with size"
    ut = an["undertrain"]["modes"]["myopic"]
    assert ut["gap_change"]["hi"] < 0 and an["undertrain"]["factors"] == [1.0, 2.0, 4.0]
    assert ut["gap"]["point"][0] == pytest.approx(ut["gap"]["point"][2] + 0.02, abs=0.01)
    tr = an["transfer"]["myopic"]
    assert tr["complete"] and tr["own_optimum"] == 8e-3 and tr["within_one_step"] is True
    fit = an["fit"]
    assert fit["params"]["alpha[standard]"]["point"] > 0 and "E" in fit["params"]
    plots = plot_all(doc, tmp_path)
    assert set(plots) == set(PLOTS.values())
    assert all((tmp_path / f).stat().st_size > 5000 for f in plots)
    report = render_report(doc, plots)
    assert report.splitlines()[2].startswith("**Answer: ") and "95% CI" in report.splitlines()[2]
    for r in doc["runs"]:
        if not r.get("same_run_as_sweep"):
            assert f"{r['test_loss']:.4f}" in report
    assert f"{sl['point']:+.4f} nats per decade" in report
    assert "## Caveats" in report and "below Chinchilla's 20" in report
    for name in plots:
        assert f"]({name})" in report


def test_transfer_check_verdicts():
    p = STUDY_PRESETS["cpu"]
    sweeps = {"m": {"chosen_lr": 8e-3}}

    def rows(losses):
        return [
            {
                "mode": "m",
                "size": p.sizes[-1].name,
                "role": "size" if lr == 8e-3 else "transfer",
                "seed": 0,
                "lr": lr,
                "status": "ok",
                "val_loss": v,
            }
            for lr, v in zip((4e-3, 8e-3, 1.6e-2), losses)
        ]

    at = analysis._transfer
    assert at(p, rows((2.0, 1.9, 2.1)), ["m"], sweeps)["m"]["within_one_step"] is True
    edge = at(p, rows((1.8, 1.9, 2.1)), ["m"], sweeps)["m"]
    assert edge["within_one_step"] is None and edge["own_optimum_at_local_edge"]
    assert not at(p, rows((1.8, 1.9, 2.1))[:2], ["m"], sweeps)["m"]["complete"]


def test_fit_parameter_on_a_bound_is_flagged_in_the_report(synthetic_doc):
    doc = json.loads(json.dumps(synthetic_doc))
    doc["analysis"]["fit"]["at_bounds"] = ["E"]
    report = render_report(doc, [])
    assert "Parameters on a bound: E" in report and "not a finding" in report
    doc["analysis"]["sweeps"]["myopic"]["at_edge"] = True
    assert "at the grid's edge" in render_report(doc, [])


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "a" / "x.json"
    write_json(path, {"k": 1})
    assert json.loads(path.read_text()) == {"k": 1}
    assert not list(path.parent.glob("*.tmp"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / execute.RESULT_FILE).write_text("{not json")
    assert execute.load_result(tmp_path / "bad") is None


def test_report_only_collects_finished_runs_without_training(tmp_path, monkeypatch):
    from myojax import train
    from myojax.train.monitor import StopFlag

    monkeypatch.setattr(train, "run", lambda *a, **k: pytest.fail("report-only trained"))
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["standard"])[1]
    row = {
        "status": "ok",
        "mode": "standard",
        "role": "sweep",
        "size": spec.size.name,
        "lr": spec.lr,
        "steps": spec.steps,
        "seed": spec.seed,
        "d_model": 16,
        "n_layers": 1,
    }
    write_json(spec.run_dir(tmp_path) / execute.RESULT_FILE, row)
    rows, finished = execute.run_study(
        p,
        ["standard"],
        tmp_path,
        data="shakespeare",
        write=False,
        stop=StopFlag(),
        say=lambda _: None,
        train=False,
    )
    assert rows == [row] and not finished


def test_a_gap_that_peaks_before_the_largest_size_is_a_caveat(synthetic_doc):
    """Negative control: the simulated gap grows with size, so no shape caveat; planting a
    peak at the second size makes one that names the peak and the fall after it."""
    from experiments.scaling.report import caveats

    assert not any("not monotone" in c for c in caveats(synthetic_doc))
    doc = json.loads(json.dumps(synthetic_doc))
    g = doc["analysis"]["gaps"]["myopic"]
    k = len(g["sizes"])
    g["gap"]["point"] = [0.0, 0.3] + [0.3 - 0.05 * i for i in range(1, k - 1)]
    (shape,) = [c for c in caveats(doc) if "not monotone" in c]
    assert f"largest at {g['sizes'][1]} (+0.3000)" in shape
    assert "smaller at every larger size" in shape
