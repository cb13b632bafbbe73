"""experiments.decode_throughput writes its own markdown, load and all (slow: compiles the tiny
preset's decoder; run with ``python -m pytest -m slow tests/test_decode_throughput.py``)."""

import json

import pytest

from experiments.decode_throughput import main


@pytest.mark.slow
def test_writes_the_table_with_its_provenance(tmp_path):
    out = tmp_path / "tp.md"
    rows = main(["--presets", "tiny", "--batches", "2", "--repeats", "1", "--out", str(out)])
    assert rows[0]["tokens_per_s"] > 0 and rows[0]["new_tokens"] == 57
    text = out.read_text()
    assert "load average" in text and "| tiny | 2 | 57 |" in text
    assert json.loads(out.with_suffix(".json").read_text())["rows"][0]["batch"] == 2
