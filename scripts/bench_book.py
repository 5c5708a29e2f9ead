"""Benchmark the book build: wall time of the whole strict build and of each chapter's execution.

Usage (from the repository root, after ``make setup``)::

    OVERPARAM_FAST=1 .venv/bin/python scripts/bench_book.py [--json out.json]

It runs ``jupyter-book build --all -W -n --keep-going .`` on a clean ``_build`` (exactly the
command of ``make book``) and reads each notebook's execution time from myst-nb's log line
"Executed notebook in N seconds". This is a measurement, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from overparam.scale import is_fast

try:
    from scripts.bench_memory import bench_provenance, write_report
except ImportError:  # run as `python scripts/bench_book.py`: scripts/ itself is on sys.path
    from bench_memory import bench_provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = re.compile(r"(\S+\.ipynb): Executed notebook in ([0-9.]+) seconds")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    jb = str(Path(sys.executable).with_name("jupyter-book"))
    start = time.perf_counter()
    proc = subprocess.run([jb, "build", "--all", "-W", "-n", "--keep-going", str(ROOT)],
                          capture_output=True, text=True)
    total = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    chapters = {Path(p).name: float(s) for p, s in EXECUTED.findall(log)}
    report = {
        "scale": "fast" if is_fast() else "reader default",
        "build_exit_code": proc.returncode,
        "total_build_seconds": round(total, 1),
        "chapter_execution_seconds": chapters,
        "provenance": bench_provenance(),
    }
    print(f"scale: {report['scale']}   cores: {os.cpu_count()}   build exit code: {proc.returncode}")
    print(f"{'chapter':40s} {'execution (s)':>14s}")
    for name, seconds in chapters.items():
        print(f"{name:40s} {seconds:14.1f}")
    print(f"{'whole build (wall)':40s} {total:14.1f}")
    if args.json:
        write_report(args.json, report)
    if proc.returncode:
        print(log[-4000:], file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
