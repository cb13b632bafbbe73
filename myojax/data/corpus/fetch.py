"""Fetching a corpus's pinned archives, downloaded once, checked against their sha256, kept.

An archive is fetched from its pinned URL (``https://``, or ``file://`` for a local copy), or,
with a mirror directory, from ``MIRROR/<file name>`` (an offline build). It is streamed to a
temporary file beside its place in the downloads cache, hashed on the way, and renamed into
place only when its sha256 is the pinned one; a kept archive is re-hashed before every use.
Every failure (HTTP error, no network, wrong hash) is one ``CorpusError`` line naming the
source and the URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from myojax.data.corpus import CorpusError
from myojax.data.corpus.manifest import Source

CHUNK = 1 << 20
TIMEOUT_S = 60.0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, pattern: str) -> None:
    """Remove what killed processes left behind: ``pattern`` matches names ending in
    ``-PID`` or ``.PID.part`` whose process is gone."""
    for path in folder.glob(pattern):
        tail = path.name.removesuffix(".part").replace("-", ".").rsplit(".", 1)[-1]
        if tail.isdigit() and not process_alive(int(tail)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def source_url(source: Source, mirror: Path | None) -> str:
    """Where the archive is read from: the pinned URL, or the mirror directory's copy."""
    if mirror is None:
        return source.url
    path = Path(mirror).resolve() / source.filename
    if not path.is_file():
        raise CorpusError(
            f"{source.label}: no {source.filename} in the mirror directory {mirror} "
            f"(download it from {source.url})"
        )
    return path.as_uri()


def _stream(url: str, tmp: Path, on_bytes: Callable[[int], None]) -> str:
    """Copy ``url`` into ``tmp``; its sha256."""
    h = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "myojax-corpus"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(tmp, "wb") as f:
        while chunk := response.read(CHUNK):
            f.write(chunk)
            h.update(chunk)
            on_bytes(len(chunk))
    return h.hexdigest()


def _download(source: Source, url: str, tmp: Path, on_bytes: Callable[[int], None]) -> str:
    try:
        return _stream(url, tmp, on_bytes)
    except urllib.error.HTTPError as e:
        what = "the pinned archive is not on the registry" if e.code == 404 else "refused"
        raise CorpusError(f"{source.label}: {url} answered HTTP {e.code} ({what})") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, OSError) and e.reason.errno == 28:
            raise e.reason from None  # a full disk, named as such by the command
        raise CorpusError(
            f"{source.label}: cannot read {url} ({e.reason}); without network, copy the "
            "archives into a directory and pass --mirror DIR"
        ) from None
    except (TimeoutError, ConnectionError) as e:
        raise CorpusError(f"{source.label}: lost the connection to {url} ({e})") from None


def fetch(
    source: Source,
    downloads: Path,
    *,
    mirror: Path | None = None,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> Path:
    """The verified archive of ``source`` in ``downloads``, downloaded if it is not there yet
    (a kept copy with another hash is replaced)."""
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / source.filename
    if target.is_file():
        if file_sha256(target) == source.sha256:
            on_bytes(source.size)
            return target
        target.unlink()  # not the pinned bytes (an old or altered copy): fetch it again
    url = source_url(source, mirror)
    remove_stale(downloads, f".{source.filename}.*.part")
    tmp = downloads / f".{source.filename}.{os.getpid()}.part"
    try:
        digest = _download(source, url, tmp, on_bytes)
        if digest != source.sha256:
            raise CorpusError(
                f"{source.label}: {url} has sha256 {digest}, but the manifest pins "
                f"{source.sha256}; refusing it"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
