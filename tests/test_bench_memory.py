"""The memory benchmark's chapter list and its check of the chapters asked for (scripts/bench_memory.py).

Executing the notebooks is what the script measures, so it is not done here: the strict book build executes them.
"""
from __future__ import annotations

import sys

import pytest

from scripts import bench_memory


def test_chapters_come_from_the_table_of_contents_in_order():
    chapters = bench_memory.toc_chapters()
    assert chapters == sorted(chapters) and len(chapters) >= 7
    assert all((bench_memory.ROOT / "chapters" / f"{c}.ipynb").exists() for c in chapters)


def test_an_unknown_chapter_is_named_in_the_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_memory.py", "01_lp_regression", "99_missing"])
    with pytest.raises(SystemExit) as stop:
        bench_memory.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "99_missing" in err and "01_lp_regression" in err and "_toc.yml" in err
