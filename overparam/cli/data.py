"""``python -m overparam data``: every dataset the chapters read, downloaded where missing and verified.

The Ethanol problem (Chapter 1, ``ch-lp-regression``) and the four official MNIST files (Chapter 6, ``ch-mnist``),
through the same loaders and in the same order of places as the chapters: ``--data-dir`` (default
``OVERPARAM_DATA_DIR``), then the download cache, then a download into the cache. ``make book`` and ``make test``
run it first. A chapter that has to download says so on stderr, and the strict book build fails on anything a cell
writes to stderr; fetched beforehand, the data are at hand when the chapters run, and a reader offline learns which
files are missing, and where to put them, before a build starts.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..data import DataIntegrityError, load_ethanol
from ..mnist import load_mnist

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` sub-command to ``python -m overparam``."""
    p = subparsers.add_parser(
        "data", help="download the datasets the chapters read (where missing) and verify them",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--data-dir", default=None,
                   help="folder holding gas_sensor/ and mnist/ (default: OVERPARAM_DATA_DIR, then the cache)")
    p.add_argument("--no-download", action="store_true", help="verify what is there; never download")
    p.set_defaults(func=run)


def _ethanol(data_dir: str | None, download: bool) -> str:
    """Load the Ethanol problem; what it is and where it came from."""
    data = load_ethanol(data_dir, download=download)
    examples, features = data.shape
    return f"{examples:,} examples x {features} features, from {data.source}"


def _mnist(split: str) -> Callable[[str | None, bool], str]:
    """A check like :func:`_ethanol` for one MNIST split."""
    def check(data_dir: str | None, download: bool) -> str:
        data = load_mnist(split, data_dir, download)
        return f"{len(data):,} images, from {data.source}"
    return check


def run(args: argparse.Namespace) -> int:
    """Load (and so verify) each dataset; print where it came from, or why it is missing; returns 0 if all are there.

    Every dataset is tried, so that one run names every missing or damaged file. The MNIST training split is the
    tutorial's 55,000 images; its file also holds the 5,000 validation images, and its whole content is checked.
    """
    download = not args.no_download
    failed = 0
    for name, check in (("Ethanol", _ethanol), ("MNIST training files", _mnist("train")),
                        ("MNIST test files", _mnist("test"))):
        try:
            print(f"{name}: {check(args.data_dir, download)}")
        except (FileNotFoundError, NotADirectoryError, DataIntegrityError) as exc:
            print(f"python -m overparam data: error: {name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
