"""myojax.data.corpus.record: a built corpus's corpus.json round-trips, and a missing or
malformed one is one line."""

from __future__ import annotations

import json

import pytest

from myojax.data.corpus import CorpusError
from myojax.data.corpus import record as rec
from myojax.data.corpus.manifest import SplitPin


def sample() -> rec.CorpusRecord:
    return rec.CorpusRecord(
        corpus="tiny",
        manifest_sha256="a" * 64,
        tokenizer="byte",
        vocab_size=256,
        separator=0,
        splits={"train": SplitPin(3, 300, "b" * 64)},
        shards=(rec.ShardRecord("train_000000.bin", "train", 300, "c" * 64),),
        sources=(
            rec.SourceRecord(
                "alpha",
                "1.0",
                "file:///a",
                "d" * 64,
                "MIT",
                3,
                297,
                {"train": 297},
                {"generated": 1},
            ),
        ),
        built_by="test",
        wall_s=0.5,
    )


def test_record_round_trips(tmp_path):
    rec.write_record(tmp_path, sample())
    assert rec.read_record(tmp_path) == sample()
    assert sample().identity == {"corpus": "tiny", "corpus_manifest_sha256": "a" * 64}


def test_missing_or_malformed_record_is_one_line(tmp_path):
    with pytest.raises(CorpusError, match="holds no corpus.json: not a finished corpus build"):
        rec.read_record(tmp_path)
    rec.write_record(tmp_path, sample())
    raw = json.loads((tmp_path / rec.RECORD_FILE).read_text())
    for broken in ({**raw, "format": "old"}, {k: v for k, v in raw.items() if k != "shards"}):
        (tmp_path / rec.RECORD_FILE).write_text(json.dumps(broken))
        with pytest.raises(CorpusError, match="corpus.json is malformed"):
            rec.read_record(tmp_path)
