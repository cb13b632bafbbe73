"""A finished smoke study, trained once per test session for the language-model myopia tests
(``from tests.lm_myopia_fixtures import smoke_study`` makes the fixture available)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.scaling.__main__ import main as study_main


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lm_myopia") / "smoke"
    assert study_main(["--preset", "smoke", "--out", str(out), "--progress", "false"]) == 0
    return out
