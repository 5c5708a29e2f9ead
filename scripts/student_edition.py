"""Build the student edition: a copy of the book and its notebooks with the solutions removed.

Usage (from the repository root; ``make student`` runs it)::

    .venv/bin/python scripts/student_edition.py            # _student/ and its HTML in _student/_build/html
    .venv/bin/python scripts/student_edition.py --no-html  # only the sources in _student/

What changes in the copy:

- ``_config.yml``: ``hide_solutions: true`` (sphinx-exercise drops every ``{solution}`` block from the
  HTML) and ``execute_notebooks: off`` (the stubs below raise, so the student book is not executed);
- every notebook listed in ``_toc.yml``: each *code* cell between a markdown cell holding a
  ``{solution-start} <label>`` directive and the one holding ``{solution-end}`` becomes
  ``raise NotImplementedError("Exercise <label>: your code here")``. The gated directives and the
  solution's prose go too: sphinx-exercise cannot hide a gated solution (with ``hide_solutions`` it
  drops the start but keeps the end marker, and the HTML writer fails on it), and a student who opens
  the notebook in Jupyter or Colab reads the raw markdown. For the same reason the markdown-only
  ``{solution}`` blocks are removed from the notebooks' cells as well.

The chapter list is read from ``_toc.yml``; nothing here names a chapter.
"""
from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
STUDENT_DIR = ROOT / "_student"

# Not part of the student's copy: version control, environments, build outputs, the project's own tests
# and maintenance scripts (which know the solutions' layout), CI configuration.
_SKIP_TOP = {"_build", "_student", "tests", "scripts"}
_SKIP_ANYWHERE = ("__pycache__", "*.egg-info", ".ipynb_checkpoints", "_build", ".*")

# An opening fence of a MyST directive (colon or backtick fence) naming one of the solution directives.
_OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>solution|solution-start|solution-end)\}[ \t]*(?P<arg>\S*)")


def stub_source(label: str) -> str:
    """The code a solution cell is replaced by."""
    return f'raise NotImplementedError("Exercise {label}: your code here")'


@dataclass
class Directive:
    """A solution directive found in a markdown cell: its name, argument and line span ``[start, stop)``."""

    name: str
    arg: str
    start: int
    stop: int


@dataclass
class NotebookReport:
    """What :func:`studentize` changed in one notebook."""

    stubbed: dict[str, str] = field(default_factory=dict)  # cell id -> exercise label
    solutions_removed: int = 0


def _closing_line(lines: list[str], opening: int, fence: str) -> int:
    """Index of the line closing the fence opened at ``lines[opening]`` (same character, at least as long)."""
    closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    for i in range(opening + 1, len(lines)):
        if closing.match(lines[i]):
            return i
    raise ValueError(f"unclosed {{solution}} directive opened by {lines[opening]!r}")


def find_directives(text: str) -> list[Directive]:
    """Every ``{solution}``, ``{solution-start}`` and ``{solution-end}`` directive in a markdown text, in order."""
    lines = text.split("\n")
    found, i = [], 0
    while i < len(lines):
        m = _OPENING.match(lines[i])
        if m is None:
            i += 1
            continue
        stop = _closing_line(lines, i, m["fence"]) + 1
        found.append(Directive(m["name"], m["arg"], i, stop))
        i = stop
    return found


def _keep_lines(text: str, drop: list[tuple[int, int]]) -> str:
    """``text`` without the line ranges in ``drop``; surplus blank lines at the joins and ends removed."""
    if not drop:
        return text
    lines = text.split("\n")
    dropped = {i for a, b in drop for i in range(a, b)}
    kept = "\n".join(line for i, line in enumerate(lines) if i not in dropped)
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n")


def _markdown_cell(text: str, in_solution: str | None, report: NotebookReport) -> tuple[str, str | None]:
    """Strip the solution parts of one markdown cell; returns the kept text and the open gated solution, if any.

    ``in_solution`` is the label of a gated solution opened by an earlier cell (``None`` outside one).
    """
    directives = find_directives(text)
    n_lines = len(text.split("\n"))
    drop: list[tuple[int, int]] = []
    begin = 0 if in_solution is not None else None  # where the open gated solution started in this cell
    for d in directives:
        if d.name == "solution-start":
            if begin is not None:
                raise ValueError(f"{{solution-start}} {d.arg} opened inside the solution to {in_solution}")
            begin, in_solution = d.start, d.arg or "?"
        elif d.name == "solution-end":
            if begin is None:
                raise ValueError("{solution-end} without a {solution-start}")
            drop.append((begin, d.stop))
            report.solutions_removed += 1
            begin, in_solution = None, None
        elif begin is None:  # a markdown-only {solution} block outside a gated solution
            drop.append((d.start, d.stop))
            report.solutions_removed += 1
    if begin is not None:
        drop.append((begin, n_lines))
    return _keep_lines(text, drop), in_solution


def studentize(nb: dict[str, Any]) -> tuple[dict[str, Any], NotebookReport]:
    """The student version of a notebook (a new dict) and a report of what was removed.

    Code cells inside a gated solution become :func:`stub_source` stubs (same cell id, no outputs);
    solution directives and their prose are removed; markdown cells left empty are dropped.
    """
    out = copy.deepcopy(nb)
    report = NotebookReport()
    cells, in_solution = [], None
    for index, cell in enumerate(out["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            kept, in_solution = _markdown_cell(source, in_solution, report)
            if kept.strip():
                cells.append({**cell, "source": kept})
        elif cell["cell_type"] == "code" and in_solution is not None:
            cells.append({**cell, "source": stub_source(in_solution), "metadata": {},
                          "outputs": [], "execution_count": None})
            report.stubbed[cell.get("id", f"cell {index}")] = in_solution
        else:
            cells.append(cell)
    if in_solution is not None:
        raise ValueError(f"the solution to {in_solution} has no {{solution-end}}")
    out["cells"] = cells
    return out, report


def toc_files(toc: dict[str, Any]) -> Iterator[str]:
    """Every ``file:`` entry of a ``_toc.yml`` (root, parts, chapters, sections), in order."""
    if "root" in toc:
        yield toc["root"]
    if "file" in toc:
        yield toc["file"]
    for key in ("parts", "chapters", "sections"):
        for entry in toc.get(key, []):
            yield from toc_files(entry)


def book_notebooks(book: Path) -> list[Path]:
    """The notebooks of the book in ``book`` (those of its ``_toc.yml`` entries that are ``.ipynb`` files)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    found = []
    for name in toc_files(toc):
        path = book / name
        path = path if path.suffix == ".ipynb" else path.with_name(path.name + ".ipynb")
        if path.is_file():
            found.append(path)
    return found


def student_config(config: dict[str, Any]) -> dict[str, Any]:
    """The student book's ``_config.yml``: solutions hidden, notebooks not executed."""
    out = copy.deepcopy(config)
    out["title"] = f"{config.get('title', 'Book')} (student edition)"
    out.setdefault("execute", {})["execute_notebooks"] = "off"
    out.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    return out


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = set(shutil.ignore_patterns(*_SKIP_ANYWHERE)(directory, names))
    if Path(directory).resolve() == ROOT:
        skip |= _SKIP_TOP & set(names)
    return skip


def make_student_edition(source: Path = ROOT, out: Path = STUDENT_DIR) -> dict[str, NotebookReport]:
    """Copy the book in ``source`` to ``out`` (replacing it) with the solutions removed.

    Returns one :class:`NotebookReport` per notebook of the toc, keyed by its path relative to ``out``.
    """
    source, out = source.resolve(), out.resolve()
    if out == source:
        raise ValueError("out must differ from the book's own folder")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out, ignore=_ignore)
    config = yaml.safe_load((out / "_config.yml").read_text())
    (out / "_config.yml").write_text(yaml.safe_dump(student_config(config), sort_keys=False, allow_unicode=True))
    import nbformat  # the notebooks are written back in the nbformat schema, with cell ids

    reports = {}
    for path in book_notebooks(out):
        nb, report = studentize(nbformat.read(path, as_version=4))
        nbformat.write(nbformat.from_dict(nb), path)
        reports[str(path.relative_to(out))] = report
    return reports


def build_html(book: Path = STUDENT_DIR) -> int:
    """Build the student book's HTML (``jupyter-book build --all -W -n --keep-going``); the exit code."""
    shutil.rmtree(book / "_build", ignore_errors=True)
    jupyter_book = str(Path(sys.executable).with_name("jupyter-book"))
    return subprocess.run([jupyter_book, "build", "--all", "-W", "-n", "--keep-going", str(book)]).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUDENT_DIR, help="where to write it (default: _student)")
    parser.add_argument("--no-html", action="store_true", help="write the sources only, do not build the HTML")
    args = parser.parse_args()
    reports = make_student_edition(ROOT, args.out)
    for name, report in reports.items():
        print(f"{name}: {len(report.stubbed)} solution code cells stubbed, "
              f"{report.solutions_removed} solutions removed")
    if args.no_html:
        return 0
    code = build_html(args.out)
    print(f"student book: {args.out / '_build' / 'html' / 'index.html'} (exit code {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
