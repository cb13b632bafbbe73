"""Text files -> pre-tokenized token shards (nanoGPT layout) with a sidecar JSON per shard.

A shard is ``DIR/{split}_{index:06d}.bin``: the raw token ids, little-endian ``uint16`` when the
vocabulary fits (< 2**16 ids), else ``uint32``, with no header. Next to it,
``DIR/{split}_{index:06d}.json`` states ``dtype``, ``vocab_size``, ``num_tokens``,
``tokenizer`` and ``sha256`` (of the .bin's bytes, checked on load) so a reader never has to
guess. Every input file is one document; held-out
documents go to the ``val`` split whole, never as windows of a trained-on text.

    python -m myojax.data.prepare a.txt b.txt --val heldout.txt --out DIR [--tokenizer gpt2]

(the command: ``myojax.data.prepare.__main__``)

A non-empty ``DIR`` is refused (new shards beside old ones would be read as one dataset) unless
``--overwrite``, which first removes the old shards and their sidecars.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from myojax import files
from myojax.data import checksum
from myojax.data.tokenizer import Tokenizer, get_tokenizer

DEFAULT_SHARD_TOKENS = 100_000_000  # ~200 MB of uint16 per shard


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def write_shard(path: Path, tokens: np.ndarray, *, vocab_size: int, tokenizer: str) -> Path:
    """Write ``path`` (.bin) and its sidecar (.json); the .bin is renamed into place last-but-one
    and the sidecar last, so a reader never sees a sidecar for a half-written shard."""
    path = Path(path)
    if path.suffix != ".bin":
        raise ValueError(f"shard path must end in .bin, got {path}")
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(f"a shard needs a non-empty 1-D token array, got shape {tokens.shape}")
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        raise ValueError(
            f"token ids must lie in [0, {vocab_size}), got [{tokens.min()}, {tokens.max()}]"
        )
    dtype = token_dtype(vocab_size)
    tmp = path.with_suffix(".bin.tmp")
    tokens.astype(dtype).tofile(tmp)
    os.replace(tmp, path)
    meta = {
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "num_tokens": int(tokens.size),
        "tokenizer": tokenizer,
        "format": "myojax-shard-v1",
        "sha256": checksum.scan(path, dtype).sha256,
    }
    files.write_json(path.with_suffix(".json"), meta)
    return path


def write_split(
    out: Path,
    split: str,
    documents: Iterable[np.ndarray],
    tokenizer: Tokenizer,
    *,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
) -> list[Path]:
    """Concatenate tokenized documents (each followed by EOT when the tokenizer has one) into
    shards of at most ``shard_tokens`` tokens. Also the entry point for streamed datasets."""
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    buf: list[np.ndarray] = []
    size = 0

    def flush() -> None:
        nonlocal buf, size
        if size:
            tokens = np.concatenate(buf)
            for start in range(0, tokens.size, shard_tokens):
                paths.append(
                    write_shard(
                        out / f"{split}_{len(paths):06d}.bin",
                        tokens[start : start + shard_tokens],
                        vocab_size=tokenizer.vocab_size,
                        tokenizer=tokenizer.name,
                    )
                )
        buf, size = [], 0

    eot = None if tokenizer.eot is None else np.array([tokenizer.eot], np.uint32)
    for doc in documents:
        parts = [doc] if eot is None else [doc.astype(np.uint32), eot]
        buf.extend(parts)
        size += sum(p.size for p in parts)
        if size >= shard_tokens:
            flush()
    flush()
    return paths


SHARD_PATTERNS = ("train_*.bin", "val_*.bin", "train_*.json", "val_*.json", "*.tmp")


def clear_output(out: Path, *, overwrite: bool) -> None:
    """Refuse a non-empty ``out``; with ``overwrite``, remove its old shards and sidecars."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ValueError(
            f"output directory {out} is not empty; its old shards would be read together with "
            "the new ones: pass --overwrite to replace them, or choose another --out"
        )
    for pattern in SHARD_PATTERNS:
        for path in out.glob(pattern):
            path.unlink()


def read_text(path: Path) -> str:
    """A UTF-8 input file's text; an undecodable one is named."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"input file {path} is not UTF-8 text ({e.reason} at byte {e.start}); convert it "
            f"first, e.g. `iconv -f latin1 -t utf-8 {path}`"
        ) from None


def prepare(
    train_files: list[Path],
    val_files: list[Path],
    out: Path,
    *,
    tokenizer: str = "byte",
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    for f in [*train_files, *val_files]:
        if not Path(f).is_file():
            raise ValueError(f"input text file {f} does not exist")  # a request, not a disk fault
    if not train_files or not val_files:
        raise ValueError("need at least one training file and one --val file (held out whole)")
    tok = get_tokenizer(tokenizer)
    clear_output(Path(out), overwrite=overwrite)

    def docs(files: list[Path]) -> Iterable[np.ndarray]:
        for f in files:
            yield tok.encode(read_text(f))

    return {
        split: write_split(out, split, docs(files), tok, shard_tokens=shard_tokens)
        for split, files in (("train", train_files), ("val", val_files))
    }
