"""The student edition (``make student``, ``scripts/student_edition.py``).

Fast tests check the notebook transformation on a synthetic notebook and on the real chapters against an
independent reading of the rule (a code cell between a markdown cell containing ``{solution-start}`` and the
one containing ``{solution-end}`` is a solution cell). The slow test generates the edition, executes every
student notebook with errors allowed, and checks that the only errors are the stubs' ``NotImplementedError``;
then it builds the student HTML and checks that no solution is left in it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from scripts.student_edition import (
    ANSWER_TAG,
    EDITION_MARKER,
    INTRO_CHANGES,
    _ignore_for,
    answer_cell,
    book_notebooks,
    build_html,
    make_student_edition,
    student_config,
    student_intro,
    student_makefile,
    student_readme,
    studentize,
    stub_source,
    toc_files,
)
from tests.notebooks import execute_all

ROOT = Path(__file__).resolve().parents[1]


def _md(cell_id: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _code(cell_id: str, text: str) -> dict:
    return {"cell_type": "code", "id": cell_id, "metadata": {"tags": ["hide-input"]}, "execution_count": 3,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "answer\n"}], "source": text}


def _notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _solution_cells_by_rule(nb: dict) -> dict[str, str]:
    """Independent oracle: code cells between the markdown cells containing {solution-start} and {solution-end}."""
    found, label = {}, None
    for cell in nb["cells"]:
        text = _text(cell)
        if cell["cell_type"] == "markdown":
            # one markdown cell may close a solution and open the next: take the markers in textual order
            for marker in re.finditer(r"\{solution-(start|end)\}\s*(\S*)", text):
                label = marker.group(2) if marker.group(1) == "start" else None
        elif label is not None:
            found[cell["id"]] = label
    return found


SYNTHETIC = _notebook([
    _md("intro", "# Title\n\nSome prose that stays.\n"),
    _code("setup", "x = 1"),
    _md("ex-md", ":::{exercise}\n:label: ex-a\nDerive it.\n:::\n\n"
                 "::::{solution} ex-a\n:class: dropdown\nSECRET-A with a nested block\n"
                 ":::{math}\na = b\n:::\nstill SECRET-A\n::::\n\nProse after the solution stays."),
    _md("ex-bt", "```{solution} ex-b\n---\nclass: dropdown\n---\nSECRET-B\n```"),
    _md("ex-start", ":::{exercise-start}\n:label: ex-c\n:::\n\nCode it.\n\n:::{exercise-end}\n:::\n\n"
                    ":::{solution-start} ex-c\n:class: dropdown\n:::\nSECRET-C intro"),
    _code("sol-1", "answer = x + 1\nprint(answer)"),
    _md("inside", "SECRET-C explanation between two solution cells"),
    _code("sol-2", "assert answer == 2"),
    _md("ex-end", "SECRET-C closing words\n\n:::{solution-end}\n:::\n\n## Next section stays"),
    _md("only-md", ":::{solution-start} ex-d\n:::\nSECRET-D\n:::{solution-end}\n:::\nAfter D stays."),
    _code("after", "y = x * 2"),
])


def test_stub_source_names_the_exercise():
    with pytest.raises(NotImplementedError, match="Exercise ex-q: your code here"):
        exec(stub_source("ex-q"))


def test_studentize_synthetic_notebook():
    student, report = studentize(SYNTHETIC)
    assert SYNTHETIC["cells"][5]["source"] == "answer = x + 1\nprint(answer)", "the input was modified"
    by_id = {c["id"]: c for c in student["cells"]}
    # a solution's first code cell is its stub (same id, no outputs or hiding tags); its other code cells go
    assert _solution_cells_by_rule(SYNTHETIC) == {"sol-1": "ex-c", "sol-2": "ex-c"}
    assert report.stubbed == {"sol-1": "ex-c"} and report.code_cells_removed == 1 and "sol-2" not in by_id
    assert by_id["sol-1"]["source"] == stub_source("ex-c")
    assert by_id["sol-1"]["outputs"] == [] and by_id["sol-1"]["execution_count"] is None
    assert by_id["sol-1"]["metadata"] == {}
    # every other code cell is untouched
    for cid in ("setup", "after"):
        assert by_id[cid] == next(c for c in SYNTHETIC["cells"] if c["id"] == cid)
    # no solution text or directive survives; everything outside the solutions does
    text = "\n".join(_text(c) for c in student["cells"])
    assert "SECRET" not in text and "{solution" not in text
    for kept in ("Some prose that stays.", "Derive it.", "Prose after the solution stays.", "Code it.",
                 "{exercise-start}", "{exercise-end}", "## Next section stays", "After D stays."):
        assert kept in text, kept
    assert "inside" not in by_id, "a markdown cell left empty should be dropped"
    assert report.solutions_removed == 4
    # each exercise's statement is followed by an answer cell, hidden from the pages; a coding one's precedes its stub
    order = [c["id"] for c in student["cells"]]
    assert report.answered == ["ex-a", "ex-c"]
    assert order[order.index("ex-md") + 1] == "answer-ex-a" and order[order.index("ex-md") + 2] == "ex-md-1"
    assert order[order.index("ex-start") + 1:order.index("ex-start") + 3] == ["answer-ex-c", "sol-1"]
    assert by_id["ex-md"]["source"] == ":::{exercise}\n:label: ex-a\nDerive it.\n:::"
    assert by_id["ex-md-1"]["source"] == "Prose after the solution stays."
    assert by_id["answer-ex-a"]["metadata"] == {"tags": [ANSWER_TAG]}
    assert "cell below" in by_id["answer-ex-c"]["source"] and "cell below" not in by_id["answer-ex-a"]["source"]


def test_answer_cells_follow_each_statement_in_a_cell_holding_several():
    nb = _notebook([_md("m", "Intro.\n\n```{exercise}\n---\nlabel: ex-p\n---\nFirst.\n```\n\n:::{exercise}\n"
                             ":label: ex-q\nSecond.\n:::\nTail."),
                    _md("g1", ":::{exercise-start}\n:label: ex-r\n:::\nStatement begins"),
                    _md("g2", "and ends.\n:::{exercise-end}\n:::")])
    student, report = studentize(nb)
    assert [(c["id"], _text(c).split("\n")[-1]) for c in student["cells"]] == [
        ("m", "```"), ("answer-ex-p", answer_cell("ex-p", False)["source"]),
        ("m-1", ":::"), ("answer-ex-q", answer_cell("ex-q", False)["source"]), ("m-2", "Tail."),
        ("g1", "Statement begins"), ("g2", ":::"), ("answer-ex-r", answer_cell("ex-r", False)["source"])]
    assert report.answered == ["ex-p", "ex-q", "ex-r"]
    with pytest.raises(ValueError, match="exercise-end"):
        studentize(_notebook([_md("e", ":::{exercise-end}\n:::")]))


def test_unclosed_gated_solution_is_an_error():
    nb = _notebook([_md("a", ":::{solution-start} ex-z\n:::\n"), _code("b", "pass")])
    with pytest.raises(ValueError, match="ex-z"):
        studentize(nb)
    with pytest.raises(ValueError, match="unclosed"):
        studentize(_notebook([_md("a", ":::{solution} ex-z\nno end")]))


def test_student_config_hides_solutions_and_does_not_execute():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    student = student_config(config)
    assert student["sphinx"]["config"]["hide_solutions"] is True
    assert student["execute"]["execute_notebooks"] == "off"
    assert config["execute"]["execute_notebooks"] == "force", "the book's own config was modified"
    assert student["sphinx"]["extra_extensions"] == config["sphinx"]["extra_extensions"]


def test_student_config_has_no_button_that_opens_the_full_book():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] and config["html"]["use_repository_button"], "the book changed"
    student = student_config(config)
    assert "launch_buttons" not in student and "repository" not in student
    assert not any(student["html"][k] for k in ("use_repository_button", "use_issues_button", "use_edit_page_button"))
    assert config["launch_buttons"] and config["repository"]["url"].endswith("overparam-book"), "the input changed"
    published = student_config(config, "https://github.com/a-course/student-book")
    assert config["html"]["baseurl"] and "baseurl" not in student["html"] and "baseurl" not in published["html"], \
        "the copy must not claim the full book's published address"
    assert published["repository"]["url"] == "https://github.com/a-course/student-book"
    assert published["launch_buttons"] == config["launch_buttons"]
    with pytest.raises(ValueError, match="repository must be an https URL"):
        student_config(config, "github.com/no-scheme")


def test_student_intro_rewrites_each_sentence_about_the_full_book():
    intro = (ROOT / "intro.md").read_text()
    student = student_intro(intro)
    assert "instructors" not in student and "launch buttons" not in student
    assert "exercises and solutions" not in student and "Every page was executed" not in student
    assert "This is the student edition" in student and "`make setup`" in student
    assert "launch buttons" in student_intro(intro, published=True)
    assert "Colab button" not in student and "shows it as plain text" in student, "no button, no Colab edition"
    assert "Colab edition" in student_intro(intro, published=True)
    with pytest.raises(ValueError, match="Every page was executed"):
        student_intro(intro.replace(INTRO_CHANGES[0][0], "**Read it.** Reworded."))


def test_the_copy_keeps_the_ignore_list_and_skips_the_projects_own_folders(tmp_path):
    ignore = _ignore_for(tmp_path)
    names = ["tests", "scripts", "instructors.md", "chapters", ".git", ".venv", ".gitignore", "_build", "colab"]
    # colab/: the full book's Colab edition holds the solutions
    assert ignore(str(tmp_path), names) == {"tests", "scripts", "instructors.md", ".git", ".venv", "_build", "colab"}
    assert ignore(str(tmp_path / "chapters"), names) == {".git", ".venv", "_build"}, "only the top level skips"


def test_student_edition_sources_leave_out_the_instructors_page(tmp_path):
    book = tmp_path / "student"
    make_student_edition(ROOT, book)
    assert (book / ".gitignore").read_text() == (ROOT / ".gitignore").read_text()
    assert not (book / "instructors.md").exists() and (book / "bibliography.md").is_file()
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = list(toc_files(toc))
    assert "instructors" not in files and "bibliography" in files and "chapters/07_beyond_speed" in files
    assert "launch_buttons" not in yaml.safe_load((book / "_config.yml").read_text())
    assert (book / "intro.md").read_text() == student_intro((ROOT / "intro.md").read_text())


def test_student_readme_and_makefile_name_only_what_the_copy_holds(tmp_path):
    """Bug: the copy kept the full book's README (instructors.md, make student, tests/, scripts/, .ci/run) and
    Makefile (make test collected no tests and exited 5)."""
    book = tmp_path / "student"
    make_student_edition(ROOT, book)
    readme, makefile = (book / "README.md").read_text(), (book / "Makefile").read_text()
    assert readme == student_readme(yaml.safe_load((ROOT / "_config.yml").read_text())["title"])
    assert "student edition" in readme and "Binder" not in readme
    for path in re.findall(r"`((?:[\w.-]+/)*[\w-]+\.(?:md|py|yml|txt|ipynb|sh))`", readme + makefile):
        assert (book / path).exists(), f"the student README or Makefile names {path}, which the copy lacks"
    for gone in ("instructors", "scripts/", "tests/", ".ci", "make test", "make student", "bench", "pytest"):
        assert gone not in readme and gone not in makefile, gone
    targets = re.findall(r"^([\w$().-]+)\s*:(?!=)", makefile, re.MULTILINE)
    assert set(targets) == {".PHONY", "setup", "$(STAMP)", "data", "book", "clean"}
    # the copy's book is not executed: it needs no data, but make data fetches them for the student's own runs
    assert re.search(r"^book: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^data: \$\(STAMP\)\n\t\$\(BIN\)/python -m overparam data$", makefile, re.MULTILINE)
    assert "strict" not in makefile and "`make data`" in readme
    assert "executed" not in makefile.replace("not executed", "")
    assert "Binder or Colab" in student_readme("T", published=True)
    # the README's `jupyter lab` is installed by `make setup` (the kernel it registers lives in .venv)
    assert "`.venv/bin/jupyter lab`" in readme and "`make setup`" in readme
    pins = [line.split("==")[0] for line in (book / "requirements.txt").read_text().splitlines() if "==" in line]
    assert "jupyterlab" in pins, "requirements.txt installs no Jupyter front end for the README's `jupyter lab`"
    with pytest.raises(ValueError, match="Makefile: expected rules .* not found: \\['bench'\\]"):
        student_makefile((ROOT / "Makefile").read_text().replace("bench:", "benchmark:"))


def test_book_notebooks_follow_the_toc():
    toc_text = (ROOT / "_toc.yml").read_text()
    found = book_notebooks(ROOT)
    assert found, "no notebook found through _toc.yml"
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        listed = f"file: chapters/{path.stem}" in toc_text
        assert (path in found) == listed, path.name


def test_real_chapters_stub_exactly_their_solution_cells():
    for path in book_notebooks(ROOT):
        nb = json.loads(path.read_text())
        student, report = studentize(nb)
        solution_cells = _solution_cells_by_rule(nb)
        expected = {}  # the first code cell of each solution
        for cid, label in solution_cells.items():
            if label not in expected.values():
                expected[cid] = label
        assert report.stubbed == expected, path.name
        assert report.code_cells_removed == len(solution_cells) - len(expected), path.name
        originals = {c["id"]: c for c in nb["cells"] if c["cell_type"] == "code"
                     if c["id"] not in solution_cells or c["id"] in expected}
        codes = [c for c in student["cells"] if c["cell_type"] == "code"]
        assert [c["id"] for c in codes] == list(originals), f"{path.name}: code cells lost or reordered"
        for cell in codes:
            want = stub_source(expected[cell["id"]]) if cell["id"] in expected else _text(originals[cell["id"]])
            assert _text(cell) == want, f"{path.name}: cell {cell['id']}"
        assert not any("{solution" in _text(c) for c in student["cells"]), path.name
        # every exercise of the chapter, in order, gets an answer cell right after its statement's closing fence
        labels = [m[1] for c in nb["cells"] if c["cell_type"] == "markdown"
                  for m in re.finditer(r"\{exercise(?:-start)?\}\n:label: (\S+)", _text(c))]
        assert labels and report.answered == labels, path.name
        ids = [c["id"] for c in student["cells"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate cell ids"
        for label in labels:
            before = student["cells"][ids.index(f"answer-{label}") - 1]
            assert before["cell_type"] == "markdown" and re.search(r"\n(:{3,}|`{3,})$", _text(before)), label


# A {ref}/{numref} role's target: `label` or `text <label>`.
_XREF = re.compile(r"\{(?:ref|numref)\}`(?:[^`<]*<)?(?P<label>[^`>]+)>?`")


def _code_figure_labels(nb: dict) -> set[str]:
    """Labels of figures that exist only once a code cell runs (``mystnb.figure.name`` in its metadata)."""
    return {name for c in nb["cells"] if c["cell_type"] == "code"
            if (name := c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name"))}


def test_xref_role_pattern_reads_both_spellings():
    text = "see {numref}`fig-a`, {numref}`Figure %s <fig-b>` and {ref}`sec-c`"
    assert [m["label"] for m in _XREF.finditer(text)] == ["fig-a", "fig-b", "sec-c"]


def test_student_prose_points_at_no_figure_that_only_execution_draws():
    """The student edition is not executed, so a code cell's figure has no target there: prose the students keep
    (everything outside the solutions) must not reference one, or the student book's strict build fails."""
    notebooks = {path.name: json.loads(path.read_text()) for path in book_notebooks(ROOT)}
    figures = {label for nb in notebooks.values() for label in _code_figure_labels(nb)}
    assert figures, "no code-cell figure found: the test reads the wrong metadata"
    found = [f"{name}: {m['label']}" for name, nb in notebooks.items()
             for cell in studentize(nb)[0]["cells"] if cell["cell_type"] == "markdown"
             for m in _XREF.finditer(_text(cell)) if m["label"] in figures]
    assert not found, f"student prose references figures that the unexecuted student book lacks: {found}"


@pytest.mark.slow
def test_student_notebooks_fail_only_at_the_stubs_and_the_book_builds(tmp_path, monkeypatch):
    """Generate the edition, run every student notebook (fast mode), then build its HTML without solutions."""
    # The kernels inherit this environment: fast mode and this checkout's overparam (the data as for the book
    # build: OVERPARAM_DATA_DIR when set, else the loader's cache or download).
    monkeypatch.setenv("OVERPARAM_FAST", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    book = tmp_path / "student"
    reports = make_student_edition(ROOT, book)
    assert (book / "_toc.yml").is_file() and not (book / "tests").exists() and not (book / ".git").exists()
    assert sum(len(r.stubbed) for r in reports.values()) > 0, "no solution code cell was stubbed"
    executed = execute_all([book / name for name in reports], jobs=min(2, os.cpu_count() or 1))
    for (name, report), nb in zip(reports.items(), executed):
        stubs = {c["id"]: c for c in nb["cells"] if c["cell_type"] == "code" and c["id"] in report.stubbed}
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                if out["output_type"] != "error":
                    continue
                assert cell["id"] in stubs, (f"{name}: cell {cell['id']} raised {out['ename']}: {out['evalue']} "
                                             f"(only the exercise stubs may raise)\n{_text(cell)}")
                assert out["ename"] == "NotImplementedError", name
                assert out["evalue"] == f"Exercise {report.stubbed[cell['id']]}: your code here", name
        for cid, cell in stubs.items():
            assert any(o["output_type"] == "error" for o in cell["outputs"]), f"{name}: stub {cid} did not raise"

    assert build_html(book) == 0, "the student book's strict build failed (see the output above)"
    html = book / "_build" / "html"
    for name, report in reports.items():
        page = (html / name).with_suffix(".html").read_text()
        assert 'class="solution' not in page, f"{name}: a solution is left in the student HTML"
        for label in set(report.stubbed.values()):
            assert f"Exercise {label}: your code here" in page, f"{name}: stub for {label} not shown"
        assert report.answered and "Your answer to" not in page, f"{name}: an answer cell is in the student HTML"
        for full_book in ("colab.research.google.com", "mybinder.org", "github.com/overparam-book"):
            assert full_book not in page, f"{name}: the student page links to the full book ({full_book})"
    assert not (html / "instructors.html").exists()
    shutil.rmtree(book, ignore_errors=True)


def test_the_edition_replaces_only_a_folder_it_wrote(tmp_path):
    """Bug: the output folder was deleted whatever it was: `--out ..` would have deleted the repository and
    `--out results` the committed results."""
    book = tmp_path / "student"
    make_student_edition(ROOT, book)
    assert (book / EDITION_MARKER).is_file()
    (book / "stale.txt").write_text("from an earlier edition")
    make_student_edition(ROOT, book)  # its own folder: replaced
    assert not (book / "stale.txt").exists() and (book / EDITION_MARKER).is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"^out: .*notes exists and is not a student edition this script wrote"):
        make_student_edition(ROOT, other)
    assert (other / "mine.txt").read_text() == "keep me"
    for above in (ROOT, ROOT.parent):
        with pytest.raises(ValueError, match="^out must not be the book's own folder or a folder above it"):
            make_student_edition(ROOT, above)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="is not a student edition"):
        make_student_edition(ROOT, tmp_path / "a_file")
    empty = tmp_path / "empty"
    empty.mkdir()
    make_student_edition(ROOT, empty)  # an empty folder is fine
    assert (empty / "intro.md").is_file()
