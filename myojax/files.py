"""Writing and reading the files a run or an experiment leaves behind, so that a kill -9 or a
full disk never leaves half a file: every write goes to a temporary file in the same directory
and is renamed over the target (atomic on POSIX), so a reader sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block ends without error
    (and is removed when it fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened normally (not mkstemp, whose 0600 mode would outlive the rename).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Atomic text write."""
    with _replacing(Path(path)) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomic JSON write (indent 1, trailing newline)."""
    write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | Path, default: Any = None) -> Any:
    """``path``'s JSON, or ``default`` if it is missing or half-written."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def copy_file(src: str | Path, dst: str | Path) -> None:
    """Atomic copy of ``src`` to ``dst``."""
    with _replacing(Path(dst)) as tmp:
        shutil.copyfile(src, tmp)
