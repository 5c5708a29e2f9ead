"""One figure style for every chapter.

Call :func:`use_book_style` once at the top of a chapter; build loss plots with
:func:`loss_axes` and :func:`plot_loss`, and stamp every figure with the scale
that produced it using :func:`note_scale`. Nothing here runs on import, and
matplotlib is imported only when a function needs it (so ``import overparam``
works, and stays fast, even where no plotting backend is usable).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .scale import scale_name

__all__ = ["use_book_style", "loss_axes", "plot_loss", "note_scale", "DEPTH_COLORS"]

#: One colour per depth (index = depth), shared by every chapter.
DEPTH_COLORS: Sequence[str] = (
    "#000000", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
)


def use_book_style() -> None:
    """Set the book's matplotlib defaults (sizes, grid, fonts, no top/right spines)."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
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
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
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


def _plain_log_formatter(minor: bool, max_decades: float) -> Any:
    """A tick formatter for a log axis that writes ``%g`` while the view spans at most ``max_decades`` decades.

    It reads the view limits when the ticks are drawn, so it serves whatever is
    plotted after it is installed. Wider views get matplotlib's own labels.
    Minor ticks: all are labelled within one decade, beyond one only those at
    2 and 5 times a power of ten, so that the labels do not run into each other.
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
            low, high = sorted(self.axis.get_view_interval())
            decades = np.log10(high / low) if low > 0 else np.inf
            if decades > max_decades:
                return self.wide(value, pos)
            if minor:
                leading = round(value / 10 ** np.floor(np.log10(value) + 1e-9))
                if leading not in (range(1, 10) if decades <= 1 else (2, 5)):
                    return ""
            return f"{value:g}"

    return PlainLogFormatter()


def plain_log_ticks(ax: Any, max_decades: float = 2.0) -> Any:
    """Label a log-scale y-axis with plain numbers (``2``, ``3``, ``0.5``) whenever it spans few decades.

    Over a narrow range matplotlib labels ticks as ``6×10⁰``; with this, every
    labelled tick is written with ``%g`` while the view spans at most
    ``max_decades`` decades (decided when the figure is drawn, so it may be
    called before or after plotting), and matplotlib's own labels are kept for
    wider views. :func:`loss_axes` calls it for every log-scale loss axis. An
    axis that is not log-scale is left alone. Returns ``ax``.
    """
    if ax.get_yscale() == "log":
        ax.yaxis.set_major_formatter(_plain_log_formatter(False, max_decades))
        ax.yaxis.set_minor_formatter(_plain_log_formatter(True, max_decades))
    return ax


def plot_loss(ax: Any, steps: np.ndarray, loss: np.ndarray, label: str, **kwargs: Any) -> Any:
    """Plot one loss curve; with a log x-axis, iteration 0 is drawn at 1."""
    steps = np.asarray(steps, dtype=float)
    if ax.get_xscale() == "log":
        steps = np.maximum(steps, 1.0)
    return ax.plot(steps, loss, label=label, **kwargs)[0]


def note_scale(fig: Any, detail: str = "", scale: str | None = None) -> None:
    """Write the scale that produced a figure below its bottom-right corner.

    ``detail`` adds the budget, e.g. ``"20,000 iterations"``; ``scale``
    overrides the build's own scale, e.g. ``"paper (results file)"`` for a
    figure drawn from a committed paper-scale run. The note is placed when
    the figure is drawn, just below everything its axes draw (tick labels and
    axis labels included), so it never covers an axis label; saved or shown
    with ``bbox_inches="tight"`` (the notebook default) it enlarges the image
    to fit. The note is a matplotlib ``Annotation`` among ``fig.artists``;
    nothing is returned, so that a cell ending with this call shows no repr.
    """
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

    def below_the_axes(renderer: Any) -> Any:
        boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
        boxes = [box for box in boxes if box is not None and box.width > 0]
        return Bbox.union(boxes) if boxes else fig.bbox

    text = f"scale: {scale or scale_name()}" + (f", {detail}" if detail else "")
    note = Annotation(text, xy=(1.0, 0.0), xycoords=below_the_axes, xytext=(0, -2), textcoords="offset points",
                      ha="right", va="top", fontsize=7, color="0.35")
    fig.add_artist(note)
