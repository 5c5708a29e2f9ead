"""Links in and out of the book.

- Internal links of the built HTML (``_build/html``, made by ``tests/test_book.py``, which runs first): every
  relative ``href``/``src`` of every page resolves to a file, and every ``#anchor`` to an id in its target page.
  Skipped, with the reason, when there is no build.
- Links out: the Binder configuration (``binder/``: the root pins, CPU-only torch, ``-e .``, Python 3.11), the
  Binder and Colab launch buttons (``_config.yml`` and, when built, the chapter pages), and the workflow that
  builds and publishes the book (``.github/workflows/book.yml``).
"""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from scripts.student_edition import book_notebooks

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
REPOSITORY = "overparam-book/overparam-book"


@pytest.fixture
def built() -> Path:
    """The built HTML; checked when the test runs (not at collection: tests/test_book.py builds it earlier)."""
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built book in {HTML} (tests/test_book.py::test_strict_executed_build makes it)")
    return HTML


class _Page(HTMLParser):
    """The ids defined in a page and the links (href/src) it contains."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.repeated_ids: list[str] = []  # each id met again after its first element (HTML allows one)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" and value in self.ids:
                self.repeated_ids.append(value)
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _book_pages() -> list[Path]:
    """The book's own pages (not the HTML that ships inside theme or MathJax assets)."""
    return sorted(p for p in HTML.rglob("*.html") if p.relative_to(HTML).parts[0] not in ("_static", "_sources"))


def _internal(link: str) -> bool:
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc and not link.startswith(("//", "data:", "javascript:"))


def broken_links(page_path: Path, page: _Page, parsed: dict[Path, _Page]) -> list[str]:
    """The internal links of one page that do not resolve (a missing file, or an anchor missing in its target)."""
    broken = []
    for link in page.links:
        if not _internal(link):
            continue
        parts = urlsplit(link)
        target = page_path if not parts.path else (
            HTML / unquote(parts.path).lstrip("/") if parts.path.startswith("/") else page_path.parent / unquote(parts.path))
        target = target.resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{link} (no file {target})")
            continue
        if parts.fragment and target.suffix == ".html":
            if target not in parsed:
                parsed[target] = _parse(target)
            if unquote(parts.fragment) not in parsed[target].ids:
                broken.append(f"{link} (no id '{unquote(parts.fragment)}' in {target.name})")
    return broken


def test_link_checker_finds_a_broken_link(tmp_path):
    """The checker itself: a missing file and a missing anchor are reported, good links are not."""
    (tmp_path / "a.html").write_text('<p id="top">x</p><a href="b.html#here">ok</a><a href="#top">ok</a>'
                                     '<a href="b.html#nowhere">bad anchor</a><img src="missing.png">'
                                     '<a href="https://example.org/x.html">outside</a>')
    (tmp_path / "b.html").write_text('<h1 id="here">b</h1>')
    page_path = (tmp_path / "a.html").resolve()
    broken = broken_links(page_path, _parse(page_path), {})
    assert len(broken) == 2 and "nowhere" in broken[0] and "missing.png" in broken[1], broken


def test_internal_links_resolve(built):
    pages = _book_pages()
    assert pages, f"no HTML page in {HTML}"
    parsed = {p.resolve(): _parse(p) for p in pages}
    broken = {str(p.relative_to(HTML)): broken_links(p.resolve(), parsed[p.resolve()], parsed) for p in pages}
    broken = {name: links for name, links in broken.items() if links}
    assert not broken, "broken internal links:\n" + "\n".join(f"{n}: {links}" for n, links in broken.items())


def test_no_page_repeats_an_id(built):
    """Each id names one element of its page (sphinx-exercise and sphinx-proof repeat theirs; _ext/unique_ids.py
    renames the repeats), so an anchor or an ``aria-controls`` reaches the element it means."""
    pages = _book_pages()
    assert pages, f"no HTML page in {HTML}"
    repeated = {str(p.relative_to(HTML)): sorted(set(_parse(p).repeated_ids)) for p in pages}
    repeated = {name: ids for name, ids in repeated.items() if ids}
    assert not repeated, "ids used more than once on a page:\n" + "\n".join(f"{n}: {ids}" for n, ids in repeated.items())


def test_repeated_id_checker_and_renamer():
    """The checker finds a repeated id; the extension renames repeats in document order and never onto a name in
    use, and a title that carries its box's id keeps it with the box (sphinx-proof finds the title by it)."""
    page = _Page()
    page.feed('<div id="proof"><p id="proof">x</p></div><div id="proof"></div><a name="proof"></a><p id="x"></p>')
    assert page.repeated_ids == ["proof", "proof"]

    from docutils import nodes
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        from unique_ids import make_ids_unique
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    document = new_document("page", get_default_settings(Parser))
    boxes = [nodes.section(ids=["proof"]), nodes.section(ids=["proof"]), nodes.section(ids=["proof-2", "lemma"]),
             nodes.section(ids=["proof"])]
    for box in boxes:
        box += nodes.title(ids=list(box["ids"]))
        box += nodes.paragraph(ids=["proof-content"])
        document += box
    make_ids_unique(None, document, "page")
    assert [box["ids"] for box in boxes] == [["proof"], ["proof-3"], ["proof-2", "lemma"], ["proof-4"]]
    assert [box[0]["ids"] for box in boxes] == [box["ids"] for box in boxes]
    assert [box[1]["ids"] for box in boxes] == [["proof-content"], ["proof-content-2"], ["proof-content-3"],
                                                ["proof-content-4"]]


def test_landing_page_is_a_complete_page_that_redirects_to_the_first(built):
    """index.html (written by _ext/landing_page.py, not Jupyter Book's one-line redirect): a doctype, the language,
    the book's title, and a redirect and a link to the toc's root page."""
    root = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    title = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    page = (HTML / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page, page[:200]
    assert f"<title>{title}</title>" in page, page
    assert f'content="0; url={root}.html"' in page and f'<a href="{root}.html">' in page, page


def test_chapter_pages_have_binder_and_colab_buttons(built):
    for notebook in book_notebooks(ROOT):
        source = notebook.relative_to(ROOT).as_posix()
        html = (HTML / source).with_suffix(".html").read_text()
        assert f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=" in html, f"{source}: no Binder button"
        # Colab renders none of the MyST markup: its button opens the chapter's Colab edition (colab/, plain Markdown)
        colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', html)
        assert colab == [f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/colab/{notebook.name}"], \
            f"{source}: the Colab button should open colab/{notebook.name}, got {colab}"
        assert (ROOT / "colab" / notebook.name).is_file(), f"colab/{notebook.name} is not in the repository"


# ---------------------------------------------------------------------------------------------------------------
# References between chapters
# ---------------------------------------------------------------------------------------------------------------
#: A role in a chapter's Markdown, with its optional explicit title.
_ROLE = re.compile(r"\{(?P<role>numref|ref|prf:ref)\}`(?:(?P<title>[^`<]*?)\s*<(?P<target>[^`<>]+)>|(?P<bare>[^`<>]+))`")
_LABEL_DEFS = (re.compile(r"^\(([\w-]+)\)=\s*$", re.MULTILINE), re.compile(r"^:label:\s*([\w-]+)", re.MULTILINE))


def _chapter_texts() -> dict[str, list[str]]:
    """Each chapter's Markdown: its Markdown cells and its figure captions."""
    import json

    texts = {}
    for notebook in book_notebooks(ROOT):
        cells = json.loads(notebook.read_text())["cells"]
        texts[notebook.stem] = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"] + [
            c["metadata"]["mystnb"]["figure"].get("caption", "") for c in cells
            if "figure" in c.get("metadata", {}).get("mystnb", {})]
    return texts


def _label_homes() -> tuple[dict[str, str], set[str]]:
    """The chapter that defines each label, and which labels name figures (a figure cell's ``mystnb`` name)."""
    import json

    homes, figures = {}, set()
    for notebook in book_notebooks(ROOT):
        for cell in json.loads(notebook.read_text())["cells"]:
            text = "".join(cell["source"]) if cell["cell_type"] == "markdown" else ""
            for pattern in _LABEL_DEFS:
                homes.update((label, notebook.stem) for label in pattern.findall(text))
            name = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
            if name:
                homes[name] = notebook.stem
                figures.add(name)
    return homes, figures


def _chapter_labels() -> dict[str, str]:
    """Each chapter's own label (the target right above its title) and the chapter's notebook name."""
    labels = {}
    for chapter, cells in _chapter_texts().items():
        match = re.match(r"\(([\w-]+)\)=\s*\n# ", cells[0])
        assert match, f"{chapter}: the first cell should open with the chapter's label and title"
        labels[match.group(1)] = chapter
    return labels


#: A Markdown link to a notebook by its relative path, e.g. ``[Chapter 2](02_deep_linear.ipynb)``.
_NOTEBOOK_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<path>[^)\s#:]+)\.ipynb\)")


def references_jupyterlab_cannot_resolve() -> list[tuple[str, str, str, str | None]]:
    """(chapter, role, target label, explicit title or None) of each reference that jupyterlab-myst cannot resolve:
    to a label of another chapter (it sees one notebook at a time), or to a figure (a cell's output, named in the
    cell's metadata, which it does not read)."""
    homes, figures = _label_homes()
    return [(chapter, m["role"], m["target"] or m["bare"], m["title"] if m["target"] else None)
            for chapter, cells in _chapter_texts().items() for text in cells for m in _ROLE.finditer(text)
            if homes.get(m["target"] or m["bare"], chapter) != chapter or (m["target"] or m["bare"]) in figures]


def target_name(page: str, label: str) -> str:
    """What the built page calls the element labelled ``label``: "Chapter 2" for a chapter, a section's title,
    or a numbered box's or figure's caption ("Exercise 1.2", "Proposition 4.2", "Fig. 6.4"). ``page`` is the
    page's HTML."""
    heading = re.search(rf'<span id="{re.escape(label)}"></span><h(?P<level>\d)><span class="section-number">'
                        r'(?P<number>[\d.]+)\. </span>(?P<title>.*?)<a class="headerlink"', page)
    if heading:
        return f"Chapter {heading['number']}" if heading["level"] == "1" else re.sub(r"<[^>]+>", "", heading["title"])
    box = re.search(rf'id="{re.escape(label)}">\s*<p class="admonition-title"><span class="caption-number">'
                    r'(?P<caption>[^<]+?)\s*</span>', page)
    if box:
        return box["caption"]
    figure = re.search(rf'<figure[^>]*id="{re.escape(label)}">.*?<span class="caption-number">(?P<caption>[^<]+?)\s*'
                       r'</span>', page, re.DOTALL)
    if figure:
        return figure["caption"]
    raise LookupError(f"no heading or numbered box labelled {label!r} in the page")


def test_references_jupyterlab_cannot_resolve_carry_their_text():
    """JupyterLab (jupyterlab-myst) sees one notebook at a time and no figure names: a reference to another
    chapter's label or to a figure shows its explicit title there, and otherwise the bare label
    ("prop-single-output") or the format ("Chapter %s"). So every such reference spells out what the book prints for
    it, and a reference to a whole chapter is a Markdown link to its notebook, which JupyterLab follows; the next
    test checks the spelling against the build."""
    references = references_jupyterlab_cannot_resolve()
    assert len(references) > 15, "the chapters refer to each other: the scan found too few references"
    bad = [(chapter, role, target) for chapter, role, target, title in references if not title or "%s" in title]
    assert not bad, f"references without their text (write {{ref}}`Fig. 6.4 <fig-x>`): {bad}"
    assert not [r for r in references if r[1] == "numref"], "numref needs %s: use {ref} with the number written out"
    chapters = _chapter_labels()
    roles = [(chapter, target) for chapter, _, target, _ in references if target in chapters]
    assert not roles, ("a reference to another chapter is a link to its notebook, [Chapter 2](02_deep_linear.ipynb),"
                       f" which JupyterLab opens (a role there is text only): {roles}")


def test_written_out_reference_titles_match_the_book(built):
    """Each written-out title ("Exercise 1.2", "Proposition 4.2", "Fig. 6.4", a section's title), and each link to
    another chapter's notebook ("[Chapter 2](02_deep_linear.ipynb)"), says what the built page calls its target,
    so that a reordered chapter or a new exercise cannot leave a stale number."""
    home, _ = _label_homes()
    pages = {chapter: (built / "chapters" / f"{chapter}.html").read_text() for chapter in set(home.values())}
    wrong = [(chapter, target, title, target_name(pages[home[target]], target))
             for chapter, _, target, title in references_jupyterlab_cannot_resolve()
             if title != target_name(pages[home[target]], target)]
    label_of = {stem: label for label, stem in _chapter_labels().items()}
    links = [(chapter, m["path"], m["text"]) for chapter, cells in _chapter_texts().items() for text in cells
             for m in _NOTEBOOK_LINK.finditer(text)]
    assert len(links) > 50, "the chapters link to each other: the scan found too few links"
    wrong += [(chapter, path, text, target_name(pages[path], label_of[path]) if path in label_of else "no chapter")
              for chapter, path, text in links
              if path not in label_of or text != target_name(pages[path], label_of[path])]
    assert not wrong, f"(chapter, label, written title, the book's name for it): {wrong}"


def test_target_name_reads_headings_and_boxes():
    page = ('<span id="ch-x"></span><h1><span class="section-number">2. </span>Deep<a class="headerlink" href="#d">#</a>'
            '</h1><span id="sec-y"></span><h2><span class="section-number">2.3. </span>Why <em>it</em> works'
            '<a class="headerlink" href="#w">#</a></h2><div class="exercise admonition" id="ex-z">\n\n'
            '<p class="admonition-title"><span class="caption-number">Exercise 2.4 </span></p>'
            '<figure class="align-default" id="fig-w">\n<img alt="A plot" src="a.png" />\n<figcaption>\n<p>'
            '<span class="caption-number">Fig. 2.1 </span><span class="caption-text">A plot.</span></p>')
    assert [target_name(page, label) for label in ("ch-x", "sec-y", "ex-z", "fig-w")] == [
        "Chapter 2", "Why it works", "Exercise 2.4", "Fig. 2.1"]
    with pytest.raises(LookupError, match="ex-missing"):
        target_name(page, "ex-missing")


# ---------------------------------------------------------------------------------------------------------------
# Binder and Colab configuration
# ---------------------------------------------------------------------------------------------------------------
def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _pins(lines: list[str]) -> dict[str, str]:
    return {m[1].lower(): m[2] for m in (re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line) for line in lines) if m}


def test_binder_requirements_match_the_root_pins_with_cpu_torch():
    root, binder = _requirements(ROOT / "requirements.txt"), _requirements(ROOT / "binder" / "requirements.txt")
    root_pins, binder_pins = _pins(root), _pins(binder)
    assert "torch" in root_pins, "the root requirements must pin torch"
    for name, version in root_pins.items():
        want = f"{version}+cpu" if name == "torch" else version
        assert binder_pins.get(name) == want, f"binder/requirements.txt: {name}=={binder_pins.get(name)}, want {want}"
    assert set(binder_pins) == set(root_pins), f"pins only in binder/: {set(binder_pins) - set(root_pins)}"
    index = "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert index in binder and binder.index(index) < binder.index(f"torch=={root_pins['torch']}+cpu")
    assert not any("download.pytorch.org" in line for line in root), "the root requirements must use PyPI only"
    assert "-e ." in binder and "-e ." in root
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_launch_buttons_configured():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == f"https://github.com/{REPOSITORY}"
    owner, name = REPOSITORY.split("/")  # the publish job deploys to the repository's GitHub Pages
    assert config["html"]["baseurl"] == f"https://{owner}.github.io/{name}/"
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


# ---------------------------------------------------------------------------------------------------------------
# The publishing workflow
# ---------------------------------------------------------------------------------------------------------------
def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in _steps(job) if s.get("uses", "").split("@")[0] == action]


def test_workflow_tests_every_push_and_publishes_main():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers and "pull_request" in triggers
    jobs = workflow["jobs"]
    for job in jobs.values():
        setup = _uses(job, "actions/setup-python")
        assert setup and str(setup[0]["with"]["python-version"]) == "3.11"
    test_jobs = [j for j in jobs.values() if any(s.get("run", "").strip() == "make test" for s in _steps(j))]
    assert len(test_jobs) == 1 and "if" not in test_jobs[0], "one unconditional job runs `make test`"
    assert test_jobs[0].get("env", {}).get("OVERPARAM_FAST") == "1"
    assert "OVERPARAM_DATA_DIR" not in str(workflow), "on GitHub the loaders download the data"
    publish = [j for j in jobs.values() if _uses(j, "actions/deploy-pages")]
    assert len(publish) == 1
    job = publish[0]
    assert "refs/heads/main" in job["if"] and "push" in job["if"]
    assert job["needs"] in [name for name, j in jobs.items() if j is test_jobs[0]], "publish only after the tests"
    assert any(s.get("run", "").strip() == "make book" for s in _steps(job))
    assert "OVERPARAM_FAST" not in str(job.get("env", {})), "the published book is the reader-scale build"
    assert _uses(job, "actions/upload-pages-artifact")[0]["with"]["path"] == "_build/html"
    assert job["permissions"]["pages"] == "write" and job["permissions"]["id-token"] == "write"


def test_tables_printed_by_cells_render_as_tables(built):
    """A results table a cell prints as Markdown is an HTML table, not a paragraph of pipes (nb_render_markdown_format)."""
    def prose(page: Path) -> str:  # the page without its code and printed output (<pre> blocks)
        return re.sub(r"<pre.*?</pre>", "", page.read_text(encoding="utf-8"), flags=re.S)

    raw = {page.name: prose(page).count("|---|") for page in (built / "chapters").glob("*.html")}
    assert not any(raw.values()), f"Markdown tables left unrendered: {raw}"
    assert (built / "chapters" / "06_mnist_convnet.html").read_text(encoding="utf-8").count("<table") >= 4
    assert (built / "chapters" / "02_deep_linear.html").read_text(encoding="utf-8").count("<table") >= 1
