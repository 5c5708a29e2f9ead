"""Tests of the book's figure helpers (overparam.plotting)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

import overparam as op  # noqa: E402


def test_plain_log_ticks_only_on_narrow_log_axes():
    fig, (narrow, wide, linear) = plt.subplots(1, 3)
    narrow.semilogy([0, 1], [2.0, 9.0])
    wide.semilogy([0, 1], [1e-5, 1.0])
    linear.plot([0, 1], [2.0, 9.0])
    default_wide = type(wide.yaxis.get_major_formatter())
    for ax in (narrow, wide, linear):
        assert op.plain_log_ticks(ax) is ax
    assert isinstance(narrow.yaxis.get_minor_formatter(), ticker.FormatStrFormatter)
    fig.canvas.draw()
    labels = {t.get_text() for t in narrow.get_yticklabels(minor=True)} - {""}
    assert labels and all("10" not in t or t == "10" for t in labels)  # "3", "6", not "6×10⁰"
    assert type(wide.yaxis.get_major_formatter()) is default_wide
    assert not isinstance(linear.yaxis.get_major_formatter(), ticker.FormatStrFormatter)
    plt.close(fig)
