"""The audit of the chapters' ``# measured`` comments against executed notebooks (scripts/audit_measured.py)."""
from __future__ import annotations

import json

import pytest

from scripts import audit_measured as audit


def _notebook(path, cells):
    """Write a notebook of code cells given as (id, source, printed text or None)."""
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for cell_id, source, printed in cells:
        outputs = [] if printed is None else [{"output_type": "stream", "name": "stdout", "text": printed}]
        nb["cells"].append({"cell_type": "code", "id": cell_id, "metadata": {}, "source": source,
                            "outputs": outputs, "execution_count": None})
    path.write_text(json.dumps(nb))
    return path


def test_a_number_carries_the_precision_it_is_written_with():
    (big,) = audit.parse_number("8.0e4")
    assert big.value == 80_000 and big.half_unit == pytest.approx(500)
    (steps,) = audit.parse_number("1,527")
    assert steps.value == 1527 and steps.half_unit == 0.5
    (negative,) = audit.parse_number("−0.31")
    assert negative.value == -0.31 and negative.half_unit == pytest.approx(0.005)
    as_written, fraction = audit.parse_number("33%")
    assert (as_written.value, fraction.value) == (33, 0.33) and fraction.half_unit == pytest.approx(0.005)


def test_numbers_glued_to_a_symbol_are_not_quoted_values():
    found = [q.text for q in audit.numbers_in("ℓ4 ratio 4.5 (fast), σ_5 at 1e-3: ÷10.7, -7.9e-5 and 1,100")]
    assert found == ["4.5", "1e-3", "10.7", "-7.9e-5", "1,100"]


@pytest.mark.parametrize("quoted, printed, shown", [
    ("8.0e4", "a factor of 8.0e+04", True),
    ("8.0e4", "a factor of 7.0e+04", False),
    ("0.35", "0.3502", True),
    ("0.35", "0.36", False),
    ("33%", "0.331 of L*", True),
    ("18%", "33% of L*", False),
    ("-0.26", "slopes -0.26, -0.29", True),
    ("1,527", "step 1527", True),
])
def test_a_number_is_shown_when_a_printed_one_rounds_to_it(quoted, printed, shown):
    assert any(audit.is_shown(q, audit.numbers_in(printed)) for q in audit.parse_number(quoted)) is shown


def test_a_comment_runs_on_over_the_comment_lines_that_follow_it():
    source = ("x = 1\n# measured 1.0 (fast),\n# 2.0 (default)\nassert x\n# measured 3.0\n"
              "# measured 4.0\n# more 5.0\ny = 2  # measured 6.0\n")
    assert audit.measured_comments(source) == ["1.0 (fast), 2.0 (default)", "3.0", "4.0 more 5.0", "6.0"]
    # the word may come later in a comment; the text before it is not a measurement
    source = "# the gradient at w* (measured 3.3e-9)\nassert g < 1e-6\n# ratio 2.0, as measured 1.5 ago\n"
    assert audit.measured_comments(source) == ["3.3e-9)", "1.5 ago"]


def test_the_audit_names_each_quoted_number_that_no_copy_prints(tmp_path):
    cells = [("a", "print(ratio)", None), ("b", "assert ratio > 3  # measured 4.5 (fast), 4.3 (default)", None),
             ("c", "assert gap < 1e-3  # measured 2.0e-4", None)]
    stored = _notebook(tmp_path / "ch.ipynb", cells)
    (tmp_path / "fast").mkdir()
    (tmp_path / "default").mkdir()
    fast = _notebook(tmp_path / "fast" / "ch.ipynb",
                     [("a", "", "ratio 4.52\n"), ("b", "", None), ("c", "", "gap 3.1e-04\n")])
    default = _notebook(tmp_path / "default" / "ch.ipynb",
                        [("a", "", "ratio 4.26\n"), ("b", "", None), ("c", "", "gap 2.96e-04\n")])
    # the fast copy alone shows 4.5 (the cell before) but neither 4.3 nor the gap, which is stale at both scales
    assert audit.audit(stored, [fast]) == [
        ("b", "4.3", "4.5 (fast), 4.3 (default)"), ("c", "2.0e-4", "2.0e-4")]
    assert audit.audit(stored, [fast, default]) == [("c", "2.0e-4", "2.0e-4")]


def test_an_executed_copy_of_another_version_of_the_chapter_is_refused(tmp_path):
    stored = _notebook(tmp_path / "ch.ipynb", [("a", "x = 1  # measured 1", None), ("new", "y = 2", None)])
    (tmp_path / "old").mkdir()
    old = _notebook(tmp_path / "old" / "ch.ipynb", [("a", "", "1\n")])
    with pytest.raises(ValueError, match="'new' of ch.ipynb is missing from the executed copies"):
        audit.audit(stored, [old])
