"""Tests of overparam.scale: which of the book's budgets OVERPARAM_FAST selects.

The chapters choose their iteration counts with ``pick`` and caption every
figure with ``scale_name``; a wrong reading of the variable would silently run
CI at the reader's budget (minutes instead of seconds) or show a reader the CI
curves, so every spelling is pinned here.
"""
from __future__ import annotations

import pytest

import overparam as op
from overparam import scale

# Documented "on" values; matching ignores case and surrounding white space.
TRUE_VALUES = ["1", "true", "yes", "on", "TRUE", "Yes", "ON", " 1 ", "true\n", "\ton"]
# Documented "off" values: the reader's default.
FALSE_VALUES = ["", "   ", "0", "false", "no", "off", "False", "NO", " Off\n"]
# Anything else used to mean the reader's default silently (OVERPARAM_FAST=fast ran the reader's budget): refused.
REFUSED_VALUES = ["fast", "2", "y", "t", "tru", "1.0", "enable", "11", "-1", "none"]


@pytest.mark.parametrize("value, fast", [(v, True) for v in TRUE_VALUES] + [(v, False) for v in FALSE_VALUES])
def test_the_variable_selects_the_scale(monkeypatch, value, fast):
    monkeypatch.setenv("OVERPARAM_FAST", value)
    assert scale.is_fast() is fast
    assert scale.pick(fast=2_000, default=50_000) == (2_000 if fast else 50_000)
    assert scale.scale_name() == ("fast (CI)" if fast else "reader default")


@pytest.mark.parametrize("value", REFUSED_VALUES)
def test_other_values_are_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("OVERPARAM_FAST", value)
    for call in (scale.is_fast, lambda: scale.pick(1, 2), scale.scale_name):
        with pytest.raises(ValueError, match=f"OVERPARAM_FAST must be one of 1, true, .* got {value!r}"):
            call()


def test_unset_variable_means_the_reader_default(monkeypatch):
    monkeypatch.delenv("OVERPARAM_FAST", raising=False)
    assert scale.is_fast() is False
    assert scale.pick(fast="fast", default="default") == "default"
    assert scale.scale_name() == "reader default"


def test_the_variable_is_read_at_every_call_not_at_import(monkeypatch):
    """A notebook may set OVERPARAM_FAST after ``import overparam``; the next call must see it."""
    monkeypatch.delenv("OVERPARAM_FAST", raising=False)
    assert not scale.is_fast()
    monkeypatch.setenv("OVERPARAM_FAST", "1")
    assert scale.is_fast() and scale.scale_name() == "fast (CI)"
    monkeypatch.setenv("OVERPARAM_FAST", "0")
    assert not scale.is_fast() and scale.scale_name() == "reader default"


def test_pick_returns_the_given_objects_unchanged(monkeypatch):
    """``pick`` hands back the very object (no copy, no conversion), whatever its type."""
    fast, default = [1, 2], {"iters": 3}
    monkeypatch.setenv("OVERPARAM_FAST", "yes")
    assert scale.pick(fast, default) is fast
    monkeypatch.setenv("OVERPARAM_FAST", "no")
    assert scale.pick(fast, default) is default
    assert scale.pick(fast=None, default=0) == 0  # falsy values are returned, not skipped


def test_the_package_exports_the_same_functions():
    """The chapters call ``op.pick`` / ``op.scale_name``; they must be these functions, not stale copies."""
    for name in ("is_fast", "pick", "scale_name"):
        assert getattr(op, name) is getattr(scale, name)
