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
