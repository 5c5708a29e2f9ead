"""The built book in a real browser: every page of the toc opened in headless Chromium.

Runs after ``tests/test_book.py`` (file order), whose strict build writes ``_build/html``; skipped, with the
reason, when there is no build or no Chromium (Debian's ``chromium``; ``.ci/run`` installs it). The pages are
served from a local ``http.server`` and every request that leaves 127.0.0.1 is blocked, so the result is the
same with or without a network (MathJax is served from ``_static/mathjax``; see ``_config.yml``).

Per page: no JavaScript error, the math typeset by MathJax with no raw TeX left, every image loaded, every
cross-reference and citation resolved; on every chapter page each solution button is named after its exercise,
shows a focus outline when reached from the keyboard, and a solution dropdown opens on click; nothing needs
scrolling sideways (code, printed output and displayed equations fit the text column of a 1280-pixel screen,
and printed output reflows at 200% zoom); on the bibliography page the entries are there. A full-page
screenshot of each page goes to ``_build/screenshots/<page>.png``.
"""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from scripts.student_edition import toc_files

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("OVERPARAM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# A laptop screen (1280 px): code, output and equations fit the text column. At 200% zoom (the same screen,
# 640 CSS px) printed output still reflows into the column, as WCAG 2.1's criterion 1.4.10 asks.
SCREEN, ZOOMED = {"width": 1280, "height": 900}, {"width": 640, "height": 900}

# Known, harmless messages from the pinned toolchain, each matched exactly. Anything else fails the test.
KNOWN_UPSTREAM = {
    # Sphinx 7.4.7's HTML builder adds sphinx-thebe's inline configuration script twice (once as registered,
    # once more from the registry in prepare_writing, with filename '' instead of None, so the de-duplication
    # misses it); the second copy re-declares a const. The first copy ran: THEBE_JS_URL is checked below.
    "Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme 0.17 on a first visit (no colour mode saved in localStorage yet): it logs this and
    # falls back to the automatic mode.
    "Got invalid theme mode: . Resetting to auto.",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)"),
]


def _pages() -> list[str]:
    """The toc's pages as paths relative to the HTML root, without suffix (``intro``, ``chapters/01_...``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [str(Path(name).with_suffix("")) if Path(name).suffix in (".md", ".ipynb") else name
            for name in toc_files(toc)]


def _is_chapter(page: str) -> bool:
    return page.startswith("chapters/")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    # Checked when the first test runs, not at collection: tests/test_book.py builds the book earlier in the run.
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built book in {HTML} (tests/test_book.py::test_strict_executed_build makes it)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# One JavaScript function per check; each returns a list of problems (empty when the page is fine).
_PROSE = r"""() => {
    const parts = [];
    const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.parentElement.closest('pre, code, script, style, mjx-container, .highlight')) parts.push(node.textContent);
    }
    return parts.join(' ');
}"""  # the page's visible prose: its text outside code, scripts and typeset math
_MATH = r"""() => {
    const math = document.querySelectorAll('span.math, div.math').length;
    const typeset = document.querySelectorAll('mjx-container').length;
    return typeset >= math ? [] : [`${math} math elements but only ${typeset} typeset by MathJax`];
}"""
_IMAGES = r"""async () => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = 'eager'; });
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener('load', done); img.addEventListener('error', done);
    })));
    return images.filter(img => img.naturalWidth === 0).map(img => `image not loaded: ${img.getAttribute('src')}`);
}"""
_REFERENCES = r"""() => {
    const problems = [];
    for (const el of document.querySelectorAll('.xref')) {
        if (!el.closest('a')) problems.push(`unresolved reference: ${el.textContent.trim()}`);
    }
    for (const el of document.querySelectorAll('.bibtex-citation')) {
        if (!el.querySelector('a')) problems.push(`unresolved citation: ${el.textContent.trim()}`);
    }
    return problems;
}"""


def _open(browser, url: str):
    """Open ``url`` in a fresh page; returns the page and the lists its listeners fill."""
    page = browser.new_page(viewport=SCREEN)
    errors, external = [], []
    origin = url.split("/", 3)[:3]

    def route(r):
        if r.request.url.split("/", 3)[:3] == origin:
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    # console errors from this site's scripts; a blocked outside request logs one too, listed in `external`
    page.on("console", lambda msg: errors.append(f"console.error: {msg.text}")
            if msg.type == "error" and msg.location.get("url", "").split("/", 3)[:3] == origin else None)
    page.on("requestfailed", lambda req: errors.append(f"failed request: {req.url}")
            if req.url.split("/", 3)[:3] == origin else None)
    page.on("response", lambda resp: errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    page.goto(url, wait_until="load")
    return page, errors, external


def _prose_problems(prose: str) -> list[str]:
    """Raw TeX (``$$``, ``\\(``, ``\\[``) or unfilled reference markers (``??``, ``%s``, ``[?]``) in the prose."""
    markers = {"$$": "raw TeX", "\\(": "raw TeX", "\\[": "raw TeX", "??": "an unresolved reference",
               "%s": "an unfilled numbered reference", "[?]": "an unresolved citation"}
    problems = []
    for marker, what in markers.items():
        at = prose.find(marker)
        if at >= 0:
            problems.append(f"{what} in the text: ...{prose[max(0, at - 40):at + 40]}...")
    return problems


def _has_bibliography(page_name: str) -> bool:
    source = ROOT / f"{page_name}.md"
    return source.is_file() and "{bibliography}" in source.read_text()


def _wait_for_mathjax(page) -> None:
    if page.evaluate("() => document.querySelectorAll('span.math, div.math').length") == 0:
        return
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("async () => { await MathJax.startup.promise; }")


_SOLUTION_BUTTONS = r"""() => {
    const problems = [], names = new Set();
    for (const button of document.querySelectorAll('div.solution button.toggle-button')) {
        const name = button.getAttribute('aria-label') || '';
        if (!/^Solution to Exercise \d+\.\d+$/.test(name)) problems.push(`a solution button is named '${name}'`);
        else if (names.has(name)) problems.push(`two solution buttons are named '${name}'`);
        names.add(name);
        const target = document.getElementById(button.getAttribute('aria-controls') || '');
        if (!target || !button.closest('div.solution').contains(target)) {
            problems.push(`${name}: aria-controls does not name its solution's content`);
        }
    }
    return problems;
}"""  # _static/a11y.js names each solution's button after its exercise (sphinx-togglebutton names them all alike)


def _focus_ring_problems(page) -> list[str]:
    """A solution button reached from the keyboard must show a focus outline (sphinx-togglebutton removes it;
    _static/a11y.css puts it back)."""
    button = page.locator("div.solution button.toggle-button").first
    page.keyboard.press("Tab")  # the keyboard is the last input, so the focus is drawn as for a keyboard user
    button.focus()
    style = button.evaluate("b => [b.matches(':focus-visible'), getComputedStyle(b).outlineStyle, "
                            "parseFloat(getComputedStyle(b).outlineWidth)]")
    if not style[0]:
        return ["a solution button focused after a key press does not match :focus-visible"]
    return [] if style[1] != "none" and style[2] >= 2 else [f"a focused solution button has no outline: {style}"]


def _dropdown_problems(page) -> list[str]:
    """Open the first solution dropdown by clicking its title; its content must go from hidden to visible."""
    solutions = page.locator(".solution.dropdown")
    if solutions.count() == 0:
        return ["no solution dropdown on a chapter page"]
    solution = solutions.first
    content = solution.locator("section").first
    solution.scroll_into_view_if_needed()
    if content.is_visible():
        return ["a solution dropdown is open before any click"]
    solution.locator(".admonition-title").first.click()
    try:
        content.wait_for(state="visible", timeout=5_000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError; reported as a problem
        return ["a solution dropdown did not open on click"]
    return []


# What a reader would have to scroll sideways to read: a code cell, a printed output or a displayed equation
# wider than its box (the theme clips a displayed equation that does not fit). ``kinds`` picks which to check.
_SIDEWAYS = r"""(kinds) => {
    const problems = [];
    for (const pre of document.querySelectorAll('div.cell_input pre, div.cell_output pre')) {
        const kind = pre.closest('div.cell_input') ? 'code' : 'output';
        if (kinds.includes(kind) && pre.scrollWidth > pre.clientWidth + 1) {
            const longest = pre.innerText.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
            problems.push(`${kind} wider than the text column: ${longest.trim().slice(0, 70)}`);
        }
    }
    if (kinds.includes('equation') && window.MathJax && MathJax.startup.document) {
        const tex = new Map(Array.from(MathJax.startup.document.math, (m) => [m.typesetRoot, m.math]));
        for (const box of document.querySelectorAll('mjx-container[display="true"]')) {
            const math = box.querySelector('mjx-math');
            if (math && math.getBoundingClientRect().width > box.clientWidth + 1) {
                problems.push(`equation wider than the text column: ${(tex.get(box) || '').trim().slice(0, 70)}`);
            }
        }
    }
    return problems;
}"""


def _sideways_problems(page) -> list[str]:
    problems = page.evaluate(_SIDEWAYS, ["code", "output", "equation"])
    page.set_viewport_size(ZOOMED)
    try:
        problems += [f"at 200% zoom: {p}" for p in page.evaluate(_SIDEWAYS, ["output"])]
    finally:
        page.set_viewport_size(SCREEN)
    return problems


@pytest.mark.parametrize("page_name", _pages())
def test_page_in_browser(page_name, server, browser):
    if not (HTML / f"{page_name}.html").is_file():
        pytest.fail(f"{page_name}.html was not built")
    page, errors, external = _open(browser, f"{server}/{page_name}.html")
    try:
        _wait_for_mathjax(page)
        problems = [e for e in errors if e.split(": ", 1)[-1] not in KNOWN_UPSTREAM]
        problems += page.evaluate(_MATH) + _prose_problems(page.evaluate(_PROSE))
        problems += page.evaluate(_IMAGES) + page.evaluate(_REFERENCES)
        if page.evaluate("() => typeof THEBE_JS_URL") != "string":
            problems.append("sphinx-thebe's configuration script did not run")
        if _is_chapter(page_name):
            problems += page.evaluate(_SOLUTION_BUTTONS) + _focus_ring_problems(page) + _dropdown_problems(page)
        problems += _sideways_problems(page)
        if _has_bibliography(page_name) and page.locator(".citation").count() == 0:
            problems.append("the bibliography has no entries")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(page_name).name}.png"), full_page=True)
    finally:
        page.close()
    assert not problems, f"{page_name}: " + "\n  ".join(problems) + (
        f"\n(requests blocked because they leave this machine: {external})" if external else "")
