"""``python -m overparam ethanol-edge``: refine the teaser's step grids at their stability edge (Chapter 2).

Reads the paper-scale Ethanol sweep (``--source``, by default the committed ``results/ethanol_paper.npz``), finds
each teaser group whose best final run is its largest step that trained, below a step that failed
(:func:`overparam.edge.stability_edges`), and runs that group again at the learning rates of a sixteenth-decade
lattice between the two (:func:`overparam.edge.edge_runs`), with the source's budget, recorded steps, precision
and starts. Where a method's best run is such a group, each of its hyper-parameter grids whose best value is at an
end is continued by two values (:func:`overparam.edge.axis_extensions`; AdaDelta's ρ), over the same steps. A second
round (:func:`overparam.edge.second_round_runs`) refines what the first left unfinished: an edge still open, eight
times finer; a best step that is its group's smallest, by two smaller steps; a grid still at its end, by two more
values. Writes the refinement (``.npz``, whose provenance names the source file and its SHA-256) and a figure
of final L − L* against the step size, and prints each group's best final L − L* on the source's grid and on both.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from ..data import load_standardized_ethanol
from ..edge import check_refinement, concat_sweeps, edge_groups, edge_runs, plot_edge, second_round_runs, teaser_grid
from ..files import atomic_savefig, file_sha256, find_results
from ..optimum import lp_optimum
from ..plotting import note_scale, use_book_style
from ..sweep import SweepResult, run_sweep
from .args import (add_redraw_option, add_results_file_options, device_name, positive_int, redraw_unnamed,
                   results_output)
from .progress import Progress

__all__ = ["SOURCE", "register", "run"]

#: The committed sweep whose edges are refined by default.
SOURCE = "ethanol_paper.npz"


def _source(path: str | None) -> tuple[SweepResult, Path]:
    """The source sweep: ``--source`` as given, else the committed paper-scale file (found or fetched)."""
    if path is not None:
        return SweepResult.load(path), Path(path)
    found = find_results(SOURCE)
    if found is None:
        raise FileNotFoundError(f"{SOURCE} was not found under results/ and could not be downloaded; produce it with "
                                f"'python -m overparam ethanol --preset paper', or name a sweep with --source")
    return SweepResult.load(found), found


def _report(source: SweepResult, source_path: Path, refinement: SweepResult, optimum: float, out: Path,
            draw: bool) -> list[Path]:
    """Print each group's best final L − L* (source grid, both); draw the figure beside ``out`` unless not ``draw``."""
    groups = edge_groups(source, refinement, optimum)
    for g in groups:
        where = "beyond the source's grid" if g.extension else f"{g.best_of(False):.5f} on the source's grid,"
        print(f"{g.label}: best final L − L* {where} {g.best_of():.5f} with the refinement (η = {g.lr[g.best]:.3g})")
    if not draw:
        return []
    import matplotlib.pyplot as plt

    use_book_style()
    ax = plot_edge(groups)
    note_scale(ax.figure, f"{refinement.num_iters:,} iterations, {refinement.dtype}",
               scale=f"refinement of {source_path.name}")
    figure = out.with_suffix(".png")
    atomic_savefig(ax.figure, figure, bbox_inches="tight")
    plt.close(ax.figure)
    return [figure]


def run(args: argparse.Namespace) -> int:
    """Refine the source's stability edges, write the results file and the figure, print the table."""
    source, source_path = _source(args.source)
    if args.redraw:
        out = Path(args.out or "results/ethanol_edge.npz")
        if redraw_unnamed(args.out, [out]):
            return 2
        refinement = SweepResult.load(out)
        try:
            check_refinement(refinement, source, source_path)
        except ValueError as exc:
            print(f"error: --redraw: {out} does not hold the refinement of {source_path} ({exc}); name the --source "
                  "it refined", file=sys.stderr)
            return 2
        stored = refinement.provenance.get("optimum_loss", {}).get("4")
        if stored is None:
            data = load_standardized_ethanol(args.data_dir)
            stored = lp_optimum(data.X, data.y, 4).loss
        written = _report(source, source_path, refinement, float(stored), out, True)
        print("redrew " + ", ".join(map(str, written)))
        return 0
    runs = edge_runs(source, teaser_grid(source))
    if not runs:
        print(f"error: {source_path} has no teaser group at a stability edge: nothing to refine", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    out = results_output(args, "results/ethanol_edge.npz", "ethanol-edge")
    data = load_standardized_ethanol(args.data_dir)
    optimum = lp_optimum(data.X, data.y, 4).loss
    print(f"ethanol-edge: {len(runs)} runs x {source.num_iters:,} iterations, {source.dtype} on {args.device}, "
          f"{torch.get_num_threads()} threads, refining {source_path}", file=sys.stderr)
    first = run_sweep(data, runs, source.num_iters, record=source.steps, dtype=source.dtype, device=args.device,
                      progress=Progress("ethanol-edge, round 1", unit="it"), command=args.command_line)
    second_runs = second_round_runs(source, first)
    print(f"ethanol-edge, round 2: {len(second_runs)} runs", file=sys.stderr)
    refinement = first
    if second_runs:
        second = run_sweep(data, second_runs, source.num_iters, record=source.steps, dtype=source.dtype,
                           device=args.device, progress=Progress("ethanol-edge, round 2", unit="it"),
                           command=args.command_line)
        refinement = concat_sweeps(first, second)
    refinement.provenance["rounds"] = [len(runs), len(second_runs)]
    refinement.provenance["source"] = {"file": source_path.name, "sha256": file_sha256(source_path)}
    refinement.provenance["optimum_loss"] = {"4": optimum}
    refinement.save(out)
    written = [out] + _report(source, source_path, refinement, optimum, out, not args.no_figures)
    print(f"wall time {refinement.wall_time:.0f} s; wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``ethanol-edge`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser(
        "ethanol-edge", help="refine the ℓ4 teaser's step grids between the last step that trained and the first "
        "that failed (paper scale)", description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None,
                        help=f"the sweep to refine (default: the committed results/{SOURCE})")
    add_results_file_options(parser, "ethanol", "the figure is", default="results/ethanol_edge.npz")
    parser.add_argument("--device", type=device_name, default="cpu",
                        help="torch device: cpu (the default), cuda, cuda:K or auto (cuda when torch sees a GPU)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-figures", action="store_true", help="write the results file only")
    add_redraw_option(parser)
    parser.set_defaults(func=run)
