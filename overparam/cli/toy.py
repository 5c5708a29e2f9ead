"""``python -m overparam toy``: the two-example ℓ4 toy at three scales (Chapter 4, ``ch-preconditioner``).

For each :math:`y_1` of the preset (5, 10, 20) one lockstep sweep trains depths 1-3
(scalar hidden layers, aligned balanced start :math:`\\|w_1\\| = |\\omega_j| = 0.01`) on
the targets :math:`(y_1, 1)` over the 27-point quarter-decade grid 1e-6 … 10^{0.5}, in
float64, recording exactly when each run first reaches :math:`L \\le 10^{-5}`
(Chapter 4, ``ch-preconditioner``). The presets differ only in the budget per run: 4·10⁵
iterations (``paper``), 10⁵ (``default``), 4·10⁴ (``fast``). Writes one results file per
:math:`y_1` (``<out>_y5.npz`` …), a figure of iterations-to-target against η, and prints
the table of the fastest run per depth.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from ..files import OutputPathError, atomic_savefig, check_writable, choose_stem
from ..plotting import note_scale, use_book_style
from ..sweep import SweepResult
from ..toy import (TOY_PRESETS, TOY_TARGET, format_toy_table, load_toy_results, plot_iterations_vs_lr, run_toy,
                   toy_results_paths, toy_runs)
from .args import add_redraw_option, positive_int, redraw_mismatch, redraw_unnamed
from .progress import Progress

__all__ = ["register", "run"]


def _draw(results: dict[float, SweepResult], preset: str, num_iters: int, figure: Path) -> Path:
    """Write the figure of iterations to the target against η; return its path."""
    import matplotlib.pyplot as plt

    use_book_style()
    axes = plot_iterations_vs_lr(results)
    fig = axes[0].figure
    note_scale(fig, f"{num_iters:,} iterations, float64", scale=preset)
    atomic_savefig(fig, figure, bbox_inches="tight")
    plt.close(fig)
    return figure


def _stem(args: argparse.Namespace) -> str | None:
    """The file stem that ``--out`` names (a trailing ``.npz`` dropped), or ``None``."""
    return args.out[: -len(".npz")] if args.out and args.out.endswith(".npz") else args.out


def _redraw(args: argparse.Namespace) -> int:
    """``--redraw``: the figure and the table of existing results files, without training."""
    preset = TOY_PRESETS[args.preset]
    stem = _stem(args) or f"results/toy_{preset.name}"
    if Path(stem).is_dir():
        raise OutputPathError(f"--out: {stem} is a folder; give a file stem such as {Path(stem) / f'toy_{preset.name}'}")
    if redraw_unnamed(_stem(args), list(toy_results_paths(stem, preset.y1_values).values())):
        return 2
    results = load_toy_results(stem, preset.y1_values)
    if results is None:
        missing = [str(p) for p in toy_results_paths(stem, preset.y1_values).values() if not p.exists()]
        raise FileNotFoundError(f"--redraw: no results file {', '.join(missing)}")
    status = redraw_mismatch(Path(f"{stem}_y*.npz"), all(
        r.num_iters == preset.num_iters and r.configs == toy_runs(preset.depths) for r in results.values()),
        preset.name)
    if status:
        return status
    figure = _draw(results, preset.name, preset.num_iters, Path(f"{stem}.png"))
    print(format_toy_table(results))
    print(f"redrew {figure}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results files and the figure, print the table."""
    if args.redraw:
        return _redraw(args)
    preset = TOY_PRESETS[args.preset]
    if args.threads:
        torch.set_num_threads(args.threads)
    suffixes = [f"_y{y1:g}.npz" for y1 in preset.y1_values] + ([] if args.no_figures else [".png"])
    stem, why = choose_stem(_stem(args), f"results/toy_{preset.name}", suffixes, force=args.force,
                            run=f"toy --preset {args.preset}")
    figure = Path(f"{stem}.png")
    check_writable(figure)
    print(f"results will be written to {stem}_y*.npz ({why})", file=sys.stderr)
    command = args.command_line
    results, written = {}, []
    for y1, path in toy_results_paths(stem, preset.y1_values).items():
        print(f"toy {preset.name}: y1 = {y1:g}, {len(toy_runs(preset.depths))} runs x {preset.num_iters:,} "
              "iterations", file=sys.stderr)
        results[y1] = run_toy(y1, preset.num_iters, depths=preset.depths, target=TOY_TARGET,
                              progress=Progress(f"toy y1={y1:g}", unit="it"), command=command)
        results[y1].save(path)
        written.append(path)
    if not args.no_figures:
        written.append(_draw(results, preset.name, preset.num_iters, figure))
    print(format_toy_table(results))
    print(f"wall time {sum(r.wall_time for r in results.values()):.0f} s; wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``toy`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser("toy", help="the two-example ℓ4 toy: iterations to L < 1e-5, depths 1-3",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(TOY_PRESETS), default="paper",
                        help="budget per run: fast 4e4, default 1e5, paper 4e5 iterations; default: %(default)s")
    parser.add_argument("--out", default=None, help="file stem (default results/toy_<preset>, or a fresh time-stamped "
                        "stem if its files exist): writes <stem>_y5.npz, <stem>_y10.npz, <stem>_y20.npz and <stem>.png; "
                        "a trailing .npz is dropped")
    parser.add_argument("--force", action="store_true", help="replace the default files if they exist")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-figures", action="store_true", help="write the results files only")
    add_redraw_option(parser)
    parser.set_defaults(func=run)
