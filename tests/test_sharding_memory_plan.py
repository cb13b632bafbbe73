"""myojax.sharding.memory_plan: per-device bytes checked against a hand computation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from myojax import cli
from myojax.presets import model_preset as preset
from myojax.sharding import MeshConfig
from myojax.sharding.__main__ import main
from myojax.sharding.memory_plan import activation_bytes, format_plan, make_plan

GIB = 2**30

# Hand computation for gpt2-1.5b (L=48, D=1600, F=6400, H=25, V=50257, T=1024), float32,
# fsdp=32, one sequence per device.
L, D, F, H, V, T = 48, 1600, 6400, 25, 50257, 1024
LAYER = 12 * D * D + 13 * D  # w_qkv, w_out, w_fc, w_proj + 2 LayerNorms and 4 biases
TOTAL = V * D + T * D + L * LAYER + 2 * D  # + token / position embeddings, final LayerNorm
REPLICATED = 2 * D  # only the final LayerNorm (1600 elements) is under the 2**16 threshold
PARAMS = ((TOTAL - REPLICATED) // 32 + REPLICATED) * 4  # every other leaf splits 32 ways
ADAM = 2 * PARAMS + 4  # m and v, plus the int32 step count
# one layer's weights and gradient; the embeddings gathered, transposed and two gradients
GATHER = (2 * LAYER + 4 * (V * D + T * D + 2 * D)) * 4
HEAD = 3 * V * 4  # logits, softmax, their gradient
BLOCK = (8 * D + 2 * F) * 4 + H * T * (3 * 4 + 1)  # linear terms; T x T scores 3x f32 + a mask
ACT = {
    "none": T * (L * BLOCK + HEAD),
    "full": T * (L * D * 4 + max(BLOCK, HEAD)),
    "dots": T * (L * (D * 4 + (5 * D + F) * 4) + max(BLOCK, HEAD)),
}


def test_gpt2_xl_fsdp32_matches_hand_computation() -> None:
    assert TOTAL == 1_557_611_200
    plan = make_plan(preset("gpt2-1.5b"), MeshConfig.parse("fsdp=32"), device_memory_gib=32)
    assert (plan.data, plan.fsdp, plan.batch_size, plan.seqs_per_device) == (1, 32, 32, 1)
    assert plan.n_params == TOTAL
    assert plan.params == PARAMS == 194_713_800
    assert plan.optimizer == ADAM
    assert plan.gradients == PARAMS
    assert plan.gather == GATHER
    assert plan.activations == ACT
    assert ACT["none"] == 22_008_508_416  # ~20.5 GiB without remat
    assert plan.accumulator == 0 and plan.microbatches == 1
    assert plan.total("none") == PARAMS + ADAM + PARAMS + GATHER + ACT["none"]
    assert plan.usable == int(0.9 * 32 * GIB)
    assert plan.fits("none") and plan.fits("full")


def test_data_parallel_replicates() -> None:
    plan = make_plan(
        preset("gpt2-1.5b"), MeshConfig.parse("data=8"), batch_size=64, device_memory_gib=32
    )
    assert plan.params == TOTAL * 4 and plan.gather == 0  # replicated: the full model per device
    assert plan.optimizer == 2 * TOTAL * 4 + 4
    assert plan.activations["none"] == 8 * ACT["none"]  # 8 sequences per device
    # 25 GB of parameters, Adam state and gradients per device: FSDP is what makes 1.5B fit.
    assert not any(plan.fits(r) for r in ("none", "dots", "full"))


def test_remat_is_what_fits() -> None:
    plan = make_plan(
        preset("gpt2-345m"), MeshConfig.parse("data=8"), batch_size=64, device_memory_gib=32
    )
    assert not plan.fits("none") and plan.fits("full")


def test_remat_orders_activations() -> None:
    config = preset("gpt2-117m")
    none, dots, full = (activation_bytes(config, 4, r) for r in ("none", "dots", "full"))
    assert full < dots < none
    with pytest.raises(ValueError, match="remat must be one of"):
        activation_bytes(config, 4, "some")


def test_plan_errors() -> None:
    with pytest.raises(ValueError, match="give the device count"):
        make_plan(preset("gpt2-117m"), MeshConfig.parse("data=-1"))
    with pytest.raises(ValueError, match="positive multiple of data\\*fsdp = 2\\*4 = 8"):
        make_plan(preset("gpt2-117m"), MeshConfig.parse("data=2,fsdp=4"), batch_size=12)


def test_negative_device_memory_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A negative budget used to print both DOES NOT FIT and "fits"."""
    argv = ["plan", "--preset", "gpt2-117m", "--mesh", "data=1", "--device-memory"]
    for bad in ("-5", "0", "nan"):
        assert cli.run(main, [*argv, bad]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("error: --device-memory must be a positive number of GiB")
    assert main([*argv, "5"]) == 0  # control: a real budget still plans


def test_cli_prints_budget(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "plan",
                "--preset",
                "gpt2-1.5b",
                "--mesh",
                "fsdp=32",
                "--device-memory",
                "32",
                "--batch-size",
                "256",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "mesh data=1,fsdp=32 (32 devices)" in out
    assert "8 sequence(s) per device" in out
    assert f"{PARAMS:,}" in out and f"{8 * ACT['none']:,}" in out
    assert "budget 32.00 GiB per device, 28.80 GiB usable" in out
    assert "-> DOES NOT FIT" in out and "fits with remat=full" in out
    assert cli.run(main, ["plan", "--preset", "gpt2-117m", "--mesh", "data=3,fsdp=x"]) == 2
    assert "bad mesh spec" in capsys.readouterr().err


def test_model_flags_are_the_model_config_fields(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--preset", "gpt2-117m", "--mesh", "data=1"]
    assert main([*argv, "--seq-len", "512", "--remat", "full"]) == 0
    expected = make_plan(
        preset("gpt2-117m", seq_len=512, remat="full"), MeshConfig.parse("data=1"), name="gpt2-117m"
    )
    assert capsys.readouterr().out.strip() == format_plan(expected).strip()
    with pytest.raises(SystemExit):  # negative control: a spelling that is not a field
        main([*argv, "--layers", "2"])


def test_module_entry_point() -> None:
    """The documented command, as a user runs it."""
    cmd = [
        sys.executable,
        "-m",
        "myojax.sharding",
        "plan",
        "--preset",
        "gpt2-1.5b",
        "--mesh",
        "fsdp=32",
        "--device-memory",
        "32",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    assert f"parameters{PARAMS:>42,}" in result.stdout.replace("  parameters", "parameters")
    total = (PARAMS + ADAM + PARAMS + GATHER + ACT["none"]) / GIB
    usable = 0.9 * 32
    assert (
        f"remat=none: {total:.3f} GiB of {usable:.2f} GiB usable ({total / usable:.0%}) -> FITS"
        in (result.stdout)
    )


def test_microbatches_divide_activations_and_add_an_accumulator() -> None:
    config, mesh = preset("gpt2-117m"), MeshConfig.parse("fsdp=32")
    one = make_plan(config, mesh, batch_size=512)
    eight = make_plan(config, mesh, batch_size=512, microbatches=8)
    assert (one.seqs_per_microbatch, eight.seqs_per_microbatch) == (16, 2)
    assert eight.activations["full"] * 8 == one.activations["full"]
    assert eight.accumulator == eight.gradients  # float32 parameters: a float32 running sum
    with pytest.raises(ValueError, match="microbatches \\(3\\) must divide the per-device"):
        make_plan(config, mesh, batch_size=512, microbatches=3)


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_planner_agrees_with_xla_on_a_small_sharded_step() -> None:
    """The planner against XLA's buffer assignment of the trainer's real sharded step (8
    simulated devices, abstract shapes only), for two remat policies; the other policy's plan
    is the negative control: it must miss by more than the tolerance."""
    from experiments.memory_check.check import Case, measure_in_subprocess, planned
    from experiments.memory_plan_page import TOLERANCE

    peaks = {}
    for remat in ("none", "full"):
        case = Case("tiny", "data=2,fsdp=4", 32, 2, remat, min_shard_size=1024)
        result = measure_in_subprocess(case, devices=8, timeout=300)
        assert "error" not in result, result
        peaks[remat] = result["xla"]["peak"]
        plan = planned(case)
        assert plan.fsdp == 4 and plan.seqs_per_microbatch == 2
        assert plan.params < 4 * plan.n_params  # float32 parameters, sharded
        assert abs(plan.total() / peaks[remat] - 1) <= TOLERANCE, (remat, plan.total(), peaks)
    wrong = planned(Case("tiny", "data=2,fsdp=4", 32, 2, "none", min_shard_size=1024))
    assert abs(wrong.total("full") / peaks["none"] - 1) > TOLERANCE
    assert abs(wrong.total("none") / peaks["full"] - 1) > TOLERANCE


def test_memory_page_redraws_from_its_json(tmp_path, capsys) -> None:
    """--from-json rewrites the page from the saved rows (no compile), with the load verdict
    computed from the recorded load; without the JSON it is a one-line usage error."""
    from experiments.memory_check.__main__ import main
    from myojax import cli

    saved = Path(__file__).parents[1] / "results" / "memory_plan.json"
    shutil.copy(saved, tmp_path / "plan.json")
    argv = ["--from-json", str(tmp_path / "plan.json"), "--out", str(tmp_path / "plan.md")]
    assert main(argv) == 0
    page = (tmp_path / "plan.md").read_text()
    assert page == (Path(__file__).parents[1] / "results" / "memory_plan.md").read_text()
    doc = json.loads(saved.read_text())
    for r in doc["rows"]:
        if "compare" in r:
            assert (
                f"{r['xla']['peak'] / GIB:.3f} | {r['compare']['planner_total'] / GIB:.3f}" in page
            )
    shared = doc["meta"]["load_start"][0] > doc["meta"]["cpu_count"]
    assert ("a shared machine" in page) == shared and ("otherwise idle" in page) != shared
    absent = ["--from-json", str(tmp_path / "absent.json"), "--out", str(tmp_path / "absent.md")]
    assert cli.run(main, absent) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --from-json: no such file") and "absent.json" in err
