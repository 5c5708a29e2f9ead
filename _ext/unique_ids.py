"""Sphinx extension: no id appears twice on a page of the book.

sphinx-exercise and sphinx-proof give fixed ids to the parts they generate: every exercise's body is
``id="exercise-content"``, every solution's ``solution-content``, every theorem's ``proof-content``, and
every ``{prf:proof}`` box ``id="proof"``. A chapter with five exercises therefore has five elements with
one id, which HTML forbids: a link to ``#proof`` reaches only the first proof, and an assistive technology
that follows an ``aria-controls`` or ``aria-labelledby`` to such an id may land on the wrong element.

After Sphinx has resolved a page (``doctree-resolved``), this keeps the first element with an id and
renames each later one ``<id>-2``, ``<id>-3``, ... (skipping names the page already uses). Ids made
from labels (``{label}``, ``:label:``) are unique already, so no cross-reference changes.

One repeat is kept on purpose: sphinx-proof gives an unnumbered box (``:nonumber:``) and its title the
same id and finds the title by it, so the title keeps its box's id, renamed with the box. The book has no
unnumbered box; ``tests/test_links.py`` checks every built page for a repeated id and would report one.
"""
from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx


def _fresh(base: str, taken: set[str]) -> str:
    """``base-2``, ``base-3``, ...: the first that is not in ``taken``."""
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def make_ids_unique(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Rename, in document order, every repeat of an id on the page ``docname``."""
    elements = [node for node in doctree.findall(nodes.Element) if node.get("ids")]
    taken = {ident for node in elements for ident in node["ids"]}
    seen: set[str] = set()
    renamed: dict[tuple[int, str], str] = {}  # (id() of a box, its old id) -> its new id
    for node in elements:
        new_ids = []
        for ident in node["ids"]:
            parent = node.parent
            if isinstance(node, nodes.title) and parent is not None:
                if (id(parent), ident) in renamed:  # the box was renamed: its title follows
                    new_ids.append(renamed[(id(parent), ident)])
                    continue
                if ident in parent["ids"]:  # the box kept this id: so does its title
                    new_ids.append(ident)
                    continue
            if ident in seen:
                fresh = _fresh(ident, taken)
                taken.add(fresh)
                renamed[(id(node), ident)] = fresh
                ident = fresh
            seen.add(ident)
            new_ids.append(ident)
        node["ids"] = new_ids


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", make_ids_unique)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
