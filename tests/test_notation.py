"""The Notation page (notation.md) against the chapters it summarizes.

Each symbol in its tables must appear, written the same way, in the section the row links to; every label it
links to must exist; and every chapter section it can link to has a label. So the page cannot list a symbol the
book does not use there, and a renamed symbol or a moved definition fails here rather than misleading a reader.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "notation.md"
LABEL_LINE = re.compile(r"^\((?P<label>[\w-]+)\)=\s*$", re.M)
REF = re.compile(r"\{numref\}`[^`<]*<(?P<label>[\w-]+)>`")
MATH = re.compile(r"\$([^$]+)\$")


def _chapter_markdown() -> dict[str, str]:
    """Each chapter notebook's Markdown cells, joined, by file stem."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]
    out = {}
    for name in files:
        nb = json.loads((ROOT / f"{name}.ipynb").read_text())
        out[Path(name).name] = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return out


def _sections() -> dict[str, str]:
    """Label -> the Markdown from that label's line to the next label line of the same chapter (or its end)."""
    out: dict[str, str] = {}
    for text in _chapter_markdown().values():
        marks = list(LABEL_LINE.finditer(text))
        for k, mark in enumerate(marks):
            end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
            assert mark["label"] not in out, f"label {mark['label']} is defined twice"
            out[mark["label"]] = text[mark.start():end]
    return out


TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\S")
SECTION_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$", re.S)
#: Spacing commands: they separate symbols but are not part of any.
SPACING = {"\\quad", "\\qquad", "\\,", "\\;", "\\!", "\\ "}


def _tokens(tex: str) -> list[str]:
    """LaTeX as tokens (a command, an escaped character, or one other character), spacing dropped, \\Vert as \\|."""
    return [t.replace("\\Vert", "\\|") for t in TOKEN.findall(tex) if t not in SPACING]


def _math_tokens(section: str) -> list[list[str]]:
    """The tokens of each piece of math in a section's Markdown (``$...$`` and ``$$...$$``)."""
    return [_tokens(m[1] or m[2]) for m in SECTION_MATH.finditer(section)]


def _appears(symbol_tex: str, section: str) -> bool:
    """Whether the symbol's tokens occur, in order and adjacent, inside one piece of the section's math.

    Whole tokens only: the letter ``s`` is not found inside ``\\sum``, nor in the prose around the math.
    """
    want = _tokens(symbol_tex)
    return any(want == math[i:i + len(want)] for math in _math_tokens(section) for i in range(len(math)))


def _symbol_rows() -> list[tuple[str, str, str]]:
    """(symbol cell, meaning cell, defined-in label) for each row of the tables under '## Symbols'."""
    text = PAGE.read_text()
    body = text[text.index("\n## Symbols\n"):text.index("\n## Terms\n")]
    rows = []
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith("| symbol") or line.startswith("| ---"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 3, f"a symbol row must have three cells: {line}"
        refs = REF.findall(cells[2])
        assert len(refs) == 1, f"the 'defined in' cell must link to one section: {line}"
        rows.append((cells[0], cells[1], refs[0]))
    return rows


ROWS = _symbol_rows()


def test_the_page_is_in_the_table_of_contents_and_lists_enough_symbols():
    toc = (ROOT / "_toc.yml").read_text()
    assert "file: notation" in toc
    assert len(ROWS) >= 60


@pytest.mark.parametrize("symbol, meaning, label", ROWS, ids=[r[0] for r in ROWS])
def test_each_symbol_is_written_the_same_way_in_the_section_it_links_to(symbol, meaning, label):
    sections = _sections()
    assert label in sections, f"{symbol}: no chapter section is labelled {label}"
    pieces = MATH.findall(symbol)
    assert pieces, f"the symbol cell {symbol!r} holds no math"
    for tex in pieces:
        assert _appears(tex, sections[label]), f"{tex!r} does not appear in the math of section {label}"


def test_every_label_the_page_links_to_exists():
    sections = _sections()
    chapters = set(sections)
    missing = sorted({m["label"] for m in REF.finditer(PAGE.read_text())} - chapters)
    assert not missing, f"notation.md links to labels no chapter defines: {missing}"


def test_every_numbered_section_of_a_chapter_has_a_label():
    """So that the page (and any later cross-reference) can link to it; the summary and exercises excepted."""
    unlabelled = []
    for name, text in _chapter_markdown().items():
        lines = text.splitlines()
        for k, line in enumerate(lines):
            if re.match(r"#{2,3} ", line) and line[3:].strip() not in {"Summary", "Exercises"}:
                if not (k and LABEL_LINE.match(lines[k - 1])):
                    unlabelled.append(f"{name}: {line}")
    assert not unlabelled, unlabelled


def test_the_check_is_not_too_lenient():
    """Negative controls: a symbol is not found in a section that does not use it, inside a longer command, or in a
    section's prose once its math is taken out (every row fails then)."""
    sections = _sections()
    assert _appears("W_e", sections["sec-deep-depth"]) and not _appears("X_w", sections["sec-deep-depth"])
    assert not _appears("W_{1:N}", sections["sec-deep-depth"]) and not _appears("L^\\star", sections["sec-lp-minimum"])
    assert _tokens("\\Vert w\\Vert") == _tokens("\\|w\\|") and not _appears("s", "$\\sum_i x_i$ and s")
    prose_only = {label: SECTION_MATH.sub(" ", sections[label]) for _, _, label in ROWS}
    found_in_prose = [symbol for symbol, _, label in ROWS
                      if all(_appears(tex, prose_only[label]) for tex in MATH.findall(symbol))]
    assert not found_in_prose, found_in_prose


def test_the_glossary_states_the_library_s_failure_rules():
    """The glossary gives the divergence and collapse rules in words; they must be the library's constants."""
    from overparam import training

    text = PAGE.read_text()
    diverged = text[text.index("\ndiverged\n"):text.index("\ncollapsed\n")]
    collapsed = text[text.index("\ncollapsed\n"):text.index("\nlargest stable η\n")]
    assert "a million times its initial loss" in diverged and training.DIVERGENCE_FACTOR == 1e6
    assert "at twice the best loss" in collapsed and training.COLLAPSE_FACTOR == 2.0
