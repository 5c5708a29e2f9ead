"""Peak memory and execution time of each chapter, each notebook executed alone in a fresh kernel.

Usage (from the repository root, after ``make setup``)::

    OVERPARAM_FAST=1 .venv/bin/python scripts/bench_memory.py [--json out.json] [chapter ...]
    .venv/bin/python scripts/bench_memory.py                      # the reader-default scale

Each notebook listed in ``_toc.yml`` (or each one named, e.g. ``04_preconditioner``) is run top to
bottom by nbclient, in ``chapters/`` as the book build runs it. One extra cell at the end reads the
kernel's peak resident set size, ``VmHWM`` from ``/proc/self/status`` (Linux only). The wall time is
that of executing the notebook's own cells, the kernel's start excluded. The scale follows
``OVERPARAM_FAST`` exactly as in the book build. This is a measurement, not a test: it asserts nothing,
and a notebook whose cell raises is reported as failed with the error's last line.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from overparam.files import atomic_write, json_text, provenance
from overparam.scale import is_fast

try:
    from scripts.student_edition import book_notebooks
except ImportError:  # run as `python scripts/bench_memory.py`: scripts/ itself is on sys.path
    from student_edition import book_notebooks

ROOT = Path(__file__).resolve().parents[1]
PEAK_CELL = (
    "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0])"
)


def toc_chapters() -> list[str]:
    """The notebooks' stems in the order of ``_toc.yml`` (the student edition's :func:`book_notebooks`)."""
    return [path.stem for path in book_notebooks(ROOT)]


def measure(stem: str) -> dict:
    """Execute ``chapters/<stem>.ipynb`` alone; its wall time (s) and peak memory (MiB), or its error."""
    path = ROOT / "chapters" / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        start = time.perf_counter()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as exc:
            return {"chapter": stem, "failed": str(exc).strip().splitlines()[-1]}
        seconds = time.perf_counter() - start
    text = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    return {"chapter": stem, "execution_seconds": round(seconds, 1),
            "peak_memory_mib": round(int(text.split()[0]) / 1024)}


def bench_provenance() -> dict:
    """:func:`overparam.files.provenance` with what timings depend on: ``OMP_NUM_THREADS``, cores, platform.

    ``OMP_NUM_THREADS`` sets the BLAS threads of each kernel the benchmark
    starts (``make`` sets it to 1); ``None`` when it is not set.
    """
    return provenance(omp_num_threads=os.environ.get("OMP_NUM_THREADS"), cores=os.cpu_count(),
                      platform=platform.platform())


def report(scale: str, rows: list[dict]) -> dict:
    """The JSON report: the scale, the rows of :func:`measure`, and :func:`bench_provenance`.

    ``instructors.md``'s table is checked against the committed reports
    (``scripts/measurements/``, ``tests/test_book.py``).
    """
    return {"scale": scale, "chapters": rows, "provenance": bench_provenance()}


def write_report(path: Path, data: dict) -> Path:
    """Write ``data`` to ``path`` as indented JSON, atomically (a report is replaced whole or not at all)."""
    text = json_text(data, "report", indent=2) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebook stems (default: every chapter in _toc.yml)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    known = toc_chapters()
    unknown = [c for c in args.chapters if c not in known]
    if unknown:
        parser.error(f"chapters: {unknown} are not notebooks in _toc.yml; expected some of {known}")
    scale = "fast" if is_fast() else "reader default"
    print(f"scale: {scale}   cores: {os.cpu_count()}   OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
          flush=True)
    print(f"{'chapter':28s} {'execution (s)':>14s} {'peak memory (MiB)':>18s}", flush=True)
    rows = []
    for stem in args.chapters or known:
        row = measure(stem)
        rows.append(row)
        if "failed" in row:
            print(f"{stem:28s} FAILED: {row['failed']}", flush=True)
        else:
            print(f"{stem:28s} {row['execution_seconds']:14.1f} {row['peak_memory_mib']:18d}", flush=True)
    if args.json:
        write_report(args.json, report(scale, rows))
    return 1 if any("failed" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
