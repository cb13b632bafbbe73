"""experiments.bench.matmuls: the train step's matmul problems, timed alone in XLA and torch."""

import importlib.util

from experiments.bench import matmuls as bench_matmuls
from experiments.bench.__main__ import main
from myojax.config import ModelConfig
from myojax.model import train_flops_per_token

CFG = ModelConfig(vocab_size=32, seq_len=16, d_model=32, n_layers=2, n_heads=2)
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_the_problems_add_up_to_the_mfu_formula():
    """Every matmul of a step is listed with its count: their FLOPs are exactly the MFU
    formula's, less its 6 FLOPs per token for each bias and LayerNorm parameter (it counts every
    non-embedding parameter as a matmul weight)."""
    for cfg, batch in ((CFG, 4), (CFG.replace(d_model=64, n_heads=4, seq_len=32), 3)):
        problems = bench_matmuls.step_problems(cfg, batch)
        total = sum(p.flops * p.per_step for p in problems)
        tokens, d = batch * cfg.seq_len, cfg.d_model
        vectors = cfg.n_layers * (9 * d + cfg.ff_dim) + 2 * d  # biases, LayerNorm gains/biases
        assert total + 6 * tokens * vectors == train_flops_per_token(cfg) * tokens


def test_the_cli_times_each_problem_and_writes_its_section(capsys, tmp_path):
    out = tmp_path / "core.md"
    argv = "--matmuls --batch-size 2 --seq-len 16 --d-model 32 --n-layers 2 --n-heads 2"
    argv = [*argv.split(), "--vocab-size", "32", "--out", str(out)]
    assert main(argv + (["--peer", "torch"] if HAS_TORCH else [])) == 0
    text = out.read_text()
    for p in bench_matmuls.step_problems(CFG, 2):
        assert f"| {p.name} |" in text
    assert "XLA" in capsys.readouterr().out
    assert ("torch / XLA" in text) == HAS_TORCH


def test_timings_are_positive_and_flops_match_the_shape():
    p = bench_matmuls.Problem("x", 3, 8, 4, 5, 1)
    assert p.flops == 2 * 3 * 8 * 4 * 5
    timed = bench_matmuls.time_problem(p, repeats=2, with_torch=HAS_TORCH)
    assert all(v > 0 for v in timed.values()) and ("torch_s" in timed) == HAS_TORCH
