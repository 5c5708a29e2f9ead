"""Every Python source of the project compiles without a warning.

A docstring with a LaTeX command in a plain (not raw) string, such as ``\\sqrt``, is an invalid escape sequence:
Python warns once, when it first compiles the file, and a cached ``.pyc`` hides it afterwards. Compiling the
sources afresh here, with warnings as errors, makes the mistake fail every run.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p for folder in ("overparam", "scripts", "tests", "_ext") for p in (ROOT / folder).rglob("*.py")
)


def test_the_sources_are_found():
    assert len(SOURCES) > 40 and ROOT / "overparam" / "dynamics.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_compiles_without_warnings(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_the_check_catches_an_invalid_escape():
    with warnings.catch_warnings(), pytest.raises((SyntaxError, DeprecationWarning, SyntaxWarning)):
        warnings.simplefilter("error")
        compile('"""a docstring with :math:`\\sqrt{2}`"""\n', "example.py", "exec")
