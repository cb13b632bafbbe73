"""myojax.data.pipeline: seeded determinism, checkpointable iterator, disjoint per-host shards,
windows that are real contiguous text and never straddle shards, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from myojax.data import pipeline
from myojax.data.pipeline import DataError, batch_iterator, shard_options, window_dataset

ARRAYS = (np.arange(0, 500, dtype=np.uint16), np.arange(1000, 1300, dtype=np.uint16))


def ds(seed=0, shard=None, batch_size=4, num_batches=6):
    return window_dataset(
        ARRAYS,
        seq_len=7,
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
        shard=shard or shard_options(0, 1),
    )


def collect(it, n):
    return [next(it) for _ in range(n)]


def test_same_seed_same_batches_other_seed_different():
    a, b, c = (collect(batch_iterator(ds(s)), 6) for s in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert a[0].shape == (4, 8) and a[0].dtype == np.int32


def test_windows_are_contiguous_and_within_one_shard():
    for batch in ds(3):
        for w in batch:
            assert np.all(np.diff(w) == 1), w  # contiguous tokens of a single array
            assert (w < 500).all() or (w >= 1000).all()
    starts = np.concatenate([b[:, 0] for b in ds(4, num_batches=200)])
    assert (starts < 500).any() and (starts >= 1000).any()  # both shards are sampled
    assert starts.max() <= 1300 - 8 and starts.min() >= 0


def test_iterator_state_round_trip():
    it = batch_iterator(ds())
    collect(it, 2)
    state = it.get_state()
    rest = collect(it, 4)
    it2 = batch_iterator(ds())
    it2.set_state(state)
    assert all(np.array_equal(x, y) for x, y in zip(rest, collect(it2, 4)))


def test_per_host_shards_are_disjoint_and_cover_the_global_batch():
    full = list(ds(batch_size=4))
    s0, s1 = (list(ds(shard=shard_options(i, 2), batch_size=4)) for i in (0, 1))
    for g, a, b in zip(full, s0, s1, strict=True):
        assert a.shape == b.shape == (2, 8)
        np.testing.assert_array_equal(g[0::2], a)  # element b*B + r goes to host r % 2
        np.testing.assert_array_equal(g[1::2], b)
    assert not any(np.array_equal(x, y) for x, y in zip(s0, s1))


def test_bad_shapes_are_clear_errors():
    with pytest.raises(DataError, match="long enough for a window of 1001"):
        window_dataset(ARRAYS, seq_len=1000, batch_size=2, num_batches=1, seed=0)
    with pytest.raises(ValueError, match="not divisible by the 3 data shards"):
        ds(shard=shard_options(0, 3), batch_size=4)


def test_embedded_source():
    data = pipeline.load_data("shakespeare")
    assert data.vocab_size == 256 and data.train[0].size > 10 * data.val[0].size
    (validation,), (test,) = data.validation, data.test
    assert validation.size > 50_000 and test.size > 50_000
    # the trainer's held-out text is validation and test together, the study uses each alone
    assert data.val[0].size == validation.size + test.size


def test_shard_test_split_is_optional(tmp_path):
    from myojax.data import prepare

    src = tmp_path / "a.txt"
    src.write_text("to be or not to be " * 200)
    prepare.prepare([src], [src], tmp_path / "d", tokenizer="byte", shard_tokens=1000)
    assert pipeline.load_data(str(tmp_path / "d")).test == ()
    for f in (tmp_path / "d").glob("val_*"):
        (tmp_path / "d" / f.name.replace("val_", "test_")).write_bytes(f.read_bytes())
    data = pipeline.load_data(str(tmp_path / "d"))
    assert len(data.test) == len(data.validation) == len(data.val) > 0


def test_explicit_rows_select_those_rows_of_every_global_batch():
    full = list(ds(batch_size=4))
    for rows in ([0, 1], [2, 3], [3, 0], [0, 1, 2, 3]):
        picked = list(
            window_dataset(ARRAYS, seq_len=7, batch_size=4, num_batches=6, seed=0, rows=rows)
        )
        assert len(picked) == 6
        for g, p in zip(full, picked, strict=True):
            np.testing.assert_array_equal(g[rows], p)
    # The iterator state is the batch index, the same for any row selection.
    it = batch_iterator(
        window_dataset(ARRAYS, seq_len=7, batch_size=4, num_batches=6, seed=0, rows=[2, 3])
    )
    collect(it, 2)
    whole = batch_iterator(ds())
    collect(whole, 2)
    assert it.get_state() == whole.get_state() == {"next_index": 2}
    with pytest.raises(ValueError, match="distinct indices in"):
        window_dataset(ARRAYS, seq_len=7, batch_size=4, num_batches=1, seed=0, rows=[1, 1])
    with pytest.raises(ValueError, match="distinct indices in"):
        window_dataset(ARRAYS, seq_len=7, batch_size=4, num_batches=1, seed=0, rows=[4])


def test_data_pointing_at_a_file_says_so(tmp_path):
    shard = tmp_path / "train_000000.bin"
    shard.write_bytes(b"\0\0")
    with pytest.raises(DataError, match=f"--data {shard} is a file; .*{tmp_path}"):
        pipeline.load_data(str(shard))


def test_too_long_a_window_names_the_split_and_file():
    data = pipeline.TokenData(
        ARRAYS, (np.arange(10, dtype=np.uint16),), 2000, "test", names={"val": ("v.bin",)}
    )
    pipeline.check_windows_fit(data, 10)  # exactly fits: accepted
    with pytest.raises(DataError, match=r"--seq-len 10 .* no val shard .* \(the longest, v.bin"):
        pipeline.check_windows_fit(data, 11)
    with pytest.raises(DataError, match=r"no train shard .* train array 0, holds 500"):
        pipeline.check_windows_fit(data, 501)


def _prepared(tmp_path):
    from myojax.data import prepare

    src = tmp_path / "a.txt"
    src.write_text("to be or not to be " * 200)
    prepare.prepare([src], [src], tmp_path / "d", tokenizer="byte", shard_tokens=1000)
    return tmp_path / "d"


def test_same_length_corruption_is_caught_by_the_sidecar_checksum(tmp_path):
    """Issue 26 (4): a shard changed in place (same length, valid ids) is refused on load,
    named, instead of training silently on other data."""
    d = _prepared(tmp_path)
    assert pipeline.load_data(str(d)).vocab_size == 256  # negative control: intact loads
    shard = d / "train_000001.bin"
    raw = bytearray(shard.read_bytes())
    raw[10] = (raw[10] + 1) % 256  # still a valid byte id
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train_000001\.bin does not match the sha256"):
        pipeline.load_data(str(d))


def test_out_of_range_token_ids_name_the_shard(tmp_path):
    """Issue 26 (4): ids >= vocab_size are a data error naming the shard at load time, not a
    NaN loss blamed on the learning rate (here a shard from before checksums: no sha256)."""
    d = _prepared(tmp_path)
    sidecar = d / "val_000000.json"
    meta = json.loads(sidecar.read_text())
    del meta["sha256"]
    sidecar.write_text(json.dumps(meta))
    shard = d / "val_000000.bin"
    ids = np.fromfile(shard, dtype="<u2")
    ids[3] = 300
    ids.tofile(shard)
    with pytest.raises(DataError, match=r"val_000000\.bin holds token id 300, outside"):
        pipeline.load_data(str(d))


def disjoint_ds(arrays=ARRAYS, num_batches=6, seed=0, disjoint=True):
    return window_dataset(
        arrays,
        seq_len=7,
        batch_size=4,
        num_batches=num_batches,
        seed=seed,
        shard=shard_options(0, 1),
        disjoint=disjoint,
    )


def test_disjoint_windows_never_read_a_token_twice_and_random_ones_do():
    # 500 // 8 + 300 // 8 = 99 windows; 24 batches of 4 read 96 of them.
    positions = pipeline.position_ids(ARRAYS)
    assert pipeline.max_token_reads(disjoint_ds(positions, num_batches=24)) == 1
    # Negative control: the default random starts overlap long before the split is used up.
    assert pipeline.max_token_reads(disjoint_ds(positions, num_batches=24, disjoint=False)) > 1


def test_disjoint_windows_are_real_text_tiling_one_shard_and_seeded():
    a = np.concatenate(list(disjoint_ds(num_batches=24)))
    assert all(np.all(np.diff(w) == 1) for w in a)
    assert all(w[0] % 8 == 0 if w[0] < 500 else (w[0] - 1000) % 8 == 0 for w in a)
    b = np.concatenate(list(disjoint_ds(num_batches=24, seed=1)))
    assert not np.array_equal(a, b)
    # A longer run reads a prefix-extension of a shorter one's windows.
    assert np.array_equal(np.concatenate(list(disjoint_ds(num_batches=3))), a[:12])


def test_disjoint_iterator_resumes_bitwise():
    it = batch_iterator(disjoint_ds(num_batches=10))
    collect(it, 3)
    state = it.get_state()
    rest = collect(it, 7)
    it2 = batch_iterator(disjoint_ds(num_batches=10))
    it2.set_state(state)
    assert all(np.array_equal(x, y) for x, y in zip(rest, collect(it2, 7), strict=True))


def test_disjoint_run_longer_than_the_split_is_refused_not_wrapped():
    with pytest.raises(DataError, match="need 100 windows but the split holds only 99"):
        disjoint_ds(num_batches=25)
