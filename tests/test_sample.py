"""python -m myojax.sample on a real run directory: decodes with the run's tokenizer."""

import shutil
from pathlib import Path

import jax
import pytest

from myojax import checkpoint as ckpt
from myojax import cli
from myojax.analysis.runs import open_run, sample_text
from myojax.sample import main

FIXTURE = "tests/fixtures/run-v0.1-myopic"  # seq_len 16, byte-level


def test_samples_text_from_a_run(capsys):
    assert main([FIXTURE, "--prompt", "KING", "--max-new-tokens", "5", "--num-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "--- sample 1\nKING" in out and "--- sample 2" not in out
    run = open_run(FIXTURE)
    texts = sample_text(run, "KING", max_new_tokens=5, key=jax.random.key(0), num_samples=2)
    assert len(texts) == 2 and all(t.startswith("KING") for t in texts)
    greedy = [
        sample_text(run, "KING", max_new_tokens=5, key=jax.random.key(s), temperature=0)
        for s in (0, 1)
    ]
    assert greedy[0] == greedy[1]  # greedy decoding ignores the key


def test_context_limit_is_one_clear_line(capsys):
    argv = [FIXTURE, "--prompt", "KING", "--max-new-tokens", "14"]  # 4 + 14 - 1 > 16
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "seq_len=16" in err and "Traceback" not in err
    assert cli.run(main, ["tests/fixtures", "--prompt", "KING"]) == 2  # not a run directory
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([FIXTURE, "--prompt", "KING", "--top-p", "1.5"])
    assert e.value.code == 2


def _damaged_copy(tmp_path) -> Path:
    """The fixture with a later step that cannot be read (its arrays gone) and the temporary
    directory a kill -9 during an orbax save leaves behind."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    steps = run / "checkpoints"
    shutil.copytree(steps / "4", steps / "6")
    shutil.rmtree(steps / "6" / "model" / "ocdbt.process_0")
    (steps / "8.orbax-checkpoint-tmp-1234").mkdir()
    return run


def test_sampling_falls_back_to_the_previous_good_step(tmp_path, capsys):
    """Issue 26 (7, 8): an unfinished save directory is not a step, and an unreadable latest
    step falls back to the previous good one with one line on stderr (no traceback)."""
    run = _damaged_copy(tmp_path)
    argv = [str(run), "--prompt", "KING", "--max-new-tokens", "3"]
    assert cli.run(main, argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "step 6" in err and "previous step" in err
    assert len(err.strip().splitlines()) == 1, err
    assert open_run(run).step == 4
    # Negative control: the step asked for is read or refused, never replaced.
    with pytest.raises(ckpt.CheckpointError, match="step 6"):
        open_run(run, 6)
