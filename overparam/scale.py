"""Which of the book's three scales is running.

The same code path serves three budgets (see the book's introduction):

1. ``fast``: CI and quick checks, switched on by the environment variable
   ``OVERPARAM_FAST=1``;
2. ``default``: what a reader gets when running a notebook on a laptop or on
   Binder (a minute or two per experiment);
3. ``paper``: the paper's full budget, run from the command line with
   ``python -m overparam ...`` into a results file.

Chapters ask :func:`pick` for their budget and print :func:`scale_name` beside
every figure, so a reader always knows which scale produced it.
"""
from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def is_fast() -> bool:
    """Return ``True`` when ``OVERPARAM_FAST`` asks for the fast (CI) scale."""
    return os.environ.get("OVERPARAM_FAST", "").strip().lower() in _TRUE


def pick(fast: T, default: T) -> T:
    """Return ``fast`` under ``OVERPARAM_FAST=1``, else the reader's ``default``.

    Examples
    --------
    >>> num_iters = pick(fast=2_000, default=50_000)
    """
    return fast if is_fast() else default


def scale_name() -> str:
    """A short label for figure captions: ``"fast (CI)"`` or ``"reader default"``."""
    return "fast (CI)" if is_fast() else "reader default"
