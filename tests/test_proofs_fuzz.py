"""python -m proofs.fuzz: the command runs, prints and writes the record of its run with the
command line that reproduces it, and fails when the run tests too little.

The long mode is ``python -m proofs.fuzz --programs 3000 --seed 1 --record
proofs/fuzz_record.json`` (or ``MYOJAX_FUZZ_LONG=3000 pytest -m slow tests/test_proofs_fuzz.py``).
"""

from __future__ import annotations

import json
import os

import pytest

from myojax import cli
from proofs.fuzz.__main__ import main


def test_a_short_run_writes_its_record(tmp_path, capsys):
    record = tmp_path / "sub" / "record.json"
    argv = ["--programs", "2", "--seed", "2", "--big-every", "2", "--record", str(record)]
    assert main(argv) == 1  # two programs cannot produce all four verdicts: the run means little
    written = json.loads(record.read_text())
    assert written == json.loads(capsys.readouterr().out)
    assert written["command"] == f"python -m proofs.fuzz {' '.join(argv)}"
    assert written["programs"] == 2 and written["seed"] == 2
    assert written["counterexample"] is None and written["acceptance_problems"]


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        cli.run(main, ["--programs", "many"])
    assert e.value.code == 2 and "--programs" in capsys.readouterr().err


def test_an_empty_run_is_one_usage_error(capsys):
    assert cli.run(main, ["--programs", "0"]) == 2
    assert capsys.readouterr().err == "error: FuzzConfig.programs must be at least 1, got 0\n"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MYOJAX_FUZZ_LONG"), reason="set MYOJAX_FUZZ_LONG=N")
def test_fuzz_long_mode(tmp_path):
    n = int(os.environ["MYOJAX_FUZZ_LONG"])
    record = tmp_path / "record.json"
    assert main(["--programs", str(n), "--seed", "1", "--record", str(record)]) == 0
    written = json.loads(record.read_text())
    assert written["programs"] == n and written["counterexample"] is None
