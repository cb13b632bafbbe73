"""The self-training grid: pools honour the mix, generation k+1 trains on generation k's
samples, and the command writes its files (a 2-generation grid of 1-layer models, ~10 s)."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.self_training import grid, report
from experiments.self_training.__main__ import main
from myojax import cli
from myojax.data import corpus

RESULTS = Path(__file__).parents[1] / "results"

TINY = dict(
    seeds=1,
    generations=2,
    modes=("standard", "myopic"),
    d_model=16,
    n_layers=1,
    n_heads=2,
    seq_len=16,
    steps=8,
    batch_size=8,
    pool_windows=16,  # 8 steps x 8 windows = 4 epochs of the pool
    metric_rows=16,
    eval_windows=16,
)


def test_batch_indices_visit_every_pool_window_equally_often():
    ds = grid.batch_indices(pool_size=10, steps=5, batch_size=4, seed=0)
    seen = np.concatenate([ds[i] for i in range(5)])
    np.testing.assert_array_equal(np.bincount(seen, minlength=10), np.full(10, 2))


def test_build_pool_keeps_every_window_and_marks_the_sampled_ones():
    sampled = np.full((3, 5), 7, np.uint8)
    human = np.arange(10, dtype=np.uint8).reshape(2, 5)
    pool, is_sampled = grid.build_pool(sampled, human, seed=1)
    assert is_sampled.sum() == 3 and len(pool) == 5
    assert (pool[is_sampled] == 7).all()
    np.testing.assert_array_equal(np.sort(pool[~is_sampled], axis=0), human)


def test_bad_arguments_exit_2(capsys):
    assert cli.run(main, ["--seeds", "0"]) == 2
    assert "seeds" in capsys.readouterr().err
    assert cli.run(main, ["--mixes", "0,1.5"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--mixes", "half"])
    assert e.value.code == 2


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("self_training")
    flags = [f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
             for k, v in TINY.items()]  # fmt: skip
    assert main(["--out", str(out), *flags]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_smoke_writes_results_plot_and_report(smoke):
    out, results = smoke
    assert (out / "self_training.png").stat().st_size > 10_000
    assert "## What this does not show" in (out / "report.md").read_text()
    # gen 0 once per mode, then one model per mix per mode
    assert len(results["records"]) == 2 * (1 + 3)
    for r in results["records"]:
        for f in ("pool.npy", "pool_is_sampled.npy", "samples.npy", "record.json"):
            assert (Path(r["dir"]) / f).is_file()
        assert np.isfinite(r["val_loss"]) and np.isfinite(r["self_loss"])


def test_smoke_pools_and_seen_windows_honour_the_mix(smoke):
    _, results = smoke
    seen_total = TINY["steps"] * TINY["batch_size"]
    for r in results["records"]:
        mix = 0.0 if r["generation"] == 0 else r["mix"]
        assert r["pool_sampled"] == round(mix * TINY["pool_windows"])
        assert r["pool_sampled"] + r["pool_human"] == TINY["pool_windows"]
        assert r["windows_seen_sampled"] == mix * seen_total
        assert r["windows_seen_human"] == (1 - mix) * seen_total


def test_smoke_generation_1_trains_on_generation_0_samples(smoke):
    _, results = smoke
    human_text = corpus.load().train.tobytes()
    for r in results["records"]:
        if r["generation"] == 0:
            assert r["trained_on_samples_of"] is None
            continue
        parent = Path(r["trained_on_samples_of"])
        assert parent.parent.name == "gen0" and f"/{r['mode']}/" in str(parent)
        parent_samples = np.load(parent)
        pool = np.load(Path(r["dir"]) / "pool.npy")
        is_sampled = np.load(Path(r["dir"]) / "pool_is_sampled.npy")
        n_s = r["pool_sampled"]
        # the sampled windows are exactly the first n_s rows the parent sampled
        want = sorted(map(bytes, parent_samples[:n_s]))
        assert sorted(map(bytes, pool[is_sampled])) == want
        # the others are windows of the human training text
        assert all(bytes(w) in human_text for w in pool[~is_sampled])
    # negative control: the parent's samples are not human text
    gen0 = next(r for r in results["records"] if r["generation"] == 0)
    samples = np.load(Path(gen0["dir"]) / "samples.npy")
    assert sum(bytes(w) in human_text for w in samples) < len(samples) // 2


def test_from_json_rewrites_the_page_without_training(smoke, tmp_path):
    out, results = smoke
    assert main(["--out", str(tmp_path), "--from-json", str(out / "results.json")]) == 0
    page = (tmp_path / "report.md").read_text()
    assert results["meta"]["command"] in page and "--d-model=16" in results["meta"]["command"]
    assert "rewritten from its results file by `python -m experiments.self_training" in page
    assert (tmp_path / "self_training.png").is_file()
    assert not (tmp_path / "standard").exists()  # nothing was trained
    missing = ["--out", str(tmp_path), "--from-json", str(tmp_path / "missing.json")]
    assert cli.run(main, missing) == 2


def test_the_committed_page_renders_byte_for_byte_from_its_json(monkeypatch):
    """The published page is the report of its JSON (including the rewrite note it records);
    negative control: without the held-out works named (the old split filter found none), the
    page differs."""
    results = json.loads((RESULTS / "self_training.json").read_text())
    page = report.report(results, "../docs/figures/")
    assert page == (RESULTS / "self_training.md").read_text()
    first, second = report.held_out_halves()
    assert first.startswith("Julius Caesar") and "The Tempest" in second
    monkeypatch.setattr(report, "held_out_halves", lambda: ("", ""))
    assert report.report(results, "../docs/figures/") != page
