"""Which of the book's three scales is running.

The same code path serves three budgets (see the book's introduction):

1. ``fast``: CI and quick checks, switched on by the environment variable
   ``OVERPARAM_FAST=1`` (any value but 1/true/yes/on, 0/false/no/off or
   empty is an error);
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

__all__ = ["is_fast", "pick", "scale_name"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_fast() -> bool:
    """Return ``True`` when ``OVERPARAM_FAST`` asks for the fast (CI) scale.

    The variable is read at every call. ``1``, ``true``, ``yes``, ``on`` ask
    for it; ``0``, ``false``, ``no``, ``off``, empty or unset do not (case and
    surrounding white space ignored).

    Raises
    ------
    ValueError
        Any other value (``fast``, ``2``, ...), which used to mean "not fast"
        silently; the message names ``OVERPARAM_FAST``.
    """
    value = os.environ.get("OVERPARAM_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"OVERPARAM_FAST must be one of 1, true, yes, on (the fast CI scale) or 0, false, no, off, "
                     f"empty (the reader's default), got {os.environ['OVERPARAM_FAST']!r}")


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
