"""myojax.data.prepare + shard loading: text -> uint16/uint32 shards with sidecars, read back by
memmap, malformed files rejected by name, and a real training run on the prepared shards."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from myojax import cli
from myojax.data import prepare as prep
from myojax.data.pipeline import DataError, load_data, load_shards
from myojax.data.prepare.__main__ import main as prepare_main
from myojax.data.tokenizer import byte_tokenizer
from myojax.train import run
from myojax.train.presets import RUN_PRESETS as PRESETS

TRAIN_TEXT = "To be, or not to be, that is the question.\n" * 40
VAL_TEXT = "Friends, Romans, countrymen, lend me your ears.\n" * 10


@pytest.fixture
def prepared(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(TRAIN_TEXT)
    (tmp_path / "v.txt").write_text(VAL_TEXT)
    prepare_main(
        [
            str(tmp_path / "a.txt"),
            "--val",
            str(tmp_path / "v.txt"),
            "--out",
            str(tmp_path / "shards"),
            "--shard-tokens",
            "1000",
        ]
    )
    return tmp_path / "shards", capsys.readouterr().out


@pytest.fixture
def shards(prepared):
    return prepared[0]


def test_prepare_writes_shards_that_read_back(prepared):
    shards, out = prepared
    assert f"train: 2 shard(s), {len(TRAIN_TEXT)} tokens" in out
    train, vocab = load_shards(shards, "train")
    assert vocab == 256 and [a.size for a in train] == [1000, len(TRAIN_TEXT) - 1000]
    assert train[0].dtype == np.uint16
    assert np.concatenate(train).astype(np.uint8).tobytes() == TRAIN_TEXT.encode()
    meta = json.loads((shards / "val_000000.json").read_text())
    digest = hashlib.sha256((shards / "val_000000.bin").read_bytes()).hexdigest()
    assert meta.pop("sha256") == digest
    assert meta == {
        "dtype": "uint16",
        "vocab_size": 256,
        "num_tokens": len(VAL_TEXT),
        "tokenizer": "byte",
        "format": "myojax-shard-v1",
    }
    assert (
        load_data(str(shards)).val[0].tobytes()
        == np.frombuffer(VAL_TEXT.encode(), np.uint8).astype(np.uint16).tobytes()
    )


def test_large_vocab_uses_uint32(tmp_path):
    path = prep.write_shard(
        tmp_path / "train_000000.bin",
        np.array([1, 70_000, 5]),
        vocab_size=100_000,
        tokenizer="test",
    )
    arrays, vocab = load_shards(tmp_path, "train")
    assert (
        vocab == 100_000 and arrays[0].dtype == np.uint32 and arrays[0].tolist() == [1, 70_000, 5]
    )
    assert path.stat().st_size == 12
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 256\)"):
        prep.write_shard(tmp_path / "x.bin", np.array([300]), vocab_size=256, tokenizer="t")


def test_malformed_shards_are_named(shards):
    with pytest.raises(DataError, match="no test_\\*.bin shards"):
        load_shards(shards, "test")
    side = shards / "train_000001.json"
    side.write_text("{")
    with pytest.raises(DataError, match="train_000001.json is malformed"):
        load_shards(shards, "train")
    side.write_text(json.dumps({"dtype": "uint16", "vocab_size": 256, "num_tokens": 9999}))
    with pytest.raises(DataError, match="train_000001.bin holds 1440 bytes .* truncated"):
        load_shards(shards, "train")
    side.unlink()
    with pytest.raises(DataError, match="has no sidecar"):
        load_shards(shards, "train")


def test_cli_missing_input_is_one_error(tmp_path, capsys):
    argv = [str(tmp_path / "nope.txt"), "--val", str(tmp_path / "nope.txt")]
    assert cli.run(prepare_main, [*argv, "--out", str(tmp_path / "o")]) == 2
    assert "nope.txt does not exist" in capsys.readouterr().err


def test_byte_tokenizer_round_trip():
    tok = byte_tokenizer()
    assert tok.decode(tok.encode("héllo")) == "héllo" and tok.vocab_size == 256


def test_training_end_to_end_on_prepared_shards(shards, tmp_path):
    model_cfg = PRESETS["tiny"][0].replace(seq_len=16, d_model=16, n_layers=1, n_heads=2)
    train_cfg = PRESETS["tiny"][1].replace(
        steps=4,
        batch_size=4,
        warmup_steps=1,
        eval_interval=4,
        eval_batches=1,
        checkpoint_interval=4,
        data=str(shards),
        out=str(tmp_path / "run"),
    )
    final = run(train_cfg, model_cfg, progress=False)
    assert final["step"] == 4 and np.isfinite(final["val_loss"])
    with pytest.raises(ValueError, match="vocab_size 256 but ModelConfig.vocab_size is 128"):
        run(
            train_cfg.replace(out=str(tmp_path / "r2")),
            model_cfg.replace(vocab_size=128),
            progress=False,
        )


def test_prepare_into_a_non_empty_dir_is_refused_unless_overwrite(prepared, tmp_path, capsys):
    """Re-preparing used to leave the old shards beside the new ones, read as one dataset."""
    shards, _ = prepared
    old_train = sorted(p.name for p in shards.glob("train_*.bin"))
    assert len(old_train) > 1
    (tmp_path / "b.txt").write_text("A new and much shorter text.\n")
    argv = [str(tmp_path / "b.txt"), "--val", str(tmp_path / "v.txt"), "--out", str(shards)]
    assert cli.run(prepare_main, argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "is not empty" in line and "--overwrite" in line
    assert sorted(p.name for p in shards.glob("train_*.bin")) == old_train  # untouched
    assert prepare_main([*argv, "--overwrite"]) == 0
    assert [p.name for p in shards.glob("train_*.bin")] == ["train_000000.bin"]
    data = load_data(str(shards))
    assert sum(a.size for a in data.train) == len(b"A new and much shorter text.\n")


def test_non_utf8_input_is_named(tmp_path, capsys):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "v.txt").write_text(VAL_TEXT)
    argv = [str(tmp_path / "latin1.txt"), "--val", str(tmp_path / "v.txt")]
    assert cli.run(prepare_main, [*argv, "--out", str(tmp_path / "o")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"input file {tmp_path / 'latin1.txt'} is not UTF-8" in line and "byte 3" in line


def test_shards_that_disagree_on_tokenizer_dtype_or_vocab_are_refused(shards):
    assert load_data(str(shards)).tokenizer == "byte"
    side = shards / "train_000001.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "tokenizer": "gpt2"}))
    with pytest.raises(
        DataError, match=r"train shards .* disagree \(tokenizer byte.*tokenizer gpt2"
    ):
        load_data(str(shards))
    side.write_text(json.dumps(meta))
    val = shards / "val_000000.json"
    val.write_text(json.dumps({**json.loads(val.read_text()), "tokenizer": "gpt2"}))
    with pytest.raises(DataError, match="train and val shards .* disagree"):
        load_data(str(shards))
