"""experiments.bench: the train-step benchmark's timing, costs and command line."""

import importlib.util
import json

import pytest

from experiments.bench import timing
from experiments.bench.__main__ import _parser, main
from myojax import cli
from myojax.config import ModelConfig

CFG = ModelConfig(vocab_size=32, seq_len=16, d_model=32, n_layers=2, n_heads=2)


def test_myopic_steps_compile_to_no_more_matmuls_than_standard():
    """The sg(h)·W and h·sg(W) copies of the QKV projection must be merged by XLA (no second
    projection), and myopic_kv's backward must drop the past key/value matmuls."""
    costs = timing.compiled_costs(CFG, batch_size=2)
    assert costs["myopic"]["dot_ops"] == costs["standard"]["dot_ops"]
    assert costs["myopic_kv"]["dot_ops"] < costs["standard"]["dot_ops"]
    assert costs["myopic"]["flops"] <= 1.02 * costs["standard"]["flops"]


def test_costs_are_per_step_not_one_scanned_layer():
    """XLA counts a scanned layer once; --costs must count every layer (issue 12)."""
    one, two = (
        timing.compiled_costs(CFG.replace(n_layers=n), batch_size=2, modes=["standard"])["standard"]
        for n in (1, 2)
    )
    assert two["while_loops"] == 0
    assert two["flops"] > 1.8 * one["flops"]  # the layers dominate this config's FLOPs
    assert two["dot_ops"] - one["dot_ops"] == one["dot_ops"] - 3 > 0  # 3 dots in embed/head


HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_bench_json_reports_every_mode_both_implementations_and_the_peers(capsys, tmp_path):
    """One run through the CLI (with the torch peer when torch is installed): every mode of
    both attention implementations, the myopic ratios per implementation, ratio_vs_jax (and
    ratio_vs_torch) per runner, medians and p10, the machine load; --out writes the table."""
    out = tmp_path / "core.md"
    argv = "--json --batch-size 2 --seq-len 16 --d-model 32 --n-layers 2 --n-heads 2"
    argv += " --vocab-size 32"
    argv = [*argv.split(), "--rounds", "1", "--steps", "1", "--out", str(out)]
    assert main(argv + (["--peer", "torch"] if HAS_TORCH else [])) == 0
    result = json.loads(capsys.readouterr().out)
    modes = ("standard", "myopic", "myopic_kv")
    assert set(result["modes"]) == {*modes, *(f"{m}/reference" for m in modes)}
    for impl, suffix in (("fast", ""), ("reference", "/reference")):
        std = result["modes"][f"standard{suffix}"]["step_ms"]
        for mode in modes[1:]:
            row = result["modes"][f"{mode}{suffix}"]
            assert row["impl"] == impl and row["ratio_to_standard"] == row["step_ms"] / std
            assert result["ratios"][impl][mode] == row["ratio_to_standard"]
    assert result["ratio_myopic"] == result["ratios"]["fast"]["myopic"]
    assert result["ratio_myopic_kv"] == result["ratios"]["fast"]["myopic_kv"]
    rows = result["modes"].values()
    assert all(row["tokens_per_s"] > 0 and row["mfu"] > 0 for row in rows)
    assert all(row["step_ms_p10"] <= row["step_ms"] for row in rows)
    jax_peer = result["jax_peer"]
    assert jax_peer["params"] == result["params"]
    assert all(row["ratio_vs_jax"] == jax_peer["step_ms"] / row["step_ms"] for row in rows)
    assert len(result["environment"]["start"]["load_avg_1_5_15"]) == 3
    text = out.read_text()
    assert "| myojax myopic |" in text and "| myojax myopic (reference) |" in text
    assert "| plain JAX |" in text
    if HAS_TORCH:
        peer = result["peer"]
        assert peer["params"] == result["params"]
        for row in rows:
            assert row["ratio_vs_torch"] == peer["step_ms"] / row["step_ms"]
    else:
        assert all("ratio_vs_torch" not in row for row in rows)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sweep", "width"], "--out"),
        (["--compute-dtype", "float64"], "--compute-dtype"),
        (["--compute-dtype", "int8"], "compute_dtype"),
        (["--batch-size", "0"], "--batch-size"),
        (["--implementations", "fast,slow"], "--implementations"),
        (["--sweep", "width", "--out", "x.md", "--from-json", "missing.json"], "no such file"),
        (["--from-json", "saved.json", "--out", "x.md"], "--sweep"),
    ],
)
def test_bad_requests_are_one_line_errors_with_exit_2(argv, message, capsys):
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [["--sweep", "depth"], ["--peer", "jax"], ["--layers", "2"]])
def test_bad_flags_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_model_flags_are_the_model_configs_own():
    text = _parser().format_help()
    for flag in ("--vocab-size", "--seq-len", "--d-model", "--n-layers", "--n-heads"):
        assert flag in text
    assert "--vocab " not in text and "--heads " not in text


def test_the_accelerator_flags_take_the_gpt2_shape_in_bfloat16():
    from experiments.bench.__main__ import _model_config

    args = _parser().parse_args(["--preset", "gpt2-117m", "--compute-dtype", "bfloat16"])
    cfg = _model_config(args)
    assert (cfg.d_model, cfg.n_layers, cfg.seq_len, cfg.vocab_size) == (768, 12, 1024, 50257)
    assert (cfg.compute_dtype, cfg.param_dtype) == ("bfloat16", "float32")


@pytest.mark.slow  # minutes on a 2-core CI machine: python -m pytest -m slow
def test_rolled_runs_keep_the_scan_rolled_and_get_their_own_section(tmp_path, capsys):
    """--rolled (the before side of the unroll) must not overwrite the default run's table."""
    out = tmp_path / "core.md"
    argv = "--json --batch-size 2 --seq-len 16 --d-model 32 --n-layers 2 --n-heads 2"
    argv += " --vocab-size 32"
    argv = [*argv.split(), "--rounds", "1", "--steps", "1", "--out", str(out)]
    assert main(argv) == 0 and main([*argv, "--rolled"]) == 0
    printed, decoder, results = capsys.readouterr().out, json.JSONDecoder(), []
    while printed.strip():
        result, end = decoder.raw_decode(printed.strip())
        results.append(result)
        printed = printed.strip()[end:]
    assert [r["layer_scan"] for r in results[-2:]] == ["default", "rolled"]
    text = out.read_text()
    assert text.count("<!-- begin bench d32") == 2 and "layer scan kept rolled" in text


@pytest.mark.parametrize("kind", ["width", "seq"])
def test_a_sweep_redrawn_from_its_json_is_the_committed_section(kind, tmp_path):
    """--from-json rewrites results/core.md's sweep section byte for byte from its JSON; a
    different saved command (negative control) changes it."""
    import re
    import shutil
    from pathlib import Path

    results = Path(__file__).parents[1] / "results"
    shutil.copy(results / f"core-sweep-{kind}.json", tmp_path / f"core-sweep-{kind}.json")
    out = tmp_path / "core.md"
    saved = tmp_path / f"core-sweep-{kind}.json"
    assert main(["--sweep", kind, "--from-json", str(saved), "--out", str(out)]) == 0

    def section(path):
        key = f"bench sweep {kind}"
        return re.search(rf"<!-- begin {key} -->\n.*?<!-- end {key} -->", path.read_text(), re.S)[0]

    assert section(out) == section(results / "core.md")
    assert (tmp_path / f"core-sweep-{kind}.png").stat().st_size > 0
    doc = json.loads(saved.read_text())
    saved.write_text(json.dumps({**doc, "command": "python -m experiments.bench --other"}))
    assert main(["--sweep", kind, "--from-json", str(saved), "--out", str(out)]) == 0
    assert section(out) != section(results / "core.md")
