"""``python -m overparam toy``: the two-example ℓ4 toy at three scales (Chapter 4).

For each :math:`y_1` of the preset (5, 10, 20) one lockstep sweep trains depths 1-3
(scalar hidden layers, aligned balanced start :math:`\\|w_1\\| = |\\omega_j| = 0.01`) on
the targets :math:`(y_1, 1)` over the 27-point quarter-decade grid 1e-6 … 10^{0.5}, in
float64, recording exactly when each run first reaches :math:`L \\le 10^{-5}`
(``paper.md`` §2.7, §5.7). The presets differ only in the budget per run: 4·10⁵
iterations (``paper``), 10⁵ (``default``), 4·10⁴ (``fast``). Writes one results file per
:math:`y_1` (``<out>_y5.npz`` …), a figure of iterations-to-target against η, and prints
the table of the fastest run per depth.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cli_args import positive_int
from .cli_ethanol import _Progress
from .files import check_writable, choose_stem
from .plotting import DEPTH_COLORS, use_book_style
from .sweep import SweepResult
from .toy import TOY_PRESETS, TOY_TARGET, depth1_stability_limit, run_toy, toy_runs, toy_table

__all__ = ["toy_results_paths", "load_toy_results", "format_toy_table", "plot_iterations_vs_lr", "register"]


def toy_results_paths(stem: str | Path, y1_values: tuple[float, ...] = TOY_PRESETS["paper"].y1_values) -> dict[float, Path]:
    """The results file of each :math:`y_1` for a file stem, e.g. ``results/toy_paper`` → ``results/toy_paper_y5.npz``."""
    stem = Path(stem)
    return {float(y1): stem.with_name(f"{stem.name}_y{y1:g}.npz") for y1 in y1_values}


def load_toy_results(stem: str | Path,
                     y1_values: tuple[float, ...] = TOY_PRESETS["paper"].y1_values) -> dict[float, SweepResult] | None:
    """Load the files written by ``python -m overparam toy`` (Chapter 4); ``None`` if any is missing.

    Raises
    ------
    InvalidResultsFile
        One of the files is truncated, lacks a member, or does not match its runs.
    """
    paths = toy_results_paths(stem, y1_values)
    if not all(p.exists() for p in paths.values()):
        return None
    return {y1: SweepResult.load(p) for y1, p in paths.items()}


def format_toy_table(results: dict[float, SweepResult]) -> str:
    """Plain text: per :math:`y_1` and depth the fewest iterations to :math:`L \\le` target and the η that did it."""
    rows = toy_table(results)
    depths = sorted({r.depth for r in rows})
    lines = ["  y1  " + "".join(f"{'depth ' + str(n):>24s}" for n in depths)]
    for y1 in results:
        cells = []
        for n in depths:
            r = next(r for r in rows if r.y1 == y1 and r.depth == n)
            cells.append(f"{r.iterations:>11,} (η={r.lr:.2g})" if r.reached else f"{'not reached':>24s}")
        lines.append(f"{y1:4g}  " + "".join(f"{c:>24s}" for c in cells))
    return "\n".join(lines)


def plot_iterations_vs_lr(results: dict[float, SweepResult], axes: Any = None) -> Any:
    """One panel per :math:`y_1`: iterations to the target against η, one line per depth (Chapter 4).

    Runs that diverged are marked × at the top of the panel; runs that neither
    diverged nor reached the target within the budget are left out. A dotted
    vertical line marks the depth-1 stability limit :math:`2/y_1^2`.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (y1, result) in zip(axes, results.items()):
        lrs = np.array([c.lr for c in result.configs])
        depth = np.array([c.depth for c in result.configs])
        top = result.num_iters
        for n in sorted(set(depth)):
            color = DEPTH_COLORS[n % len(DEPTH_COLORS)]
            ok = (depth == n) & (result.reached_at >= 0) & ~result.diverged
            ax.loglog(lrs[ok], result.reached_at[ok], "o-", ms=3, color=color, label=f"N = {n}")
            bad = (depth == n) & result.diverged
            ax.plot(lrs[bad], np.full(bad.sum(), top * 1.6 ** (n - 1)), "x", ms=4, color=color)
        ax.axvline(depth1_stability_limit(y1), color="k", ls=":", lw=1)
        if ax is axes[0]:
            ax.plot([], [], "x", color="0.3", label="diverged")
        ax.set(xlabel="learning rate η", title=f"targets ({y1:g}, 1)")
    axes[0].set_ylabel(f"iterations to L ≤ {result.target:g}")
    axes[0].legend(fontsize=8, loc="lower left")
    return axes


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results files and the figure, print the table."""
    preset = TOY_PRESETS[args.preset]
    if args.threads:
        torch.set_num_threads(args.threads)
    suffixes = [f"_y{y1:g}.npz" for y1 in preset.y1_values] + ([] if args.no_figures else [".png"])
    stem, why = choose_stem(args.out, f"results/toy_{preset.name}", suffixes, force=args.force)
    figure = Path(f"{stem}.png")
    check_writable(figure)
    print(f"results will be written to {stem}_y*.npz ({why})", file=sys.stderr)
    command = args.command_line
    results, written = {}, []
    for y1, path in toy_results_paths(stem, preset.y1_values).items():
        print(f"toy {preset.name}: y1 = {y1:g}, {len(toy_runs(preset.depths))} runs x {preset.num_iters:,} "
              "iterations", file=sys.stderr)
        results[y1] = run_toy(y1, preset.num_iters, depths=preset.depths, target=TOY_TARGET,
                              progress=_Progress(f"toy y1={y1:g}"), command=command)
        results[y1].save(path)
        written.append(path)
    if not args.no_figures:
        import matplotlib.pyplot as plt

        use_book_style()
        axes = plot_iterations_vs_lr(results)
        fig = axes[0].figure
        fig.text(0.99, 0.005, f"preset: {preset.name}, {preset.num_iters:,} iterations, float64", ha="right",
                 va="bottom", fontsize=7, color="0.35")
        written.append(figure)
        fig.savefig(written[-1], bbox_inches="tight")
        plt.close(fig)
    print(format_toy_table(results))
    print(f"wall time {sum(r.wall_time for r in results.values()):.0f} s; wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``toy`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser("toy", help="the two-example ℓ4 toy: iterations to L < 1e-5, depths 1-3",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(TOY_PRESETS), default="paper",
                        help="budget per run: fast 4e4, default 1e5, paper 4e5 iterations")
    parser.add_argument("--out", default=None, help="file stem (default results/toy_<preset>, or a fresh time-stamped "
                        "stem if its files exist): writes <stem>_y5.npz, <stem>_y10.npz, <stem>_y20.npz and <stem>.png")
    parser.add_argument("--force", action="store_true", help="replace the default files if they exist")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-figures", action="store_true", help="write the results files only")
    parser.set_defaults(func=run)
