"""Sphinx extension: the Colab edition, each chapter as a notebook in plain Jupyter Markdown.

The chapters are written in MyST: cross-references (``{numref}``, ``{prf:ref}``, ``{ref}``), citations
(``{cite}``), glossary terms (``{term}``), label targets and colon-fenced boxes (theorems, proofs, exercises,
solutions). JupyterLab renders them with jupyterlab-myst; Google Colab has no such extension and shows every
one as text. After an HTML build this writes, for every notebook page of the book, a copy into
``_build/colab/`` in which

- each reference is replaced by the text the book prints for it ("Chapter 2", "Exercise 4.3",
  "Theorem 4.1", a section's title), resolved by the same Sphinx domains that resolve it on the page; a
  reference to another chapter, and a Markdown link to its notebook, becomes a link that opens that chapter's
  Colab edition;
- each citation is replaced by the author-year text of the page ("Arora et al., 2018"), and a chapter that
  cites anything ends with a cell listing its references;
- each box becomes a bold heading with the book's number and title ("**Theorem 4.1** (End-to-end
  dynamics ...)") over its body, set as a block quote; a proof ends with ∎;
- a figure made by a code cell gets the book's number and caption in a Markdown cell below the cell;
- label targets and directive options go, and a first cell says what the file is and where it comes from.

Code cells are copied unchanged, without outputs and without MyST-NB's ``mystnb`` metadata (a figure's caption,
which the Markdown cell below it now holds). ``scripts/colab_edition.py`` (``make colab``) builds
the book without executing it and copies the result into ``colab/``, the folder the Colab launch button
opens (this extension points the button there); ``tests/test_colab_edition.py`` fails when the committed
edition differs from what the strict build generates. A construct this module does not know (a new role or
directive) is an error, not silently left as markup.
"""
from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

#: The folder of the repository that holds the Colab edition, and of ``_build`` that the build writes it to.
FOLDER = "colab"

#: Runs after sphinx-book-theme has put its launch buttons into the page context (priority 501).
BUTTON_PRIORITY = 510

_ROLE = re.compile(r"\{(?P<role>[a-z]+(?::[a-z]+)?)\}`(?P<content>[^`]+)`")
#: A Markdown link to a notebook by relative path (``[Chapter 2](02_deep_linear.ipynb)``), not by URL.
_NOTEBOOK_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<path>[^)\s#:]+\.ipynb)\)")
_LABEL_LINE = re.compile(r"^\([\w-]+\)=[ \t]*$")
_FENCE_OPEN = re.compile(r"^:::\{(?P<name>[\w:-]+)\}[ \t]*(?P<argument>.*?)[ \t]*$")
_FENCE_CLOSE = re.compile(r"^:::[ \t]*$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*?)[ \t]*$")
_CODE_FENCE = re.compile(r"^(`{3,}|~{3,})")
_EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

#: Boxes with a number and an optional title (sphinx-proof); each needs a ``:label:`` to be numbered here.
PROOF_BOXES = ("prf:theorem", "prf:proposition", "prf:definition", "prf:algorithm", "prf:lemma",
               "prf:corollary", "prf:conjecture", "prf:example", "prf:remark", "prf:axiom",
               "prf:criterion", "prf:observation", "prf:property", "prf:assumption")
#: Directives that open an exercise or a solution (sphinx-exercise), and those that only close one.
EXERCISES = ("exercise", "exercise-start")
SOLUTIONS = ("solution", "solution-start")
CLOSERS = ("exercise-end", "solution-end")
CITATION_ROLES = ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts")


@dataclass(frozen=True)
class Reference:
    """What the book prints for a cross-reference, and the page it points to."""

    text: str
    docname: str


@dataclass
class Resolver:
    """The answers the converter needs from a build, as plain callables (a test can supply its own).

    ``xref(role, target, title, docname)`` gives the :class:`Reference` for a ``{numref}``, ``{ref}`` or
    ``{prf:ref}`` from page ``docname`` (``title`` is the role's explicit title, or ``None``);
    ``caption(label)`` the numbered caption of a box ("Theorem 4.1"); ``cite(keys, role)`` the author-year
    text of a citation role (``cite``, ``cite:p``, ``cite:ps``, ``cite:t``, ``cite:ts``);
    ``reference_list(keys)`` one Markdown line per cited work; ``figures(docname)`` the numbers ("4.2") of
    the page's figures in order; ``notebook_url(docname)`` the Colab address of a chapter's edition, or
    ``None`` for a page that has none.
    """

    xref: Callable[[str, str, str | None, str], Reference]
    caption: Callable[[str], str]
    cite: Callable[[list[str], str], str]
    reference_list: Callable[[list[str]], list[str]]
    figures: Callable[[str], list[str]]
    notebook_url: Callable[[str], str | None]


@dataclass
class _Box:
    """An open colon-fenced box while its lines are being read."""

    name: str
    heading: str
    quoted: bool
    lines: list[str] = field(default_factory=list)


def _split_explicit(content: str) -> tuple[str | None, str]:
    """``"Chapter %s <ch-x>"`` -> ``("Chapter %s", "ch-x")``; ``"ch-x"`` -> ``(None, "ch-x")``."""
    match = _EXPLICIT.match(content.strip())
    if match is None:
        return None, content.strip()
    return match.group("title"), match.group("target").strip()


def convert_roles(text: str, docname: str, resolver: Resolver, cited: list[str]) -> str:
    """Replace every MyST role in a line of prose by what the book prints for it.

    A reference to another page that has a Colab edition becomes a Markdown link to it; the keys of every
    citation are appended to ``cited`` (in order of first use). An unknown role is an error. A Markdown link to
    another chapter's notebook by its path (which JupyterLab follows) becomes a link to its Colab edition.
    """

    def replace_link(match: re.Match[str]) -> str:
        page = posixpath.normpath(posixpath.join(posixpath.dirname(docname), match.group("path")))[:-len(".ipynb")]
        url = resolver.notebook_url(page)
        if url is None:
            raise ExtensionError(f"colab_edition: page {docname!r} links to {match.group('path')}, which is not a "
                                 f"notebook page of the book")
        return f"[{match.group('text')}]({url})" if page != docname else match.group("text")

    def replace(match: re.Match[str]) -> str:
        role, content = match.group("role"), match.group("content")
        if role in ("numref", "ref", "prf:ref"):
            title, target = _split_explicit(content)
            reference = resolver.xref(role, target, title, docname)
            url = resolver.notebook_url(reference.docname) if reference.docname != docname else None
            return f"[{reference.text}]({url})" if url else reference.text
        if role == "term":
            title, target = _split_explicit(content)
            return title if title is not None else target
        if role in CITATION_ROLES:
            keys = [key.strip() for key in content.split(",")]
            cited.extend(key for key in keys if key not in cited)
            return resolver.cite(keys, role)
        raise ExtensionError(f"colab_edition: page {docname!r} uses the role {{{role}}}, which the Colab "
                             f"edition cannot write as plain Markdown; teach _ext/colab_edition.py about it")

    return _ROLE.sub(replace, _NOTEBOOK_LINK.sub(replace_link, text))


def _box_heading(name: str, argument: str, options: dict[str, str], docname: str, resolver: Resolver) -> str:
    """The bold heading a box gets in plain Markdown, e.g. ``**Theorem 4.1** (End-to-end dynamics)``."""
    if name == "prf:proof":
        return "*Proof.*"
    if name in SOLUTIONS:
        label = argument.strip()
        if not label:
            raise ExtensionError(f"colab_edition: a {{{name}}} on page {docname!r} names no exercise")
        return f"**Solution to {resolver.caption(label)}**"
    if name in PROOF_BOXES or name in EXERCISES:
        label = options.get("label")
        if label is None:
            raise ExtensionError(f"colab_edition: a {{{name}}} on page {docname!r} has no :label:, so its "
                                 f"number cannot be looked up; give it one")
        heading = f"**{resolver.caption(label)}**"
        return f"{heading} ({argument})" if argument else heading
    raise ExtensionError(f"colab_edition: page {docname!r} uses the directive {{{name}}}, which the Colab "
                         f"edition cannot write as plain Markdown; teach _ext/colab_edition.py about it")


def _box_lines(box: _Box) -> list[str]:
    """A closed box as Markdown lines: its heading, then its body; a proof ends with ∎."""
    body = list(box.lines)
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if box.name == "prf:proof":
        last = body[-1].strip() if body else ""
        if last and not (last.startswith(("$$", "```", "~~~", "-", "*", "|")) or last.endswith("$$")):
            body[-1] = f"{body[-1]} ∎"  # at the end of the proof's last sentence, as in print
        else:
            body += ["", "∎"] if body else ["∎"]
    return [box.heading, ""] + body if body else [box.heading]


def convert_markdown(source: str, docname: str, resolver: Resolver, cited: list[str],
                     open_boxes: list[str]) -> str:
    """One Markdown cell of a chapter in plain Jupyter Markdown (see the module's docstring).

    ``open_boxes`` carries the gated boxes (``exercise-start`` ... ``exercise-end``) that span cells: an opening
    directive pushes its name, the matching closing one pops it. An exercise's text is set as a block quote, in
    every Markdown cell it spans (the code cells between stay cells). Fenced code blocks are copied as they are.
    """
    out: list[tuple[str, int]] = []  # each line, and the block quote it belongs to (0: none)
    groups = iter(range(1, len(source) + 2))
    gated = next(groups) if open_boxes and open_boxes[-1] == "exercise-start" else 0
    box: _Box | None = None
    box_group = 0
    in_code: str | None = None
    lines = source.split("\n")
    index = 0

    def emit(line: str) -> None:
        if box is not None:
            box.lines.append(line)
        else:
            out.append((line, gated))

    while index < len(lines):
        line = lines[index]
        index += 1
        if in_code is not None:
            emit(line)
            if line.startswith(in_code):
                in_code = None
            continue
        fence = _CODE_FENCE.match(line)
        if fence:
            in_code = fence.group(1)
            emit(line)
            continue
        if _LABEL_LINE.match(line):
            continue
        opener = _FENCE_OPEN.match(line)
        if opener:
            if box is not None:
                raise ExtensionError(f"colab_edition: a directive opens inside {{{box.name}}} on page "
                                     f"{docname!r}; nested boxes are not supported")
            name, argument = opener.group("name"), opener.group("argument")
            options: dict[str, str] = {}
            while index < len(lines) and (option := _OPTION.match(lines[index])):
                options[option.group("key")] = option.group("value")
                index += 1
            argument = convert_roles(argument, docname, resolver, cited)
            if name in CLOSERS:
                opening = "exercise-start" if name == "exercise-end" else "solution-start"
                if not open_boxes or open_boxes[-1] != opening:
                    raise ExtensionError(f"colab_edition: {{{name}}} on page {docname!r} closes nothing")
                open_boxes.pop()
                gated = 0
                heading = ""
            else:
                heading = _box_heading(name, argument, options, docname, resolver)
            if name in ("exercise-start", "solution-start"):
                open_boxes.append(name)
                gated = next(groups) if name == "exercise-start" else 0
            if index < len(lines) and _FENCE_CLOSE.match(lines[index]):
                index += 1  # a gated directive, or a box with nothing in it: only its heading remains
                if heading:
                    for part in ("", heading, ""):
                        emit(part)
                continue
            box = _Box(name, heading, quoted=name in PROOF_BOXES or name in EXERCISES)
            box_group = next(groups) if box.quoted else gated
            continue
        if box is not None and _FENCE_CLOSE.match(line):
            done, box = box, None
            out.append(("", box_group))
            out.extend((part, box_group) for part in _box_lines(done))
            out.append(("", box_group))
            continue
        emit(convert_roles(line, docname, resolver, cited))
    if box is not None:
        raise ExtensionError(f"colab_edition: {{{box.name}}} on page {docname!r} is never closed")
    return _render(out)


def _render(lines: list[tuple[str, int]]) -> str:
    """Markdown from (line, block quote) pairs: each quote's lines prefixed ``>``, one blank line between blocks.

    A blank line stays inside a quote only between two lines of the same quote; otherwise it separates, so that
    two boxes in a row stay two quotes and text after a quote does not continue it. Runs of blank lines outside
    fenced code (left where markup was removed) become one.
    """
    kept: list[tuple[str, int]] = []
    fence: str | None = None
    for line, group in lines:
        if fence is None and (match := _CODE_FENCE.match(line)):
            fence = match.group(1)
        elif fence is not None and line.startswith(fence):
            fence = None
        elif fence is None and not line.strip():
            if kept and not kept[-1][0].strip():
                continue
            if not kept:
                continue
        kept.append((line, group))
    while kept and not kept[-1][0].strip():
        kept.pop()
    rendered: list[str] = []
    for k, (line, group) in enumerate(kept):
        if not line.strip():
            same = 0 < k < len(kept) - 1 and kept[k - 1][1] == group == kept[k + 1][1] != 0
            rendered.append(">" if same else "")
            continue
        if k and kept[k - 1][1] != group and kept[k - 1][0].strip():
            rendered.append("")
        rendered.append(f"> {line}" if group else line)
    return "\n".join(rendered)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _markdown_cell(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text.splitlines(keepends=True)}


def convert_notebook(notebook: dict[str, Any], docname: str, chapter_title: str, book_title: str,
                     source_path: str, repository_url: str, resolver: Resolver,
                     page_url: str | None = None) -> dict[str, Any]:
    """A chapter's notebook as its Colab edition (see the module's docstring); ``notebook`` is not changed.

    ``page_url``: the chapter's page in the published book, which the first cell links to, or ``None``.
    """
    cited: list[str] = []
    open_boxes: list[str] = []
    numbers = iter(resolver.figures(docname))
    page = (f" The chapter's [page in the online book]({page_url}) shows every figure as the book's build drew it."
            if page_url else "")
    cells: list[dict[str, Any]] = [_markdown_cell("colab-edition", (
        f"*{book_title}*, {chapter_title}: the Colab edition. It is generated from `{source_path}` in the "
        f"[book's repository]({repository_url}), with the book's cross-references, theorems and exercises "
        f"written as plain Markdown.{page} Run the first code cell to install the `overparam` library."))]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = convert_markdown(_source(cell), docname, resolver, cited, open_boxes)
            if text:
                cells.append(_markdown_cell(cell["id"], text))
            continue
        if cell["cell_type"] != "code":
            cells.append(json.loads(json.dumps(cell)))
            continue
        metadata = {key: value for key, value in cell.get("metadata", {}).items() if key != "mystnb"}
        code = {"cell_type": "code", "execution_count": None, "id": cell["id"],
                "metadata": json.loads(json.dumps(metadata)), "outputs": [], "source": cell["source"]}
        cells.append(code)
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if figure is not None:
            number = next(numbers, None)
            if number is None:
                raise ExtensionError(f"colab_edition: page {docname!r} has more figure cells than the build "
                                     f"numbered")
            caption = convert_markdown(figure.get("caption", ""), docname, resolver, cited, [])
            cells.append(_markdown_cell(f"{cell['id']}-caption", f"**Fig. {number}.** {caption}".rstrip()))
    if open_boxes:
        raise ExtensionError(f"colab_edition: page {docname!r} ends inside {{{open_boxes[-1]}}}")
    if next(numbers, None) is not None:
        raise ExtensionError(f"colab_edition: the build numbered more figures on page {docname!r} than it "
                             f"has figure cells")
    if cited:
        cells.append(_markdown_cell("colab-references", "\n".join(
            ["## References", ""] + [f"- {line}" for line in resolver.reference_list(cited)])))
    metadata = json.loads(json.dumps(notebook.get("metadata", {})))
    metadata["colab"] = {"name": Path(source_path).name, "toc_visible": True}
    return {"cells": cells, "metadata": metadata, "nbformat": notebook.get("nbformat", 4),
            "nbformat_minor": max(notebook.get("nbformat_minor", 5), 5)}


def dump(notebook: dict[str, Any]) -> str:
    """A notebook as the project stores notebooks: JSON indented by one, UTF-8 kept, a final newline."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


# --- answers from a finished Sphinx build ------------------------------------------------------------------


def _github(app: Sphinx) -> tuple[str, str, str] | None:
    """The repository's URL, its ``org/repo`` path on GitHub and its branch, from the theme's options.

    ``None`` for a book without a repository (the student edition's default): it has no launch buttons,
    and Colab would have nothing to open.
    """
    options = app.config.html_theme_options or {}
    url = str(options.get("repository_url", "") or "").rstrip("/")
    if not url:
        return None
    branch = str(options.get("repository_branch", "") or "main")
    match = re.match(r"https://github\.com/([^/]+/[^/]+)$", url)
    if match is None:
        raise ExtensionError(f"colab_edition: repository.url in _config.yml must be a GitHub repository "
                             f"(https://github.com/ORG/REPO) for Colab to open its notebooks, got {url!r}")
    return url, match.group(1), branch


def notebook_pages(app: Sphinx) -> list[str]:
    """The book's pages whose source is a notebook (the chapters)."""
    return sorted(doc for doc in app.env.found_docs if Path(app.env.doc2path(doc)).suffix == ".ipynb")


def colab_url(app: Sphinx, docname: str) -> str:
    """The address at which Colab opens page ``docname``'s edition from the repository."""
    github = _github(app)
    assert github is not None, "only a book with a repository has a Colab edition"
    _, path, branch = github
    colab = str((app.config.html_theme_options or {}).get("launch_buttons", {}).get("colab_url", "")
                or "https://colab.research.google.com").rstrip("/")
    return f"{colab}/github/{path}/blob/{branch}/{FOLDER}/{Path(docname).name}.ipynb"


def build_resolver(app: Sphinx) -> Resolver:
    """A :class:`Resolver` that asks the finished build's domains, as the page's own references did."""
    env, builder = app.env, app.builder
    std, proofs = env.get_domain("std"), env.get_domain("prf")
    pages = set(notebook_pages(app))
    figure_labels = {name: (page, number) for page in pages for name, number in figure_numbers(app, page)
                     if name}

    def resolve(role: str, target: str, title: str | None, docname: str) -> Reference:
        domain = proofs if role == "prf:ref" else std
        reftype = "ref" if role == "prf:ref" else role
        node = pending_xref("", refdomain=domain.name, reftype=reftype, reftarget=target, refdoc=docname,
                            refexplicit=title is not None, refwarn=True)
        contnode = nodes.inline("", title if title is not None else target)
        node += contnode
        resolved = domain.resolve_xref(env, docname, builder, reftype, target, node, contnode)
        if resolved is None and role in ("numref", "ref") and target in figure_labels:
            # A figure is made by executing its cell: a build that does not execute has no such target.
            page, number = figure_labels[target]
            if title is None or "%s" in title:
                title = (title or app.config.numfig_format["figure"]) % number
            return Reference(title, page)
        if resolved is None:
            raise ExtensionError(f"colab_edition: {{{role}}}`{target}` on page {docname!r} does not resolve")
        refuri = resolved.get("refuri", "")
        page = docname if not refuri or refuri.startswith("#") else _page_of(refuri, docname, builder)
        return Reference(resolved.astext(), page)

    def caption(label: str) -> str:
        proof_list = getattr(env, "proof_list", {})
        domain = proofs if label in proof_list else std
        reftype = "ref" if domain is proofs else "numref"
        docname = _label_page(label, std, proof_list)
        node = pending_xref("", refdomain=domain.name, reftype=reftype, reftarget=label, refdoc=docname,
                            refexplicit=False, refwarn=True)
        contnode = nodes.inline("", label)
        node += contnode
        resolved = domain.resolve_xref(env, docname, builder, reftype, label, node, contnode)
        if resolved is None:
            raise ExtensionError(f"colab_edition: the box labelled {label!r} has no number in the build")
        return resolved.astext()

    def figures(docname: str) -> list[str]:
        return [number for _, number in figure_numbers(app, docname)]

    bibtex = env.get_domain("cite")

    def entries(keys: list[str]) -> list[Any]:
        found = []
        for key in keys:
            entry = bibtex.bibdata.data.entries.get(key)
            if entry is None:
                raise ExtensionError(f"colab_edition: the citation key {key!r} is not in references.bib")
            found.append(entry)
        return found

    def cite(keys: list[str], role: str) -> str:
        return citation_text([(_last_names(entry), entry.fields.get("year", "n.d.")) for entry in entries(keys)],
                             parenthetical=role in ("cite", "cite:p", "cite:ps"),
                             all_authors=role in ("cite:ps", "cite:ts"))

    def reference_list(keys: list[str]) -> list[str]:
        from pybtex.plugin import find_plugin

        style = find_plugin("pybtex.style.formatting", "plain")()
        backend = _reference_backend()
        return [formatted.text.render(backend).replace("\n", " ")
                for formatted in style.format_entries(entries(keys))]

    def notebook_url(docname: str) -> str | None:
        return colab_url(app, docname) if docname in pages else None

    return Resolver(resolve, caption, cite, reference_list, figures, notebook_url)


# Characters that open Markdown markup inside a line of running text. pybtex's Markdown backend escapes every
# punctuation mark ("Hu\.", "\(ICLR\)"), which renders the same but makes the cell's source hard to read.
MARKUP_CHARACTERS = frozenset("\\`*_[]<")


def escape_markdown(text: str) -> str:
    """``text`` with a backslash before each character that would start Markdown markup in running text."""
    return "".join("\\" + character if character in MARKUP_CHARACTERS else character for character in text)


def _reference_backend() -> Any:
    from pybtex.backends.markdown import Backend

    class ReferenceBackend(Backend):  # type: ignore[misc]
        """pybtex's Markdown backend, escaping only what would start markup (``escape_markdown``)."""

        def format_str(self, text: str) -> str:
            return escape_markdown(text)

    return ReferenceBackend()


def _last_names(entry: Any) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    return [" ".join(person.last_names) for person in people] or [entry.fields.get("title", entry.key)]


def citation_text(works: list[tuple[list[str], str]], parenthetical: bool, all_authors: bool) -> str:
    """Author-year text of a citation, as the book's ``author_year`` style prints it, in round brackets.

    ``works`` holds each cited work's authors' last names and year. Three or more authors are shortened to
    "First et al." unless ``all_authors`` (the starred roles ``cite:ps`` and ``cite:ts``). Parenthetical:
    ``(Arora et al., 2018; Cohen, 2018)``; textual: ``Arora et al. (2018)``.
    """
    parts = []
    for names, year in works:
        if len(names) >= 3 and not all_authors:
            who = f"{names[0]} et al."
        elif len(names) >= 2:
            who = ", ".join(names[:-1]) + f"{',' if len(names) > 2 else ''} and {names[-1]}"
        else:
            who = names[0]
        parts.append(f"{who}, {year}" if parenthetical else f"{who} ({year})")
    return f"({'; '.join(parts)})" if parenthetical else "; ".join(parts)


def figure_numbers(app: Sphinx, docname: str) -> list[tuple[str | None, str]]:
    """The label (or ``None``) and number ("4.2") of each figure cell of notebook page ``docname``, in order.

    A figure is the output of a code cell with ``mystnb.figure`` metadata, numbered within its chapter as
    Sphinx numbers it (``numfig``: the chapter's number, a dot, the figure's place). A build that did not
    execute the notebooks has no figures, so the numbers follow that rule; a build that did is checked
    against it, so that the rule cannot silently drift from the book.
    """
    env = app.env
    notebook = json.loads(Path(env.doc2path(docname)).read_text(encoding="utf-8"))
    chapter = ".".join(str(part) for part in env.toc_secnumbers.get(docname, {}).get("", ()))
    cells = [cell.get("metadata", {}).get("mystnb", {}).get("figure") for cell in notebook["cells"]
             if cell["cell_type"] == "code"]
    figures = [(figure.get("name"), f"{chapter}.{place}" if chapter else str(place))
               for place, figure in enumerate((figure for figure in cells if figure is not None), start=1)]
    built_numbers = env.toc_fignumbers.get(docname, {}).get("figure", {})
    built = [".".join(str(part) for part in built_numbers[node["ids"][0]])
             for node in env.get_doctree(docname).findall(nodes.figure)
             if node.get("ids") and node["ids"][0] in built_numbers]
    if built and built != [number for _, number in figures]:
        raise ExtensionError(f"colab_edition: the build numbered the figures of page {docname!r} "
                             f"{built}, not {[number for _, number in figures]} as the figure cells say")
    return figures


def _label_page(label: str, std: Any, proof_list: dict[str, Any]) -> str:
    """The page that defines ``label`` (a sphinx-proof box, or any label of the standard domain)."""
    if label in proof_list:
        return proof_list[label]["docname"]
    if label in std.labels:
        return std.labels[label][0]
    if label in std.anonlabels:
        return std.anonlabels[label][0]
    raise ExtensionError(f"colab_edition: no page defines the label {label!r}")


def _page_of(refuri: str, fromdocname: str, builder: Any) -> str:
    """The docname a resolved reference's URI points to (relative to ``fromdocname``'s page)."""
    path = refuri.split("#", 1)[0]
    base = Path(builder.get_target_uri(fromdocname)).parent
    target = (base / path).as_posix()
    parts: list[str] = []
    for part in target.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    page = "/".join(parts)
    suffix = builder.out_suffix
    return page[: -len(suffix)] if page.endswith(suffix) else page


def write_colab_edition(app: Sphinx, exception: Exception | None) -> None:
    """After a successful HTML build, write every notebook page's Colab edition into ``_build/colab/``."""
    github = _github(app)
    if exception is not None or app.builder.name != "html" or github is None:
        return
    resolver = build_resolver(app)
    repository_url = github[0]
    book_title = app.config.html_title or app.config.project
    out = Path(app.outdir).parent / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    for docname in notebook_pages(app):
        source = Path(app.env.doc2path(docname))
        notebook = json.loads(source.read_text(encoding="utf-8"))
        title = app.env.titles[docname].astext()
        number = app.env.toc_secnumbers.get(docname, {}).get("", ())
        chapter = f"Chapter {'.'.join(str(n) for n in number)}, *{title}*" if number else f"*{title}*"
        relative = source.relative_to(Path(app.srcdir)).as_posix()
        baseurl = app.config.html_baseurl
        page_url = f"{baseurl.rstrip('/')}/{docname}.html" if baseurl else None
        edition = convert_notebook(notebook, docname, chapter, book_title, relative, repository_url, resolver,
                                   page_url)
        target = out / f"{Path(docname).name}.ipynb"
        target.write_text(dump(edition), encoding="utf-8")


def point_colab_button(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                       doctree: Any) -> None:
    """Make a notebook page's Colab launch button open the page's Colab edition instead of its source."""
    if doctree is None or _github(app) is None or pagename not in notebook_pages(app):
        return
    url = colab_url(app, pagename)
    for button in _walk_buttons(context.get("header_buttons", [])):
        if button.get("text") == "Colab" and "url" in button:
            button["url"] = url


def _walk_buttons(buttons: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for button in buttons:
        if isinstance(button, dict):
            yield button
            yield from _walk_buttons(button.get("buttons", []))  # a group (sphinx-book-theme's launch menu)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", write_colab_edition)
    app.connect("html-page-context", point_colab_button, priority=BUTTON_PRIORITY)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
