"""myojax.cli: flags generated from config dataclasses, one spelling each, and one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from myojax import cli
from myojax.checkpoint import CheckpointError
from myojax.config import ModelConfig
from myojax.data.pipeline import DataError


def test_every_model_field_becomes_one_flag_with_its_help():
    p = cli.parser("prog", "doc")
    cli.add_config_flags(p, ModelConfig)
    text = p.format_help()
    for f in dataclasses.fields(ModelConfig):
        assert cli.flag(f.name) in text
        assert f.metadata["help"].split()[0] in text  # the field's own help text
    assert "--d-model" in text and "--d_model" not in text


def test_flags_replace_only_given_fields_and_parse_types():
    p = cli.parser("prog", "doc")
    cli.add_config_flags(p, ModelConfig)
    base = ModelConfig(d_model=32, n_heads=2)
    args = p.parse_args(["--n-layers", "3", "--d-ff", "none", "--tie-embeddings", "false"])
    cfg = cli.config_from_args(base, args)
    assert cfg == base.replace(n_layers=3, d_ff=None, tie_embeddings=False)
    with pytest.raises(SystemExit):  # a Literal field only takes its choices
        p.parse_args(["--gradient-mode", "sideways"])


def test_only_and_skip_select_fields():
    p = cli.parser("prog", "doc")
    cli.add_config_flags(p, ModelConfig, only=("d_model", "n_layers"), skip=("n_layers",))
    text = p.format_help()
    assert "--d-model" in text and "--n-layers" not in text and "--seq-len" not in text


def test_tuple_fields_are_comma_separated():
    @dataclasses.dataclass(frozen=True)
    class C:
        seeds: tuple[int, ...] = (0,)

    p = cli.parser("prog", "doc")
    cli.add_config_flags(p, C)
    assert cli.config_from_args(C(), p.parse_args(["--seeds", "1,2,3"])).seeds == (1, 2, 3)


def test_run_prints_one_line_and_picks_the_exit_code(capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

    def failing(error):
        def main(argv=None):
            raise error

        return main

    assert cli.run(failing(ValueError("--steps must be >= 1")), []) == 2
    assert capsys.readouterr().err == "error: --steps must be >= 1\n"
    assert cli.run(failing(DataError("shard x is corrupt")), []) == 1
    assert cli.run(failing(CheckpointError("step 3 unreadable")), []) == 1
    assert cli.run(failing(OSError(28, "No space left on device", "/x/y")), []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "no space left on device while writing /x/y" in err
    assert cli.run(lambda argv=None: 0, []) == 0


def test_debug_shows_the_traceback(monkeypatch):
    # Negative control of the one-line rule: asked for, the exception propagates.
    def main(argv=None):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cli.run(main, ["--debug"])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="boom"):
        cli.run(main, [])


def test_comma_list_names_the_bad_item():
    parse = cli.comma_list(("standard", "myopic"), "gradient mode")
    assert parse("standard,myopic") == ("standard", "myopic")
    with pytest.raises(Exception, match="unknown gradient mode"):
        parse("standard,sideways")
