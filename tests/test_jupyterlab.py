"""The chapters as a reader opens them in JupyterLab: on Binder, or locally after ``make setup``.

The chapters' Markdown is MyST: theorem, proof, exercise and solution boxes in colon fences, roles such as
``{numref}`` and ``{cite}``, ``(label)=`` targets and numbered equations. JupyterLab alone shows all of that as
raw text; the ``jupyterlab-myst`` extension (pinned in ``requirements.txt`` and ``binder/requirements.txt``)
renders it. Its 2.7 release needs ``@jupyter/ydoc`` 3, so JupyterLab stays at 4.5: JupyterLab 4.6 moved to
``@jupyter/ydoc`` 4 and disables the extension ("not compatible with the current JupyterLab"), which the first
test catches without a browser.

The second test starts JupyterLab on a copy of the chapters (JupyterLab saves an open notebook by itself, and
must not rewrite the repository's), opens each chapter in headless Chromium and reads the rendered Markdown:
no colon fence, role name or label target may be left as text, and the exercise and theorem boxes must be there.
The extension sees one notebook at a time, so a reference to another chapter's label shows only what its source
spells out: the chapters link to other chapters' notebooks (``[Chapter 2](02_deep_linear.ipynb)``, which JupyterLab
opens) and write other titles out (``{prf:ref}`Proposition 4.2 <prop-single-output>```), both checked against the
build by ``tests/test_links.py``; the test fails on a numref format (``%s``) or a bare label left in the prose, or a
chapter link that is not a link.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from scripts.student_edition import book_notebooks
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_links import _label_homes

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).parent / "jupyter"

#: A Markdown link to a chapter's notebook by its relative path: ``[Chapter 2](02_deep_linear.ipynb)``.
_NOTEBOOK_LINK = re.compile(r"\]\([^)\s#:]+\.ipynb\)")

#: What MyST leaves behind when nothing renders it: a colon or backtick fence (``:::{exercise-start}``), a role's
#: name in braces right before its text (``{numref}Chapter %s``: JupyterLab drops the backticks), a label target
#: alone on its line (``(ch-preconditioner)=``). A brace after a backslash is TeX (``\\Pr_w\\{g\\}``, in math that
#: MathJax has not typeset yet), not MyST.
RAW_MYST = re.compile(r"^:::|^```\{|(?<!\\)\{(?:[a-z]+:)?[a-z]+(?:-[a-z]+)*\}(?=[^\s,])|^\([\w-]+\)=$", re.MULTILINE)


#: The text of each rendered Markdown cell without its math and code, which are not prose: the math's glyphs, typeset
#: by MathJax or (in some runs) by KaTeX, read ``{g}`` for ``\\{g\\}``.
_PROSE = """els => els.map(el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('mjx-container, mjx-assistive-mml, .katex, math, .MathJax, script, code, pre')
        .forEach(node => node.remove());
    document.body.appendChild(copy);  // innerText needs a rendered element
    const text = copy.innerText;
    copy.remove();
    return text;
})"""


def unresolved(text: str, labels: set[str]) -> list[str]:
    """What an unresolved reference leaves in rendered prose: a numref format's ``%s``, or a bare label."""
    return sorted({m.group(0) for m in re.finditer(r"%s|[a-z]+(?:-[a-z0-9]+)+", text)
                   if m.group(0) == "%s" or m.group(0) in labels})


def _labels() -> set[str]:
    """Every label the chapters define: ``(label)=`` targets, ``:label:`` options and figure names."""
    return set(_label_homes()[0])


def test_unresolved_finds_formats_and_labels():
    labels = _labels()
    assert {"ch-deep-linear", "prop-single-output", "fig-mnist-clock"} <= labels
    assert unresolved("As Chapter %s and prop-single-output show, a well-behaved run", labels) == [
        "%s", "prop-single-output"]
    assert unresolved("As Chapter 2 and Proposition 4.2 show, a well-behaved run", labels) == []


def test_raw_myst_pattern_finds_unrendered_syntax():
    """The pattern itself, on what plain JupyterLab showed of Chapter 4 (and on rendered text, which passes)."""
    raw = ["(ch-preconditioner)=", ":::{exercise-start}", "{numref}Chapter %s <ch-deep-linear> trained",
           "By {prf:ref}`thm-balance-conserved` the imbalances", "see {cite}`arora2018optimization`",
           "```{prf:theorem}"]
    assert all(RAW_MYST.search(text) for text in raw), [t for t in raw if not RAW_MYST.search(t)]
    rendered = ["Chapter %s trained deep linear networks", "Exercise 8", "W_{e} = W_N \\cdots W_1 (f(w)=1)",
                "\\Pr_w\\{g\\}",
                "the set {1, 2}", "Theorem 1 (end-to-end dynamics)"]
    assert not any(RAW_MYST.search(text) for text in rendered), [t for t in rendered if RAW_MYST.search(t)]


def test_jupyterlab_myst_is_enabled():
    """``jupyter labextension list`` reports jupyterlab-myst enabled and compatible (``OK``, not ``X``)."""
    listing = subprocess.run([str(JUPYTER), "labextension", "list"], capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # its colours
    line = next((line for line in text.splitlines() if "jupyterlab-myst" in line and " v" in line), None)
    assert line is not None, f"jupyterlab-myst is not installed (requirements.txt pins it):\n{text}"
    assert "enabled" in line and line.rstrip().split()[3] == "OK" and "not compatible" not in text, \
        f"jupyterlab-myst is installed but not usable by this JupyterLab:\n{text}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory) -> Iterator[str]:
    """A JupyterLab server on a copy of the chapters, with every cell rendered (no windowing) and no news popup."""
    root = tmp_path_factory.mktemp("lab")
    for notebook in book_notebooks(ROOT):
        shutil.copy(notebook, root / notebook.name)
    settings = root / ".settings"
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "docmanager-extension/plugin": {"autosave": False}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    command = [str(JUPYTER), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
               "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / '.workspaces'}"]
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "JUPYTER_NO_CONFIG": "1"})  # no user configuration
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)")
def test_chapters_render_in_jupyterlab(jupyterlab):
    """Every chapter opened in JupyterLab: all its Markdown cells rendered, no MyST syntax, numref format or bare
    label left as text in their prose, its first exercise box (and a theorem box, where it has one) there,
    numbered, and each of its links to another chapter a link; clicking the first opens that chapter."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")
    problems = {}
    labels = _labels()
    opened = ""  # the first chapter link clicked, and the tab it opened
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        control = browser.new_page()  # _PROSE drops typeset math and code, and keeps the words around them
        control.set_content('<div class="cell">Write <span class="katex">Pr<sub>w</sub>{g}</span> and '
                            '<mjx-container>{g}</mjx-container><code>{x}</code> here</div>')
        assert control.eval_on_selector_all(".cell", _PROSE) == ["Write and here"]  # innerText collapses spaces
        control.close()
        for notebook in book_notebooks(ROOT):
            cells = json.loads(notebook.read_text())["cells"]
            markdown = sum(cell["cell_type"] == "markdown" for cell in cells)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{jupyterlab}/lab/tree/{notebook.name}?reset", timeout=120_000)
            rendered = ".jp-Notebook .jp-MarkdownCell.jp-mod-rendered .jp-Cell-inputWrapper"
            page.wait_for_function(f"document.querySelectorAll('{rendered}').length >= {markdown}",
                                   timeout=120_000)
            boxes = ["Exercise 1"] + (["Theorem"] if any("{prf:theorem}" in "".join(cell["source"])
                                                         for cell in cells) else [])
            # a reference to another chapter is a link to its notebook, which JupyterLab opens in a new tab
            written = sum(len(_NOTEBOOK_LINK.findall("".join(cell["source"]))) for cell in cells
                          if cell["cell_type"] == "markdown")
            # jupyterlab-myst numbers the boxes once every cell is parsed, and MathJax typesets the math after
            # that (its TeX, meanwhile, is text), and a link gets its address later still: read until all are
            # done, or for a minute
            deadline = time.monotonic() + 60
            while True:
                links = page.eval_on_selector_all(f"{rendered} a[href*='.ipynb']", "els => els.map(e => e.href)")
                texts = page.eval_on_selector_all(rendered, _PROSE)
                missing = [box for box in boxes if box not in "\n".join(texts)]
                raw = sorted({text[max(m.start() - 30, 0):m.end() + 30].replace("\n", " ")
                              for text in texts for m in RAW_MYST.finditer(text)})
                raw += unresolved("\n".join(texts), labels)
                if not (missing or raw or len(links) != written) or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(500)
            if raw or missing or len(texts) != markdown or len(links) != written:
                problems[notebook.name] = {"raw MyST": raw, "missing": missing,
                                           "rendered cells": f"{len(texts)} of {markdown}",
                                           "links to chapters": f"{len(links)} of {written}"}
            elif links and not opened:
                target = re.search(r"/([^/?]+\.ipynb)", links[0]).group(1)
                page.locator(f"{rendered} a[href*='{target}']").first.click()
                tab = page.locator(".lm-TabBar-tabLabel", has_text=target)
                tab.first.wait_for(timeout=60_000)
                opened = f"{notebook.name} -> {target}"
            page.close()
        browser.close()
    assert not problems, f"chapters that JupyterLab does not render: {problems}"
    assert opened, "no link to another chapter was clicked open"
