"""Data: the embedded corpus, tokenizers, token shards and the grain input pipeline."""

from myojax.data.pipeline import (
    EMBEDDED,
    DataError,
    TokenData,
    batch_iterator,
    load_data,
    load_shards,
    shard_options,
    window_dataset,
)

__all__ = [
    "EMBEDDED",
    "DataError",
    "TokenData",
    "batch_iterator",
    "load_data",
    "load_shards",
    "shard_options",
    "window_dataset",
]
