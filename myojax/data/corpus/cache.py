"""Building a registry corpus once into its cache directory, verifying it, and finding it by name.

``build_corpus`` fetches and checks every pinned archive, reads its documents (whole files),
drops exact duplicates across all sources (the first in manifest and path order is kept),
assigns each document to a split and writes the splits as byte-token shards in the trainer's
layout (``train_*.bin``, ``val_*.bin``, ``test_*.bin`` with sidecars; every document followed
by the manifest's separator byte) plus ``corpus.json``. Everything is written into
``.NAME.build-PID`` beside the target and renamed into place at the end; a failure removes it,
and a build killed outright leaves only that folder, which the next build removes. A corpus
already built is verified (its manifest hash and every shard's sha256) and left alone.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from myojax.data.corpus import CorpusError
from myojax.data.corpus.documents import Tally, read_documents, split_of
from myojax.data.corpus.fetch import fetch, file_sha256, remove_stale
from myojax.data.corpus.manifest import (
    MANIFEST_DIR,
    SHARD_PREFIX,
    SPLITS,
    Manifest,
    Source,
    SplitPin,
    corpus_dir,
    downloads_dir,
    registry_names,
)
from myojax.data.corpus.record import (
    RECORD_FILE,
    CorpusRecord,
    ShardRecord,
    SourceRecord,
    read_record,
    write_record,
)
from myojax.data.prepare import write_shard
from myojax.progress import Progress

BYTE_VOCAB = 256


@dataclass
class _SplitWriter:
    """One split's shards: documents are buffered and cut into shards of about
    ``shard_tokens`` tokens at document boundaries."""

    directory: Path
    split: str
    shard_tokens: int
    buffer: list[bytes] = field(default_factory=list)
    size: int = 0
    documents: int = 0
    tokens: int = 0
    digest: Any = field(default_factory=hashlib.sha256)  # the split's running sha256
    shards: list[ShardRecord] = field(default_factory=list)

    def add(self, document: bytes) -> None:
        self.buffer.append(document)
        self.size += len(document)
        self.documents += 1
        if self.size >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        ids = np.frombuffer(b"".join(self.buffer), dtype=np.uint8).astype("<u2")
        name = f"{SHARD_PREFIX[self.split]}_{len(self.shards):06d}.bin"
        write_shard(self.directory / name, ids, vocab_size=BYTE_VOCAB, tokenizer="byte")
        data = ids.tobytes()
        self.digest.update(data)
        self.shards.append(
            ShardRecord(name, self.split, int(ids.size), hashlib.sha256(data).hexdigest())
        )
        self.tokens += int(ids.size)
        self.buffer, self.size = [], 0

    def pin(self) -> SplitPin:
        return SplitPin(self.documents, self.tokens, self.digest.hexdigest())


def _fetch_all(manifest: Manifest, downloads: Path, mirror: Path | None) -> list[Path]:
    total = sum(s.size for s in manifest.sources)
    bar = Progress(max(total // 1000, 1), unit="kB", desc="fetch")
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        bar.update(min(done, total) // 1000)

    archives = []
    try:
        for i, source in enumerate(manifest.sources, 1):
            archives.append(fetch(source, downloads, mirror=mirror, on_bytes=advance))
            bar.update(
                min(done, total) // 1000,
                line=f"fetched {source.filename} ({source.size / 1e6:.1f} MB, sha256 ok) "
                f"[{i}/{len(manifest.sources)}]",
            )
    finally:
        bar.close()
    return archives


def _source_record(source: Source, tally: Tally, split_bytes: dict[str, int]) -> SourceRecord:
    return SourceRecord(
        name=source.name,
        version=source.version,
        url=source.url,
        sha256=source.sha256,
        license=source.license,
        kept_files=tally.kept_files,
        kept_bytes=tally.kept_bytes,
        split_bytes=split_bytes,
        skipped=dict(sorted((tally.skipped or {}).items())),
    )


def _write_splits(
    manifest: Manifest, archives: list[Path], out: Path
) -> tuple[dict[str, _SplitWriter], list[SourceRecord]]:
    rules, sep = manifest.rules, bytes([manifest.separator])
    writers = {s: _SplitWriter(out, s, rules.shard_tokens) for s in SPLITS}
    seen: set[str] = set()
    sources = []
    bar = Progress(len(archives), unit="source", desc="read")
    try:
        for i, (source, archive) in enumerate(zip(manifest.sources, archives), 1):
            tally, split_bytes = Tally(), dict.fromkeys(SPLITS, 0)
            for doc in read_documents(archive, source, rules, tally):
                if (digest := doc.sha256) in seen:
                    tally.skip("duplicate")
                    continue
                seen.add(digest)
                split = split_of(
                    source.name, doc.path, rules.validation_fraction, rules.test_fraction
                )
                writers[split].add(doc.text + sep)
                tally.kept_files += 1
                tally.kept_bytes += len(doc.text)
                split_bytes[split] += len(doc.text)
            sources.append(_source_record(source, tally, split_bytes))
            bar.update(
                i,
                line=f"read {source.label}: kept {tally.kept_files} files, "
                f"{tally.kept_bytes / 1e6:.1f} MB [{i}/{len(archives)}]",
            )
    finally:
        bar.close()
    for w in writers.values():
        w.flush()
    return writers, sources


def _check_pins(manifest: Manifest, record: CorpusRecord) -> None:
    """A build must come out as the manifest pins it (when it pins anything)."""
    empty = [s for s in SPLITS if record.splits[s].documents == 0]
    if empty:
        raise CorpusError(
            f"corpus {manifest.name}: no documents in split(s) {empty}; the sources are too "
            "small for the held-out fractions"
        )
    problems = []
    for s in manifest.sources:
        kept = next(r.kept_bytes for r in record.sources if r.name == s.name)
        if s.kept_bytes is not None and kept != s.kept_bytes:
            problems.append(f"{s.label} kept {kept} bytes, pinned {s.kept_bytes}")
    for split, pin in (manifest.expected or {}).items():
        got = record.splits[split]
        if got != pin:
            problems.append(
                f"{split} has {got.documents} documents, {got.tokens} tokens, sha256 "
                f"{got.sha256[:16]}…, pinned {pin.documents}, {pin.tokens}, {pin.sha256[:16]}…"
            )
    if problems:
        raise CorpusError(
            f"corpus {manifest.name} came out different from its manifest ({manifest.path}): "
            + "; ".join(problems)
            + " (the build rules, the code or a source changed)"
        )


def _build_into(out: Path, manifest: Manifest, downloads: Path, mirror: Path | None) -> None:
    start = time.perf_counter()
    archives = _fetch_all(manifest, downloads, mirror)
    writers, sources = _write_splits(manifest, archives, out)
    record = CorpusRecord(
        corpus=manifest.name,
        manifest_sha256=manifest.sha256,
        tokenizer=manifest.tokenizer,
        vocab_size=BYTE_VOCAB,
        separator=manifest.separator,
        splits={s: w.pin() for s, w in writers.items()},
        shards=tuple(sh for w in writers.values() for sh in w.shards),
        sources=tuple(sources),
        built_by=f"python -m myojax.data.corpus build --corpus {manifest.name}",
        wall_s=round(time.perf_counter() - start, 1),
    )
    _check_pins(manifest, record)
    write_record(out, record)


def verify(directory: Path, manifest: Manifest) -> CorpusRecord:
    """The record of the corpus built in ``directory``, checked: built from this manifest,
    every recorded shard present with its sha256, and no other shard."""
    command = f"python -m myojax.data.corpus build --corpus {manifest.name}"
    if not directory.is_dir():
        raise CorpusError(f"corpus {manifest.name} is not built (no {directory}); run `{command}`")
    record = read_record(directory)
    advice = f"rebuild it with `{command} --rebuild`"
    if record.manifest_sha256 != manifest.sha256:
        raise CorpusError(
            f"the corpus in {directory} was built from manifest sha256 "
            f"{record.manifest_sha256[:16]}…, but {manifest.path} is now "
            f"{manifest.sha256[:16]}…; {advice}"
        )
    recorded = {s.file for s in record.shards}
    found = {p.name for prefix in SHARD_PREFIX.values() for p in directory.glob(f"{prefix}_*.bin")}
    if found != recorded:
        raise CorpusError(
            f"the corpus in {directory} is damaged: shards {sorted(recorded - found)} missing, "
            f"{sorted(found - recorded)} unrecorded; {advice}"
        )
    for shard in record.shards:
        if file_sha256(directory / shard.file) != shard.sha256:
            raise CorpusError(
                f"the corpus in {directory} is damaged: {shard.file} does not have its "
                f"recorded sha256; {advice}"
            )
    return record


def _install(tmp: Path, target: Path) -> None:
    """Rename the finished build into place (moving an older corpus aside first)."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Outcome:
    directory: Path
    record: CorpusRecord
    built: bool  # False: it was already there, and verified


def build_corpus(
    manifest: Manifest,
    root: Path | None = None,
    *,
    mirror: Path | None = None,
    rebuild: bool = False,
) -> Outcome:
    """Build ``manifest``'s corpus into ``ROOT/corpora/NAME`` unless it is there already
    (then verify it); ``rebuild`` replaces it."""
    target = corpus_dir(manifest.name, root)
    if target.exists() and not rebuild:
        return Outcome(target, verify(target, manifest), built=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, f".{target.name}.*-*")  # builds killed outright
    tmp = target.parent / f".{target.name}.build-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _build_into(tmp, manifest, downloads_dir(root), mirror)
        try:
            _install(tmp, target)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # another build finished first: keep its corpus if it is the same one
            return Outcome(target, verify(target, manifest), built=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Outcome(target, read_record(target), built=True)


def resolve(
    source: str, root: Path | None = None, manifest_dir: Path = MANIFEST_DIR
) -> Path | None:
    """The directory of built registry corpus ``source``; None when ``source`` names no
    registry corpus (it is then a path). An unbuilt corpus is one line saying how to build it."""
    if source not in registry_names(manifest_dir):
        return None
    directory = corpus_dir(source, root)
    if not (directory / RECORD_FILE).is_file():
        raise CorpusError(
            f"corpus {source!r} is not built (no {directory / RECORD_FILE}); build it once with "
            f"`python -m myojax.data.corpus build --corpus {source}`"
        )
    return directory


def identity(directory: Path) -> dict[str, str]:
    """The corpus name and manifest sha256 of a shard directory built from the registry
    (empty for any other directory)."""
    if not (Path(directory) / RECORD_FILE).is_file():
        return {}
    return read_record(directory).identity
