"""``python -m overparam convergence``: iterations to the optimum against the init scale on whitened Ethanol (Chapter 7).

Depths 3 and 8, hidden widths 32, three initialization schemes (layer-wise
Gaussian; Procedure 1 at the same std; Procedure 1 applied to the Gaussian
layers' own end-to-end row), every learning rate and seed of the preset's
grid, all in one lockstep sweep that records the first step at which
ℓ = ½‖W_e − Λ‖² ≤ 1e-5. Writes the sweep (``.npz``; losses, steps to ε and
the final end-to-end rows, not the layers) and the figure of iterations
against the std, and prints the table of the fastest run per std (the median
over seeds of each seed's fastest, where the preset has several).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..convergence import (PRESETS, ConvergencePreset, convergence_runs, iterations_by_seed, median_over_seeds,
                           plot_iterations_vs_std, run_convergence, whitened_problem)
from ..data import load_standardized_ethanol
from ..files import atomic_savefig
from ..plotting import note_scale, use_book_style
from ..training import format_iterations
from ..sweep import SweepResult
from .args import (add_redraw_option, add_results_file_options, positive_int, redraw_mismatch, redraw_unnamed,
                   results_output)
from .progress import Progress

__all__ = ["register", "run"]


def _draw(table: dict, by_seed: dict, preset: ConvergencePreset, figure: Path) -> Path:
    """Write the figure of iterations against the std; return its path."""
    import matplotlib.pyplot as plt

    use_book_style()
    ax = plot_iterations_vs_std(table, preset, by_seed=by_seed if len(preset.seeds) > 1 else None)
    note_scale(ax.figure, f"cap {preset.num_iters:,} iterations", scale=preset.name)
    atomic_savefig(ax.figure, figure, bbox_inches="tight")
    plt.close(ax.figure)
    return figure


def _print_table(table: dict, preset: ConvergencePreset) -> None:
    if len(preset.seeds) > 1:
        print(f"median over the seeds {', '.join(map(str, preset.seeds))} of each seed's fastest run")
    print("std: " + "  ".join(f"{s:.3g}" for s in preset.stds))
    for (scheme, depth), row in table.items():
        print(f"depth {depth}, {scheme}: " + "  ".join(map(format_iterations, row)))


def _redraw(args: argparse.Namespace) -> int:
    """``--redraw``: the figure and the table of an existing results file, without training."""
    preset = PRESETS[args.preset]
    out = Path(args.out or f"results/convergence_{preset.name}.npz")
    if redraw_unnamed(args.out, [out]):
        return 2
    result = SweepResult.load(out)
    try:  # iterations_by_seed checks that the file holds the preset's runs, num_iters and epsilon
        by_seed = iterations_by_seed(result, whitened_problem(load_standardized_ethanol(args.data_dir)), preset)
    except ValueError:
        return redraw_mismatch(out, False, preset.name)
    table = median_over_seeds(by_seed)
    figure = _draw(table, by_seed, preset, out.with_suffix(".png"))
    _print_table(table, preset)
    print(f"redrew {figure}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results file and the figure, print the table."""
    if args.redraw:
        return _redraw(args)
    preset = PRESETS[args.preset]
    out = results_output(args, f"results/convergence_{preset.name}.npz", f"convergence --preset {args.preset}")
    problem = whitened_problem(load_standardized_ethanol(args.data_dir))
    print(f"convergence {preset.name}: {len(convergence_runs(problem, preset)):,} runs "
          f"x {preset.num_iters:,} iterations, float32, {args.threads} thread(s)", file=sys.stderr)
    result = run_convergence(problem, preset, threads=args.threads, command=args.command_line,
                             progress=Progress(f"convergence {preset.name}", unit="it"))
    # the layers of 648 runs made a file of some 25 MB (of 1,944, three times that); the chapter reads losses,
    # steps to ε and the final W_e
    dataclasses.replace(result, factors=tuple(() for _ in result.configs)).save(out)
    written = [out]
    by_seed = iterations_by_seed(result, problem, preset)
    table = median_over_seeds(by_seed)
    if not args.no_figures:
        written.append(_draw(table, by_seed, preset, Path(out).with_suffix(".png")))
    _print_table(table, preset)
    print(f"wall time {result.wall_time:.0f} s; wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``convergence`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser("convergence", help="whitened Ethanol: iterations to ℓ ≤ 1e-5 against the init std, "
                                   "Gaussian and balanced starts, depths 3 and 8", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="long",
                        help="fast (CI), default (the chapter's), long (finer grids, cap 10^5); default: %(default)s")
    add_results_file_options(parser, "convergence", "the figure is")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default 1: the matrices are small)")
    parser.add_argument("--no-figures", action="store_true", help="write the results file only")
    add_redraw_option(parser)
    parser.set_defaults(func=run)
