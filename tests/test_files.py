"""myojax.files: atomic writes (a failed write leaves the old file whole) and tolerant reads."""

from __future__ import annotations

import json

import pytest

from myojax import files


def test_write_and_read_json(tmp_path):
    path = tmp_path / "a" / "x.json"
    files.write_json(path, {"k": 1})
    assert json.loads(path.read_text()) == {"k": 1}
    assert files.read_json(path) == {"k": 1}
    assert files.read_json(tmp_path / "missing.json", default={}) == {}
    (tmp_path / "half.json").write_text('{"k": ')
    assert files.read_json(tmp_path / "half.json") is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary left


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "page.md"
    files.write_text(path, "old page\n")

    class Full(OSError):
        pass

    def no_space(self, text):
        raise Full(28, "No space left on device")

    monkeypatch.setattr(type(path), "write_text", no_space)
    with pytest.raises(Full):
        files.write_text(path, "new page\n")
    monkeypatch.undo()
    assert path.read_text() == "old page\n"
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]


def test_copy_file(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(b"\x89PNG data")
    files.copy_file(src, tmp_path / "out" / "b.png")
    assert (tmp_path / "out" / "b.png").read_bytes() == b"\x89PNG data"


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    files.write_text(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode)
