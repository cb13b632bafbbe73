"""myojax.data.checksum: one pass gives the file's SHA-256 and its largest token id, across
chunk boundaries."""

from __future__ import annotations

import hashlib

import numpy as np

from myojax.data import checksum


def test_scan_hashes_the_bytes_and_finds_the_largest_id(tmp_path, monkeypatch):
    monkeypatch.setattr(checksum, "CHUNK_BYTES", 8)  # several chunks, ids on both sides
    ids = np.array([3, 1, 7, 2, 9, 4, 60000, 5, 0], dtype="<u2")
    path = tmp_path / "s.bin"
    ids.tofile(path)
    found = checksum.scan(path, np.dtype("<u2"))
    assert found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert found.max_id == 60000
    # Negative control: one changed id changes the digest.
    ids[0] = 4
    ids.tofile(path)
    assert checksum.scan(path, np.dtype("<u2")).sha256 != found.sha256
