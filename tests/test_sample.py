"""python -m myojax.sample on a real run directory: decodes with the run's tokenizer."""

import pytest

from myojax.sample import main

FIXTURE = "tests/fixtures/run-v0.1-myopic"  # seq_len 16, byte-level


def test_samples_text_from_a_run(capsys):
    texts = main([FIXTURE, "--prompt", "KING", "--max-new-tokens", "5", "--num-samples", "2"])
    assert len(texts) == 2 and all(t.startswith("KING") for t in texts)
    greedy = main([FIXTURE, "--prompt", "KING", "--max-new-tokens", "5", "--temperature", "0"])
    again = main([FIXTURE, "--prompt", "KING", "--max-new-tokens", "5", "--temperature", "0"])
    assert greedy == again
    assert "sample 1" in capsys.readouterr().out


def test_context_limit_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as e:
        main([FIXTURE, "--prompt", "KING", "--max-new-tokens", "14"])  # 4 + 14 - 1 > 16
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "seq_len=16" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["tests/fixtures", "--prompt", "KING"])  # not a run directory
    assert e.value.code == 2 and "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([FIXTURE, "--prompt", "KING", "--top-p", "1.5"])
    assert e.value.code == 2
