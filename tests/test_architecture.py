"""The layout's rules (docs/architecture.md), checked from the source: no import cycle among
the modules of myojax/, experiments/ and proofs/, nor between their folders; no module over 450
lines anywhere; the library never imports the experiments or the proofs; the data package never
imports the model; the README's module map lists every module; no link to a file that is not in
the repository; and a run directory written by the layout before the move still restores and
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
MAX_MODULE_LINES = 450


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


# Plumbing every layer may use: configuration-free helpers that import nothing of the model.
FOUNDATION = ("myojax.files", "myojax.progress")


def _unit(module: str) -> str:
    """The folder-level unit of a module: ``myojax.train.loop`` -> ``myojax.train``; a
    top-level module is its own unit (``myojax.presets``); ``experiments.scaling.x`` ->
    ``experiments.scaling``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for name, targets in graph.items():
        unit = _unit(name)
        units.setdefault(unit, set()).update(
            _unit(t) for t in targets if _unit(t) != unit and _unit(t) != t.split(".")[0]
        )
    for targets in list(units.values()):
        for t in targets:
            units.setdefault(t, set())
    return units


def _layering_problems(graph: dict[str, set[str]]) -> list[str]:
    """The library never imports the experiments or the proofs; the data package imports only
    itself and the foundation; the proofs never import the experiments; and no loop runs
    between folders (``a/`` imports ``b/`` which imports ``a/``), which the module-level cycle
    check cannot see."""
    problems = []
    for name, targets in sorted(graph.items()):
        top = name.split(".")[0]
        if top == "myojax":
            bad = sorted(t for t in targets if t.split(".")[0] in ("experiments", "proofs"))
            if bad:
                problems.append(f"library module {name} imports experiments/proofs: {bad}")
        if top == "proofs":
            bad = sorted(t for t in targets if t.split(".")[0] == "experiments")
            if bad:
                problems.append(f"proofs module {name} imports experiments: {bad}")
        if name.startswith("myojax.data") and not name.endswith(".__main__"):  # commands: cli
            bad = sorted(
                t for t in targets if not t.startswith("myojax.data") and t not in FOUNDATION
            )
            if bad:
                problems.append(f"{name} (data) imports {bad}: data must not depend on the model")
    cycle = _find_cycle(_unit_graph(graph))
    if cycle:
        problems.append("folder-level import loop: " + " -> ".join(cycle))
    return problems


def test_layering() -> None:
    problems = _layering_problems(_graph())
    assert not problems, "\n".join(problems)


def test_layering_check_catches_planted_violations() -> None:
    graph = {
        "myojax.model": {"experiments.scaling"},
        "myojax.data.pipeline": {"myojax.data.corpus", "myojax.loss", "myojax.files"},
        "myojax.data.corpus": set(),
        "myojax.loss": set(),
        "myojax.files": set(),
        "experiments.bench": {"myojax.model"},
        "proofs.api": {"experiments.bench"},
    }
    assert _layering_problems(graph) == [
        "myojax.data.pipeline (data) imports ['myojax.loss']: data must not depend on the model",
        "library module myojax.model imports experiments/proofs: ['experiments.scaling']",
        "proofs module proofs.api imports experiments: ['experiments.bench']",
    ]


def test_folder_level_loop_is_caught() -> None:
    # Negative control: no module-level cycle, but presets -> train/ -> sharding/ -> presets.
    graph = {
        "myojax.presets": {"myojax.train.config"},
        "myojax.train.config": {"myojax.sharding.mesh"},
        "myojax.sharding.mesh": set(),
        "myojax.sharding.memory_plan": {"myojax.presets"},
    }
    assert _find_cycle(graph) is None
    assert _layering_problems(graph) == [
        "folder-level import loop: myojax.presets -> myojax.train -> myojax.sharding -> "
        "myojax.presets"
    ]


# docs/architecture.md's layers, bottom up: a module imports only its own layer or lower ones.
# Command modules (``__main__`` and the top-level commands) sit in layer 6 wherever they live.
LAYERS: dict[int, tuple[str, ...]] = {
    1: (
        "myojax.files",
        "myojax.progress",
        "myojax.config",
        "myojax.presets",
        "myojax.provenance",
        "myojax.orbax_noise",
    ),
    2: ("myojax.data",),
    3: (
        "myojax.attention",
        "myojax.attention_fast",
        "myojax.model",
        "myojax.loss",
        "myojax.mup",
        "myojax.heads",
        "myojax.reference",
        "myojax.bootstrap",
        "myojax.scaling_laws",
        "myojax.sharding",
        "myojax.checkpoint",
        "myojax.evaluation",
    ),
    4: ("myojax.train",),
    5: ("myojax.analysis", "myojax.verify"),
    6: ("myojax", "myojax.cli", "myojax.compare", "myojax.export", "myojax.sample"),
    7: ("experiments", "proofs"),
}
COMMAND_LAYER = 6


def _layer(module: str) -> int | None:
    """The layer of the longest ``LAYERS`` prefix of ``module`` (commands: ``COMMAND_LAYER``)."""
    if module.endswith(".__main__"):
        return max(COMMAND_LAYER, _layer(module.rpartition(".")[0]) or 0)
    matches = [
        (len(prefix), layer)
        for layer, prefixes in LAYERS.items()
        for prefix in prefixes
        # "myojax" names the package's __init__ only: a new library module needs its own entry.
        if module == prefix or (module.startswith(prefix + ".") and prefix != "myojax")
    ]
    return max(matches)[1] if matches else None


def _layer_problems(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, targets in sorted(graph.items()):
        layer = _layer(name)
        if layer is None:
            problems.append(f"{name} has no layer in LAYERS (docs/architecture.md)")
            continue
        for target in sorted(targets):
            if (_layer(target) or 0) > layer:
                problems.append(f"{name} (layer {layer}) imports {target} (layer {_layer(target)})")
    return problems


def test_imports_go_down_the_layers() -> None:
    problems = _layer_problems(_graph())
    assert not problems, "\n".join(problems)


def test_layer_check_catches_an_upward_import() -> None:
    graph = {
        "myojax.model": {"myojax.train.loop", "myojax.config"},
        "myojax.train.loop": {"myojax.model"},
        "myojax.config": set(),
        "myojax.train.__main__": {"myojax.cli", "myojax.analysis.runs"},
        "myojax.cli": set(),
        "myojax.analysis.runs": set(),
        "myojax.newthing": set(),
    }
    assert _layer_problems(graph) == [
        "myojax.model (layer 3) imports myojax.train.loop (layer 4)",
        "myojax.newthing has no layer in LAYERS (docs/architecture.md)",
    ]


def _oversized(line_counts: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in line_counts.items() if n > MAX_MODULE_LINES}


def test_modules_are_small() -> None:
    """No module of the library, the experiments or the proofs is over the size rule; there is
    no allow-list."""
    counts = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    big = _oversized(counts)
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"
    # Negative control: the rule flags a planted large module wherever it lives.
    planted = {"myojax.x": MAX_MODULE_LINES + 1, "experiments.y": 10**4, "proofs.z": 3}
    assert _oversized(planted) == {"myojax.x": MAX_MODULE_LINES + 1, "experiments.y": 10**4}


def _text_files(root: Path) -> dict[Path, str]:
    skip = {".git", ".venv", "runs", "__pycache__", ".hypothesis", ".pytest_cache", "fixtures"}
    return {
        p: p.read_text()
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in (".md", ".py", ".sh", ".toml")
        and not skip & set(p.relative_to(root).parts)
    }


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Project documents are named in capitals by convention (README.md, …); generated outputs
# (report.md) are lower-case and are written by the code that names them.
DOCUMENT = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_-]*\.md)\b")
UPWARD = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*)")


def _reference_problems(root: Path, files: dict[Path, str]) -> list[str]:
    """References a reader cannot follow inside ``root``: markdown links to missing files or
    out of the tree, relative paths that climb out of it, and project documents (capitalised
    ``*.md``) that the tree does not contain."""
    root = root.resolve()
    documents = {p.name for p in files if p.suffix == ".md"}
    problems = []

    def outside(path: Path) -> bool:
        return not path.resolve().is_relative_to(root)

    for path, text in sorted(files.items()):
        where = path.relative_to(root)
        for target in UPWARD.findall(text):
            if outside(path.parent / target):
                problems.append(f"{where} points outside the repository: {target}")
        for name in sorted(set(DOCUMENT.findall(text)) - documents):
            problems.append(f"{where} mentions {name}, which is not in the repository")
        if path.suffix != ".md":
            continue
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            resolved = path.parent / target
            if outside(resolved) or not resolved.exists():
                problems.append(f"{where} links to missing {target}")
    return problems


def test_no_reference_to_missing_files() -> None:
    problems = _reference_problems(REPO, _text_files(REPO))
    assert not problems, "\n".join(problems)


def test_reference_check_catches_planted_references(tmp_path: Path) -> None:
    # Built from pieces so that this file itself holds no reference the real check would flag.
    up, notes = "../" * 2, "NOTES" + ".md"
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(f"[ok](docs/a.md) [gone](docs/b.md) see {notes}\n")
    (tmp_path / "docs" / "a.md").write_text(f"back to README.md; [up]({up}x.md)\n")
    (tmp_path / "m.py").write_text(f'"""Read {up}elsewhere/x for details; writes report.md."""\n')
    assert _reference_problems(tmp_path, _text_files(tmp_path)) == [
        f"README.md mentions {notes}, which is not in the repository",
        "README.md links to missing docs/b.md",
        f"docs/a.md points outside the repository: {up}x.md",
        f"docs/a.md links to missing {up}x.md",
        f"m.py points outside the repository: {up}elsewhere/x",
    ]


FIXTURE = REPO / "tests" / "fixtures" / "run-v0.1-myopic"


def test_run_dir_from_the_previous_layout_restores_and_resumes(tmp_path: Path) -> None:
    """``tests/fixtures/run-v0.1-myopic`` was written by myojax before the move to packages
    (commit 160a113: ``myojax/train.py``), 8 steps with the step-8 checkpoint removed. The
    current code restores it for analysis (its config, written before ``attention_impl``
    existed, reads as the reference formulation that trained it) and resumes it from step 4,
    with that implementation, to the same losses bitwise."""
    from myojax.checkpoint import restore
    from myojax.config import ModelConfig
    from myojax.train import TrainConfig, run

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    old = json.loads((run_dir / "config.json").read_text())
    old_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model_cfg, _ = restore(run_dir)
    assert "attention_impl" not in old["model"] and model_cfg.attention_impl == "reference"
    assert model_cfg == ModelConfig(**old["model"], attention_impl="reference")
    assert model_cfg.gradient_mode == "myopic"
    train_cfg = TrainConfig(**{**old["train"], "out": str(run_dir)})
    final = run(train_cfg, model_cfg, progress=False)
    assert final["resumed_from"] == 4 and final["step"] == 8
    new_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert _losses(new_rows) == _losses(old_rows)  # bitwise, as floats written to JSON
    assert [r["val_loss"] for r in new_rows if "val_loss" in r] == pytest.approx(
        [r["val_loss"] for r in old_rows if "val_loss" in r], rel=0, abs=0
    )


def test_run_dir_from_before_attention_impl_resumes_with_the_fast_path(tmp_path: Path) -> None:
    """The same command as the one that wrote the fixture (no ``attention_impl``: the fast
    default now) is not refused as a config change; the run resumes on the fast path to the same
    losses within float rounding, and the new checkpoint records the implementation."""
    from myojax.checkpoint import restore
    from myojax.config import ModelConfig
    from myojax.train import TrainConfig, run

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    old = json.loads((run_dir / "config.json").read_text())
    old_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model_cfg = ModelConfig(**old["model"])
    assert model_cfg.attention_impl == "fast"
    train_cfg = TrainConfig(**{**old["train"], "out": str(run_dir)})
    assert run(train_cfg, model_cfg, progress=False)["resumed_from"] == 4
    new_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    new, before = _losses(new_rows), _losses(old_rows)
    assert sorted(new) == sorted(before)
    assert [new[s] for s in sorted(new)] == pytest.approx([before[s] for s in sorted(new)], 1e-5)
    assert restore(run_dir)[0].attention_impl == "fast"  # step 8, trained on the fast path
    assert json.loads((run_dir / "config.json").read_text())["model"]["attention_impl"] == "fast"


def _losses(rows: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_readme_module_map_lists_every_module() -> None:
    from tests.module_map import module_map, readme_map

    assert readme_map() == module_map(), (
        "README.md's module map is stale: run python -m tests.module_map --write"
    )


def test_module_map_lists_a_planted_module(tmp_path: Path) -> None:
    from tests.module_map import module_map

    for package in ("myojax", "experiments", "proofs"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'"""The {package} package."""\n')
    (tmp_path / "myojax" / "planted.py").write_text('"""A planted module (e.g. new). More."""\n')
    text = module_map(tmp_path)
    assert "  planted.py" in text and "A planted module (e.g. new)." in text
    assert "More" not in text
