"""myojax.data.corpus.cache: a registry corpus is built once, whole or not at all; a second
build verifies and does nothing; the splits are disjoint whole files, deduplicated and
deterministic; the trainer reads it and its run records the corpus. Real small archives from
file:// URLs and a local HTTP server (no network, nothing under test replaced)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from myojax import cli
from myojax.data import pipeline
from myojax.data.corpus import CorpusError
from myojax.data.corpus import cache as cc
from myojax.data.corpus.__main__ import main
from myojax.data.corpus.manifest import parse_manifest
from myojax.data.corpus.record import read_record
from tests import corpus_sources as cs

REPO = Path(__file__).resolve().parents[1]


def split_documents(directory: Path) -> dict[str, list[bytes]]:
    """Every split's documents, read back from its shards (each ends with the NUL separator)."""
    out = {}
    for split, prefix in (("train", "train"), ("validation", "val"), ("test", "test")):
        tokens = np.concatenate(
            [np.fromfile(p, dtype="<u2") for p in sorted(directory.glob(f"{prefix}_*.bin"))]
        )
        assert tokens.max() < 256 and tokens[-1] == 0
        out[split] = bytes(tokens.astype(np.uint8)).split(b"\x00")[:-1]
    return out


def siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir()) if directory.parent.exists() else []


@pytest.fixture
def built(tmp_path):
    manifest = parse_manifest(cs.tiny_manifest(tmp_path))
    return manifest, cc.build_corpus(manifest, tmp_path / "cache")


def test_build_writes_disjoint_deduplicated_whole_file_splits(built, tmp_path):
    manifest, outcome = built
    assert outcome.built and outcome.directory == tmp_path / "cache" / "corpora" / "tiny"
    assert siblings(outcome.directory) == ["tiny"]  # no temporary folder left
    docs = split_documents(outcome.directory)
    every = [d for split in docs.values() for d in split]
    expected = {cs.module_text(p, i) for p in ("alpha", "beta") for i in range(24)} | {
        cs.SHARED,
        b"def crlf():\n    return 2\n",
    }
    expected |= {f"{p}\n{'=' * len(p)}\n\nProse about it.\n".encode() for p in ("alpha", "beta")}
    assert set(every) == expected and len(every) == len(expected)  # each kept file once
    assert every.count(cs.SHARED) == 1  # the file both packages ship is kept once
    assert all(docs.values()) and not set(docs["train"]) & (
        set(docs["validation"]) | set(docs["test"])
    )
    r = outcome.record
    assert {s: r.splits[s].documents for s in docs} == {s: len(d) for s, d in docs.items()}
    assert [s.skipped for s in r.sources][1]["duplicate"] == 2  # shared.py, crlf.py
    assert sum(s.kept_bytes for s in r.sources) == sum(map(len, every))
    assert r.identity == {"corpus": "tiny", "corpus_manifest_sha256": manifest.sha256}
    assert len([s for s in r.shards if s.split == "train"]) > 1  # shard_tokens 2000: cut


def test_split_is_deterministic_and_independent_of_other_sources(built, tmp_path):
    manifest, outcome = built
    again = cc.build_corpus(manifest, tmp_path / "again")
    assert again.record.shards == outcome.record.shards  # byte-identical shards
    raw = json.loads(manifest.path.read_text())
    raw["sources"] = raw["sources"][:1]  # alpha alone: its files keep their splits
    alone = cc.build_corpus(
        parse_manifest(cs.write_manifest(tmp_path / "m" / "tiny.json", raw)), tmp_path / "alone"
    )
    both, only = split_documents(outcome.directory), split_documents(alone.directory)
    for split in both:
        mine = {d for d in both[split] if b"of alpha" in d}
        assert mine == {d for d in only[split] if b"of alpha" in d}


def test_second_build_verifies_and_does_nothing(built, tmp_path):
    manifest, outcome = built
    stamps = {p.name: p.stat().st_mtime_ns for p in outcome.directory.iterdir()}
    for archive in (tmp_path / "served").iterdir():
        archive.unlink()  # nothing to fetch from: the second call must not need to
    again = cc.build_corpus(manifest, tmp_path / "cache")
    assert not again.built and again.record == outcome.record
    assert stamps == {p.name: p.stat().st_mtime_ns for p in outcome.directory.iterdir()}


def test_a_damaged_or_outdated_corpus_is_refused_then_rebuilt(built, tmp_path):
    manifest, outcome = built
    shard = outcome.directory / outcome.record.shards[0].file
    data = bytearray(shard.read_bytes())
    data[10] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=f"damaged: {shard.name} does not have its recorded"):
        cc.build_corpus(manifest, tmp_path / "cache")
    rebuilt = cc.build_corpus(manifest, tmp_path / "cache", rebuild=True)
    assert rebuilt.built and rebuilt.record.shards == outcome.record.shards
    (outcome.directory / "train_999999.bin").write_bytes(b"\x00\x00")
    with pytest.raises(CorpusError, match=r"\['train_999999.bin'\] unrecorded"):
        cc.verify(outcome.directory, manifest)
    (outcome.directory / "train_999999.bin").unlink()
    raw = json.loads(manifest.path.read_text())
    raw["description"] = "changed"
    changed = parse_manifest(cs.write_manifest(manifest.path, raw))
    with pytest.raises(CorpusError, match="built from manifest sha256 .* is now .*--rebuild"):
        cc.build_corpus(changed, tmp_path / "cache")


def _broken(manifest_path: Path, index: int, **change: object):
    raw = json.loads(manifest_path.read_text())
    raw["sources"][index].update(change)
    return parse_manifest(cs.write_manifest(manifest_path, raw))


def test_wrong_hash_or_missing_package_leaves_nothing(tmp_path):
    path = cs.tiny_manifest(tmp_path)
    for change, message in (
        ({"sha256": "f" * 64}, "beta==1.0: .* has sha256 .* but the manifest pins f{64}"),
        ({"url": (tmp_path / "gone.tar.gz").as_uri()}, "beta==1.0: cannot read file://"),
    ):
        manifest = _broken(path, 1, **change)
        with pytest.raises(CorpusError, match=message):
            cc.build_corpus(manifest, tmp_path / "cache")
        assert siblings(tmp_path / "cache" / "corpora" / "tiny") == []
    # alpha was fetched and verified before beta failed: it is kept for the next try.
    assert sorted(p.name for p in (tmp_path / "cache" / "downloads").iterdir()) == [
        "alpha-1.0.tar.gz"
    ]


def test_outputs_that_differ_from_the_pins_are_refused(tmp_path):
    manifest = parse_manifest(cs.tiny_manifest(tmp_path))
    outcome = cc.build_corpus(manifest, tmp_path / "first")
    raw = json.loads(manifest.path.read_text())
    raw["expected"] = {s: vars(p) for s, p in outcome.record.splits.items()}
    for source, record in zip(raw["sources"], outcome.record.sources):
        source["kept_bytes"] = record.kept_bytes
    pinned = parse_manifest(cs.write_manifest(manifest.path, raw))
    assert cc.build_corpus(pinned, tmp_path / "second").built  # matches its pins
    raw["rules"]["max_line_bytes"] = 40  # a rule change drops files: no longer the pinned corpus
    changed = parse_manifest(cs.write_manifest(manifest.path, raw))
    with pytest.raises(CorpusError, match="came out different from its manifest.*kept .* bytes"):
        cc.build_corpus(changed, tmp_path / "third")
    assert siblings(tmp_path / "third" / "corpora" / "tiny") == []


def test_too_small_for_the_held_out_fractions_is_refused(tmp_path):
    manifest = parse_manifest(cs.tiny_manifest(tmp_path, validation_fraction=1e-9))
    with pytest.raises(CorpusError, match=r"no documents in split\(s\) \['validation'\]"):
        cc.build_corpus(manifest, tmp_path / "cache")
    assert siblings(tmp_path / "cache" / "corpora" / "tiny") == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_leaves_no_half_written_corpus(tmp_path):
    manifest = parse_manifest(cs.tiny_manifest(tmp_path))
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f".beta-1.0.tar.gz.{os.getpid()}.part").symlink_to("/dev/full")
    with pytest.raises(OSError) as e:
        cc.build_corpus(manifest, tmp_path / "cache")
    assert cli.describe(e.value).startswith("no space left on device")
    assert siblings(tmp_path / "cache" / "corpora" / "tiny") == []


_BUILD = "from pathlib import Path; import sys; from myojax.data.corpus import cache, manifest; "
_BUILD += "cache.build_corpus(manifest.parse_manifest(Path(sys.argv[1])), Path(sys.argv[2]))"


def test_a_build_killed_outright_leaves_nothing_and_the_next_one_cleans_up(tmp_path):
    path = cs.tiny_manifest(tmp_path)
    target = tmp_path / "cache" / "corpora" / "tiny"
    with cs.serve(tmp_path / "served", stall_s=60) as base:
        stalled = _broken(path, 1, url=f"{base}/stall/beta-1.0.tar.gz")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-c", _BUILD, str(stalled.path), str(tmp_path / "cache")], env=env
        )
        try:
            deadline = time.monotonic() + 60
            while not list((tmp_path / "cache" / "downloads").glob(".beta-1.0.tar.gz.*.part")):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert not target.exists() and siblings(target) == [f".tiny.build-{proc.pid}"]
    outcome = cc.build_corpus(parse_manifest(cs.tiny_manifest(tmp_path)), tmp_path / "cache")
    assert outcome.built and siblings(target) == ["tiny"]
    assert not list((tmp_path / "cache" / "downloads").glob("*.part"))


def test_the_trainer_reads_the_corpus_and_records_it(built, tmp_path, monkeypatch):
    manifest, outcome = built
    data = pipeline.load_data(str(outcome.directory))
    splits = outcome.record.splits
    assert data.corpus == {"corpus": "tiny", "corpus_manifest_sha256": manifest.sha256}
    assert [sum(a.size for a in arrays) for arrays in (data.train, data.validation, data.test)] == [
        splits[s].tokens for s in ("train", "validation", "test")
    ]
    assert cc.resolve("tiny", tmp_path / "cache", manifest.path.parent) == outcome.directory
    assert cc.resolve("elsewhere", tmp_path / "cache", manifest.path.parent) is None
    assert cc.identity(tmp_path) == {}  # any other directory: no corpus identity
    from myojax.train import run
    from myojax.train.presets import RUN_PRESETS

    model_cfg = RUN_PRESETS["tiny"][0].replace(seq_len=16, d_model=16, n_layers=1, n_heads=2)
    train_cfg = RUN_PRESETS["tiny"][1].replace(
        steps=2,
        batch_size=2,
        warmup_steps=1,
        eval_interval=2,
        eval_batches=1,
        checkpoint_interval=2,
        data=str(outcome.directory),
        out=str(tmp_path / "run"),
    )
    run(train_cfg, model_cfg, progress=False)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert recorded["corpus"] == "tiny"
    assert recorded["corpus_manifest_sha256"] == manifest.sha256


def test_an_unbuilt_registry_corpus_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MYOJAX_CACHE", str(tmp_path / "empty"))
    with pytest.raises(CorpusError, match="corpus 'pycode' is not built .*--corpus pycode`"):
        pipeline.load_data("pycode")
    assert cli.run(main, ["check", "--corpus", "pycode"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: corpus pycode is not built") and "\n" not in err
    assert cli.run(main, ["list"]) == 0
    assert (
        f"pycode: {tmp_path / 'empty' / 'corpora' / 'pycode'}: not built" in capsys.readouterr().out
    )
    assert cli.run(main, ["build", "--corpus", "nope"]) == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err


def test_record_matches_the_directory(built):
    _, outcome = built
    assert read_record(outcome.directory) == outcome.record
    for shard in outcome.record.shards:
        sidecar = json.loads((outcome.directory / shard.file).with_suffix(".json").read_text())
        assert sidecar["num_tokens"] == shard.tokens and sidecar["tokenizer"] == "byte"
