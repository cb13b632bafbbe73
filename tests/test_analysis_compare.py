"""Run comparison: token classes, bootstrap intervals (with a planted difference and a null),
config differences, and the command line on a real run directory."""

import json

import numpy as np

from myojax.analysis import compare as cmp

FIXTURE = "tests/fixtures/run-v0.1-myopic"


def test_byte_classes():
    tokens = np.frombuffer(b"aZ 7,\n\xe9", np.uint8)
    names = [cmp.BYTE_CLASSES[i] for i in cmp.byte_class(tokens)]
    assert names == ["letter", "letter", "space", "digit", "punctuation", "newline", "other"]


def test_frequency_buckets_rank_by_training_counts():
    counts = np.zeros(20_000, np.int64)
    counts[5] = 10**6  # the most frequent token
    counts[:2000] += 1
    names = [cmp.FREQUENCY_BUCKETS[i][1] for i in cmp.frequency_bucket([5, 1500, 19_999], counts)]
    assert names == ["top-100", "1k-10k", "rarer"]


def test_bootstrap_finds_a_planted_class_difference_and_not_a_null():
    rng = np.random.default_rng(0)
    n, t = 200, 32
    classes = rng.integers(0, 3, (n, t))
    a = rng.normal(2.0, 0.5, (n, t))
    b = a + rng.normal(0.0, 0.5, (n, t)) + 0.3 * (classes == 1)  # B worse on class 1 only
    report = cmp.loss_differences(a, b, classes, ("x", "y", "z"), resamples=500)
    y, x = report["by_class"]["y"], report["by_class"]["x"]
    assert y["ci95"][0] > 0.2 and y["ci95"][1] < 0.4
    assert x["ci95"][0] < 0 < x["ci95"][1]  # null class: the interval covers zero
    assert report["overall"]["ci95"][0] < report["overall"]["diff"] < report["overall"]["ci95"][1]
    assert len(report["by_position"]["diff"]) == t
    same = cmp.loss_differences(a, a, classes, ("x", "y", "z"), resamples=200)
    assert same["overall"]["diff"] == 0.0 and same["overall"]["ci95"] == [0.0, 0.0]


def test_config_differences_ignore_layout():
    a = {"train": {"seed": 0, "out": "r1", "mesh": "data=-1"}, "model": {"gradient_mode": "a"}}
    b = {"train": {"seed": 0, "out": "r2", "mesh": "data=2"}, "model": {"gradient_mode": "b"}}
    assert cmp.config_differences(a, b) == ["model.gradient_mode: 'a' -> 'b'"]


def test_cli_on_a_run(tmp_path, capsys):
    from myojax import cli
    from myojax.compare import main

    assert main([FIXTURE, FIXTURE, "--out", str(tmp_path), "--max-sequences", "16"]) == 0
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["overall"]["diff"] == 0.0 and saved["config_differences"] == []
    assert saved["sequences"] == 16 and (tmp_path / "compare.png").stat().st_size > 1000
    assert "B − A" in capsys.readouterr().out
    assert cli.run(main, [FIXTURE, FIXTURE, "--split", "nope", "--out", str(tmp_path)]) == 2
    assert "not available" in capsys.readouterr().err


def test_runs_are_compared_on_the_held_out_windows_of_the_evaluation_module():
    """The windows are ``myojax.evaluation.heldout_windows`` of the split with the fixed seed,
    and the per-token losses are its ``token_losses``."""
    from myojax import evaluation
    from myojax.analysis.runs import open_run
    from myojax.data import load_data

    report = cmp.compare_runs(FIXTURE, FIXTURE, max_sequences=8, resamples=100)
    run = open_run(FIXTURE)

    def mean_loss(seed: int) -> float:
        (windows,) = evaluation.heldout_windows(
            load_data("shakespeare").val,
            seq_len=run.model_config.seq_len,
            batch_size=8,
            num_batches=1,
            seed=seed,
        )
        return float(evaluation.token_losses(run.model, [windows]).astype(np.float64).mean())

    assert report["overall"]["loss_a"] == mean_loss(cmp.WINDOW_SEED)
    assert report["overall"]["loss_a"] != mean_loss(cmp.WINDOW_SEED + 1)  # control
