"""The layout's rules, checked from the source: no import cycle among the modules of myojax/,
experiments/ and proofs/; no library module over 450 lines; the library never imports the
experiments; the data package never imports the model; no link to a file that is not in the
repository; and a run directory written by the layout before the move still restores and
resumes."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("myojax", "experiments", "proofs")
MAX_LIBRARY_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for pkg in PACKAGES
        for p in sorted((REPO / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, at any depth (functions and TYPE_CHECKING
    blocks too: a lazy import that closes a loop is still a cycle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule when there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle() -> None:
    # Negative control: the checker must be able to fail.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_parser_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from myojax.train import run\n    from . import loop\n")
    known = {"myojax.train", "myojax.train.loop", "myojax.train.other"}
    assert _imports("myojax.train.other", src, known) == {"myojax.train", "myojax.train.loop"}


def test_layering() -> None:
    graph = _graph()
    library = [m for m in graph if m.split(".")[0] == "myojax"]
    for name in library:
        bad = {t for t in graph[name] if t.split(".")[0] == "experiments"}
        assert not bad, f"library module {name} imports experiments: {sorted(bad)}"
    for name in (m for m in library if m.startswith("myojax.data")):
        bad = {t for t in graph[name] if not t.startswith("myojax.data")}
        assert not bad, f"{name} (data) imports {sorted(bad)}: data must not depend on the model"


def test_library_modules_are_small() -> None:
    big = {
        name: n
        for name, path in _modules().items()
        if name.startswith("myojax")
        and (n := len(path.read_text().splitlines())) > MAX_LIBRARY_LINES
    }
    assert not big, f"library modules over {MAX_LIBRARY_LINES} lines: {big}"


def _tracked_text_files() -> list[Path]:
    skip = {".git", ".venv", "runs", "__pycache__", ".hypothesis", ".pytest_cache", "fixtures"}
    return [
        p
        for p in REPO.rglob("*")
        if p.is_file()
        and p.suffix in (".md", ".py", ".sh", ".toml")
        and not skip & set(p.relative_to(REPO).parts)
    ]


def test_no_reference_to_missing_files() -> None:
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    problems = []
    for path in _tracked_text_files():
        text = path.read_text()
        if "DESIGN.md" in text and path.name != "test_architecture.py":
            problems.append(f"{path.relative_to(REPO)} mentions DESIGN.md, which is not here")
        if path.suffix != ".md":
            continue
        for target in link.findall(text):
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            if not (path.parent / target).exists():
                problems.append(f"{path.relative_to(REPO)} links to missing {target}")
    assert not problems, "\n".join(problems)


FIXTURE = REPO / "tests" / "fixtures" / "run-v0.1-myopic"


def test_run_dir_from_the_previous_layout_restores_and_resumes(tmp_path: Path) -> None:
    """``tests/fixtures/run-v0.1-myopic`` was written by myojax before the move to packages
    (commit 160a113: ``myojax/train.py``), 8 steps with the step-8 checkpoint removed. The
    current code restores it for analysis and resumes it from step 4 to the same losses."""
    from myojax.checkpoint import restore
    from myojax.config import ModelConfig
    from myojax.train import TrainConfig, run

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    old = json.loads((run_dir / "config.json").read_text())
    old_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model_cfg, _ = restore(run_dir)
    assert model_cfg == ModelConfig(**old["model"]) and model_cfg.gradient_mode == "myopic"
    train_cfg = TrainConfig(**{**old["train"], "out": str(run_dir)})
    final = run(train_cfg, model_cfg, progress=False)
    assert final["resumed_from"] == 4 and final["step"] == 8
    new_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    def losses(rows: list[dict]) -> dict[int, float]:
        return {r["step"]: r["loss"] for r in rows if "loss" in r}

    assert losses(new_rows) == losses(old_rows)  # bitwise, as floats written to JSON
    assert [r["val_loss"] for r in new_rows if "val_loss" in r] == pytest.approx(
        [r["val_loss"] for r in old_rows if "val_loss" in r], rel=0, abs=0
    )
