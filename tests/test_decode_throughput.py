"""experiments.decode_throughput writes its own markdown, load and all, and redraws it from its
JSON (slow: compiles the tiny preset's decoder; run with ``python -m pytest -m slow
tests/test_decode_throughput.py``)."""

import json
import shutil
from pathlib import Path

import pytest

from experiments.decode_throughput import main
from myojax import cli

RESULTS = Path(__file__).parents[1] / "results"


@pytest.mark.slow
def test_writes_the_table_with_its_provenance(tmp_path):
    out = tmp_path / "tp.md"
    argv = ["--presets", "tiny", "--batches", "2", "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    rows = record["rows"]
    assert rows[0]["tokens_per_s"] > 0 and rows[0]["new_tokens"] == 57 and rows[0]["batch"] == 2
    text = out.read_text()
    assert "load average" in text and "| tiny | 2 | 57 |" in text
    assert f"`{record['command']}`" in text and "--batches 2" in record["command"]


def test_the_committed_page_redraws_byte_for_byte_from_its_json(tmp_path):
    shutil.copy(RESULTS / "decode_throughput.json", tmp_path / "saved.json")
    out = tmp_path / "decode_throughput.md"
    assert main(["--from-json", str(tmp_path / "saved.json"), "--out", str(out)]) == 0
    assert out.read_text() == (RESULTS / "decode_throughput.md").read_text()
    assert not out.with_suffix(".json").exists()  # redrawing writes no results
    assert cli.run(main, ["--from-json", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
