"""The book build is a test: every notebook executed, any cell error or Sphinx warning fails it.

These tests run ``jupyter-book build --all -W -n --keep-going`` on a clean ``_build``, exactly as
``make book`` does, in whatever scale the environment asks for (CI sets ``OVERPARAM_FAST=1``).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = str(Path(sys.executable).with_name("jupyter-book"))
BUILD_ARGS = ["build", "--all", "-W", "-n", "--keep-going"]

pytestmark = pytest.mark.slow


def _build(source: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    shutil.rmtree(source / "_build", ignore_errors=True)
    return subprocess.run(
        [JUPYTER_BOOK, *BUILD_ARGS, str(source)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600,
    )


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]


def test_config_is_strict():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["raise_on_error"] is True
    assert config["sphinx"]["config"]["nb_output_stderr"] == "warn", "stderr in a cell must fail the -W build"


def test_notebooks_are_stored_without_outputs():
    first_cells = set()
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, nb_path.name
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        # Colab: the first cell installs the library only where it is missing, and only on Colab (a local kernel
        # without it is told to run make setup); the same cell in every chapter; the next one imports it.
        assert 'find_spec("overparam") is None' in code[0] and "%pip install" in code[0], nb_path.name
        assert '"google.colab" not in sys.modules' in code[0] and "make setup" in code[0], nb_path.name
        first_cells.add(code[0])
        assert "import overparam as op" in code[1], nb_path.name
    assert len(first_cells) == 1, "the install cell differs between chapters"


def test_every_cell_has_a_unique_id():
    """nbformat 4.5 cells carry an id (a missing one is a validation warning today and an error in later nbformat)."""
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        assert (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5), nb_path.name
        ids = [cell.get("id") for cell in nb["cells"]]
        missing = [i for i, cell_id in enumerate(ids) if not cell_id]
        assert not missing, f"{nb_path.name}: cells {missing} have no id"
        assert len(set(ids)) == len(ids), f"{nb_path.name}: duplicate cell ids"


def test_widget_cells_are_not_executed_by_the_build():
    """Executing ``interact(...)`` under nbclient, with no browser attached, intermittently never receives the cell's
    reply (the build then hangs; seen twice here on Chapter 4's widget, 10-15 minutes each): such cells carry the
    ``skip-execution`` tag, and a static figure shows what they would."""
    found = 0
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(nb_path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.search(r"\binteract(ive)?\(", source):
                found += 1
                assert "skip-execution" in cell["metadata"].get("tags", []), f"{nb_path.name}: cell {cell['id']}"
    assert found, "no widget cell found: the test reads the wrong pattern"



FIGURE_CALL = re.compile(r"plt\.subplots\(|plt\.figure\(|subplot_mosaic\(|loss_axes\(|\b\w+\.[\w.]*plot_\w+\(")


def _figure_cells():
    """(notebook name, cell) for each executed code cell that draws a figure or is captioned as one."""
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for cell in json.loads(nb_path.read_text())["cells"]:
            if cell["cell_type"] != "code" or "skip-execution" in cell["metadata"].get("tags", []):
                continue
            if FIGURE_CALL.search("".join(cell["source"])) or "figure" in cell["metadata"].get("mystnb", {}):
                yield nb_path.name, cell


def test_every_figure_cell_states_its_scale():
    """Each figure says its scale: a code cell that draws calls ``op.note_scale`` (with ``independent=True`` for a
    figure that no budget changes: the data, a landscape, a formula)."""
    found = 0
    for name, cell in _figure_cells():
        found += 1
        assert "note_scale(" in "".join(cell["source"]), f"{name}: cell {cell['id']} draws without op.note_scale"
    assert found > 30, f"only {found} figure cells found: the test reads the wrong pattern"


#: Colour names: an alt text describes series by line style, marker and position instead (a colour tells a
#: screen-reader user nothing, and the text would go stale when the palette changes).
COLOUR_WORD = re.compile(r"\b(red|green|blue|orange|olive|purple|cyan|brown|pink|rose|ochre|wine|yellow|indigo|black|"
                         r"white|gr[ae]y)\b", re.IGNORECASE)


def test_every_figure_has_a_caption_a_label_and_alt_text():
    """MyST-NB takes a figure's alt text from its cell's ``mystnb.image.alt``; without one, a screen reader reads out
    the image's file name. The alt text describes what the caption does not (chart type, axes, series, shape), in
    plain text, and each figure's is its own."""
    texts: dict[str, str] = {}
    for name, cell in _figure_cells():
        where = f"{name}: cell {cell['id']}"
        meta = cell["metadata"].get("mystnb", {})
        caption, label = meta.get("figure", {}).get("caption", ""), meta.get("figure", {}).get("name", "")
        alt = meta.get("image", {}).get("alt", "")
        assert caption and label, f"{where} draws a figure without a caption and a name"
        # MyST-NB wraps every display output of a captioned cell in the figure: a table shown there would be captioned
        assert "display(" not in "".join(cell["source"]), f"{where}: a captioned figure cell displays something else"
        assert 100 <= len(alt) <= 400, f"{where}: alt text of {len(alt)} characters (100 to 400 expected)"
        assert alt not in caption, f"{where}: the alt text is the caption, or part of it"
        assert "$" not in alt and not _raw_tex(alt) and '"' not in alt, f"{where}: alt text must be plain text"
        assert not COLOUR_WORD.search(alt), f"{where}: alt text names a colour ({COLOUR_WORD.search(alt)[0]})"
        assert alt not in texts, f"{where} has the alt text of {texts[alt]}"
        texts[alt] = where
    assert len(texts) > 30, f"only {len(texts)} figures found: the test reads the wrong pattern"

def test_strict_executed_build():
    result = _build(ROOT)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    for chapter in _chapters():
        page = ROOT / "_build" / "html" / f"{chapter}.html"
        assert page.is_file(), f"{page} missing"
        html = page.read_text()
        assert "Traceback" not in html and 'class="output error' not in html, chapter
        assert "<img" in html, f"{chapter}: no figure was rendered"
        executed = json.loads((ROOT / "_build" / "jupyter_execute" / f"{chapter}.ipynb").read_text())
        assert not _narrow_wide_figures(executed), f"{chapter}: tag these cells full-width: {_narrow_wide_figures(executed)}"
        for tag in re.findall(r"<img\b[^>]*>", html):
            alt = re.search(r'alt="([^"]*)"', tag)
            assert alt and alt[1] and not re.search(r"\.(png|svg|jpe?g|gif)$", alt[1]), \
                f"{chapter}: an image whose alt text is missing or its file name: {tag[:160]}"


#: A figure wider than this (150 dpi) shrinks its 10 pt ticks below 8 pt in the text column (about 695 CSS px at a
#: 1440 px window): such a figure is drawn narrower, or its cell's ``full-width`` tag lets it into the margin
#: (sphinx-book-theme: 136% of the column). Two panels side by side fit at 9 inches (1,335 px, ticks about 8.1 pt).
FULL_WIDTH_PIXELS = 1350


def _narrow_wide_figures(executed: dict) -> list[str]:
    """Ids of the executed cells with a PNG wider than FULL_WIDTH_PIXELS but no ``full-width`` tag."""
    found = []
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            # the PNG header: width is the big-endian integer at bytes 16-20
            if png and int.from_bytes(base64.b64decode(png)[16:20], "big") > FULL_WIDTH_PIXELS \
                    and "full-width" not in cell["metadata"].get("tags", []):
                found.append(cell.get("id"))
    return found


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('this cell fails on purpose')", "this cell fails on purpose"),
    # a warning, or any other line on stderr, reaches the page as noise: the configuration makes it a warning
    ("import warnings\nwarnings.warn('this cell warns on purpose')", "stderr was found in the cell outputs"),
], ids=["error", "stderr"])
def test_a_failing_cell_fails_the_build(tmp_path, source, message):
    """Same configuration, one notebook whose cell raises or writes to stderr: the build must exit non-zero."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext")  # the configuration's local Sphinx extension
    (tmp_path / "references.bib").write_text((ROOT / "references.bib").read_text())
    (tmp_path / "intro.md").write_text("# Intro\n\nA deliberately broken book.\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    nb = {
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Broken\n"},
            {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None, "outputs": [],
             "source": source},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (tmp_path / "broken.ipynb").write_text(json.dumps(nb))
    result = _build(tmp_path)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def _code_cells(nb_path: Path) -> list[str]:
    """The notebook's code cells as Python source (IPython magics and shell lines become ``pass``)."""
    nb = json.loads(nb_path.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]

    def python(line: str) -> str:
        stripped = line.lstrip()
        return line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line

    return ["\n".join(map(python, cell.splitlines())) for cell in cells]


# On a 1280-pixel-wide screen the book's text column shows 77 characters of its 14 px monospace font, and 75 inside
# an exercise's or a solution's box; a longer code line scrolls sideways and is cut off (tests/test_browser.py
# measures this on the built pages).
CODE_COLUMNS, BOXED_CODE_COLUMNS = 76, 74
_GATE = re.compile(r"\{(?:exercise|solution)-(start|end)\}")


def test_code_lines_fit_the_text_column():
    """Every code line the book shows (a ``remove-cell`` or ``remove-input`` cell's code is not shown), with the
    narrower limit for a code cell between an ``{exercise-start}`` or ``{solution-start}`` and its end."""
    hidden, long = {"remove-cell", "remove-input"}, []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        boxed = False
        for i, cell in enumerate(json.loads(nb_path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                for gate in _GATE.finditer(source):
                    boxed = gate[1] == "start"
            elif cell["cell_type"] == "code" and not hidden & set(cell["metadata"].get("tags", [])):
                limit = BOXED_CODE_COLUMNS if boxed else CODE_COLUMNS
                long += [f"{nb_path.name}, cell {i}: {len(line)} characters (at most {limit}): {line.strip()[:50]}"
                         for line in source.splitlines() if len(line) > limit]
    assert not long, f"{len(long)} code lines too long for the text column:\n" + "\n".join(long[:20])


def test_notebooks_define_no_helpers_beyond_the_exercises():
    """The logic lives in overparam/: a notebook defines no function or class except an exercise's ``my_…``."""
    import ast

    found = []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for source in _code_cells(nb_path):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                        and not node.name.startswith("my_"):
                    found.append(f"{nb_path.name}: {node.name}")
    assert not found, found


RAW_TEX = ("_{", "^{", "^(", "\\")  # outside $…$ a figure would print these literally


def _raw_tex(text: str) -> bool:
    import re

    return any(mark in re.sub(r"\$[^$]*\$", "", text) for mark in RAW_TEX)


def _figure_strings(tree) -> list[str]:
    """Strings that end up on a figure: label/xlabel/ylabel/title keywords and set_xlabel/set_ylabel/set_title."""
    import ast

    def text(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        return None

    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        candidates = [k.value for k in node.keywords if k.arg in ("label", "xlabel", "ylabel", "title")]
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in ("set_xlabel", "set_ylabel", "set_title", "suptitle") and node.args:
            candidates.append(node.args[0])
        out += [t for t in map(text, candidates) if t]
    return out


def test_figure_labels_and_captions_write_math_as_math():
    """``e^{−2ηλt}`` or ``‖D_j‖_{F}`` in a label or caption is printed as it is; math goes between dollars."""
    import ast

    found = []
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption", "")
            if _raw_tex(caption):
                found.append(f"{nb_path.name} caption: {caption[:80]}")
        for source in _code_cells(nb_path):
            found += [f"{nb_path.name}: {t}" for t in _figure_strings(ast.parse(source)) if _raw_tex(t)]
    for module in sorted((ROOT / "overparam").rglob("*.py")):
        found += [f"{module.name}: {t}" for t in _figure_strings(ast.parse(module.read_text())) if _raw_tex(t)]
    assert not found, found


def test_instructors_exercise_table_lists_each_chapters_exercises_in_order():
    rows = re.findall(r"^\| (\d+) \| `(ex-[\w-]+)` \|", (ROOT / "instructors.md").read_text(), re.MULTILINE)
    listed: dict[int, list[str]] = {}
    for number, label in rows:
        listed.setdefault(int(number), []).append(label)
    chapters = _chapters()
    assert sorted(listed) == list(range(1, len(chapters) + 1))
    for number, chapter in enumerate(chapters, start=1):
        nb = json.loads((ROOT / f"{chapter}.ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        labels = re.findall(r"\{exercise(?:-start)?\}[ \t]*\n:label: (\S+)", text)
        assert labels and listed[number] == labels, f"instructors.md's exercise table for {chapter}"


MEASUREMENTS = ROOT / "scripts" / "measurements"


def test_instructors_timing_table_is_the_committed_measurement():
    """The table of execution times and peak memory, and the totals beside it, are the benchmarks' reports.

    ``scripts/bench_memory.py --json`` and ``scripts/bench_book.py --json`` wrote the files of
    ``scripts/measurements/``; a new measurement replaces them and the table in one commit.
    """
    text = (ROOT / "instructors.md").read_text()
    rows = re.findall(r"^\| (\d+)\. [^|]+\| (\d+) s \| (\d+) MiB \| (\d+) s \| (\d+) MiB \|$", text, re.MULTILINE)
    fast, reader = (json.loads((MEASUREMENTS / f"chapters_{s}.json").read_text()) for s in ("fast", "reader"))
    book = json.loads((MEASUREMENTS / "book_fast.json").read_text())
    assert (fast["scale"], reader["scale"], book["scale"]) == ("fast", "reader default", "fast")
    assert book["build_exit_code"] == 0
    chapters = [Path(c).name for c in _chapters()]
    for report in (fast, reader):
        assert [r["chapter"] for r in report["chapters"]] == chapters
        assert all("failed" not in r for r in report["chapters"])
        assert report["provenance"]["omp_num_threads"] == "1"
    expected = [(str(n), *(str(round(r[k])) for r in (f, g) for k in ("execution_seconds", "peak_memory_mib")))
                for n, (f, g) in enumerate(zip(fast["chapters"], reader["chapters"]), start=1)]
    assert rows == expected, "instructors.md's timing table differs from scripts/measurements/"
    dates = {r["provenance"]["date_utc"][:10] for r in (fast, reader, book)}
    assert len(dates) == 1 and f"Measured on {dates.pop()}" in text
    total = round(sum(r["execution_seconds"] for r in reader["chapters"]))
    assert f"about {total:,} s in all" in text
    assert f"took {round(book['total_build_seconds']):,} s" in text
    peaks = {r["chapter"]: max(r["peak_memory_mib"], g["peak_memory_mib"])
             for r, g in zip(fast["chapters"], reader["chapters"])}
    heaviest = max(peaks, key=peaks.get)
    assert heaviest.startswith("06_") and f"Its kernel peaked at {peaks.pop(heaviest)} MiB" in text
    assert max(peaks.values()) < 500 and "Every other chapter stays under 500 MiB" in text
    # "Chapter 2 is the longest at the reader default (...), then Chapter 6 (...), Chapter 4 (...) and Chapter 5 (...)."
    sentence = re.search(r"Chapter \d is the longest at the reader default.*?\)\.", text, re.S)[0]
    named = [int(n) for n in re.findall(r"\bChapter (\d)\b", sentence)]
    slowest = sorted(reader["chapters"], key=lambda r: -r["execution_seconds"])
    assert named == [int(r["chapter"][:2]) for r in slowest[:len(named)]] and len(named) >= 3, named


def test_full_scale_run_times_in_the_docs_are_the_results_files_own():
    """The wall times README.md and instructors.md give for the committed runs are those the runs recorded."""
    import overparam as op  # noqa: PLC0415 (the loaders of the committed files)

    results = ROOT / "results"
    loaded = {name: op.SweepResult.load(results / f"{name}.npz")
              for name in ("ethanol_paper", "ethanol_edge", "convergence_long")}
    sweep = {name: result.wall_time for name, result in loaded.items()}
    runs = {name: len(result) for name, result in loaded.items()}
    toy = sum(op.SweepResult.load(results / f"toy_paper_y{y}.npz").wall_time for y in (5, 10, 20))
    completion = op.completion.CompletionSeeds.load(results / "completion_long.npz").wall_time
    histories, _ = op.convnet.load_histories(results / "mnist_full.npz")
    mnist_minutes = round(sum(h.seconds for h in histories) / 60)  # training, the evaluations excluded
    instructors = " ".join((ROOT / "instructors.md").read_text().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    for phrase in (f"--threads 1`) took {round(toy)} s", f"the Ethanol sweeps {round(sweep['ethanol_paper']):,} s",
                   f"52 runs) {round(sweep['ethanol_edge']):,} s", f"MNIST convnet {mnist_minutes} minutes",
                   f"three seeds) {round(sweep['convergence_long']):,} s", f"one core) {round(completion):,} s"):
        assert phrase in instructors, phrase
    for phrase in (f"# {round(sweep['ethanol_paper'] / 60)} minutes on one CPU thread",
                   f"# {round(sweep['ethanol_edge']):,} s on one thread",
                   f"{round(sweep['convergence_long']):,} s on one CPU thread",
                   f"({round(completion):,} s on one CPU core", f"({mnist_minutes} minutes on two CPU cores",
                   f"the Ethanol sweeps, {runs['ethanol_paper']} runs x 10^6", f"{runs['convergence_long']:,} runs to"):
        assert phrase in readme, phrase
    assert f"two rounds, {runs['ethanol_edge']} runs) " in instructors

def test_instructors_exercise_table_gives_the_kind_each_exercise_states():
    """Where an exercise opens with its kind (**Coding.**, **Experiment.**, ...), the table's kind starts with it."""
    kinds = dict(re.findall(r"^\| \d+ \| `(ex-[\w-]+)` \| ([^|]+?) \|", (ROOT / "instructors.md").read_text(),
                            re.MULTILINE))
    stated = {}
    for chapter in _chapters():
        nb = json.loads((ROOT / f"{chapter}.ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        for label, body in re.findall(r"\{exercise(?:-start)?\}[ \t]*\n:label: (\S+)\n(.*?)(?=\n:::|\n```)", text, re.S):
            kind = re.search(r"\*\*(Coding|Experiment|Derivation|Derivation and coding)\.\*\*", body)
            if kind:
                stated[label] = kind[1].lower()
    assert len(stated) >= 9, stated  # measured 9
    wrong = {label: (kind, kinds[label]) for label, kind in stated.items() if not kinds[label].startswith(kind)}
    assert not wrong, f"instructors.md's kind differs from the exercise's own (stated, table): {wrong}"
