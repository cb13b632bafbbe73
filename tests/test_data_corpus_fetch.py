"""myojax.data.corpus.fetch: archives are fetched once, hash-checked, kept; every failure is
one line naming the source and leaves no partial file. Real archives, served from file:// URLs,
a mirror directory and a local HTTP server (no network)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from myojax import cli
from myojax.data.corpus import CorpusError
from myojax.data.corpus import fetch as fetching
from myojax.data.corpus.manifest import parse_manifest
from tests import corpus_sources as cs


@pytest.fixture
def source(tmp_path):
    return parse_manifest(cs.tiny_manifest(tmp_path)).sources[0]


def leftovers(downloads: Path) -> list[str]:
    return sorted(p.name for p in downloads.iterdir()) if downloads.exists() else []


def test_fetch_checks_the_hash_and_keeps_the_archive(source, tmp_path):
    downloads = tmp_path / "downloads"
    seen: list[int] = []
    path = fetching.fetch(source, downloads, on_bytes=seen.append)
    assert path == downloads / source.filename and sum(seen) == source.size
    assert fetching.file_sha256(path) == source.sha256
    # Kept: a second fetch needs no source at all.
    (tmp_path / "served" / source.filename).unlink()
    assert fetching.fetch(source, downloads) == path
    assert leftovers(downloads) == [source.filename]


def test_an_altered_kept_copy_is_fetched_again(source, tmp_path):
    downloads = tmp_path / "downloads"
    path = fetching.fetch(source, downloads)
    path.write_bytes(b"tampered")
    assert fetching.file_sha256(fetching.fetch(source, downloads)) == source.sha256


def test_wrong_hash_is_refused_and_nothing_is_kept(source, tmp_path):
    wrong = dataclasses.replace(source, sha256="0" * 64)
    downloads = tmp_path / "downloads"
    with pytest.raises(CorpusError, match=r"alpha==1.0: file://.* has sha256 [0-9a-f]{64}, but"):
        fetching.fetch(wrong, downloads)
    assert leftovers(downloads) == []


def test_missing_file_and_http_404_are_one_line(source, tmp_path):
    gone = dataclasses.replace(source, url=(tmp_path / "nowhere.tar.gz").as_uri())
    with pytest.raises(CorpusError, match="alpha==1.0: cannot read file://.*nowhere") as e:
        fetching.fetch(gone, tmp_path / "downloads")
    assert "\n" not in cli.describe(e.value)
    with cs.serve(tmp_path / "served") as base:
        missing = dataclasses.replace(source, url=f"{base}/missing-1.0.tar.gz")
        with pytest.raises(CorpusError, match="HTTP 404 .the pinned archive is not on the"):
            fetching.fetch(missing, tmp_path / "downloads")
        # Negative control: the same server serves the archive that is there.
        there = dataclasses.replace(source, url=f"{base}/{source.filename}")
        assert fetching.fetch(there, tmp_path / "downloads").is_file()
    assert leftovers(tmp_path / "downloads") == [source.filename]


def test_no_network_is_one_line_pointing_to_a_mirror(source, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = dataclasses.replace(source, url=f"http://127.0.0.1:{port}/{source.filename}")
    with pytest.raises(CorpusError, match="cannot read .*pass --mirror DIR"):
        fetching.fetch(unreachable, tmp_path / "downloads")
    assert leftovers(tmp_path / "downloads") == []


def test_a_mirror_directory_replaces_the_url(source, tmp_path):
    offline = dataclasses.replace(source, url="https://example.invalid/x.tar.gz")
    path = fetching.fetch(offline, tmp_path / "downloads", mirror=tmp_path / "served")
    assert fetching.file_sha256(path) == source.sha256
    with pytest.raises(CorpusError, match=f"no {source.filename} in the mirror directory"):
        fetching.fetch(offline, tmp_path / "other", mirror=tmp_path / "empty")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_named_and_leaves_no_partial_file(source, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    # The download's temporary file is /dev/full: every write fails with ENOSPC, for real.
    (downloads / f".{source.filename}.{os.getpid()}.part").symlink_to("/dev/full")
    with pytest.raises(OSError) as e:
        fetching.fetch(source, downloads)
    assert e.value.errno == 28
    assert cli.describe(e.value).startswith("no space left on device while writing")
    assert leftovers(downloads) == []


def test_remove_stale_takes_only_what_dead_processes_left(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f".a.tar.gz.{dead_pid}.part").write_bytes(b"x")
    (tmp_path / f".a.tar.gz.{os.getpid()}.part").write_bytes(b"x")  # alive: ours
    (tmp_path / f".c.build-{dead_pid}").mkdir()
    (tmp_path / f".c.build-{dead_pid}" / "train_000000.bin").write_bytes(b"x")
    fetching.remove_stale(tmp_path, ".a.tar.gz.*.part")
    fetching.remove_stale(tmp_path, ".c.*-*")
    assert leftovers(tmp_path) == [f".a.tar.gz.{os.getpid()}.part"]
