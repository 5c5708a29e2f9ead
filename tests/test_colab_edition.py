"""The Colab edition (``_ext/colab_edition.py``, ``scripts/colab_edition.py``, committed as ``colab/``).

- The converter, with a resolver that answers from a table: every MyST construct the chapters use becomes plain
  Markdown, and one it does not know is an error, not markup left behind.
- The committed ``colab/``: one notebook per chapter, valid nbformat, no MyST left in its Markdown, every code cell
  of the chapter in order and without outputs, each figure's caption under its cell, and links only to notebooks
  of the edition. Against the strict build (``tests/test_book.py``, which runs first): ``colab/`` is what the build
  generated, byte for byte (``tests/test_links.py`` checks that the chapter pages' Colab buttons open it).
"""
from __future__ import annotations

import html
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from markdown_it import MarkdownIt

from scripts.student_edition import book_notebooks, make_student_edition

ROOT = Path(__file__).resolve().parents[1]
EDITION = ROOT / "colab"
BUILT = ROOT / "_build" / "colab"
REPOSITORY = "overparam-book/overparam-book"
COLAB = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/colab/"

sys.path.insert(0, str(ROOT / "_ext"))
try:
    import colab_edition as ce
finally:
    sys.path.remove(str(ROOT / "_ext"))

#: MyST that plain Jupyter Markdown shows as text: a role, a colon fence, a label target.
MYST_LEFT = re.compile(r"\{[a-z]+(?::[a-z]+)?\}`|^(?:> ?)?:{3,}|^\([\w-]+\)=\s*$", re.MULTILINE)


def _resolver(calls: list | None = None) -> ce.Resolver:
    pages = {"ch-a": ("chapters/a", "Chapter 1"), "ch-b": ("chapters/b", "Chapter 2"),
             "sec-b": ("chapters/b", "A section of b"), "ex-1": ("chapters/a", "Exercise 1.1"),
             "thm-1": ("chapters/a", "Theorem 1.1"), "notes": ("notation", "Notation")}

    def xref(role, target, title, docname):
        if calls is not None:
            calls.append((role, target, title, docname))
        page, text = pages[target]
        number = text.split()[-1]
        return ce.Reference(title % number if title and "%s" in title else text, page)

    books = {"arora": (["Arora", "Cohen", "Hazan"], "2018"), "cohen": (["Cohen"], "2018")}
    return ce.Resolver(
        xref=xref,
        caption=lambda label: pages[label][1],
        cite=lambda keys, role: ce.citation_text([books[key] for key in keys], role in ("cite", "cite:p", "cite:ps"),
                                                 role in ("cite:ps", "cite:ts")),
        reference_list=lambda keys: [f"entry {key}" for key in keys],
        figures=lambda docname: ["1.1", "1.2"],
        notebook_url=lambda docname: f"{COLAB}{docname.split('/')[-1]}.ipynb" if docname.startswith("chapters/")
        else None)


def _convert(text: str, docname: str = "chapters/a", open_boxes: list | None = None) -> str:
    return ce.convert_markdown(text, docname, _resolver(), [], [] if open_boxes is None else open_boxes)


# ------------------------------------------------------------------------------------------------------------
# The converter
# ------------------------------------------------------------------------------------------------------------
def test_references_become_the_books_text_and_other_chapters_become_links():
    calls: list = []
    text = ("See {numref}`Chapter %s <ch-b>`, {numref}`ex-1`, {prf:ref}`thm-1`, {ref}`sec-b`, {ref}`notes` and "
            "{numref}`Chapter %s <ch-a>`.")
    out = ce.convert_markdown(text, "chapters/a", _resolver(calls), [], [])
    assert out == (f"See [Chapter 2]({COLAB}b.ipynb), Exercise 1.1, Theorem 1.1, [A section of b]({COLAB}b.ipynb), "
                   "Notation and Chapter 1.")
    assert calls[0] == ("numref", "ch-b", "Chapter %s", "chapters/a")
    assert calls[1] == ("numref", "ex-1", None, "chapters/a")
    assert calls[2][0] == "prf:ref"


def test_links_to_chapter_notebooks_open_their_colab_editions():
    assert _convert("As [Chapter 2](b.ipynb) and [this chapter](a.ipynb) show; [the code](https://x.org/c.ipynb).") \
        == f"As [Chapter 2]({COLAB}b.ipynb) and this chapter show; [the code](https://x.org/c.ipynb)."
    with pytest.raises(ce.ExtensionError, match=r"links to \.\./notation\.ipynb, which is not a notebook page"):
        _convert("See [the notation](../notation.ipynb).")


def test_citations_glossary_terms_and_labels():
    cited: list = []
    text = ("(sec-x)=\n## A heading\n\nShown {cite}`arora`, by {cite:t}`cohen` and {cite:ps}`arora,cohen`; a "
            "{term}`balanced <balancedness>` start, {term}`suboptimality`.")
    out = ce.convert_markdown(text, "chapters/a", _resolver(), cited, [])
    assert out == ("## A heading\n\nShown (Arora et al., 2018), by Cohen (2018) and (Arora, Cohen, and Hazan, 2018; "
                   "Cohen, 2018); a balanced start, suboptimality.")
    assert cited == ["arora", "cohen"]


def test_citation_text_matches_the_books_author_year_style():
    two, three = (["Kingma", "Ba"], "2015"), (["Arora", "Cohen", "Hazan"], "2018")
    assert ce.citation_text([two], True, False) == "(Kingma and Ba, 2015)"
    assert ce.citation_text([three], True, False) == "(Arora et al., 2018)"
    assert ce.citation_text([three], True, True) == "(Arora, Cohen, and Hazan, 2018)"
    assert ce.citation_text([three, two], False, False) == "Arora et al. (2018); Kingma and Ba (2015)"


def test_boxes_become_headings_over_quoted_bodies():
    text = (":::{prf:theorem} A title with $x$\n:label: thm-1\n\nIt holds, by {numref}`ex-1`.\n\n$$\na = b\n$$\n:::\n\n"
            ":::{prf:proof}\nObvious.\n:::\n\n:::{exercise}\n:label: ex-1\nDo it.\n:::\n\n"
            ":::{solution} ex-1\n:class: dropdown\nDone.\n:::")
    assert _convert(text) == (
        "> **Theorem 1.1** (A title with $x$)\n>\n> It holds, by Exercise 1.1.\n>\n> $$\n> a = b\n> $$\n\n"
        "*Proof.*\n\nObvious. ∎\n\n> **Exercise 1.1**\n>\n> Do it.\n\n**Solution to Exercise 1.1**\n\nDone.")


def test_two_boxes_in_a_row_stay_two_quotes_and_the_text_after_them_is_not_quoted():
    text = ":::{exercise}\n:label: ex-1\nOne.\n:::\n:::{exercise}\n:label: ex-1\nTwo.\n:::\nAfter."
    assert _convert(text) == "> **Exercise 1.1**\n>\n> One.\n\n> **Exercise 1.1**\n>\n> Two.\n\nAfter."
    # a proof that ends in display math, a list or code gets its ∎ on a line of its own
    assert _convert(":::{prf:proof}\nHence\n$$\nx = 1.\n$$\n:::") == "*Proof.*\n\nHence\n$$\nx = 1.\n$$\n\n∎"
    assert _convert(":::{prf:proof}\n- a\n- b\n:::") == "*Proof.*\n\n- a\n- b\n\n∎"


def test_gated_boxes_span_cells():
    open_boxes: list = []
    first = _convert(":::{exercise-start}\n:label: ex-1\n:::\n\n**Coding.** Write it.", open_boxes=open_boxes)
    assert first == "> **Exercise 1.1**\n>\n> **Coding.** Write it." and open_boxes == ["exercise-start"]
    second = _convert("Then check it.\n\n:::{exercise-end}\n:::\n\n:::{solution-start} ex-1\n:class: dropdown\n:::",
                      open_boxes=open_boxes)
    assert second == "> Then check it.\n\n**Solution to Exercise 1.1**" and open_boxes == ["solution-start"]
    assert _convert(":::{solution-end}\n:::", open_boxes=open_boxes) == "" and open_boxes == []


def test_code_blocks_are_copied_as_they_are():
    text = "Run\n\n```python\nx = {numref}`not-a-role`\n:::\n(lbl)=\n```\n\nthen {numref}`ex-1`."
    assert _convert(text) == "Run\n\n```python\nx = {numref}`not-a-role`\n:::\n(lbl)=\n```\n\nthen Exercise 1.1."


@pytest.mark.parametrize("text, message", [
    ("By {eq}`my-equation`.", r"role \{eq\}.*teach _ext/colab_edition.py"),
    (":::{note}\nA note.\n:::", r"directive \{note\}"),
    (":::{prf:theorem} Untitled\nIt holds.\n:::", r"has no :label:"),
    (":::{prf:proof}\nObvious.", r"is never closed"),
    (":::{exercise-end}\n:::", r"closes nothing"),
    (":::{prf:proof}\n:::{prf:proof}\nx\n:::\n:::", r"nested boxes"),
])
def test_markup_it_does_not_know_is_an_error(text, message):
    with pytest.raises(ce.ExtensionError, match=message):
        _convert(text)


@pytest.mark.parametrize("text", ["Hu. A (ICLR), 244–253. 2019.", "a*b*c_d_ [x](y) `z` <b> \\n & -1 #2 !3"])
def test_reference_text_escapes_only_what_would_become_markup(text):
    escaped = ce.escape_markdown(text)
    assert len(escaped) - len(text) == sum(text.count(c) for c in "\\`*_[]<"), escaped
    rendered = MarkdownIt("commonmark").renderInline(escaped)
    assert html.unescape(rendered) == text, f"{escaped!r} renders as {rendered!r}"


def _notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4,
            "nbformat_minor": 5}


def test_a_notebook_gets_a_first_cell_figure_captions_and_references():
    cells = [
        {"cell_type": "markdown", "id": "m1", "metadata": {},
         "source": ["(ch-a)=\n", "# A\n", "\n", "As {cite}`arora`.\n", "\n", ":::{solution-start} ex-1\n", ":::"]},
        {"cell_type": "code", "id": "c1",
         "metadata": {"mystnb": {"figure": {"caption": "Two $x$, see {numref}`ex-1`."}}},
         "execution_count": 3, "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}],
         "source": ["plot()"]},
        {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": ":::{solution-end}\n:::"},
        {"cell_type": "code", "id": "c2", "metadata": {"mystnb": {"figure": {"caption": "Second."}}},
         "execution_count": None, "outputs": [], "source": "plot()"},
    ]
    notebook = _notebook(cells)
    before = json.dumps(notebook)
    out = ce.convert_notebook(notebook, "chapters/a", "Chapter 1, *A*", "The Book", "chapters/a.ipynb",
                              f"https://github.com/{REPOSITORY}", _resolver(), "https://example.org/b/chapters/a.html")
    assert json.dumps(notebook) == before, "the source notebook was changed"
    text = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in out["cells"]]
    assert [c["id"] for c in out["cells"]] == ["colab-edition", "m1", "c1", "c1-caption", "c2", "c2-caption",
                                               "colab-references"], "the solution-end cell is dropped"
    assert text[0].startswith("*The Book*, Chapter 1, *A*: the Colab edition.") and "`chapters/a.ipynb`" in text[0]
    assert "[page in the online book](https://example.org/b/chapters/a.html)" in text[0]
    assert text[1] == "# A\n\nAs (Arora et al., 2018).\n\n**Solution to Exercise 1.1**"
    assert out["cells"][2]["outputs"] == [] and out["cells"][2]["execution_count"] is None and text[2] == "plot()"
    assert out["cells"][2]["metadata"] == {}, "MyST-NB's figure metadata stays with the chapter"
    assert text[3] == "**Fig. 1.1.** Two $x$, see Exercise 1.1." and text[5] == "**Fig. 1.2.** Second."
    assert text[6] == "## References\n\n- entry arora"
    assert out["metadata"]["colab"] == {"name": "a.ipynb", "toc_visible": True}
    nbformat.validate(nbformat.from_dict(out))


def test_figure_cells_and_the_builds_figures_must_agree():
    one_figure = [{"cell_type": "code", "id": "c1", "metadata": {"mystnb": {"figure": {"caption": "x"}}},
                   "execution_count": None, "outputs": [], "source": ""}]
    resolver = _resolver()
    resolver.figures = lambda docname: ["1.1", "1.2"]
    with pytest.raises(ce.ExtensionError, match="numbered more figures"):
        ce.convert_notebook(_notebook(one_figure), "chapters/a", "A", "B", "a.ipynb", "u", resolver)
    resolver.figures = lambda docname: []
    with pytest.raises(ce.ExtensionError, match="more figure cells than the build numbered"):
        ce.convert_notebook(_notebook(one_figure), "chapters/a", "A", "B", "a.ipynb", "u", resolver)


def test_the_check_names_missing_stale_and_changed_files(tmp_path):
    from scripts.colab_edition import copy_edition, differences

    generated, committed = tmp_path / "new", tmp_path / "old"
    generated.mkdir()
    committed.mkdir()
    (generated / "a.ipynb").write_text("A")
    (generated / "b.ipynb").write_text("B")
    (committed / "b.ipynb").write_text("old B")
    (committed / "gone.ipynb").write_text("G")
    assert differences(generated, committed) == ["a.ipynb (missing)", "gone.ipynb (no chapter produces it)",
                                                 "b.ipynb (out of date)"]
    copy_edition(generated, committed)
    assert differences(generated, committed) == [] and sorted(p.name for p in committed.iterdir()) == ["a.ipynb",
                                                                                                      "b.ipynb"]


# ------------------------------------------------------------------------------------------------------------
# The committed edition
# ------------------------------------------------------------------------------------------------------------
def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _editions() -> list[tuple[Path, Path]]:
    return [(path, EDITION / path.name) for path in book_notebooks(ROOT)]


def test_one_notebook_per_chapter_and_nothing_else():
    assert sorted(p.name for p in EDITION.glob("*")) == sorted(path.name for path, _ in _editions())


@pytest.mark.parametrize("chapter", [path.name for path in book_notebooks(ROOT)])
def test_the_committed_edition_is_plain_markdown_with_the_chapters_code(chapter):
    source = json.loads((ROOT / "chapters" / chapter).read_text())
    edition = nbformat.read(EDITION / chapter, as_version=4)
    nbformat.validate(edition)
    assert (EDITION / chapter).read_text(encoding="utf-8") == ce.dump(json.loads((EDITION / chapter).read_text()))
    code = [c for c in edition.cells if c.cell_type == "code"]
    assert [_text(c) for c in code] == [_text(c) for c in source["cells"] if c["cell_type"] == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    parser = MarkdownIt("commonmark")
    for cell in edition.cells:
        if cell.cell_type != "markdown":
            continue
        assert not MYST_LEFT.search(cell.source), f"{chapter}: MyST left in cell {cell.id}:\n{cell.source}"
        assert "%s" not in cell.source, f"{chapter}: a numref format left in cell {cell.id}"
        if cell.id == "colab-references":
            assert not re.search(r"\\[.(),:\-]", cell.source), f"{chapter}: needless escapes in the references"
        rendered = parser.render(cell.source)
        for link in re.findall(r'href="([^"]+)"', rendered):
            if link.startswith(COLAB):
                assert (EDITION / link[len(COLAB):]).is_file(), f"{chapter}: a link to a missing notebook: {link}"
            else:
                assert link.startswith("https://"), f"{chapter}: a link Colab cannot follow: {link}"
    figures = [c for c in source["cells"] if c["cell_type"] == "code" and "figure" in c["metadata"].get("mystnb", {})]
    by_id = {c.id: i for i, c in enumerate(edition.cells)}
    for number, cell in enumerate(figures, start=1):
        caption = edition.cells[by_id[cell["id"]] + 1]
        assert caption.id == f"{cell['id']}-caption" and re.match(rf"\*\*Fig\. \d+\.{number}\.\*\* ", caption.source)


def test_the_committed_edition_is_what_the_strict_build_generated():
    if not (BUILT).is_dir():
        pytest.skip(f"no {BUILT} (tests/test_book.py::test_strict_executed_build makes it)")
    from scripts.colab_edition import differences

    assert differences(BUILT, EDITION) == [], "colab/ is out of date: run `make colab` and commit colab/"


def test_no_repository_no_edition_and_the_student_copy_never_takes_the_full_one(tmp_path):
    """The student edition's default has no repository: its build writes no Colab edition, and the full book's
    colab/ (which holds the solutions) is not copied."""
    book = tmp_path / "student"
    make_student_edition(ROOT, book)
    assert not (book / "colab").exists()
    config = yaml.safe_load((book / "_config.yml").read_text())
    assert "colab_edition" in config["sphinx"]["local_extensions"]


@pytest.mark.slow
def test_a_published_student_edition_gets_a_colab_edition_without_solutions(tmp_path):
    from scripts.colab_edition import build_edition

    book = tmp_path / "student"
    reports = make_student_edition(ROOT, book, repository="https://github.com/a-course/exercises")
    generated = build_edition(book, tmp_path / "work")
    assert sorted(p.name for p in generated.glob("*.ipynb")) == sorted(Path(name).name for name in reports)
    for name, report in reports.items():
        edition = json.loads((generated / Path(name).name).read_text())
        text = "\n".join(_text(c) for c in edition["cells"])
        assert "Solution to" not in text, f"{name}: a solution heading in the student's Colab edition"
        for label in set(report.stubbed.values()):
            assert f"Exercise {label}: your code here" in text, f"{name}: stub for {label} missing"
        page = (generated.parent / "html" / name).with_suffix(".html").read_text()
        button = f"https://colab.research.google.com/github/a-course/exercises/blob/main/colab/{Path(name).name}"
        assert re.findall(r'href="(https://colab[^"]+)"', page) == [button], f"{name}: its Colab button"
    shutil.rmtree(book, ignore_errors=True)
