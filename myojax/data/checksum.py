"""A token shard's content in one pass: its SHA-256 (recorded in the sidecar by ``prepare`` and
checked on load, so same-length corruption is caught) and its largest token id (checked against
the vocabulary, so an out-of-range id is named at load time, not as a NaN loss later)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

CHUNK_BYTES = 1 << 24  # 16 MiB: whole tokens for every shard dtype


class ShardScan(NamedTuple):
    sha256: str
    max_id: int


def scan(path: str | Path, dtype: np.dtype) -> ShardScan:
    """The SHA-256 of ``path``'s bytes and its largest token id read as ``dtype``."""
    digest, top = hashlib.sha256(), -1
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            ids = np.frombuffer(chunk, dtype=dtype)
            top = max(top, int(ids.max())) if ids.size else top
    return ShardScan(digest.hexdigest(), top)
