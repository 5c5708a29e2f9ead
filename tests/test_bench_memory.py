"""The memory benchmark's chapter list and its check of the chapters asked for (scripts/bench_memory.py).

Executing the notebooks is what the script measures, so it is not done here: the strict book build executes them.
"""
from __future__ import annotations

import json
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


def test_the_report_carries_the_rows_and_the_provenance_the_timings_depend_on(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rows = [{"chapter": "01_lp_regression", "execution_seconds": 12.3, "peak_memory_mib": 330}]
    report = bench_memory.report("fast", rows)
    assert report["scale"] == "fast" and report["chapters"] == rows
    stamp = report["provenance"]
    assert stamp["omp_num_threads"] == "1" and stamp["cores"] >= 1
    assert {"date_utc", "python", "numpy", "torch", "command"} <= set(stamp)
    path = bench_memory.write_report(tmp_path / "sub" / "fast.json", report)
    assert json.loads(path.read_text()) == report
    assert not list(path.parent.glob("*.part"))
