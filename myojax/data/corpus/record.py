"""What a built registry corpus says about itself: ``corpus.json`` beside its shards.

It names the corpus and the sha256 of the manifest it was built from (the run's config records
both), every shard with its tokens and sha256 (what a second build, or ``check``, verifies),
every split's documents, tokens and sha256, and every source with its licence and what was
kept of it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myojax import files
from myojax.data.corpus import CorpusError
from myojax.data.corpus.manifest import SplitPin

RECORD_FILE = "corpus.json"
RECORD_FORMAT = "myojax-corpus-v1"


@dataclass(frozen=True)
class ShardRecord:
    file: str  # e.g. "train_000000.bin"
    split: str
    tokens: int
    sha256: str  # of the file's bytes


@dataclass(frozen=True)
class SourceRecord:
    name: str
    version: str
    url: str
    sha256: str
    license: str
    kept_files: int
    kept_bytes: int
    split_bytes: dict[str, int]
    skipped: dict[str, int]  # files left out, by reason


@dataclass(frozen=True)
class CorpusRecord:
    corpus: str
    manifest_sha256: str
    tokenizer: str
    vocab_size: int
    separator: int
    splits: dict[str, SplitPin]
    shards: tuple[ShardRecord, ...]
    sources: tuple[SourceRecord, ...]
    built_by: str
    wall_s: float

    @property
    def identity(self) -> dict[str, str]:
        """What a run's config records about its data."""
        return {"corpus": self.corpus, "corpus_manifest_sha256": self.manifest_sha256}

    def to_json(self) -> dict[str, Any]:
        return {"format": RECORD_FORMAT, **dataclasses.asdict(self)}


def from_json(raw: dict[str, Any]) -> CorpusRecord:
    if raw.get("format") != RECORD_FORMAT:
        raise ValueError(f"format {raw.get('format')!r}, expected {RECORD_FORMAT!r}")
    return CorpusRecord(
        corpus=str(raw["corpus"]),
        manifest_sha256=str(raw["manifest_sha256"]),
        tokenizer=str(raw["tokenizer"]),
        vocab_size=int(raw["vocab_size"]),
        separator=int(raw["separator"]),
        splits={k: SplitPin(**v) for k, v in raw["splits"].items()},
        shards=tuple(ShardRecord(**s) for s in raw["shards"]),
        sources=tuple(SourceRecord(**s) for s in raw["sources"]),
        built_by=str(raw["built_by"]),
        wall_s=float(raw["wall_s"]),
    )


def write_record(directory: Path, record: CorpusRecord) -> None:
    path = Path(directory) / RECORD_FILE
    files.write_json(path, record.to_json())
    path.chmod(0o644)  # readable like the shards beside it (a shared cache)


def read_record(directory: Path) -> CorpusRecord:
    """The record of a built corpus; a missing or malformed one is one line."""
    path = Path(directory) / RECORD_FILE
    try:
        return from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise CorpusError(
            f"{directory} holds no {RECORD_FILE}: not a finished corpus build"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CorpusError(f"{path} is malformed ({type(e).__name__}: {e})") from None
