"""grain input pipeline: seeded random windows of ``seq_len + 1`` tokens, batched, per host.

Element ``i`` of the dataset is a window whose start is drawn by grain's per-element RNG, which
is seeded by ``(seed, i)`` alone: the same seed gives the same batches on every run and every
machine, and the iterator state that is checkpointed is just the next batch index. Row ``r`` of
global batch ``b`` is element ``b * batch_size + r`` whichever process reads it, so the global
batches do not depend on the process count. Each process reads only its own rows: the ones its
devices hold under the trainer's batch sharding (``rows=``), or by default grain's interleaved
``[process_index::process_count]`` slice.

``disjoint=True`` (a study that must not repeat a training token) replaces the random starts by
a seeded permutation of the disjoint windows ``[k * length, (k + 1) * length)`` of every array:
element ``i`` is window ``permutation[i]``, so no token is read twice within a run, a run that
would need more windows than the split holds is refused instead of wrapping around, and resume
stays bitwise (the state is still the element index).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grain
import numpy as np
from jaxtyping import Int

from myojax.data import checksum, corpus
from myojax.data.corpus import cache

EMBEDDED = "shakespeare"
_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


class DataError(RuntimeError):
    """Missing or malformed data files, or data unusable with the requested shapes."""


@dataclass(frozen=True)
class TokenData:
    """Train and held-out token arrays (ndarray or read-only memmap), the vocabulary size, the
    tokenizer that made them, and the files they came from (``names[split][i]``).

    ``val`` is what the trainer evaluates on. ``validation`` (tuning decisions) and ``test``
    (reported losses) are the disjoint held-out splits a study uses: for the embedded corpus
    ``val`` is both together; for shards ``validation`` is the ``val_*`` shards and ``test`` the
    optional ``test_*`` shards (empty when there are none).
    """

    train: tuple[np.ndarray, ...]
    val: tuple[np.ndarray, ...]
    vocab_size: int
    description: str
    tokenizer: str = "byte"
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    validation: tuple[np.ndarray, ...] = ()
    test: tuple[np.ndarray, ...] = ()
    corpus: dict[str, str] = field(default_factory=dict)  # a registry corpus: name, manifest


def check_windows_fit(data: TokenData, length: int) -> None:
    """Refuse, naming the split and its longest file, if no array holds a ``length`` window."""
    for split in ("train", "val"):
        arrays = getattr(data, split)
        longest = int(np.argmax([a.shape[0] for a in arrays]))
        if arrays[longest].shape[0] < length:
            names = data.names.get(split) or [f"{split} array {i}" for i in range(len(arrays))]
            raise DataError(
                f"--seq-len {length - 1} needs windows of {length} tokens, but no {split} "
                f"shard is that long (the longest, {names[longest]}, holds "
                f"{arrays[longest].shape[0]} tokens): lower --seq-len or prepare longer shards"
            )


def _sidecar_identity(meta: dict) -> tuple[str, str, int]:
    return str(meta.get("tokenizer", "unknown")), str(meta["dtype"]), int(meta["vocab_size"])


def _check_content(path: Path, meta: dict, dtype: np.dtype, vocab_size: int) -> None:
    """Refuse, naming the shard, one whose bytes differ from its sidecar's ``sha256`` (shards
    prepared before checksums have none) or that holds a token id outside the vocabulary."""
    found = checksum.scan(path, dtype)
    if "sha256" in meta and found.sha256 != meta["sha256"]:
        raise DataError(
            f"shard {path} does not match the sha256 its sidecar records: corrupted or "
            "replaced; re-prepare it with `python -m myojax.data.prepare ... --overwrite`"
        )
    if found.max_id >= vocab_size:
        raise DataError(
            f"shard {path} holds token id {found.max_id}, outside its vocabulary of "
            f"{vocab_size}: corrupted or prepared with another tokenizer"
        )


def load_shards(directory: str | Path, split: str) -> tuple[list[np.ndarray], int]:
    """Memory-map every ``{split}_*.bin`` shard in ``directory``, checked against its sidecar."""
    arrays, identity, _ = _load_shards(Path(directory), split)
    return arrays, identity[2]


def _load_shards(
    directory: Path, split: str
) -> tuple[list[np.ndarray], tuple[str, str, int], list[str]]:
    """Arrays, their common (tokenizer, dtype, vocab_size), and file paths; every sidecar must
    agree on all three (a shard left by an earlier ``prepare`` would not)."""
    if directory.is_file():
        raise DataError(
            f"--data {directory} is a file; give the directory of token shards "
            f"(e.g. {directory.parent})"
        )
    if not directory.is_dir():
        raise DataError(f"shard directory {directory} does not exist")
    paths = sorted(directory.glob(f"{split}_*.bin"))
    if not paths:
        raise DataError(
            f"no {split}_*.bin shards in {directory} "
            "(prepare them with `python -m myojax.data.prepare`)"
        )
    arrays, identities = [], {}
    for path in paths:
        sidecar = path.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
            dtype, n = _DTYPES[meta["dtype"]], int(meta["num_tokens"])
            identity = _sidecar_identity(meta)  # tokenizer, dtype, vocab_size
        except FileNotFoundError:
            raise DataError(f"shard {path} has no sidecar {sidecar}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DataError(
                f"shard sidecar {sidecar} is malformed ({type(e).__name__}: {e}); "
                f"expected dtype in {sorted(_DTYPES)}, vocab_size, num_tokens"
            ) from None
        size = path.stat().st_size
        if size != n * dtype.itemsize or n <= 0:
            raise DataError(
                f"shard {path} holds {size} bytes but its sidecar states {n} "
                f"{meta['dtype']} tokens ({n * dtype.itemsize} bytes): truncated "
                "or mismatched"
            )
        _check_content(path, meta, dtype, identity[2])
        arrays.append(np.memmap(path, dtype=dtype, mode="r", shape=(n,)))
        identities.setdefault(identity, []).append(path.name)
    if len(identities) != 1:
        groups = "; ".join(
            f"tokenizer {t}, {d}, vocab_size {v}: {', '.join(names)}"
            for (t, d, v), names in identities.items()
        )
        raise DataError(
            f"{split} shards in {directory} disagree ({groups}); re-prepare the directory "
            "with `python -m myojax.data.prepare ... --overwrite`"
        )
    return arrays, next(iter(identities)), [str(p) for p in paths]


def load_data(source: str) -> TokenData:
    """``"shakespeare"`` (the embedded byte-level corpus), a registry corpus built into the cache
    (``"pycode"``: ``python -m myojax.data.corpus build --corpus pycode``) or a directory of
    token shards."""
    if source == EMBEDDED:
        c = corpus.load()
        names = {s: (f"the embedded Shakespeare {s} split",) for s in ("train", "val")}
        return TokenData(
            (c.train,),
            (c.val,),
            256,
            "embedded Shakespeare corpus (bytes)",
            "byte",
            names,
            validation=(c.validation,),
            test=(c.test,),
        )
    source = str(cache.resolve(source) or source)
    train, id_train, train_names = _load_shards(Path(source), "train")
    val, id_val, val_names = _load_shards(Path(source), "val")
    test: list[np.ndarray] = []
    test_names: list[str] = []
    if any(Path(source).glob("test_*.bin")):
        test, id_test, test_names = _load_shards(Path(source), "test")
        if id_test != id_train:
            raise DataError(
                f"train and test shards in {source} disagree (tokenizer, dtype, vocab_size: "
                f"{id_train} vs {id_test}); re-prepare with `python -m myojax.data.prepare ... "
                "--overwrite`"
            )
    if id_train != id_val:
        raise DataError(
            f"train and val shards in {source} disagree (tokenizer, dtype, vocab_size: "
            f"{id_train} vs {id_val}); re-prepare with `python -m myojax.data.prepare ... "
            "--overwrite`"
        )
    return TokenData(
        tuple(train),
        tuple(val),
        id_train[2],
        f"token shards in {source} ({id_train[0]})",
        id_train[0],
        {"train": tuple(train_names), "val": tuple(val_names), "test": tuple(test_names)},
        validation=tuple(val),
        test=tuple(test),
        corpus=cache.identity(Path(source)),
    )


class RandomWindow(grain.transforms.RandomMap):
    """Element index -> a uniformly random window of ``length`` tokens from any of the arrays.

    Windows never straddle two arrays (shards); the start is drawn from grain's per-element RNG.
    """

    def __init__(self, arrays: Sequence[np.ndarray], length: int):
        counts = np.array([max(a.shape[0] - length + 1, 0) for a in arrays], dtype=np.int64)
        if counts.sum() == 0:
            raise DataError(
                f"no array is long enough for a window of {length} tokens "
                f"(lengths {[a.shape[0] for a in arrays]})"
            )
        self.arrays, self.length = tuple(arrays), length
        self.ends = np.cumsum(counts)  # window starts of all arrays, numbered consecutively

    def random_map(self, element: int, rng: np.random.Generator) -> Int[np.ndarray, " T1"]:
        del element  # the window depends only on the (seed, index)-seeded rng
        u = int(rng.integers(self.ends[-1]))
        k = int(np.searchsorted(self.ends, u, side="right"))
        start = u - (int(self.ends[k - 1]) if k else 0)
        return np.asarray(self.arrays[k][start : start + self.length], dtype=np.int32)


class DisjointWindow(grain.transforms.Map):
    """Element index -> window ``permutation[index]`` of the disjoint windows of ``length``
    tokens tiling every array (a remainder shorter than a window is never read)."""

    def __init__(self, arrays: Sequence[np.ndarray], length: int, seed: int):
        counts = np.array([a.shape[0] // length for a in arrays], dtype=np.int64)
        if counts.sum() == 0:
            raise DataError(
                f"no array is long enough for a window of {length} tokens "
                f"(lengths {[a.shape[0] for a in arrays]})"
            )
        self.arrays, self.length = tuple(arrays), length
        self.ends = np.cumsum(counts)
        # The order depends on the seed and the split only, so a longer run reads a prefix-
        # extension of a shorter one's windows.
        self.order = np.random.default_rng(seed).permutation(int(self.ends[-1]))

    def location(self, element: int) -> tuple[int, int]:
        """(array, start) of the window element ``element`` reads."""
        w = int(self.order[element])
        k = int(np.searchsorted(self.ends, w, side="right"))
        return k, (w - (int(self.ends[k - 1]) if k else 0)) * self.length

    def map(self, element: int) -> Int[np.ndarray, " T1"]:
        k, start = self.location(element)
        return np.asarray(self.arrays[k][start : start + self.length], dtype=np.int32)


class PositionIds:
    """A stand-in for a token array whose "tokens" are their global positions (``offset + i``):
    windowed by the same pipeline, it shows exactly which training tokens a run reads."""

    def __init__(self, length: int, offset: int):
        self.shape, self.offset = (length,), offset

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, _ = s.indices(self.shape[0])
        return np.arange(self.offset + start, self.offset + stop, dtype=np.int64)


def position_ids(arrays: Sequence[np.ndarray]) -> tuple[PositionIds, ...]:
    """One ``PositionIds`` per array, numbering all tokens of the split consecutively."""
    offsets = np.concatenate([[0], np.cumsum([a.shape[0] for a in arrays])[:-1]])
    return tuple(PositionIds(a.shape[0], int(o)) for a, o in zip(arrays, offsets, strict=True))


def max_token_reads(ds: grain.MapDataset) -> int:
    """How many times the most-read position is read by ``ds`` built over ``position_ids``
    (each window's last token is a target only, so it counts as read too)."""
    if len(ds) == 0:
        return 0
    read = np.concatenate([np.asarray(ds[i]).ravel() for i in range(len(ds))])
    return int(np.unique(read, return_counts=True)[1].max())


def shard_options(
    process_index: int | None = None, process_count: int | None = None
) -> grain.sharding.ShardOptions:
    """This JAX process's shard (grain's ``ShardByJaxProcess``), or an explicit one for tests."""
    if process_index is None and process_count is None:
        return grain.sharding.ShardByJaxProcess(drop_remainder=True)
    return grain.sharding.ShardOptions(process_index, process_count, drop_remainder=True)


class _BatchRows(grain.MapDataset):
    """Rows ``rows`` of every consecutive group of ``batch_size`` parent elements, in order.

    Selection happens after the random map, so element ``b * batch_size + r`` keeps the window
    its (seed, index) RNG drew, whichever process reads it.
    """

    def __init__(self, parent: grain.MapDataset, rows: np.ndarray, batch_size: int):
        super().__init__(parent)
        self._rows, self._batch_size = rows, batch_size

    def __len__(self) -> int:
        return len(self._parent) // self._batch_size * len(self._rows)

    def _parent_index(self, index: int) -> int:
        batch, k = divmod(index, len(self._rows))
        return batch * self._batch_size + int(self._rows[k])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.slice(index)
        return self._parent[self._parent_index(index)]

    def _getitems(self, indices: Sequence[int]) -> Any:
        return self._parent._getitems([self._parent_index(i) for i in indices])

    def __str__(self) -> str:
        return f"_BatchRows(rows={len(self._rows)} of {self._batch_size})"


def window_dataset(
    arrays: Sequence[np.ndarray],
    *,
    seq_len: int,
    batch_size: int,
    num_batches: int,
    seed: int,
    shard: grain.sharding.ShardOptions | None = None,
    rows: Sequence[int] | np.ndarray | None = None,
    disjoint: bool = False,
) -> grain.MapDataset:
    """``num_batches`` global batches of windows ``(batch_size, seq_len + 1)`` (int32), of which
    this process gets only its rows of each batch.

    ``rows`` names them explicitly (distinct indices in ``[0, batch_size)``, e.g. from
    ``myojax.sharding.process_batch_indices``); otherwise ``shard`` (default: this JAX process)
    gives the interleaved ``batch_size // shard_count`` rows ``shard_index::shard_count``.
    ``disjoint``: non-overlapping windows, none read twice (see the module docstring).
    """
    for name, v in (("seq_len", seq_len), ("batch_size", batch_size), ("num_batches", num_batches)):
        if v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")
    ds = grain.MapDataset.range(num_batches * batch_size)
    if disjoint:
        sampler = DisjointWindow(arrays, seq_len + 1, seed)
        if num_batches * batch_size > len(sampler.order):
            raise DataError(
                f"{num_batches} batches of {batch_size} disjoint windows of {seq_len + 1} "
                f"tokens need {num_batches * batch_size} windows but the split holds only "
                f"{len(sampler.order)}: lower the steps or use a larger corpus"
            )
        ds = ds.map(sampler)
    else:
        ds = ds.random_map(RandomWindow(arrays, seq_len + 1), seed=seed)
    if rows is not None:
        if shard is not None:
            raise ValueError("give either rows or shard, not both")
        rows = np.asarray(rows, dtype=np.int64)
        if (
            rows.ndim != 1
            or rows.size == 0
            or len(np.unique(rows)) != rows.size
            or rows.min() < 0
            or rows.max() >= batch_size
        ):
            raise ValueError(
                f"rows must be distinct indices in [0, batch_size={batch_size}), "
                f"got {rows.tolist()}"
            )
        return _BatchRows(ds, rows, batch_size).batch(rows.size, drop_remainder=True)
    shard = shard if shard is not None else shard_options()
    if batch_size % shard.shard_count:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by the "
            f"{shard.shard_count} data shards (processes)"
        )
    # Interleaved slices: row r of global batch b comes from element b * batch_size + r.
    ds = ds[shard.shard_index :: shard.shard_count]
    return ds.batch(batch_size // shard.shard_count, drop_remainder=True)


def batch_iterator(ds: grain.MapDataset, *, threads: int = 2) -> grain.DatasetIterator:
    """A checkpointable iterator (``get_state``/``set_state``, grain's orbax handler); threads
    prefetch ahead but the order, and hence every batch, is fixed by the element index."""
    options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4 * max(threads, 1))
    return iter(ds.to_iter_dataset(options))
