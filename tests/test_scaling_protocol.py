"""experiments.scaling.protocol: presets, token budgets, parameter counts against
``jax.eval_shape``, the run specs of the plan and the train config of a run."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import pytest

from experiments.scaling import protocol
from experiments.scaling.protocol import STUDY_PRESETS
from myojax.model import GPT, param_counts
from myojax.presets import model_preset as gpt2_preset


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


def test_mesh_reaches_the_train_config(tmp_path):
    p = STUDY_PRESETS["smoke"]
    spec = protocol.sweep_specs(p, ["standard"])[0]
    cfg = protocol.train_config(p, spec, tmp_path, "shakespeare", mesh="data=1,fsdp=1")
    assert cfg.mesh == "data=1,fsdp=1" and cfg.steps == spec.steps and cfg.lr == spec.lr


def test_smoke_full_plans_every_role_on_the_smoke_ladder():
    """smoke-full is smoke plus both checks: every run role, so the multi-process test goes
    through them all; smoke alone plans neither check (the negative control)."""
    smoke, full = STUDY_PRESETS["smoke"], STUDY_PRESETS["smoke-full"]
    modes = ["standard", "myopic"]
    plan = protocol.plan_specs(full, modes)
    assert {s.role for s in plan} == set(protocol.ROLES)
    assert {s.role for s in protocol.plan_specs(smoke, modes)} == {"sweep", "size"}
    assert len(plan) == protocol.n_runs(full, modes) == protocol.n_runs(smoke, modes) + 2 * 4
    assert (full.sizes, full.lrs, full.seeds) == (smoke.sizes, smoke.lrs, smoke.seeds)
    under = [s for s in plan if s.role == "undertrain"]
    assert {(s.size.name, s.budget) for s in under} == {("L1w16", 2.0)}
    transfer = protocol.transfer_specs(full, "myopic", 4e-3)
    assert sorted(s.lr for s in transfer) == [1e-3, 1.6e-2] and {s.seed for s in transfer} == {0}
