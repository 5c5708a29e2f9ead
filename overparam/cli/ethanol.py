"""``python -m overparam ethanol``: the paper's Ethanol sweeps at one of three scales (Chapters 2 and 4).

Argument parsing, progress and files only: the presets, the figures and the summary are
:mod:`overparam.ethanol`'s, the sweep is :func:`overparam.run_sweep`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from ..data import load_standardized_ethanol
from ..ethanol import PRESETS, plot_depth_sweep, plot_teaser, summary
from ..files import atomic_savefig
from ..optimum import lp_optimum
from ..plotting import note_scale, use_book_style
from ..sweep import SweepResult, run_sweep
from .args import (add_redraw_option, add_results_file_options, device_name, positive_int, redraw_mismatch,
                   redraw_unnamed, results_output)
from .progress import Progress

__all__ = ["FIGURE_SUFFIXES", "register", "run"]


def _stamp(fig: Any, result: SweepResult, preset: str) -> None:
    note_scale(fig, f"{result.num_iters:,} iterations, {result.dtype}", scale=preset)


def _save(ax: Any, result: SweepResult, preset: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    _stamp(ax.figure, result, preset)
    atomic_savefig(ax.figure, path, bbox_inches="tight")
    plt.close(ax.figure)


#: ``--cuda-graph`` values and the ``cuda_graph`` argument of :func:`overparam.sweep.run_sweep` they give.
CUDA_GRAPH_CHOICES = {"auto": None, "on": True, "off": False}
#: The figures written beside a results file ``<stem>.npz``.
FIGURE_SUFFIXES = ("_depth_l2.png", "_depth_l4.png", "_teaser.png")


def _draw(result: SweepResult, preset: str, optima: dict[int, float], out: Path) -> list[Path]:
    """Write the three figures next to the results file ``out``; return their paths."""
    use_book_style()
    stem = out.with_suffix("")
    written = []
    for p, suffix in zip((2, 4), FIGURE_SUFFIXES):
        written.append(Path(f"{stem}{suffix}"))
        _save(plot_depth_sweep(result, p, optimum=optima[p]), result, preset, written[-1])
    written.append(Path(f"{stem}{FIGURE_SUFFIXES[2]}"))
    _save(plot_teaser(result, optimum=optima[4]), result, preset, written[-1])
    return written


def _optima(data: Any) -> dict[int, float]:
    """L* of the ℓ2 and ℓ4 losses on the standardized data (:func:`overparam.lp_optimum`), by p."""
    return {p: lp_optimum(data.X, data.y, p).loss for p in (2, 4)}


def _redraw(args: argparse.Namespace) -> int:
    """``--redraw``: the figures and the summary of an existing results file, without training."""
    preset = PRESETS[args.preset]
    out = Path(args.out or f"results/ethanol_{preset.name}.npz")
    if redraw_unnamed(args.out, [out]):
        return 2
    result = SweepResult.load(out)
    status = redraw_mismatch(out, result.num_iters == preset.num_iters and result.configs == preset.runs(),
                             preset.name)
    if status:
        return status
    stored = result.provenance.get("optimum_loss")  # L* per p, in files written since it was recorded
    if stored:
        optima = {int(p): float(v) for p, v in stored.items()}
    else:
        optima = _optima(load_standardized_ethanol(args.data_dir))
    written = _draw(result, preset.name, optima, out)
    print(summary(result, optima))
    print("redrew " + ", ".join(str(w) for w in written))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results file and the figures, print the summary."""
    if args.redraw:
        return _redraw(args)
    preset = PRESETS[args.preset]
    if args.cuda_graph == "on" and torch.device(args.device).type != "cuda":
        print(f"error: --cuda-graph on needs a CUDA --device, got {args.device!r}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    out = results_output(args, f"results/ethanol_{preset.name}.npz", f"ethanol --preset {args.preset}",
                         FIGURE_SUFFIXES)
    data = load_standardized_ethanol(args.data_dir)
    optima = _optima(data)
    runs = preset.runs()
    print(f"ethanol {preset.name}: {len(runs)} runs x {preset.num_iters:,} iterations, {args.dtype} on {args.device}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)
    result = run_sweep(data, runs, preset.num_iters, record=preset.record(), dtype=args.dtype, device=args.device,
                       progress=Progress(f"ethanol {preset.name}", unit="it"),
                       command=args.command_line, cuda_graph=CUDA_GRAPH_CHOICES[args.cuda_graph], fuse=args.fuse)
    result.provenance["optimum_loss"] = {str(p): v for p, v in optima.items()}  # L* of lp_optimum, per p
    result.save(out)
    written = [out] + ([] if args.no_figures else _draw(result, preset.name, optima, out))
    print(summary(result, optima))
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``ethanol`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser(
        "ethanol",
        help="the paper's Ethanol sweeps: depths 1-8 on ℓ2/ℓ4, and the ℓ4 teaser against adaptive methods",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="fast (CI, seconds), default (a few minutes), paper (10^6 iterations, depths 1-8); default: %(default)s")
    add_results_file_options(parser, "ethanol", "figures are")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", type=device_name, default="cpu",
                        help="torch device: cpu (the default), cuda, cuda:K or auto (cuda when torch sees a GPU)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--cuda-graph", choices=sorted(CUDA_GRAPH_CHOICES), default="auto",
                        help="replay chunks of iterations as a captured CUDA graph: auto (on for a CUDA device), "
                        "on (needs one) or off")
    parser.add_argument("--fuse", action="store_true",
                        help="compile each iteration with torch.compile, so that the updates run as a few fused "
                        "kernels (losses agree with the eager engine to round-off; compiling takes up to a minute)")
    parser.add_argument("--no-figures", action="store_true", help="write the results file only")
    add_redraw_option(parser)
    parser.set_defaults(func=run)
