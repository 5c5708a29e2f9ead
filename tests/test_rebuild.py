"""A rebuild gives the same numbers: every chapter executed again prints and draws what the strict build did.

Every random draw in the book is seeded through an explicit argument, so a second execution of a chapter, on the
same machine and at the same scale, must reproduce the first output for output: every printed word (the
whitespace between them aside, :func:`cell_outputs`), every table and every figure (the PNG bytes). Only the
wall-clock times a chapter reports (``100 s``, ``34 ms/step``) may differ; they are masked before the comparison.
The first execution is the strict build's (``_build/jupyter_execute``, made by ``tests/test_book.py``, which runs
first); without it, or when it is older than a chapter or the library, the test skips.

Two reader-scale builds of one commit (1743aaa), compared output by output on a 2-core CPU, differed in wall times
only (2026-12-07).
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from myst_nb.core.utils import coalesce_streams

from tests.notebooks import execute_all

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute" / "chapters"

#: A duration as the chapters print one: a number, then seconds, milliseconds per step or minutes; not an exponent's
#: digits (``6.5e-03 s = 0.01``) or a number before a variable named s (``0.99   s = 0.0035``).
WALL_TIME = re.compile(r"(?<![\w.\-])\d[\d,]*(?:\.\d+)?\s*(?:ms/step|ms|s|min)\b(?!\s*=)")


def cell_outputs(nb: dict, merged: bool) -> list[tuple[str, str, str]]:
    """Each code cell's outputs as ``(cell id, kind, content)``, wall times masked and images hashed.

    A cell's streams are compared as its page shows them: one text per stream name, which MyST-NB makes with
    ``coalesce_streams`` (``nb_merge_streams: true``) when it renders the cell, writing the merged text into
    the first stream output of the executed notebook in place and leaving the others. ``merged`` says the
    notebook is such a one (the build's); a fresh execution's streams are merged here the same way. How a
    kernel splits a cell's prints into messages varies from run to run, and the merge strips the whitespace at
    the end of each piece and ends it with a newline, so the same prints can merge into texts that differ in
    whitespace (a blank line where a piece began with a line's newline): a stream is compared as its words,
    whitespace collapsed. An image is its SHA-256, so that a difference names its cell, not bytes.
    """
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", []) if merged else coalesce_streams(copy.deepcopy(cell.get("outputs", [])))
        streams: dict[str, str] = {}
        for out in outputs:
            if out["output_type"] == "stream":
                streams.setdefault(out["name"], "".join(out["text"]))
            elif out["output_type"] in ("display_data", "execute_result"):
                for kind, value in sorted(out["data"].items()):
                    value = "".join(value) if isinstance(value, list) else str(value)
                    found.append((cell.get("id", "?"), kind, WALL_TIME.sub("<time>", value)
                                  if kind.startswith("text/") else hashlib.sha256(value.encode()).hexdigest()))
            elif out["output_type"] == "error":
                found.append((cell.get("id", "?"), "error", f"{out['ename']}: {out['evalue']}"))
        found += [(cell.get("id", "?"), f"stream:{name}", " ".join(WALL_TIME.sub("<time>", text).split()))
                  for name, text in sorted(streams.items())]
    return found


def first_difference(a: str, b: str, context: int = 50) -> str:
    """Where two texts first differ: ``context`` characters of each from a little before that place."""
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, at - 10)
    return f"{a[start:start + context]!r} then {b[start:start + context]!r}"


def test_wall_time_mask_takes_durations_only():
    masked = WALL_TIME.sub("<time>", "34 runs; wall time 1,063 s, 3.5 ms/step, 12 min; 1,000 steps at 2 s")
    assert masked == "34 runs; wall time <time>, <time>, <time>; 1,000 steps at <time>"
    for text in ("ε = 0.3, 5 seeds, 10 steps, σ_2", "W_e 6.5e-03 s = 0.01", "1.00   s = 0.00352: 1.06"):
        assert WALL_TIME.sub("<time>", text) == text


def test_first_difference_shows_where_two_texts_part():
    shown = first_difference("loss 0.0243 at step 3", "loss 0.0244 at step 3", 12)
    assert shown == "'loss 0.0243 ' then 'loss 0.0244 '"
    assert first_difference("abc", "abcd") == "'abc' then 'abcd'"


def _one_cell(*pieces: str) -> dict:
    """A notebook of one code cell whose stdout came in these pieces."""
    outputs = [{"output_type": "stream", "name": "stdout", "text": piece} for piece in pieces]
    return {"cells": [{"cell_type": "code", "id": "c", "outputs": outputs}]}


def test_streams_compare_alike_however_the_kernel_split_them():
    whole = cell_outputs(_one_cell("η = 0.01: L − L* = 0.0243\nη = 0.02: diverged\n"), merged=False)
    # print writes its text and its newline separately: a piece may end just before a newline
    assert cell_outputs(_one_cell("η = 0.01: L − L* = 0.0243", "\nη = 0.02: diverged\n"), merged=False) == whole
    assert cell_outputs(_one_cell("η = 0.01: L − L* = 0.0242\nη = 0.02: diverged\n"), merged=False) != whole


def test_the_build_merges_each_cells_streams():
    """What :func:`cell_outputs` assumes of the build's executed notebooks."""
    assert yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]["nb_merge_streams"] is True


@pytest.mark.slow
def test_a_second_execution_of_every_chapter_reproduces_the_build():
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    built = [EXECUTED / path.name for path in chapters]
    if not all(path.is_file() for path in built):
        pytest.skip(f"no executed chapters in {EXECUTED} (tests/test_book.py::test_strict_executed_build makes them)")
    built_at = min(path.stat().st_mtime for path in built)
    sources = [*chapters, *(ROOT / "overparam").rglob("*.py")]
    newer = [str(path.relative_to(ROOT)) for path in sources if path.stat().st_mtime > built_at]
    if newer:
        pytest.skip(f"the build in {EXECUTED} is older than {', '.join(newer[:3])}: build again (make test does)")
    again = execute_all(chapters, jobs=min(2, os.cpu_count() or 1))
    problems = []
    for path, first_path, second in zip(chapters, built, again):
        first = cell_outputs(nbformat.read(first_path, as_version=4), merged=True)
        repeat = cell_outputs(second, merged=False)
        if [key[:2] for key in first] != [key[:2] for key in repeat]:
            problems.append(f"{path.name}: the outputs differ in number or kind ({len(first)} then {len(repeat)})")
            continue
        for (cell, kind, a), (_, _, b) in zip(first, repeat):
            if a != b:
                what = first_difference(a, b) if kind.startswith(("text/", "stream", "error")) else "the image"
                problems.append(f"{path.name}, cell {cell} ({kind}): {what}")
    assert not problems, "a second execution differs from the build:\n" + "\n".join(problems)
