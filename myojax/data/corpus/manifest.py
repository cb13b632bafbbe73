"""The pinned manifests of the registry corpora (package data), and where each one is built.

A manifest (``myojax/data/corpora/NAME.json``) pins every source archive by name, version, URL,
sha256 and licence, states the rules that turn the archives into documents (which files are
kept, the held-out fractions), and, once built, the tokens and sha256 every split must come out
with. Its sha256 identifies the corpus in every run's config. A corpus is built once into
``$MYOJAX_CACHE/corpora/NAME`` (default ``~/.cache/myojax``); downloads are kept, checked by
their sha256, in ``$MYOJAX_CACHE/downloads``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myojax.data.corpus import CorpusError

MANIFEST_DIR = Path(__file__).resolve().parents[1] / "corpora"
CACHE_ENV = "MYOJAX_CACHE"
MANIFEST_FORMAT = "myojax-corpus-manifest-v1"
SPLITS = ("train", "validation", "test")
# Split name -> the shard prefix the trainer reads (``val_*`` is its held-out split).
SHARD_PREFIX = {"train": "train", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Source:
    """One pinned archive; ``exclude`` holds glob patterns of paths (below the archive's top
    folder) this source leaves out, e.g. vendored or partly generated files."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int
    license: str
    exclude: tuple[str, ...] = ()
    kept_bytes: int | None = None  # pinned once built: the bytes of its documents kept

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Rules:
    """What makes a file of an archive a document (see ``myojax.data.corpus.documents``)."""

    extensions: tuple[str, ...]
    exclude_dirs: tuple[str, ...]
    max_file_bytes: int
    max_line_bytes: int
    max_digit_share: float  # digits / (digits + letters): above it, a file is a data table
    validation_fraction: float
    test_fraction: float
    shard_tokens: int


@dataclass(frozen=True)
class SplitPin:
    documents: int
    tokens: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str
    tokenizer: str  # "byte": one token per byte, vocabulary 256
    separator: int  # the token written after every document
    rules: Rules
    sources: tuple[Source, ...]
    sha256: str  # of the manifest file's bytes
    path: Path
    expected: dict[str, SplitPin] | None = None  # pinned once built


def registry_names(manifest_dir: Path = MANIFEST_DIR) -> list[str]:
    """The corpora this checkout can build, by name."""
    return sorted(p.stem for p in manifest_dir.glob("*.json"))


def manifest_path(name: str, manifest_dir: Path = MANIFEST_DIR) -> Path:
    path = manifest_dir / f"{name}.json"
    if not path.is_file():
        known = ", ".join(registry_names(manifest_dir)) or "none"
        raise ValueError(f"unknown corpus {name!r}; the registry holds: {known}")
    return path


def _pin(raw: dict[str, Any]) -> SplitPin:
    return SplitPin(int(raw["documents"]), int(raw["tokens"]), str(raw["sha256"]))


def _source(raw: dict[str, Any]) -> Source:
    kept = raw.get("kept_bytes")
    return Source(
        name=str(raw["name"]),
        version=str(raw["version"]),
        filename=str(raw["filename"]),
        url=str(raw["url"]),
        sha256=str(raw["sha256"]).lower(),
        size=int(raw["size"]),
        license=str(raw["license"]),
        exclude=tuple(raw.get("exclude", ())),
        kept_bytes=None if kept is None else int(kept),
    )


def parse_manifest(path: Path) -> Manifest:
    """Read and check a manifest file; a malformed one is named with what is wrong."""
    data = Path(path).read_bytes()
    try:
        raw = json.loads(data)
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        rules = raw["rules"]
        expected = raw.get("expected")
        manifest = Manifest(
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            tokenizer=str(raw["tokenizer"]),
            separator=int(raw["separator"]),
            rules=Rules(
                extensions=tuple(rules["extensions"]),
                exclude_dirs=tuple(rules["exclude_dirs"]),
                max_file_bytes=int(rules["max_file_bytes"]),
                max_line_bytes=int(rules["max_line_bytes"]),
                max_digit_share=float(rules["max_digit_share"]),
                validation_fraction=float(rules["validation_fraction"]),
                test_fraction=float(rules["test_fraction"]),
                shard_tokens=int(rules["shard_tokens"]),
            ),
            sources=tuple(_source(s) for s in raw["sources"]),
            sha256=hashlib.sha256(data).hexdigest(),
            path=Path(path),
            expected=None if expected is None else {k: _pin(v) for k, v in expected.items()},
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CorpusError(f"corpus manifest {path} is malformed: {type(e).__name__}: {e}") from e
    _check(manifest)
    return manifest


def _check(m: Manifest) -> None:
    where = f"corpus manifest {m.path}"
    if m.tokenizer != "byte" or not 0 <= m.separator < 256:
        raise CorpusError(f"{where}: only byte corpora (separator in [0, 256)) are supported")
    names = [s.name for s in m.sources]
    if len(set(names)) != len(names) or not names:
        raise CorpusError(f"{where}: sources must be non-empty and uniquely named: {names}")
    bad = [s.label for s in m.sources if len(s.sha256) != 64 or "/" in s.filename]
    if bad:
        raise CorpusError(f"{where}: sources without a sha256 or a plain file name: {bad}")
    held_out = m.rules.validation_fraction + m.rules.test_fraction
    if not (m.rules.validation_fraction > 0 and m.rules.test_fraction > 0 and held_out < 0.5):
        raise CorpusError(f"{where}: held-out fractions must be positive and sum below 0.5")
    if m.expected is not None and set(m.expected) != set(SPLITS):
        raise CorpusError(f"{where}: expected must pin exactly the splits {SPLITS}")


def load_manifest(name: str, manifest_dir: Path = MANIFEST_DIR) -> Manifest:
    """The registry's manifest of corpus ``name``."""
    return parse_manifest(manifest_path(name, manifest_dir))


def cache_root() -> Path:
    """``$MYOJAX_CACHE``, default ``~/.cache/myojax``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "myojax").expanduser()


def corpus_dir(name: str, root: Path | None = None) -> Path:
    """Where corpus ``name`` is (or will be) built: ``ROOT/corpora/NAME``."""
    return (cache_root() if root is None else Path(root)) / "corpora" / name


def downloads_dir(root: Path | None = None) -> Path:
    return (cache_root() if root is None else Path(root)) / "downloads"
