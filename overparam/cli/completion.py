"""``python -m overparam completion``: Part B's matrix completion over many random draws (Chapter 7).

For every seed of the preset: a random low-rank target, nested sets of observed
entries, deep factorizations of several depths trained by gradient descent from
a small balanced start, and the minimum-nuclear-norm completion (``long``, the
chapter's: 100 × 100, rank 5, 1,000 to 5,000 entries, depths 2-4, twenty draws;
``fast``: a small problem for the tests). The work is numpy's: set
``OMP_NUM_THREADS=1`` for its small matrices, as the chapter does.
Writes the final errors, losses, effective ranks and singular values of every
run (``.npz``) and the figure of the median error and of the recovered draws
against the count, and prints
the table of median errors and recovered draws.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..completion import (SEED_PRESETS, CompletionSeeds, plot_recovered, plot_seed_errors, resume_from,
                          run_completion_seeds, seeds_markdown)
from ..files import OutputPathError, atomic_savefig
from ..plotting import note_scale, use_book_style
from .args import add_redraw_option, redraw_mismatch, redraw_unnamed, results_output
from .progress import Progress

__all__ = ["register", "run"]


def _draw(result: CompletionSeeds, preset: str, figure: Path) -> Path:
    """Write the figure of the median error and of the recovered draws against the count; return its path."""
    import matplotlib.pyplot as plt

    use_book_style()
    fig, axes = plt.subplots(1, 2, figsize=(12.4, 4.4))
    plot_seed_errors(result, axes[0])
    plot_recovered(result, axes[1])
    fig.tight_layout()
    note_scale(fig, f"{result.seeds.size} draws, {result.settings['num_iters']:,} steps per run", scale=preset)
    atomic_savefig(fig, figure, bbox_inches="tight")
    plt.close(fig)
    return figure


def _redraw(args: argparse.Namespace) -> int:
    """``--redraw``: the figure and the table of an existing results file, without training."""
    preset = SEED_PRESETS[args.preset]
    out = Path(args.out or f"results/completion_{preset.name}.npz")
    if redraw_unnamed(args.out, [out]):
        return 2
    result = CompletionSeeds.load(out)
    status = redraw_mismatch(out, result.holds(preset), preset.name)
    if status:
        return status
    figure = _draw(result, preset.name, out.with_suffix(".png"))
    print(seeds_markdown(result))
    print(f"redrew {figure}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results file and the figure, print the table."""
    if args.redraw:
        return _redraw(args)
    preset = SEED_PRESETS[args.preset]
    out = results_output(args, f"results/completion_{preset.name}.npz", f"completion --preset {args.preset}")
    b = preset.base
    print(f"completion {preset.name}: {len(preset.seeds)} draws x {len(b.counts)} counts x depths "
          f"{', '.join(map(str, b.depths))} ({b.num_iters:,} steps each) and the nuclear norm", file=sys.stderr)
    checkpoint = Path(out).with_suffix(".partial.npz")
    try:
        held = resume_from(checkpoint, preset)
    except ValueError as exc:  # the checkpoint of another run
        raise OutputPathError(str(exc)) from None
    if held is not None:
        print(f"resuming from {checkpoint}: {held.seeds.size} of {len(preset.seeds)} draws done", file=sys.stderr)
    else:
        print(f"after each draw the draws done so far are kept in {checkpoint}; if the run stops, run this "
              f"command again with --out {out} to go on from there", file=sys.stderr)
    result = run_completion_seeds(preset, command=args.command_line, checkpoint=checkpoint,
                                  progress=Progress(f"completion {preset.name}", unit="draw"))
    result.save(out)
    checkpoint.unlink(missing_ok=True)
    written = [out]
    if not args.no_figures:
        written.append(_draw(result, preset.name, Path(out).with_suffix(".png")))
    print(seeds_markdown(result))
    print(f"wall time {result.wall_time:.0f} s; wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``completion`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser("completion", help="matrix completion over many draws: deep factorizations "
                                   "against the nuclear norm (Chapter 7)", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(SEED_PRESETS), default="long",
                        help="fast (a small problem, for tests), long (the chapter's: 20 draws); default: %(default)s")
    parser.add_argument("--out", default=None, help="results file (default results/completion_<preset>.npz, or a "
                        "fresh time-stamped name if that exists); the figure is written next to it")
    parser.add_argument("--force", action="store_true", help="replace the default results file if it exists")
    parser.add_argument("--no-figures", action="store_true", help="write the results file only")
    add_redraw_option(parser)
    parser.set_defaults(func=run)
