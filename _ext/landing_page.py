"""Sphinx extension: the site's ``index.html`` is a complete page that sends the reader to the book's first page.

The book's root page is ``intro``, so Jupyter Book (through sphinx-external-toc) writes an ``index.html`` that
holds a single ``<meta http-equiv="Refresh">`` line: no doctype, no title and no language, which is the one
page of the built site that an HTML validator rejects, and which a browser tab or a screen reader shows without a
name while it redirects. This writes a valid page in its place first (sphinx-external-toc leaves an existing
``index.html`` alone): the same redirect, the book's title, its language, and a link for a reader whose browser
does not follow the redirect. ``tests/test_links.py`` checks it.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

#: Runs before sphinx-external-toc's own ``build-finished`` handler (Sphinx's default priority is 500).
PRIORITY = 400


def landing_page(title: str, target: str, language: str) -> str:
    """The HTML of a page titled ``title`` that redirects at once to ``target``, with a link to it."""
    title, target, language = (html.escape(text, quote=True) for text in (title, target, language))
    return f"""<!DOCTYPE html>
<html lang="{language}">
<head>
<meta charset="utf-8">
<meta http-equiv="Refresh" content="0; url={target}">
<link rel="canonical" href="{target}">
<title>{title}</title>
</head>
<body>
<p><a href="{target}">{title}</a></p>
</body>
</html>
"""


def write_landing_page(app: Sphinx, exception: Exception | None) -> None:
    """Write ``index.html`` for an HTML build whose root page is not ``index``."""
    root = app.config.master_doc  # what sphinx-external-toc sets from _toc.yml
    if exception is not None or app.builder.name != "html" or root == "index":
        return
    title = app.config.html_title or app.config.project
    Path(app.outdir, "index.html").write_text(landing_page(title, f"{root}.html", app.config.language or "en"),
                                              encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", write_landing_page, priority=PRIORITY)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
