"""experiments/scaling/pods.py: the per-run pod plan of ``--dry-run --accelerator``."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.scaling import plan, pods, protocol
from experiments.scaling.__main__ import main
from experiments.scaling.protocol import STUDY_PRESETS, size_specs
from myojax.model import train_flops_per_token
from myojax.sharding.memory_plan import GIB

GPT2 = STUDY_PRESETS["gpt2"]


def test_accelerator_table_has_the_required_slices() -> None:
    assert {"v4-32", "v5e-64", "v5p-128", "8xh100"} <= set(pods.ACCELERATORS)
    for acc in pods.ACCELERATORS.values():
        assert acc.devices > 0 and acc.hbm_gib > 0 and acc.peak_bf16_tflops > 0


def test_dry_run_prints_a_layout_per_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--preset", "gpt2", "--modes", "myopic", "--dry-run", "--accelerator", "v4-32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pod plan on v4-32 (TPU v4, 16 chips: 32.0 GiB and 275 TFLOP/s dense float32" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("myopic ")]
    rows = [r for r in rows if "data=" in " ".join(r)]
    # every run the study trains: the plain plan's runs, undertraining and transfer included
    assert len(rows) == protocol.n_runs(GPT2, ["myopic"])
    assert {r[1] for r in rows} == {"sweep", "size", "undertrain", "transfer"}
    for spec in size_specs(GPT2, "myopic", 0.0):
        same = [r for r in rows if r[2] == spec.size.name and r[1] == "size"]
        if spec.size == GPT2.proxy:  # its size runs are sweep runs
            continue
        assert len(same) == len(GPT2.seeds) and all(r[4:] == same[0][4:] for r in same)
        row = same[0]
        mesh, micro, remat, gib, hbm, hours = row[4:10]
        plan = pods.plan_run(
            spec.model, spec.steps, GPT2.batch_size, pods.ACCELERATORS["v4-32"], 0.4
        )
        assert plan is not None and (mesh, int(micro), remat) == (
            plan.mesh,
            plan.microbatches,
            plan.remat,
        )
        assert float(gib) <= 0.9 * float(hbm)  # fits with the planner's headroom
        assert float(gib) == pytest.approx(plan.plan.total() / GIB, abs=0.006)
        flops = train_flops_per_token(spec.model) * spec.tokens
        expected = flops * (1 + pods.recompute_fraction(spec.model, remat)) / (16 * 275e12 * 0.4)
        assert float(hours) == pytest.approx(expected / 3600, abs=0.006)


def test_search_prefers_no_remat_then_least_sharding() -> None:
    v4 = pods.ACCELERATORS["v4-32"]
    by_name = {s.size.name: s for s in size_specs(GPT2, "standard", 0.0)}
    small, xl = by_name["gpt2-117m"], by_name["gpt2-1.5b"]
    a = pods.plan_run(small.model, 10, 512, v4, 0.4)
    b = pods.plan_run(xl.model, 10, 512, v4, 0.4)
    assert a is not None and a.mesh == "data=16,fsdp=1" and a.remat == "none"
    # 1.5B with replicated AdamW state (25 GB) cannot fit a 32 GiB chip: FSDP is needed.
    assert b is not None and b.plan.fsdp > 1 and b.fits


def test_nothing_fits_a_tiny_device() -> None:
    tiny = dataclasses.replace(pods.ACCELERATORS["v5e-64"], hbm_gib=0.01)
    spec = size_specs(GPT2, "standard", 0.0)[-1]
    assert pods.plan_run(spec.model, 10, 512, tiny, 0.4) is None


def test_unknown_accelerator_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--preset", "gpt2", "--dry-run", "--accelerator", "v9-1"])
    assert e.value.code == 2 and "invalid choice: 'v9-1'" in capsys.readouterr().err


def test_recompute_fraction_orders_policies() -> None:
    config = size_specs(GPT2, "standard", 0.0)[0].model
    none, dots, full = (pods.recompute_fraction(config, r) for r in ("none", "dots", "full"))
    assert none == 0 < dots < full < 1 / 3 + 1e-9  # a full forward is at most a third


def _total_line(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("total:") and "hours on one" in ln]
    return line


@pytest.mark.parametrize("accelerator", ["v4-32", "8xh100"])
def test_pod_plan_totals_agree_with_the_plain_plan(
    accelerator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 30, defect 8: the pod plan left out the undertraining and transfer runs (24 of 84
    on gpt2); its totals now count every run and its FLOPs equal the plain plan's."""
    modes = ["myopic", "standard"]
    assert main(["--preset", "gpt2", "--dry-run", "--accelerator", accelerator]) == 0
    out = capsys.readouterr().out
    plain_flops = sum(flops for _, flops in plan.planned_runs(GPT2, modes))
    line = _total_line(out)
    assert line.startswith(f"total: {protocol.n_runs(GPT2, modes)} runs, {plain_flops:.3e} ")
    acc = pods.ACCELERATORS[accelerator]
    rows = pods.pod_plan_rows(GPT2, modes, acc, 0.4)
    assert all(row is not None for _, row in rows)
    hours = sum(row.hours for _, row in rows if row is not None)
    assert f"{hours:,.1f} hours on one {accelerator}" in line
    # the sweep and size runs alone (the old total) are well short of it
    partial = sum(row.hours for s, row in rows if row and s.role in ("sweep", "size"))
    assert partial < 0.5 * hours


def test_float32_preset_uses_the_tf32_peak_on_h100() -> None:
    """Issue 30, defect 8: gpt2 trains in float32, which runs at TF32 (half the bf16 peak) on
    an H100; on TPU float32 matmuls use bf16 passes at JAX's default precision."""
    h100, v4 = pods.ACCELERATORS["8xh100"], pods.ACCELERATORS["v4-32"]
    assert GPT2.compute_dtype == "float32"
    assert h100.peak_tflops("float32") == pytest.approx(h100.peak_bf16_tflops / 2, rel=0.01)
    assert v4.peak_tflops("float32") == v4.peak_bf16_tflops
    spec = size_specs(GPT2, "myopic", 0.0)[0]
    f32 = pods.plan_run(spec.model, spec.steps, GPT2.batch_size, h100, 0.4)
    bf16_model = spec.model.replace(compute_dtype="bfloat16")
    bf16 = pods.plan_run(bf16_model, spec.steps, GPT2.batch_size, h100, 0.4)
    assert f32 is not None and bf16 is not None
    assert f32.hours == pytest.approx(2 * bf16.hours, rel=0.02)
    with pytest.raises(ValueError, match="no peak for compute dtype 'float16'"):
        h100.peak_tflops("float16")
