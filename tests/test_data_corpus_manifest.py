"""myojax.data.corpus.manifest: the registry's pinned manifests parse, pin every source by hash
and a permissive licence, are large enough for the study, and a malformed one is one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from myojax.data.corpus import CorpusError
from myojax.data.corpus import manifest as mf
from tests import corpus_sources as cs

PERMISSIVE = {"BSD-2-Clause", "BSD-3-Clause", "MIT", "Apache-2.0", "0BSD", "Zlib", "CC0-1.0"}


def test_the_registry_holds_pycode():
    assert "pycode" in mf.registry_names()
    with pytest.raises(ValueError, match="unknown corpus 'nope'; the registry holds: .*pycode"):
        mf.load_manifest("nope")


def test_pycode_pins_every_source_with_a_permissive_licence():
    m = mf.load_manifest("pycode")
    assert m.tokenizer == "byte" and m.separator == 0 and len(m.sources) >= 10
    for s in m.sources:
        assert re.fullmatch(r"[0-9a-f]{64}", s.sha256), s.label
        assert s.url.startswith("https://files.pythonhosted.org/packages/") and s.url.endswith(
            "/" + s.filename
        )
        terms = set(re.split(r" AND | OR ", s.license))
        assert terms <= PERMISSIVE or s.license.startswith("LicenseRef-Matplotlib"), s.license
        assert s.kept_bytes and s.kept_bytes > 1_000_000, s.label
    assert m.sha256 == __import__("hashlib").sha256(m.path.read_bytes()).hexdigest()


def test_pycode_is_large_enough_that_no_study_run_repeats_a_token():
    pins = mf.load_manifest("pycode").expected
    assert pins is not None
    assert pins["train"].tokens >= 100_000_000
    assert pins["validation"].tokens >= 2_000_000 and pins["test"].tokens >= 2_000_000


def _write(tmp_path: Path, raw: dict) -> Path:
    return cs.write_manifest(tmp_path / "m.json", raw)


def _base(tmp_path: Path) -> dict:
    return json.loads(cs.tiny_manifest(tmp_path).read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format="v0"), "format is 'v0'"),
        (lambda m: m.pop("rules"), "KeyError"),
        (lambda m: m["sources"].append(m["sources"][0]), "uniquely named"),
        (lambda m: m["sources"][0].update(sha256="abc"), "without a sha256"),
        (lambda m: m["rules"].update(test_fraction=0.4), "sum below 0.5"),
        (lambda m: m.update(tokenizer="gpt2"), "only byte corpora"),
        (
            lambda m: m.update(expected={"train": {"documents": 1, "tokens": 1, "sha256": "x"}}),
            "exactly the splits",
        ),
    ],
)
def test_a_malformed_manifest_is_one_line(tmp_path, change, message):
    raw = _base(tmp_path)
    mf.parse_manifest(_write(tmp_path, raw))  # negative control: the unchanged one parses
    change(raw)
    with pytest.raises(CorpusError, match=re.escape(message)):
        mf.parse_manifest(_write(tmp_path, raw))
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(CorpusError, match="is malformed"):
        mf.parse_manifest(tmp_path / "m.json")


def test_the_manifest_hash_changes_with_any_byte(tmp_path):
    path = cs.tiny_manifest(tmp_path)
    a = mf.parse_manifest(path).sha256
    path.write_text(path.read_text().replace('"license": "MIT"', '"license": "BSD-3-Clause"', 1))
    assert mf.parse_manifest(path).sha256 != a


def test_cache_paths_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(mf.CACHE_ENV, str(tmp_path / "cache"))
    assert mf.corpus_dir("pycode") == tmp_path / "cache" / "corpora" / "pycode"
    assert mf.downloads_dir() == tmp_path / "cache" / "downloads"
    monkeypatch.delenv(mf.CACHE_ENV)
    assert mf.cache_root() == Path.home() / ".cache" / "myojax"
