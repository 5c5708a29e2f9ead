"""One figure style for every chapter.

Call :func:`use_book_style` once at the top of a chapter; build loss plots with
:func:`loss_axes` and :func:`plot_loss`, and stamp every figure with the scale
that produced it using :func:`note_scale` (or, for a figure that is the same
at every scale, with ``note_scale(fig, detail, independent=True)``). Nothing here runs on import, and
matplotlib is imported only when a function needs it (so ``import overparam``
works, and stays fast, even where no plotting backend is usable).
"""
from __future__ import annotations

import math

from typing import Any, Sequence

import numpy as np

from .scale import scale_name
from .validation import check_int, check_real

__all__ = ["use_book_style", "loss_axes", "plot_loss", "note_scale", "math_power", "floor_power_of_ten", "loglog_above_floor",
           "set_floor", "plain_log_ticks",
           "DEPTH_COLORS", "BASELINE_COLORS", "depth_linestyle", "hollow_band"]

#: One colour per depth (index = depth), shared by every chapter: 1 blue, 2 rose, 3 ochre, 4 indigo, 5 purple,
#: 6 dark green, 7 pink, 8 bluish green (index 0 is black). Paul Tol's and Okabe & Ito's colour-blind-safe colours
#: (the ochre darkens Tol's yellow, too pale on white), chosen so that the depths a figure draws together (1 to 4;
#: 1, 2, 3 and 5; 3 and 8; 5 to 8, which :func:`depth_linestyle` dashes or dots beside the solid 1 to 4) stay apart, and
#: apart from black, for readers with any of the three dichromacies as well as normal colour vision, and so that
#: each contrasts at least 3:1 with the white page (the rule of WCAG 2.1 for graphics). ``tests/test_plotting.py``
#: measures both; the palette this replaced put depths 2 and 3 (red and green) almost on top of each other for a
#: deuteranope.
DEPTH_COLORS: Sequence[str] = (
    "#000000", "#4477aa", "#ee6677", "#a08800", "#332288", "#aa3377", "#117733", "#cc79a7", "#009e73",
)
#: Colours for series that are not a depth (the teaser's adaptive optimizers, Chapter 5's ℓ2 penalty, Chapter 4's
#: initial scales): Tol's wine and matplotlib's brown, outside :data:`DEPTH_COLORS` and apart from its depths 1 to 4
#: under the same tests.
BASELINE_COLORS: Sequence[str] = ("#882255", "#8c564b")


def depth_linestyle(depth: int) -> str:
    """The line style of a depth in a figure that draws up to eight (the Ethanol depth sweeps of Chapter 2).

    Solid for depths 1 to 4, dashed for 5 and 6, dotted for 7 and 8, so that a
    depth above 4 is told apart from a depth below it whose colour it
    resembles for a colour-blind reader (:data:`DEPTH_COLORS`), and depths 7
    and 8 from the two of similar hue among 5 and 6 (purple and pink, dark
    and bluish green).

    Raises
    ------
    ValueError
        ``depth`` is not an integer >= 1.
    """
    depth = check_int("depth", depth, 1)
    return "-" if depth <= 4 else "--" if depth <= 6 else ":"


def _check_axes(ax: Any) -> Any:
    """``ax`` if it is a matplotlib Axes, else a ``ValueError`` naming ``ax``."""
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")
    return ax


def hollow_band(color: str, width: float = 5.0) -> list[Any]:
    """Path effects that draw a line as a hollow band: two edges in ``color`` around a white core.

    Chapter 4 draws a trained network's curve this way and the end-to-end rule
    it should follow as a thin line on top, of the same colour: where the two
    agree the rule runs inside the band; where they part both stay visible.
    Both keep the full contrast of their colour with the page (the
    translucent band this replaced was about 1.5:1). Pass the result as
    ``path_effects=`` to ``plot`` (or :func:`plot_loss`); the legend shows the
    band too.

    Raises
    ------
    ValueError
        If ``width`` is not positive.
    """
    from matplotlib import patheffects

    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return [patheffects.Stroke(linewidth=width, foreground=color),
            patheffects.Stroke(linewidth=0.48 * width, foreground="white")]


def use_book_style() -> None:
    """Set the book's matplotlib defaults (sizes, grid, fonts, no top/right spines, 150 dpi, colours).

    The colour cycle (``"C0"``, ``"C1"``, … in a chapter) is depths 1 to 5 of
    :data:`DEPTH_COLORS` followed by :data:`BASELINE_COLORS`, so that a figure
    drawn with the default colours is as legible to a colour-blind reader as
    one drawn by depth.

    The inline backend of Jupyter draws a notebook's figures at ``figure.dpi``
    and, since matplotlib-inline 0.1.4, no longer overrides it, so the book's
    images are 150 dpi (1.5 times the pixels of matplotlib's default).
    """
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=[*DEPTH_COLORS[1:6], *BASELINE_COLORS]),
            "figure.figsize": (6.4, 4.0),
            # The notebook's inline images are drawn at figure.dpi (savefig.dpi serves only savefig): 150 keeps
            # their text sharp when the page scales a wide figure down to its column.
            "figure.dpi": 150,
            "savefig.dpi": 150,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "lines.linewidth": 1.6,
        }
    )


def loss_axes(
    ax: Any = None,
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "training loss",
    logx: bool = False,
    logy: bool = True,
) -> Any:
    """Label an axes for a loss-versus-iteration plot (log-scale loss by default).

    Returns the axes (a new figure's if ``ax`` is ``None``).

    Raises
    ------
    ValueError
        ``ax`` is neither ``None`` nor a matplotlib Axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    _check_axes(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
        plain_log_ticks(ax)
    return ax


#: A log axis whose view spans less than this many decades gets the minor ticks of :data:`DENSE_LOG_SUBS`.
NARROW_DECADES = 1.0

#: Minor ticks within a decade on a narrow log axis: 1.2, 1.4, 1.6 and 2.5 join 2 … 9.
DENSE_LOG_SUBS = (1.0, 1.2, 1.4, 1.6, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)

#: Two tick labels closer than this many font heights would overlap: the minor one is left out.
LABEL_GAP = 1.2


def _view_decades(axis: Any) -> float:
    """How many decades the view of a log axis spans (``inf`` when it reaches zero)."""
    low, high = sorted(axis.get_view_interval())
    return float(np.log10(high / low)) if low > 0 else np.inf


def _plain_log_minor_locator() -> Any:
    """Minor ticks for a log axis: matplotlib's (2 … 9 × 10ᵏ), or :data:`DENSE_LOG_SUBS` on a narrow view.

    A view narrower than :data:`NARROW_DECADES` (e.g. 0.9 to 1.4, or 0.4 to
    1.4) may hold only one or two of the usual ticks, none near its top; the
    dense ones label it every 10–25 %. The choice is made when the ticks are
    drawn, like the formatter's.
    """
    from matplotlib import ticker

    class PlainLogMinorLocator(ticker.Locator):
        def __init__(self) -> None:
            self.usual = ticker.LogLocator(subs="auto")
            self.dense = ticker.LogLocator(subs=DENSE_LOG_SUBS)

        def set_axis(self, axis: Any) -> None:
            super().set_axis(axis)
            self.usual.set_axis(axis)
            self.dense.set_axis(axis)

        def _pick(self) -> Any:
            return self.dense if _view_decades(self.axis) < NARROW_DECADES else self.usual

        def __call__(self) -> Any:
            return self._pick()()

        def tick_values(self, vmin: float, vmax: float) -> Any:
            return self._pick().tick_values(vmin, vmax)

    return PlainLogMinorLocator()


def _plain_log_formatter(minor: bool, max_decades: float) -> Any:
    """A tick formatter for a log axis that writes ``%g`` while the view spans at most ``max_decades`` decades.

    It reads the view limits when the ticks are drawn, so it serves whatever is
    plotted after it is installed. Wider views get matplotlib's own labels.
    Minor ticks: all are labelled within one decade, beyond one only those at
    2 and 5 times a power of ten; and a minor label is left out where it would
    sit within :data:`LABEL_GAP` font heights of a major tick or of the minor
    label kept before it, so that no two labels overlap (``0.09`` under ``0.1``).
    """
    from matplotlib import ticker

    class PlainLogFormatter(ticker.Formatter):
        def __init__(self) -> None:
            self.wide = ticker.LogFormatterSciNotation(10, labelOnlyBase=not minor)

        def set_axis(self, axis: Any) -> None:
            super().set_axis(axis)
            self.wide.set_axis(axis)

        def set_locs(self, locs: Any) -> None:
            self.wide.set_locs(locs)

        def __call__(self, value: float, pos: Any = None) -> str:
            decades = _view_decades(self.axis)
            if decades > max_decades:
                return self.wide(value, pos)
            if minor and decades > 1:
                leading = round(value / 10 ** np.floor(np.log10(value) + 1e-9))
                if leading not in (2, 5):
                    return ""
            return f"{value:g}"

        def format_ticks(self, values: Any) -> list[str]:
            labels = super().format_ticks(values)
            if not minor or _view_decades(self.axis) > max_decades:
                return labels
            return _spaced(self.axis, values, labels)

    return PlainLogFormatter()


def _spaced(axis: Any, values: Any, labels: list[str]) -> list[str]:
    """Blank the minor labels that would overlap a major tick's label or the minor label kept before them."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    ax = axis.axes
    along = 1 if axis.axis_name == "y" else 0
    size = FontProperties(size=mpl.rcParams[f"{axis.axis_name}tick.labelsize"]).get_size_in_points()
    gap = LABEL_GAP * size * ax.figure.dpi / 72

    def pixels(locs: Any) -> np.ndarray:
        locs = np.asarray(locs, dtype=float)
        points = np.zeros((locs.size, 2))
        points[:, along] = locs
        return ax.transData.transform(points)[:, along] if locs.size else np.empty(0)

    low, high = sorted(axis.get_view_interval())
    majors = [v for v in axis.get_majorticklocs() if low <= v <= high]
    major_px = pixels(majors)
    out, last = list(labels), None
    for i, px in sorted(enumerate(pixels(values)), key=lambda item: item[1]):
        if not out[i] or not low <= values[i] <= high:  # a label outside the view is not drawn
            continue
        if (major_px.size and np.min(np.abs(major_px - px)) < gap) or (last is not None and px - last < gap):
            out[i] = ""
        else:
            last = px
    return out


def plain_log_ticks(ax: Any, max_decades: float = 2.0) -> Any:
    """Label a log-scale y-axis with plain numbers (``2``, ``3``, ``0.5``) whenever it spans few decades.

    Over a narrow range matplotlib labels ticks as ``6×10⁰``; with this, every
    labelled tick is written with ``%g`` while the view spans at most
    ``max_decades`` decades (decided when the figure is drawn, so it may be
    called before or after plotting), and matplotlib's own labels are kept for
    wider views. A view narrower than :data:`NARROW_DECADES` decade (a loss
    going from 1.4 to 0.9, or to 0.4) gets denser minor ticks, 1, 1.2, 1.4,
    1.6, 2, 2.5, 3, … times a power of ten, all labelled; a minor label that
    would overlap another label is left out. :func:`loss_axes` calls it for every log-scale
    loss axis. An axis that is not log-scale is left alone. Returns ``ax``.
    """
    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(_plain_log_formatter(False, max_decades))
        ax.yaxis.set_minor_formatter(_plain_log_formatter(True, max_decades))
        ax.yaxis.set_minor_locator(_plain_log_minor_locator())
    return ax


def plot_loss(ax: Any, steps: np.ndarray, loss: np.ndarray, label: str | None, **kwargs: Any) -> Any:
    """Plot one loss curve; with a log x-axis, iteration 0 is left out.

    A log axis has no place for iteration 0. Drawing it at 1 instead joined
    the start to the first recorded step by a straight segment that was never
    measured (decades long when the run is recorded sparsely), and made a
    vertical jump when step 1 was recorded too. The curve starts at the first
    recorded step after 0, as in :func:`overparam.ethanol.plot_depth_sweep`;
    record the run on a grid that is dense at the start (``record=`` of the
    trainers with :func:`overparam.log_steps`) for the early steps to show.

    Parameters
    ----------
    ax : matplotlib Axes
    steps : array_like of int
        The recorded iterations.
    loss : array_like
        The loss (or any quantity) at those iterations, same length.
    label : str or None
        Legend label; ``None`` for none.
    **kwargs
        Passed to ``ax.plot`` (colour, line style, …).

    Returns
    -------
    matplotlib Line2D

    Raises
    ------
    ValueError
        ``ax`` is not a matplotlib Axes, or ``steps`` and ``loss`` are not 1-D of the same length.
    """
    _check_axes(ax)
    steps = np.asarray(steps, dtype=float)
    loss = np.asarray(loss)
    if steps.shape != loss.shape[:1] or steps.ndim != 1:
        raise ValueError(f"steps and loss must be 1-D of the same length, got shapes {steps.shape} and {loss.shape}")
    if ax.get_xscale() == "log":
        after0 = steps > 0
        steps, loss = steps[after0], loss[after0]
    return ax.plot(steps, loss, label=label, **kwargs)[0]


def math_power(value: float) -> str:
    """A number for a label: a power of ten as mathtext (``1e-05`` -> ``$10^{-5}$``), any other as ``%g``.

    Used by the figures whose labels name a tolerance (Chapters 4 and 7), so
    that they match the captions' :math:`10^{-5}`.
    """
    exponent = math.log10(value) if value > 0 else math.nan
    if math.isfinite(exponent) and abs(exponent - round(exponent)) < 1e-9:
        return f"$10^{{{round(exponent)}}}$"
    return f"{value:g}"


def floor_power_of_ten(values: Any) -> float:
    """The largest power of ten at or below every value (an array, or a list of arrays): a log axis's bottom.

    The imbalance figures start their log axis here, at the smallest value
    measured after step 0, so that a balanced start's round-off imbalance at
    step 0 does not stretch the axis decades below everything else;
    :func:`loglog_above_floor` then marks that value on the floor, apart from
    its line (Chapters 3 and 7).

    Raises
    ------
    ValueError
        If ``values`` holds no finite positive number.
    """
    parts = values if isinstance(values, (list, tuple)) else [values]  # arrays of different lengths too
    values = np.concatenate([np.asarray(v, dtype=float).ravel() for v in parts]) if parts else np.empty(0)
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        raise ValueError(f"values must hold a finite positive number, got {values[:5]!r}")
    return float(10.0 ** np.floor(np.log10(positive.min())))


def loglog_above_floor(ax: Any, x: Any, y: Any, floor: float, fmt: str = "-", **style: Any) -> np.ndarray:
    """Draw ``y`` against ``x`` on log–log axes whose bottom is ``floor``; the values below it as open ▽ on the floor.

    A value below the axis's floor (a balanced start's round-off imbalance at
    step 0, from :func:`floor_power_of_ten`) is not a point of the line:
    joined to it, it would draw a rise of several decades that never
    happened. It is marked by an open triangle on the floor in the line's
    colour, outside the axes' clipping. Once every line is drawn,
    :func:`set_floor` puts the axis's bottom at ``floor`` and adds the
    triangles' legend entry. Used by Chapters 3 (``ch-balancedness``) and 7
    (``ch-beyond-speed``).

    Parameters
    ----------
    ax : matplotlib Axes
    x, y : array_like, shape (n,)
        Positive ``x``; ``y`` may hold values below ``floor`` (0 included).
    floor : float
        > 0, the axis's bottom (:func:`set_floor`).
    fmt : str
        The line's format, e.g. ``"--s"``.
    **style
        Passed to the line (``color``, ``label``, ``ms``, ...); the triangles
        take its colour.

    Returns
    -------
    ndarray of bool
        Which values lie below the floor.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of one length, got shapes {x.shape} and {y.shape}")
    floor = check_real("floor", floor, above=0)
    below = y < floor
    (line,) = ax.loglog(x[~below], y[~below], fmt, **style)
    if below.any():  # (no empty line: it would count in the figure's extent)
        ax.plot(x[below], np.full(int(below.sum()), floor), "v", color=line.get_color(), mfc="none", ms=6,
                clip_on=False)
    return below


def set_floor(ax: Any, floor: float, label: str) -> None:
    """Put the y axis's bottom at ``floor`` and add one grey legend entry, ``label``, for the open triangles.

    Call it once, after every :func:`loglog_above_floor` of the axes: fixing
    the bottom stops the y axis's autoscaling, so a line drawn afterwards
    could end above the top.
    """
    ax.set_ylim(bottom=check_real("floor", floor, above=0))
    ax.plot([], [], "v", color="0.3", mfc="none", ms=6, label=label)


#: What a figure that no training budget influences says instead of the build's scale (:func:`note_scale`).
SCALE_INDEPENDENT = "independent of the build scale"


def note_scale(fig: Any, detail: str = "", scale: str | None = None, *, independent: bool = False) -> None:
    """Write the scale that produced a figure below its bottom-right corner.

    ``detail`` adds the budget, e.g. ``"20,000 iterations"``; ``scale``
    overrides the build's own scale, e.g. ``"paper (results file)"`` for a
    figure drawn from a committed paper-scale run. ``independent=True`` is for
    a figure that is the same at every scale (no training, or a budget that
    does not depend on the scale): the note then reads ``"scale: independent
    of the build scale"`` (:data:`SCALE_INDEPENDENT`), followed by ``detail``
    (e.g. ``"2,500 iterations"``), so that a reader of the fast build is not
    told that it shows a reduced-scale result. The note is placed when
    the figure is drawn, just below everything its axes draw (tick labels and
    axis labels included), so it never covers an axis label; saved or shown
    with ``bbox_inches="tight"`` (the notebook default) it enlarges the image
    to fit. The note is a matplotlib ``Annotation`` among ``fig.artists``;
    nothing is returned, so that a cell ending with this call shows no repr.

    Raises
    ------
    ValueError
        If both ``scale`` and ``independent=True`` are given, or ``fig`` is not a matplotlib figure.
    """
    from matplotlib.figure import FigureBase
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

    if not isinstance(fig, FigureBase):
        raise ValueError(f"fig must be a matplotlib Figure (e.g. from plt.subplots()), got {type(fig).__name__}")
    if independent and scale is not None:
        raise ValueError(f"note_scale: give either scale ({scale!r}) or independent=True, not both")

    def below_the_axes(renderer: Any) -> Any:
        boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
        boxes = [box for box in boxes if box is not None and box.width > 0]
        return Bbox.union(boxes) if boxes else fig.bbox

    shown = SCALE_INDEPENDENT if independent else scale or scale_name()
    text = f"scale: {shown}" + (f", {detail}" if detail else "")
    note = Annotation(text, xy=(1.0, 0.0), xycoords=below_the_axes, xytext=(0, -2), textcoords="offset points",
                      ha="right", va="top", fontsize=8, color="0.35")
    fig.add_artist(note)
