"""Tests of the book's figure helpers (overparam.plotting)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import overparam as op  # noqa: E402


def _labels(ax, minor):
    low, high = ax.get_ylim()
    return {t.get_text() for t in ax.get_yticklabels(minor=minor) if low <= t.get_position()[1] <= high} - {""}


def test_plain_log_ticks_only_on_narrow_log_axes():
    fig, (narrow, two, wide, linear) = plt.subplots(1, 4)
    for ax in (narrow, two, wide):
        ax.set_yscale("log")
    assert all(op.plain_log_ticks(ax) is ax for ax in (narrow, two, wide, linear))  # before plotting: read at draw
    narrow.plot([0, 1], [2.0, 9.0])
    two.plot([0, 1], [0.1, 6.0])
    wide.plot([0, 1], [1e-5, 1.0])
    linear.plot([0, 1], [2.0, 9.0])
    fig.canvas.draw()
    labels = _labels(narrow, minor=True)
    assert {"3", "6", "8"} <= labels and all("10" not in t or t == "10" for t in labels)  # "6", not "6×10⁰"
    # Over almost two decades every minor label would collide near each power of ten: only 2s and 5s are kept.
    assert _labels(two, minor=True) == {"0.2", "0.5", "2", "5"}
    assert _labels(two, minor=False) == {"0.1", "1"}
    # Five decades: matplotlib's own powers of ten, no minor labels.
    assert _labels(wide, minor=False) == {f"$\\mathdefault{{10^{{{k}}}}}$" for k in range(-5, 1)}
    assert not _labels(wide, minor=True)
    assert not isinstance(linear.yaxis.get_major_formatter(), type(narrow.yaxis.get_major_formatter()))
    plt.close(fig)


def test_loss_axes_get_plain_labels_for_what_is_plotted_later():
    ax = op.loss_axes(title="t")
    ax.plot([1, 2, 3], [1.4, 1.1, 0.95])
    ax.figure.canvas.draw()
    labels = _labels(ax, minor=False) | _labels(ax, minor=True)
    assert labels and not any("times" in t or "10^" in t for t in labels), labels
    plt.close(ax.figure)


def test_import_does_not_load_pyplot_and_survives_a_bad_backend():
    """Weak spot: ``import overparam`` imported pyplot eagerly, so a bad MPLBACKEND broke the import."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, overparam as op; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
            "print(op.lp_loss([1.0], [[2.0]], [1.0], 2))")
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {"MPLBACKEND": "bogus", "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.5"


def test_note_scale_sits_below_every_axis_label_and_inside_the_tight_image():
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 3.0))  # no tight layout: the x labels reach the figure's edge
    for ax in axes:
        ax.set_xlabel("a long x label that spans most of the axes width")
    assert op.note_scale(fig, "1,000,000 iterations", scale="paper (results file)") is None  # no repr under a cell
    (note,) = fig.artists
    assert note.get_text() == "scale: paper (results file), 1,000,000 iterations"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = note.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_tightbbox(renderer).y0 + 1e-6 for ax in axes)  # below the x labels
    assert box.x1 <= max(ax.get_tightbbox(renderer).x1 for ax in axes) + 1e-6  # ends at the right-most axes
    tight = fig.get_tightbbox(renderer)  # what bbox_inches="tight" saves, in inches
    assert tight.y0 * fig.dpi <= box.y0 + 1e-6
    plt.close(fig)
