"""Tokenizers: byte-level (vocab 256, the embedded default) and GPT-2 BPE through tiktoken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tokenizer:
    """Text -> token ids. ``eot`` (if any) is appended after every document by ``prepare``."""

    name: str
    vocab_size: int
    encode: Callable[[str], np.ndarray]
    decode: Callable[[np.ndarray], str]
    eot: int | None = None


def byte_tokenizer() -> Tokenizer:
    return Tokenizer(
        name="byte",
        vocab_size=256,
        encode=lambda text: np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy(),
        decode=lambda ids: bytes(np.asarray(ids, dtype=np.uint8)).decode("utf-8", "replace"),
    )


def tiktoken_tokenizer(encoding: str = "gpt2") -> Tokenizer:
    try:
        import tiktoken
    except ImportError as e:  # optional: only needed to prepare BPE shards on a connected machine
        raise RuntimeError(
            f"tokenizer {encoding!r} needs the optional package tiktoken (pip install tiktoken)"
        ) from e
    enc = tiktoken.get_encoding(encoding)
    return Tokenizer(
        name=encoding,
        vocab_size=enc.n_vocab,
        encode=lambda text: np.asarray(enc.encode_ordinary(text), dtype=np.uint32),
        decode=lambda ids: enc.decode([int(i) for i in ids]),
        eot=enc.eot_token,
    )


def get_tokenizer(name: str) -> Tokenizer:
    """``"byte"`` or a tiktoken encoding name such as ``"gpt2"``."""
    return byte_tokenizer() if name == "byte" else tiktoken_tokenizer(name)
