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
    return ax


def plain_log_ticks(ax: Any, max_decades: float = 2.0) -> Any:
    """Label a log-scale y-axis that spans few decades with plain numbers (``2``, ``3``, ``0.5``).

    Over a narrow range matplotlib labels minor ticks as ``6×10⁰``; this
    writes every labelled tick with ``%g`` instead. Call it after plotting;
    axes that span more than ``max_decades`` decades, or are not log-scale,
    are left alone. Returns ``ax``.
    """
    if ax.get_yscale() != "log":
        return ax
    low, high = ax.get_ylim()
    if low > 0 and np.log10(high / low) <= max_decades:
        from matplotlib import ticker

        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    return ax


def plot_loss(ax: Any, steps: np.ndarray, loss: np.ndarray, label: str, **kwargs: Any) -> Any:
    """Plot one loss curve; with a log x-axis, iteration 0 is drawn at 1."""
    steps = np.asarray(steps, dtype=float)
    if ax.get_xscale() == "log":
        steps = np.maximum(steps, 1.0)
    return ax.plot(steps, loss, label=label, **kwargs)[0]


def note_scale(fig: Any, detail: str = "", scale: str | None = None) -> None:
    """Write the scale that produced a figure in its bottom-right corner.

    ``detail`` adds the budget, e.g. ``"20,000 iterations"``; ``scale``
    overrides the build's own scale, e.g. ``"paper (results file)"`` for a
    figure drawn from a committed paper-scale run.
    """
    text = f"scale: {scale or scale_name()}" + (f", {detail}" if detail else "")
    fig.text(0.99, 0.005, text, ha="right", va="bottom", fontsize=7, color="0.35")
