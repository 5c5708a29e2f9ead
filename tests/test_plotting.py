"""Tests of the book's figure helpers: overparam.plotting, and the chapters' plot_comparison and plot_loss_parts.

The drawn lines are read back from the axes and compared with the data given (or, for running medians, with
a median written out by hand), so a plot that shows the wrong run or the wrong smoothing fails.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import overparam as op  # noqa: E402
from overparam.preconditioning import RuleComparison, plot_comparison, run_gap  # noqa: E402
from overparam.training import DeepHistory  # noqa: E402


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
    # a linear axis keeps matplotlib's formatter (the plain-log one is a class made per call: compare by name)
    from matplotlib import ticker

    assert isinstance(linear.yaxis.get_major_formatter(), ticker.ScalarFormatter)
    assert type(narrow.yaxis.get_major_formatter()).__name__ == "PlainLogFormatter"
    plt.close(fig)


def _labelled_values(ax):
    """The y values of every non-empty tick label inside the view, major and minor."""
    fig = ax.figure
    fig.canvas.draw()
    low, high = ax.get_ylim()
    out = {}
    for minor in (False, True):
        for t in ax.get_yticklabels(minor=minor):
            value = t.get_position()[1]
            if t.get_text() and low <= value <= high:
                out[value] = t.get_text()
    return out


def _plain_log_view(figsize: tuple[float, float], low: float, high: float) -> tuple:
    """A figure whose log y-axis has the book's plain ticks and shows [low, high]."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_yscale("log")
    op.plain_log_ticks(ax)
    ax.plot([1, 2], [low, high])
    ax.set_ylim(low, high)
    return fig, ax


def test_a_narrow_log_view_is_labelled_over_its_whole_height():
    """Weak spot (review W6): a view from 0.9 to 1.4 had labels at 0.9 and 1 only, none over its upper half."""
    fig, ax = _plain_log_view((4, 3), 0.9, 1.4)
    labels = _labelled_values(ax)
    above_one = [v for v in labels if v > 1.05]
    assert above_one and max(labels) >= 1.2, labels
    assert {"1.2", "1.4"} <= set(labels.values()) and all("10" not in t for t in labels.values()), labels
    # and it can fail: matplotlib's own minor ticks (2 … 9 × 10ᵏ) give nothing above 1 on this view
    plain = ax.yaxis.get_minor_locator()
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs="auto"))
    assert not [v for v in _labelled_values(ax) if v > 1.05]
    ax.yaxis.set_minor_locator(plain)
    ax.set_ylim(0.38, 1.45)  # Fig. 4.2's ℓ4 panel: 0.58 decade, the curves start at 1.34
    labels = _labelled_values(ax)
    assert max(labels) >= 1.2 and {"0.4", "1"} <= set(labels.values()), labels
    plt.close(fig)


def test_log_tick_labels_never_overlap():
    """Weak spot (review W6): at the bottom of an ℓ2 panel "0.1" and "0.09" were printed on top of each other."""
    fig, ax = _plain_log_view((4, 2.5), 0.085, 1.2)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    low, high = ax.get_ylim()
    boxes = [t.get_window_extent(renderer) for minor in (False, True) for t in ax.get_yticklabels(minor=minor)
             if t.get_text() and low <= t.get_position()[1] <= high]
    assert len(boxes) >= 3
    boxes.sort(key=lambda b: b.y0)
    assert all(b.y0 >= a.y1 - 0.5 for a, b in zip(boxes, boxes[1:])), [(b.y0, b.y1) for b in boxes]
    labels = _labelled_values(ax)
    assert "0.1" in labels.values() and "0.09" not in labels.values()  # the minor label next to a major one goes
    plt.close(fig)


def test_note_scale_for_a_figure_that_is_the_same_at_every_scale():
    fig, ax = plt.subplots()
    op.note_scale(fig, "2,500 iterations", independent=True)
    op.note_scale(fig, independent=True)
    texts = [a.get_text() for a in fig.artists]
    assert texts == ["scale: independent of the build scale, 2,500 iterations", "scale: independent of the build scale"]
    assert op.plotting.SCALE_INDEPENDENT in texts[1]
    with pytest.raises(ValueError, match="either scale"):
        op.note_scale(fig, scale="paper (results file)", independent=True)
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


# --- plot_loss, use_book_style -------------------------------------------------


def test_plot_loss_draws_exactly_the_given_curve():
    """Linear x-axis: the line's data are the steps and losses given, with the label and the style kwargs."""
    fig, ax = plt.subplots()
    steps, loss = np.array([0, 5, 10, 50]), np.array([2.0, 1.5, 0.7, 0.1])
    line = op.plot_loss(ax, steps, loss, "depth 2", color="#d62728", ls="--")
    assert ax.get_lines() == [line]
    np.testing.assert_array_equal(line.get_xdata(), [0.0, 5.0, 10.0, 50.0])  # step 0 kept on a linear axis
    np.testing.assert_array_equal(line.get_ydata(), loss)
    assert line.get_label() == "depth 2" and line.get_color() == "#d62728" and line.get_linestyle() == "--"
    plt.close(fig)


def test_plot_loss_on_a_log_x_axis_leaves_out_iteration_0_only():
    """log(0) is undefined: the initial point is dropped (not moved to x = 1, which drew a segment never measured)."""
    ax = op.loss_axes(logx=True)
    steps = np.array([0, 1, 3, 1000])
    line = op.plot_loss(ax, steps, [4.0, 3.0, 2.0, 1.0], "net")
    np.testing.assert_array_equal(line.get_xdata(), [1.0, 3.0, 1000.0])
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(steps, [0, 1, 3, 1000])  # not modified in place
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="same length"):
        op.plot_loss(ax, steps, [1.0, 2.0], "short")
    plt.close(ax.figure)


def test_loss_axes_labels_and_scales():
    ax = op.loss_axes(title="ℓ4 loss", xlabel="step", ylabel="L", logy=False)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("ℓ4 loss", "step", "L")
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"
    fig, given = plt.subplots()
    assert op.loss_axes(given) is given
    assert (given.get_xlabel(), given.get_ylabel(), given.get_yscale()) == ("iteration", "training loss", "log")
    plt.close("all")


def test_use_book_style_sets_the_documented_defaults():
    """Inside an rc_context so the book style does not leak into the other tests."""
    before = {key: matplotlib.rcParams[key] for key in ("axes.spines.top", "lines.linewidth", "figure.figsize")}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        op.use_book_style()
        rc = matplotlib.rcParams
        assert list(rc["figure.figsize"]) == [6.4, 4.0] and rc["figure.dpi"] == 150 and rc["savefig.dpi"] == 150
        assert rc["axes.grid"] is True and rc["grid.alpha"] == 0.3
        assert rc["axes.spines.top"] is False and rc["axes.spines.right"] is False
        assert rc["axes.titlesize"] == 11 and rc["axes.labelsize"] == 10 and rc["legend.fontsize"] == 9
        assert rc["legend.frameon"] is False and rc["lines.linewidth"] == 1.6
        # and a figure made afterwards follows them
        fig, ax = plt.subplots()
        assert tuple(fig.get_size_inches()) == (6.4, 4.0)
        assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
        assert ax.spines["left"].get_visible()
        assert ax.plot([0, 1], [0, 1])[0].get_linewidth() == 1.6
        plt.close(fig)
    # restored by rc_context to whatever the earlier tests left (which may be the book style already)
    assert {key: matplotlib.rcParams[key] for key in before} == before


# --- plot_comparison (Chapter 4) ----------------------------------------------


def _deep_history(steps, loss, depth, diverged_at=None):
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=float)
    W_e = np.zeros((len(steps), 1, 2))
    return DeepHistory(steps=steps, loss=loss, w=W_e[-1, 0], lr=0.05, p=4, diverged_at=diverged_at, W_e=W_e,
                       depth=depth)


def _comparison(network, rule):
    return RuleComparison(network=network, rule=rule, gap=run_gap(network, rule))


def test_plot_comparison_lines_are_the_two_runs_data():
    """Hand-made runs with different losses: each line carries its own run's steps and losses, not the other's."""
    steps = [0, 1, 10, 100]
    net_loss, rule_loss = [3.0, 2.0, 0.5, 0.25], [3.0, 1.9, 0.6, 0.2]
    comp = _comparison(_deep_history(steps, net_loss, 3), _deep_history(steps, rule_loss, 3))
    ax = plot_comparison(comp)
    network, rule = ax.get_lines()
    np.testing.assert_array_equal(network.get_xdata(), [1.0, 10.0, 100.0])  # log x: step 0 left out
    np.testing.assert_array_equal(network.get_ydata(), net_loss[1:])
    np.testing.assert_array_equal(rule.get_xdata(), [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(rule.get_ydata(), rule_loss[1:])
    assert network.get_linestyle() == "-" and rule.get_linestyle() == "--"
    assert network.get_color() == rule.get_color() == op.DEPTH_COLORS[3]
    # the network is an opaque hollow band in the depth's colour (a translucent one had 1.5:1 contrast)
    assert network.get_alpha() is None and rule.get_alpha() is None
    edge, core = network.get_path_effects()
    assert matplotlib.colors.same_color(edge._gc["foreground"], op.DEPTH_COLORS[3])
    assert matplotlib.colors.same_color(core._gc["foreground"], "white") and core._gc["linewidth"] < edge._gc["linewidth"]
    assert rule.get_path_effects() == []
    assert network.get_label() == "depth-3 network (GD)" and rule.get_label() == "end-to-end rule, N = 3"
    assert ax.get_title() == "depth 3, η = 0.05" and ax.get_ylabel() == "training loss"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [network.get_label(), rule.get_label()]
    # with the optimum given as a number, both lines are L − L* (hand-computed)
    ax2 = plot_comparison(comp, optimum=0.125)
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), [1.875, 0.375, 0.125], rtol=1e-15)
    np.testing.assert_allclose(ax2.get_lines()[1].get_ydata(), [1.775, 0.475, 0.075], rtol=1e-15)
    assert ax2.get_ylabel() == "L − L*"
    plt.close("all")


def test_plot_comparison_marks_a_diverged_network_at_its_last_point():
    net = _deep_history([0, 10, 20], [1.0, 5.0, 80.0], 2, diverged_at=20)
    rule = _deep_history([0, 10, 20, 30], [1.0, 0.5, 0.3, 0.2], 2)
    ax = plot_comparison(_comparison(net, rule), title="custom")
    network, marker, rule_line = ax.get_lines()
    np.testing.assert_array_equal(network.get_xdata(), [10.0, 20.0])
    np.testing.assert_array_equal(network.get_ydata(), [5.0, 80.0])
    assert marker.get_marker() == "x" and list(marker.get_xdata()) == [20] and list(marker.get_ydata()) == [80.0]
    np.testing.assert_array_equal(rule_line.get_ydata(), [0.5, 0.3, 0.2])
    assert ax.get_title() == "custom"
    plt.close("all")


# --- plot_loss_parts (Chapter 6) ------------------------------------------------


def _median_by_hand(values, window):
    """Centred running median written out: the middle of the sorted window, placed at its centre."""
    half = window // 2
    return ([i + half for i in range(len(values) - window + 1)],
            [sorted(values[i:i + window])[half] for i in range(len(values) - window + 1)])


def _convnet_history(variant, cross_entropy, penalty):
    steps = len(cross_entropy)
    return op.ConvNetHistory(config=op.ConvNetConfig(variant=variant), cross_entropy=np.array(cross_entropy),
                             penalty=np.array(penalty), lr=np.full(steps, 0.01), eval_steps=np.array([0, steps]),
                             accuracy={}, num_params=1, seconds=1.0, seed=0, device="cpu")


def test_plot_loss_parts_draws_each_part_raw_and_smoothed():
    """Three panels (batch loss, cross-entropy, penalty); per run a faint raw line and its running median."""
    ce_b, pen_b = [2.0, 1.0, 3.0, 0.5, 0.8, 0.2, 0.4], [0.1, 0.3, 0.2, 0.2, 0.1, 0.05, 0.3]
    ce_p, pen_p = [1.5, 1.2, 0.9, 1.1, 0.3, 0.6, 0.1], [0.5, 0.4, 0.45, 0.3, 0.35, 0.2, 0.25]
    runs = {"baseline": _convnet_history("baseline", ce_b, pen_b),
            "product": _convnet_history("product", ce_p, pen_p)}
    fig = op.plot_loss_parts(runs, 3, faint_alpha=0.25)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["batch loss", "cross-entropy", "λ · penalty"]
    assert [ax.get_ylabel() for ax in axes] == ["batch loss", "cross-entropy", "λ · penalty"]
    assert all(ax.get_yscale() == "log" for ax in axes)
    parts = [([b + q for b, q in zip(ce_b, pen_b)], [b + q for b, q in zip(ce_p, pen_p)]),
             (ce_b, ce_p), (pen_b, pen_p)]
    for ax, (baseline, product) in zip(axes, parts):
        raw_b, med_b, raw_p, med_p = ax.get_lines()
        for raw, med, values, color in ((raw_b, med_b, baseline, "k"), (raw_p, med_p, product, op.VARIANT_COLORS["product"])):
            np.testing.assert_array_equal(raw.get_xdata(), np.arange(7))
            np.testing.assert_allclose(raw.get_ydata(), values, rtol=1e-15)
            assert raw.get_alpha() == 0.25
            steps, medians = _median_by_hand(values, 3)
            np.testing.assert_array_equal(med.get_xdata(), steps)
            np.testing.assert_allclose(med.get_ydata(), medians, rtol=1e-15)
            assert matplotlib.colors.same_color(raw.get_color(), color)
            assert matplotlib.colors.same_color(med.get_color(), color)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["baseline (tutorial net)", "penalty on W₂W₁"]
    plt.close(fig)


def test_plot_loss_parts_draws_into_given_axes_from_a_list_of_runs():
    run = _convnet_history("factors", [1.0, 0.5, 0.25, 0.125, 0.0625], [0.01] * 5)
    fig, axes = plt.subplots(3, 1)
    assert op.plot_loss_parts([run], 5, axes=axes) is fig
    assert [len(ax.get_lines()) for ax in axes] == [2, 2, 2]
    assert list(axes[1].get_lines()[1].get_xdata()) == [2] and list(axes[1].get_lines()[1].get_ydata()) == [0.25]
    plt.close(fig)


def test_atomic_savefig_writes_the_whole_figure_or_nothing(tmp_path):
    import matplotlib.pyplot as plt

    from overparam.files import atomic_savefig

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = atomic_savefig(fig, tmp_path / "figure.png", bbox_inches="tight")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = path.read_bytes()
    with pytest.raises(ValueError):  # a format matplotlib does not know: nothing is replaced, nothing left over
        atomic_savefig(fig, tmp_path / "figure.not-a-format")
    ax.plot([0, 1], [0, 1])
    with pytest.raises(TypeError):  # fails inside savefig, after the temporary file was opened
        atomic_savefig(fig, path, dpi="high")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]
    plt.close(fig)


def test_math_power_writes_powers_of_ten_as_mathtext_and_other_numbers_plainly():
    from overparam.plotting import math_power

    assert math_power(1e-5) == "$10^{-5}$" and math_power(1000.0) == "$10^{3}$" and math_power(1.0) == "$10^{0}$"
    assert math_power(2e-5) == "2e-05" and math_power(0.3) == "0.3"
    assert math_power(0.0) == "0" and math_power(-1e-5) == "-1e-05"


def test_floor_power_of_ten_is_the_largest_power_below_every_value():
    assert op.floor_power_of_ten([3e-5, 0.2, 7.0]) == 1e-5
    assert op.floor_power_of_ten([np.array([1e-3, 5e-3]), np.array([2e-2])]) == 1e-3
    assert op.floor_power_of_ten([0.0, np.nan, 0.05]) == 0.01  # zeros and nan are not measured values
    with pytest.raises(ValueError, match="^values must hold a finite positive number"):
        op.floor_power_of_ten([0.0, np.nan])


def test_loglog_above_floor_draws_the_values_below_the_floor_as_open_triangles_apart_from_the_line():
    fig, ax = plt.subplots()
    below = op.loglog_above_floor(ax, [0.7, 1.0, 10.0, 100.0], [1e-17, 2e-6, 5e-5, 3e-4], 1e-6, "--s", color="C1",
                                  label="balanced")
    np.testing.assert_array_equal(below, [True, False, False, False])
    line, marks = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), [1.0, 10.0, 100.0])  # step 0 is no point of the line
    assert line.get_linestyle() == "--" and line.get_label() == "balanced"
    assert list(marks.get_xdata()) == [0.7] and list(marks.get_ydata()) == [1e-6]  # on the floor
    assert marks.get_marker() == "v" and marks.get_markerfacecolor() == "none" and marks.get_color() == line.get_color()
    assert not marks.get_clip_on() and ax.get_xscale() == ax.get_yscale() == "log"
    # nothing below: no empty line (it would count in the figure's extent); a later line still widens the axis
    assert not op.loglog_above_floor(ax, [1.0, 2.0], [1e-5, 2e-5], 1e-6).any() and len(ax.lines) == 3
    op.loglog_above_floor(ax, [1.0, 2.0], [0.5, 8.0], 1e-6)
    op.set_floor(ax, 1e-6, "step 0: below the axis")
    assert ax.get_ylim()[0] == 1e-6 and ax.get_ylim()[1] >= 8.0
    assert [t.get_text() for t in ax.legend().get_texts()] == ["balanced", "step 0: below the axis"]
    with pytest.raises(ValueError, match="^x and y must be 1-D arrays of one length"):
        op.loglog_above_floor(ax, [1.0, 2.0], [1.0], 1e-6)
    with pytest.raises(ValueError, match="^floor"):
        op.loglog_above_floor(ax, [1.0], [1.0], 0.0)
    plt.close(fig)


# --- The palette, as colour-blind readers see it ---------------------------------------------------------------
# Dichromacy simulated with the severity-1 matrices of Machado, Oliveira & Fernandes (2009), applied to linear
# sRGB; colour differences are CIE76 ΔE in CIELAB (D65). A just-noticeable difference is about 2.3; the book asks
# 15 of every pair of colours that share a figure, for each of the three dichromacies and for normal vision.
DICHROMACY = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
MIN_DELTA_E = 15.0


def _linear_rgb(color):
    srgb = np.array(matplotlib.colors.to_rgb(color))
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb):
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear_rgb
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _worst_delta_e(a, b):
    """The smallest ΔE between two colours over normal vision and the three simulated dichromacies."""
    return min(float(np.linalg.norm(_lab(np.clip(m @ _linear_rgb(a), 0, 1)) - _lab(np.clip(m @ _linear_rgb(b), 0, 1))))
               for m in DICHROMACY.values())


def _closest_pair(colors):
    pairs = [(a, b) for i, a in enumerate(colors) for b in colors[i + 1:]]
    return min((_worst_delta_e(a, b), a, b) for a, b in pairs)


def _figure_groups():
    """The colours that share a figure somewhere in the book."""
    depth = op.DEPTH_COLORS
    from overparam.ethanol import TEASER_STYLES
    from overparam.factorization import _REST_GREY
    return {
        "depths 1-4 and black (Ethanol sweeps, Chapters 2, 4, 5)": [depth[0], *depth[1:5]],
        "depths 1, 2, 3, 5 (Chapter 4's preconditioner figure)": [depth[1], depth[2], depth[3], depth[5]],
        "depths 3 and 8 (Chapter 7)": [depth[3], depth[8]],
        "depths 5-8, dashed (the paper-scale Ethanol sweeps)": list(depth[5:9]),
        "the teaser": [*depth[1:5], *(style["color"] for style in TEASER_STYLES.values() if style["color"] != "0.45")],
        "Chapter 5's penalty race": [depth[1], depth[3], op.BASELINE_COLORS[0], "k"],
        "Chapter 4's Gaussian starts (two scales)": ["k", op.BASELINE_COLORS[1]],
        "Chapter 6's variants": list(op.VARIANT_COLORS.values()),
        **{f"Chapter 7's singular values: depth {n} against the rest's grey": [depth[n], _REST_GREY] for n in (2, 3, 4)},
    }


@pytest.mark.parametrize("group", list(_figure_groups()))
def test_colours_that_share_a_figure_stay_apart_for_colour_blind_readers(group):
    worst, a, b = _closest_pair(_figure_groups()[group])
    assert worst >= MIN_DELTA_E, f"{group}: {a} and {b} are only ΔE {worst:.1f} apart for some reader"


def test_the_colour_blindness_check_catches_the_palette_it_replaced():
    """matplotlib's tab10 red and green (the old depths 2 and 3) merge for a deuteranope; its blue and purple (the
    old depths 1 and 4) for a protanope. The check must see it, and must pass colours anyone can tell apart."""
    assert _worst_delta_e("#d62728", "#2ca02c") < 8
    assert _worst_delta_e("#1f77b4", "#9467bd") < 8
    normal = DICHROMACY["normal"]
    red, green = (_lab(normal @ _linear_rgb(c)) for c in ("#d62728", "#2ca02c"))
    assert np.linalg.norm(red - green) > 100  # far apart for normal vision: the simulation merges them, not ΔE
    assert _worst_delta_e("k", "w") == pytest.approx(100, abs=0.01)


def _contrast_with_white(color):
    """WCAG 2.1 contrast ratio of a colour against the white page."""
    luminance = float(np.array([0.2126, 0.7152, 0.0722]) @ _linear_rgb(color))
    return 1.05 / (luminance + 0.05)


def test_every_book_colour_contrasts_three_to_one_with_the_page():
    """WCAG 2.1's rule for graphical objects (1.4.11): a line must contrast 3:1 with its background."""
    from overparam.ethanol import TEASER_STYLES
    colours = [*op.DEPTH_COLORS, *op.BASELINE_COLORS, *op.VARIANT_COLORS.values(),
               *(style["color"] for style in TEASER_STYLES.values())]
    low = {c: round(_contrast_with_white(c), 2) for c in colours if _contrast_with_white(c) < 3}
    assert not low, f"too pale on white: {low}"
    assert _contrast_with_white("#ff7f0e") < 3  # the old teaser orange: the check can fail


def test_book_style_cycles_through_the_safe_colours():
    """A chapter's "C0", "C1", … are depths 1 to 5 and then the baselines' colours, not matplotlib's tab10."""
    with plt.rc_context():
        op.use_book_style()
        cycle = [matplotlib.colors.to_hex(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
        fig, ax = plt.subplots()
        (line,) = ax.plot([0, 1])
        plt.close(fig)
    assert cycle == [*op.DEPTH_COLORS[1:6], *op.BASELINE_COLORS]
    assert matplotlib.colors.same_color(line.get_color(), op.DEPTH_COLORS[1])


def test_depth_linestyle_separates_the_depths_whose_colours_are_closest():
    """In the paper-scale Ethanol figures, depths 1 to 8 share one axes: a solid depth (1 to 4) and a dashed (5, 6) or
    dotted (7, 8) one are told apart by their style, yet no two of them may have nearly the same colour either; the
    two closest colours above depth 4 differ in style too."""
    assert [op.depth_linestyle(n) for n in range(1, 9)] == ["-"] * 4 + ["--"] * 2 + [":"] * 2
    cross = min(_worst_delta_e(op.DEPTH_COLORS[a], op.DEPTH_COLORS[b]) for a in range(1, 5) for b in range(5, 9))
    assert cross >= 12.5, f"a solid and a dashed depth are only ΔE {cross:.1f} apart"
    # For normal vision, depths 5 and 7, 6 and 8 are the closest pairs above 4 (purple and pink, two greens), far
    # closer than the rest: they differ in style
    normal = DICHROMACY["normal"]
    by_normal = sorted((float(np.linalg.norm(_lab(normal @ _linear_rgb(op.DEPTH_COLORS[a]))
                                             - _lab(normal @ _linear_rgb(op.DEPTH_COLORS[b])))), a, b)
                       for a in range(5, 9) for b in range(a + 1, 9))
    assert {(a, b) for _, a, b in by_normal[:2]} == {(5, 7), (6, 8)} and by_normal[2][0] > 2 * by_normal[1][0]
    assert all(op.depth_linestyle(a) != op.depth_linestyle(b) for _, a, b in by_normal[:2])


def test_hollow_band_is_an_edge_in_the_colour_around_a_white_core():
    edge, core = op.hollow_band("#4477aa", 6.0)
    assert edge._gc == {"linewidth": 6.0, "foreground": "#4477aa"}
    assert core._gc == {"linewidth": pytest.approx(2.88), "foreground": "white"}
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1], path_effects=op.hollow_band("#4477aa"))
    legend_line = ax.legend(["band"]).get_lines()[0]
    plt.close(fig)
    assert len(line.get_path_effects()) == 2 and len(legend_line.get_path_effects()) == 2  # the legend shows it too
    with pytest.raises(ValueError, match="width must be positive"):
        op.hollow_band("k", 0.0)


def test_plot_helpers_name_an_axes_figure_or_depth_of_the_wrong_kind():
    """Bugs: loss_axes("ax"), plot_loss(None, ...) and note_scale(None) raised AttributeError; depth_linestyle(0)
    and depth_linestyle(2.0) were accepted."""
    with pytest.raises(ValueError, match=r"^ax must be a matplotlib Axes .* got str"):
        op.loss_axes("ax")
    with pytest.raises(ValueError, match=r"^ax must be a matplotlib Axes .* got NoneType"):
        op.plot_loss(None, [0, 1], [1.0, 0.5], "run")
    with pytest.raises(ValueError, match=r"^fig must be a matplotlib Figure .* got NoneType"):
        op.note_scale(None)
    for bad in (0, 2.0, "2"):
        with pytest.raises(ValueError, match=r"^depth must be an integer >= 1, got"):
            op.depth_linestyle(bad)
    assert op.depth_linestyle(np.int64(5)) == "--"
