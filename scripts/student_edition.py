"""Build the student edition: a copy of the book and its notebooks with the solutions removed.

Usage (from the repository root; ``make student`` runs it)::

    .venv/bin/python scripts/student_edition.py            # _student/ and its HTML in _student/_build/html
    .venv/bin/python scripts/student_edition.py --no-html  # only the sources in _student/

What changes in the copy:

- ``_config.yml``: ``hide_solutions: true`` (sphinx-exercise drops every ``{solution}`` block from the
  HTML) and ``execute_notebooks: off`` (the stubs below raise, so the student book is not executed). The
  repository, issues and launch (Binder, Colab) buttons would open the full book's notebooks, solutions
  included, so they are removed, unless ``--repository URL`` names the repository where the student edition
  itself is published: then they point there;
- ``colab/``: the full book's Colab edition holds the solutions and is not copied. With ``--repository``, the
  Colab edition that the student book's own build writes (``_ext/colab_edition.py``) is copied into the
  copy's ``colab/``, which its Colab buttons open;
- ``_toc.yml`` and ``intro.md``: the instructors' page is left out, and the introduction's sentences that
  describe the full book (executed pages, solutions, launch buttons, the instructors' page) are replaced by
  ones true of the student edition (:data:`INTRO_CHANGES`; a sentence that no longer matches is an error);
- ``README.md`` and ``Makefile``: the full book's describe its tests, benchmarks, CI and this script, none of
  which the copy holds; the student's README (:func:`student_readme`) says how to set up, work through the
  exercises and get the data, and the Makefile keeps only the targets that work in the copy
  (:func:`student_makefile`: ``setup``, ``book``, ``clean``);
- every notebook listed in ``_toc.yml``: the first *code* cell between a markdown cell holding a
  ``{solution-start} <label>`` directive and the one holding ``{solution-end}`` becomes
  ``raise NotImplementedError("Exercise <label>: your code here")``, and the solution's further code cells
  (a demonstration, a check of the answer) go, so that one exercise is one stub. The gated directives and the
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
# The instructors' page: not part of the student's book.
INSTRUCTORS_PAGE = "instructors"
_SKIP_TOP = {"_build", "_student", "tests", "scripts", "colab", f"{INSTRUCTORS_PAGE}.md"}
_SKIP_ANYWHERE = ("__pycache__", "*.egg-info", ".ipynb_checkpoints", "_build", ".*")
# Hidden files that the copy keeps: an instructor who publishes the edition from a repository of its own
# needs the ignore list, or _build/ and .venv/ get committed.
_KEEP_HIDDEN = {".gitignore"}

# intro.md of the full book -> the student edition: (sentence in the full book, its replacement); the
# launch-button sentence has two replacements, without and with ``--repository``.
INTRO_CHANGES: tuple[tuple[str, str], ...] = (
    ("**Read it.** Every page was executed when the book was built; the figures are real runs.",
     "**Read it.** This is the student edition: its pages show the code without outputs and without the "
     "solutions. Run a chapter's notebook to see its figures."),
    ("**Teach with it.** Each chapter ends with exercises and solutions.",
     "**Work through it.** Each chapter ends with exercises. A coding exercise leaves a cell that raises "
     "`NotImplementedError` until you replace it with your answer, and `op.checks` tells you whether a function "
     "you wrote is right."),
    ("; the\n   {doc}`instructors' page <instructors>` lists how long each chapter takes.", "."),
    ("every figure is drawn when the book is\nbuilt (from runs made then",
     "every figure is drawn when a chapter's\nnotebook runs (from runs made then"),
)
INTRO_LAUNCH = ("Clone the repository and\nrun `make book` to rebuild everything, or open a chapter in Binder or Colab "
                "with the launch buttons.")
INTRO_LAUNCH_STUDENT = ("Clone the repository and\nrun `make setup` to install the library, then open a "
                        "chapter's notebook in Jupyter.")
INTRO_LAUNCH_PUBLISHED = INTRO_LAUNCH_STUDENT[:-1] + ", or open it in Binder or Colab with the launch buttons."
# The Colab edition exists only where there is a Colab button (a published edition; see copy_colab_edition).
INTRO_COLAB = ("Colab renders none of that markup, so the Colab button opens the\nchapter's *Colab edition* instead: "
               "the same notebook with its references, boxes and citations written as plain\nMarkdown, numbered as "
               "on these pages, with links between the chapters' Colab editions.")
INTRO_COLAB_STUDENT = "Colab renders none of that markup: it shows it as plain text."

# An opening fence of a MyST directive (colon or backtick fence) naming one of the solution directives.
_OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>solution|solution-start|solution-end)\}[ \t]*(?P<arg>\S*)")
# The same for the exercise directives, and an exercise's label option (``:label: x``, or ``label: x`` in a
# ``---`` block).
_EXERCISE_OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>exercise|exercise-start|exercise-end)\}")
_LABEL_OPTION = re.compile(r"^:?label:\s*(?P<label>\S+)")

#: The tag of an answer cell: Jupyter shows the cell, MyST-NB leaves it out of the student book's pages.
ANSWER_TAG = "remove-cell"


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
    code_cells_removed: int = 0  # a solution's code cells after its first (its stub)
    answered: list[str] = field(default_factory=list)  # exercises followed by an answer cell, in order


def _closing_line(lines: list[str], opening: int, fence: str) -> int:
    """Index of the line closing the fence opened at ``lines[opening]`` (same character, at least as long)."""
    closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    for i in range(opening + 1, len(lines)):
        if closing.match(lines[i]):
            return i
    raise ValueError(f"unclosed directive opened by {lines[opening]!r}")


def _directive_spans(lines: list[str], opening: re.Pattern[str]) -> Iterator[tuple[re.Match[str], int, int]]:
    """Each directive of ``lines`` whose opening fence ``opening`` matches: (the match, its line, its closing line)."""
    i = 0
    while i < len(lines):
        m = opening.match(lines[i])
        if m is None:
            i += 1
            continue
        close = _closing_line(lines, i, m["fence"])
        yield m, i, close
        i = close + 1


def find_directives(text: str) -> list[Directive]:
    """Every ``{solution}``, ``{solution-start}`` and ``{solution-end}`` directive in a markdown text, in order."""
    return [Directive(m["name"], m["arg"], start, close + 1)
            for m, start, close in _directive_spans(text.split("\n"), _OPENING)]


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


def exercise_ends(text: str, open_label: str | None = None) -> tuple[list[tuple[int, str]], str | None]:
    """Where each exercise statement in a markdown text ends: ``(last line, label)`` pairs, in order.

    An ``{exercise}`` ends at its closing fence; a gated one at the closing fence of its ``{exercise-end}``.
    ``open_label`` is the label of a gated exercise opened by an earlier cell; the label still open at the end
    of ``text`` is returned with the pairs.
    """
    lines = text.split("\n")
    ends = []
    for m, start, close in _directive_spans(lines, _EXERCISE_OPENING):
        labels = [o["label"] for o in map(_LABEL_OPTION.match, lines[start + 1:close]) if o]
        if m["name"] == "exercise-start":
            open_label = labels[0] if labels else "?"
        elif m["name"] == "exercise-end":
            if open_label is None:
                raise ValueError("{exercise-end} without an {exercise-start}")
            ends.append((close, open_label))
            open_label = None
        else:
            ends.append((close, labels[0] if labels else "?"))
    return ends, open_label


def answer_cell(label: str, code: bool) -> dict[str, Any]:
    """The empty answer cell that follows an exercise's statement in the student notebooks (tagged
    :data:`ANSWER_TAG`, so it is not part of the student book's pages). ``code``: a stub cell follows it."""
    where = "; your code goes in the cell below" if code else ""
    cell_id = re.sub(r"[^A-Za-z0-9_-]", "-", f"answer-{label}")[:64]
    return {"cell_type": "markdown", "id": cell_id, "metadata": {"tags": [ANSWER_TAG]},
            "source": f"**Your answer to {label}.** *Double-click this cell and write it here, in Markdown with "
                      f"`$...$` for mathematics{where}.*"}


def _piece_id(cell: dict[str, Any], k: int) -> str:
    """The id of the ``k``-th piece of a markdown cell cut by :func:`_with_answer_cells` (the first keeps the cell's)."""
    cell_id = cell.get("id", "cell")
    return cell_id if k == 0 else f"{cell_id[:60]}-{k}"


def _with_answer_cells(cells: list[dict[str, Any]], code_labels: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """``cells`` with each markdown cell cut after every exercise statement it holds and an :func:`answer_cell`
    put there; the labels answered, in order. ``code_labels``: the exercises whose solution became a stub."""
    out, answered, open_label = [], [], None
    for cell in cells:
        if cell["cell_type"] != "markdown":
            out.append(cell)
            continue
        ends, open_label = exercise_ends(cell["source"], open_label)
        if not ends:
            out.append(cell)
            continue
        lines, start = cell["source"].split("\n"), 0
        for k, (last, label) in enumerate(ends):
            piece = "\n".join(lines[start:last + 1]).strip("\n")
            if piece.strip():
                out.append({**cell, "id": _piece_id(cell, k), "source": piece})
            out.append(answer_cell(label, label in code_labels))
            answered.append(label)
            start = last + 1
        rest = "\n".join(lines[start:]).strip("\n")
        if rest.strip():
            out.append({**cell, "id": _piece_id(cell, len(ends)), "source": rest})
    return out, answered


def studentize(nb: dict[str, Any]) -> tuple[dict[str, Any], NotebookReport]:
    """The student version of a notebook (a new dict) and a report of what was removed.

    The first code cell inside a gated solution becomes a :func:`stub_source` stub (same cell id, no
    outputs) and the solution's other code cells are dropped; solution directives and their prose are
    removed; markdown cells left empty are dropped. Every exercise's statement is followed by an
    :func:`answer_cell`, the markdown cell that held it being cut there when it holds more.
    """
    out = copy.deepcopy(nb)
    report = NotebookReport()
    cells, in_solution, stubbed_here = [], None, False
    for index, cell in enumerate(out["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            opened = in_solution
            kept, in_solution = _markdown_cell(source, in_solution, report)
            if in_solution != opened:
                stubbed_here = False  # a new solution (or none) begins: its first code cell is the stub
            if kept.strip():
                cells.append({**cell, "source": kept})
        elif cell["cell_type"] == "code" and in_solution is not None:
            if stubbed_here:
                report.code_cells_removed += 1
                continue
            cells.append({**cell, "source": stub_source(in_solution), "metadata": {},
                          "outputs": [], "execution_count": None})
            report.stubbed[cell.get("id", f"cell {index}")] = in_solution
            stubbed_here = True
        else:
            cells.append(cell)
    if in_solution is not None:
        raise ValueError(f"the solution to {in_solution} has no {{solution-end}}")
    out["cells"], report.answered = _with_answer_cells(cells, set(report.stubbed.values()))
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


def student_config(config: dict[str, Any], repository: str | None = None) -> dict[str, Any]:
    """The student book's ``_config.yml``: solutions hidden, notebooks not executed, no link to the full book.

    Without ``repository`` the repository, issues and launch buttons go (they would open the full book's
    notebooks, solutions included); with it, ``repository.url`` becomes ``repository`` and the buttons stay.
    ``html.baseurl``, the full book's published address, goes in both cases.
    """
    out = copy.deepcopy(config)
    out["title"] = f"{config.get('title', 'Book')} (student edition)"
    out.setdefault("execute", {})["execute_notebooks"] = "off"
    out.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    out.get("html", {}).pop("baseurl", None)  # the full book's address: the copy is published elsewhere, if at all
    if repository is not None:
        if not re.fullmatch(r"https://\S+", repository):
            raise ValueError(f"repository must be an https URL, got {repository!r}")
        out.setdefault("repository", {})["url"] = repository
        return out
    out.pop("launch_buttons", None)
    out.pop("repository", None)
    html = out.setdefault("html", {})
    html["use_repository_button"] = html["use_issues_button"] = html["use_edit_page_button"] = False
    return out


def student_toc(toc: dict[str, Any]) -> dict[str, Any]:
    """The student book's ``_toc.yml``: the instructors' page left out (empty parts dropped)."""
    out = copy.deepcopy(toc)

    def prune(node: dict[str, Any]) -> None:
        for key in ("parts", "chapters", "sections"):
            if key in node:
                node[key] = [e for e in node[key] if e.get("file") != INSTRUCTORS_PAGE]
                for entry in node[key]:
                    prune(entry)
                node[key] = [e for e in node[key] if key != "parts" or e.get("chapters")]

    prune(out)
    return out


def student_intro(text: str, published: bool = False) -> str:
    """The student edition's ``intro.md``: :data:`INTRO_CHANGES` applied, each to exactly one place.

    ``published`` (the edition is built with ``--repository``) keeps the sentences on the launch buttons and the
    Colab edition.
    Raises ``ValueError`` naming a sentence of the full book's introduction that is no longer found once.
    """
    launch = INTRO_LAUNCH_PUBLISHED if published else INTRO_LAUNCH_STUDENT
    colab = INTRO_COLAB if published else INTRO_COLAB_STUDENT
    for old, new in (*INTRO_CHANGES, (INTRO_LAUNCH, launch), (INTRO_COLAB, colab)):
        if text.count(old) != 1:
            raise ValueError(f"intro.md: expected the sentence {old!r} exactly once, found it {text.count(old)} "
                             "times; update INTRO_CHANGES in scripts/student_edition.py")
        text = text.replace(old, new)
    return text


def student_readme(title: str, published: bool = False) -> str:
    """The student edition's ``README.md``: what the copy is, how to set it up, work in it and get the data.

    ``published`` (the edition is built with ``--repository``): its pages have launch buttons, so the
    README names Binder and Colab too.
    """
    where = ("open a chapter in `chapters/` with Jupyter (`.venv/bin/jupyter lab`, kernel \"Python 3 (overparam)\")"
             + (", or use a chapter page's launch button to open it in Binder or Colab." if published else "."))
    return f"""# {title}: student edition

The course's chapters and exercises, without the solutions. Every chapter is a Jupyter notebook that runs its
experiments for real when you run it.

## Set up

On a machine with Python 3.11 and `make`, from this folder:

```bash
make setup   # creates .venv and installs requirements.txt, the course's library `overparam` included
make book    # optional: the book's pages, without outputs, into _build/html
```

On Linux, PyPI's `torch` is a CUDA build of several GB; for the CPU build run
`export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu` before `make setup`. Then {where}

## Working on the exercises

- A coding exercise leaves a cell that raises `NotImplementedError("Exercise <label>: your code here")`; replace it
  with your answer. "Run all" stops at the first such cell; the cells after it do not depend on your answer, so you
  can run them on their own.
- Each exercise is followed by a cell *Your answer to <label>*: write your derivation or explanation there
  (Markdown, with `$...$` for mathematics), and add cells below it as you need. The saved notebook is what you
  hand in.
- Where an exercise asks you to write a function, `op.checks` compares it with the library's on seeded cases and
  prints a pass or the case that differs, e.g. `op.checks.lp_gradient(my_gradient)`.
- A chapter runs its experiments at a scale that takes minutes. For a quick pass with smaller experiments, make
  `%env OVERPARAM_FAST=1` the first cell you run (or set `OVERPARAM_FAST=1` before starting Jupyter).

## Data

The Ethanol data (UCI's Gas Sensor Array Drift Dataset at Different Concentrations) and MNIST are downloaded on
first use into `~/.cache/overparam` (or the folder named by `OVERPARAM_CACHE_DIR`) and checked. Offline, put them
in a folder and name it with `OVERPARAM_DATA_DIR`: UCI's `batch1.dat` ... `batch10.dat` in its `gas_sensor/`, and
MNIST's four `.gz` files in its `mnist/`; the error message of a missing file says the same. `make data` fetches
and checks both at once, before you go offline (or, offline, checks the copies `OVERPARAM_DATA_DIR` names).
"""


#: The first lines of the student edition's Makefile.
STUDENT_MAKEFILE_HEADER = """# The student edition (see README.md):
#   make setup  create .venv and install requirements.txt (the library overparam included)
#   make book   the book's pages into _build/html, not executed (the exercise stubs would raise)
#   make data   download the datasets the chapters read, where missing, and check them
"""

#: The comment on the copy's ``data`` rule (the full book's speaks of its strict, executed build).
STUDENT_DATA_COMMENT = """# Every dataset the chapters read, downloaded where missing and checked (`python -m overparam data`): run it
# once before working offline."""

#: The full book's make targets that need what the copy leaves out (tests/, scripts/).
_MAKE_TARGETS_LEFT_OUT = ("test", "test-lib", "bench", "student", "colab")


def student_makefile(text: str) -> str:
    """The student edition's ``Makefile``: the full book's without the targets of :data:`_MAKE_TARGETS_LEFT_OUT`.

    Blocks (separated by blank lines) holding one of those rules go; the full book's header comment and the
    comment on its ``book`` rule (an executed, strict build) give way to :data:`STUDENT_MAKEFILE_HEADER`, and the
    comment on its ``data`` rule to :data:`STUDENT_DATA_COMMENT`. The copy's ``book`` is not executed, so it needs
    no data: ``book`` loses its ``data`` prerequisite. ``.PHONY`` lists the targets kept. Raises ``ValueError``
    when ``setup``, ``book`` or ``data`` is missing or a target to leave out is not found: the full Makefile
    changed.
    """
    rule = re.compile(r"^(?P<target>[A-Za-z$()._-][A-Za-z0-9$()._-]*)\s*:(?!=)", re.MULTILINE)
    blocks = text.split("\n\n")
    kept, dropped = [], set()
    for block in blocks:
        targets = {m["target"] for m in rule.finditer(block)} - {".PHONY"}
        left_out = targets & set(_MAKE_TARGETS_LEFT_OUT)
        if left_out:
            dropped |= left_out
            continue
        kept.append(block)
    missing = set(_MAKE_TARGETS_LEFT_OUT) - dropped
    found = {m["target"] for block in kept for m in rule.finditer(block)}
    if missing or not {"setup", "book", "data"} <= found:
        raise ValueError(f"Makefile: expected rules for setup, book, data and {', '.join(_MAKE_TARGETS_LEFT_OUT)}; "
                         f"not found: {sorted(missing | ({'setup', 'book', 'data'} - found))}. Update "
                         "student_makefile in scripts/student_edition.py")
    # The full book's header and the comment on its book rule describe an executed, strict build; the copy's
    # book is not executed (the stubs raise), so both give way to the copy's own header.
    kept[0] = "\n".join(line for line in kept[0].split("\n") if not line.startswith("#")).lstrip("\n")
    kept = ["\n".join(line for line in block.split("\n") if not line.startswith("#"))
            if re.search(r"^book\s*:", block, re.MULTILINE) else block for block in kept]
    kept = [re.sub(r"^book\s*:(.*)\bdata\b", lambda m: f"book:{m[1]}".rstrip(), block, flags=re.MULTILINE)
            for block in kept]
    kept = [STUDENT_DATA_COMMENT + "\n" + "\n".join(line for line in block.split("\n") if not line.startswith("#"))
            if re.search(r"^data\s*:", block, re.MULTILINE) else block for block in kept]
    phony = " ".join(t for t in ("setup", "data", "book", "clean") if t in found)
    lines = [f".PHONY: {phony}" if line.startswith(".PHONY:") else line for line in "\n\n".join(kept).split("\n")]
    return STUDENT_MAKEFILE_HEADER + "\n".join(lines)


def _ignore_for(source: Path):
    """The ``copytree`` ignore function for a copy of the book in ``source``."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = set(shutil.ignore_patterns(*_SKIP_ANYWHERE)(directory, names)) - _KEEP_HIDDEN
        if Path(directory).resolve() == source:
            skip |= _SKIP_TOP & set(names)
        return skip

    return ignore


#: The file that marks a folder as a student edition written here: the only folder, besides an empty one, that a run
#: deletes and writes again.
EDITION_MARKER = ".student-edition"


def make_student_edition(source: Path = ROOT, out: Path = STUDENT_DIR,
                         repository: str | None = None) -> dict[str, NotebookReport]:
    """Copy the book in ``source`` to ``out`` (replacing it) with the solutions removed.

    ``out`` must not exist, be empty, be the book's ``_student`` folder, or be an edition an earlier run wrote (it
    holds :data:`EDITION_MARKER`); any other folder, and the book's own folder or one above it, is refused with a
    ``ValueError``.

    ``repository``: the URL of the repository the student edition will be published from (its launch buttons
    point there); ``None`` leaves the edition without repository and launch buttons.
    Returns one :class:`NotebookReport` per notebook of the toc, keyed by its path relative to ``out``.
    """
    source, out = source.resolve(), out.resolve()
    if source.is_relative_to(out):
        raise ValueError(f"out must not be the book's own folder or a folder above it, got {out}")
    if out.exists():
        ours = out == source / STUDENT_DIR.name or (out / EDITION_MARKER).exists()  # the default folder is ours too
        if not out.is_dir() or (any(out.iterdir()) and not ours):
            raise ValueError(f"out: {out} exists and is not a student edition this script wrote (it has no "
                             f"{EDITION_MARKER}); choose another folder, or remove it yourself")
        shutil.rmtree(out)
    shutil.copytree(source, out, ignore=_ignore_for(source))
    (out / EDITION_MARKER).write_text("written by scripts/student_edition.py; the next run replaces this folder\n")
    for name, change in (("_config.yml", lambda c: student_config(c, repository)), ("_toc.yml", student_toc)):
        data = yaml.safe_load((out / name).read_text())
        (out / name).write_text(yaml.safe_dump(change(data), sort_keys=False, allow_unicode=True))
    intro = out / "intro.md"
    intro.write_text(student_intro(intro.read_text(), published=repository is not None))
    title = yaml.safe_load((source / "_config.yml").read_text()).get("title", "Book")
    (out / "README.md").write_text(student_readme(title, published=repository is not None))
    (out / "Makefile").write_text(student_makefile((source / "Makefile").read_text()))
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


def copy_colab_edition(book: Path) -> None:
    """Copy the Colab edition that the build of ``book`` wrote (``_build/colab``) to ``book/colab``.

    The full book's ``colab/`` holds the solutions, so the copy never takes it; a student edition published
    with ``--repository`` gets its own, generated from its notebooks by ``_ext/colab_edition.py``.
    """
    generated = book / "_build" / "colab"
    if not generated.is_dir():
        raise FileNotFoundError(f"{generated} is missing: the student book's build wrote no Colab edition")
    shutil.rmtree(book / "colab", ignore_errors=True)
    shutil.copytree(generated, book / "colab")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUDENT_DIR, help="where to write it (default: _student)")
    parser.add_argument("--no-html", action="store_true", help="write the sources only, do not build the HTML")
    parser.add_argument("--repository", metavar="URL",
                        help="the repository the student edition is published from: its pages' repository and "
                             "launch (Binder, Colab) buttons point there (default: no such buttons)")
    args = parser.parse_args()
    reports = make_student_edition(ROOT, args.out, args.repository)
    for name, report in reports.items():
        print(f"{name}: {report.solutions_removed} solutions removed, {len(report.stubbed)} of them leaving a code "
              f"stub ({report.code_cells_removed} further solution code cells removed)")
    if args.no_html:
        return 0
    code = build_html(args.out)
    print(f"student book: {args.out / '_build' / 'html' / 'index.html'} (exit code {code})")
    if code == 0 and args.repository:
        copy_colab_edition(args.out)
        print(f"its Colab edition, which its Colab buttons open: {args.out / 'colab'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
