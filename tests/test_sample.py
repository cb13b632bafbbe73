"""python -m myojax.sample on a real run directory: decodes with the run's tokenizer."""

import jax
import pytest

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
