from experiments import bench
from myojax.config import ModelConfig

CFG = ModelConfig(vocab_size=32, seq_len=16, d_model=32, n_layers=2, n_heads=2)


def test_myopic_steps_compile_to_no_more_matmuls_than_standard():
    """The sg(h)·W and h·sg(W) copies of the QKV projection must be merged by XLA (no second
    projection), and myopic_kv's backward must drop the past key/value matmuls."""
    costs = bench.compiled_costs(CFG, batch_size=2)
    assert costs["myopic"]["dot_ops"] == costs["standard"]["dot_ops"]
    assert costs["myopic_kv"]["dot_ops"] < costs["standard"]["dot_ops"]
    assert costs["myopic"]["flops"] <= 1.02 * costs["standard"]["flops"]


def test_costs_are_per_step_not_one_scanned_layer():
    """XLA counts a scanned layer once; --costs must count every layer (issue 12)."""
    one, two = (
        bench.compiled_costs(CFG.replace(n_layers=n), batch_size=2, modes=["standard"])["standard"]
        for n in (1, 2)
    )
    assert two["while_loops"] == 0
    assert two["flops"] > 1.8 * one["flops"]  # the layers dominate this config's FLOPs
    assert two["dot_ops"] - one["dot_ops"] == one["dot_ops"] - 3 > 0  # 3 dots in embed/head


def test_bench_reports_every_mode_and_the_ratios():
    result = bench.bench(CFG, batch_size=2, rounds=1, steps_per_round=1)
    assert set(result["modes"]) == {"standard", "myopic", "myopic_kv"}
    std = result["modes"]["standard"]["step_ms"]
    assert result["ratio_myopic"] == result["modes"]["myopic"]["step_ms"] / std
    assert all(row["tokens_per_s"] > 0 and row["mfu"] > 0 for row in result["modes"].values())
