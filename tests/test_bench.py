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


def test_bench_reports_every_mode_and_the_ratios():
    result = bench.bench(CFG, batch_size=2, rounds=1, steps_per_round=1)
    assert set(result["modes"]) == {"standard", "myopic", "myopic_kv"}
    std = result["modes"]["standard"]["step_ms"]
    assert result["ratio_myopic"] == result["modes"]["myopic"]["step_ms"] / std
    assert all(row["tokens_per_s"] > 0 and row["mfu"] > 0 for row in result["modes"].values())
