"""The one ending every experiment shares: record its results, write them, plot them, render
the page and, with ``--publish``, copy all of it into the repository.

An experiment describes what it publishes as a ``Page`` and calls ``finish``; ``--from-json
FILE`` (``add_flags``) redraws the plots and pages from saved results without running anything.
Every file goes through ``myojax.files`` (temp file + rename), so a kill or a full disk leaves
the previous page whole, and the page is written last: a page on disk means its JSON and plots
are there too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from myojax import cli, files
from myojax.provenance import write_section


@dataclasses.dataclass(frozen=True)
class Page:
    """What one experiment writes and publishes.

    ``render(results, figure_prefix)`` is the markdown page, whose figure links start with
    ``figure_prefix``; ``plot(results, folder)`` draws the figures into ``folder`` and returns
    their file names. Published, the JSON goes to ``results/{json_name}``, the page to
    ``results/{page_name}``, the figures to ``{figures}/`` (relative to the repository root)
    and, with ``readme``, ``readme(results)`` to the README section ``readme_key``.
    """

    json_name: str
    page_name: str
    render: Callable[[Any, str], str]
    plot: Callable[[Any, Path], list[str]] | None = None
    figures: str = "docs/figures"
    readme: Callable[[Any], str] | None = None
    readme_key: str | None = None
    local_page: str = "report.md"  # the page's name inside the experiment's --out
    local_json: str | None = None  # the results' name inside --out (None: json_name)


def report_page(
    name: str,
    render: Callable[[Any, str], str],
    plot: Callable[[Any, Path], list[str]] | None = None,
) -> Page:
    """The usual page: ``results.json`` and ``report.md`` in the experiment's --out, published
    as ``results/{name}.json`` and ``results/{name}.md`` with its figures in docs/figures."""
    return Page(f"{name}.json", f"{name}.md", render, plot, local_json="results.json")


def results_page(
    name: str,
    render: Callable[[Any, str], str],
    plot: Callable[[Any, Path], list[str]] | None = None,
) -> Page:
    """A page kept under its own name everywhere: ``{name}.json``, ``{name}.md`` and its
    figures side by side, in --out as in results/."""
    return Page(
        f"{name}.json", f"{name}.md", render, plot, figures="results", local_page=f"{name}.md"
    )


def page_at(path: Path, render: Callable[[Any, str], str]) -> Page:
    """A page without figures written where the user asked, ``path``, its JSON beside it
    (``path`` with ``.json``)."""
    path = Path(path)
    return Page(path.with_suffix(".json").name, path.name, render, local_page=path.name)


def add_flags(p: argparse.ArgumentParser, page_names: str) -> None:
    """``--publish`` and ``--from-json``, spelled the same in every experiment."""
    p.add_argument(
        "--publish",
        action="store_true",
        help=f"also write {page_names} into the repository (run from its root): generated "
        "pages, never edited by hand",
    )
    add_from_json_flag(p, "this command's JSON")


def add_from_json_flag(p: argparse.ArgumentParser, what: str) -> None:
    """``--from-json FILE`` alone, for commands that rewrite their own output files instead of
    publishing a page; ``what`` names the file it takes."""
    p.add_argument(
        "--from-json",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"run nothing: redraw the plots and pages from saved results ({what})",
    )


def load(path: Path) -> Any:
    """Saved results for ``--from-json``; a missing or malformed file is one clear error."""
    if not Path(path).is_file():
        raise cli.UsageError(f"--from-json: no such file {path}")
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise cli.UsageError(f"--from-json: {path} is not valid JSON ({e})") from None


def _relative(target: Path, start: Path) -> str:
    """The link prefix from a page in folder ``start`` to files in folder ``target`` (both
    relative to the repository root)."""
    if target == start:
        return ""
    return "../" * len(start.parts) + target.as_posix() + "/"


def finish(
    page: Page,
    results: Any,
    out: Path,
    *,
    publish: bool = False,
    root: Path | None = None,
    write_results: bool = True,
) -> list[Path]:
    """Write ``results`` as JSON to ``out``, its plots and its page; with ``publish``, the same
    into the repository at ``root`` (default: the working directory). Returns the paths
    written, page last."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)  # the plots go there before any file is written
    written: list[Path] = []
    if write_results:
        local_json = out / (page.local_json or page.json_name)
        files.write_json(local_json, results)
        written.append(local_json)
    names = page.plot(results, out) if page.plot else []
    written += [out / n for n in names]
    files.write_text(out / page.local_page, page.render(results, ""))
    written.append(out / page.local_page)
    if publish:
        written += publish_page(page, results, Path.cwd() if root is None else Path(root))
    return written


def publish_page(page: Page, results: Any, root: Path) -> list[Path]:
    """The repository's copy: results/ JSON, figures, the results page, the README section."""
    results_dir = root / "results"
    figures = root / page.figures
    written = [results_dir / page.json_name]
    files.write_json(results_dir / page.json_name, results)
    if page.plot:
        figures.mkdir(parents=True, exist_ok=True)
        written += [figures / n for n in page.plot(results, figures)]
    prefix = _relative(Path(page.figures), Path("results"))
    files.write_text(results_dir / page.page_name, page.render(results, prefix))
    written.append(results_dir / page.page_name)
    readme = root / "README.md"
    if page.readme is not None and page.readme_key and readme.is_file():
        write_section(readme, page.readme_key, page.readme(results))
        written.append(readme)
    return written
