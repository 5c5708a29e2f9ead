"""Argument types shared by the ``python -m overparam`` sub-commands: a bad value is a one-line usage error."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from ..files import RESULTS_SHA256, check_writable, choose_output

__all__ = ["add_redraw_option", "add_results_file_options", "device_name", "nonnegative_int", "positive_int",
           "redraw_mismatch", "redraw_unnamed", "results_output"]


def positive_int(text: str) -> int:
    """An integer >= 1 (``--threads``, ``--eval-every``)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (``--seed``)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def device_name(text: str) -> str:
    """A torch device this machine has: ``cpu``, ``cuda`` or ``cuda:K``; ``auto`` is ``cuda`` when torch sees a GPU,
    else ``cpu``."""
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:K, got {text!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:K, got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA device on this machine; use cpu")
    return text


def add_redraw_option(parser: argparse.ArgumentParser) -> None:
    """``--redraw``: draw a results file's figures again with the book's current style, without training."""
    parser.add_argument("--redraw", action="store_true",
                        help="draw the figures again from the existing results file that --out names (default: the "
                        "preset's), without training, and print its summary; replaces the figures next to it (those "
                        "of a committed results file only when --out names it)")


def redraw_unnamed(requested: str | None, results: list[Path]) -> int:
    """Exit status of ``--redraw`` before it draws: 2, with a one-line error, when it would replace the figures of a
    committed results file (a name of :data:`overparam.files.RESULTS_SHA256`) that ``--out`` did not name; else 0.

    No command overwrites a committed file unless asked by name, and the figures beside a committed results file are
    committed with it.
    """
    committed = [str(p) for p in results if p.name in RESULTS_SHA256]
    if requested is not None or not committed:
        return 0
    print(f"error: --redraw replaces the committed figures beside {', '.join(committed)}; to redraw them, name the "
          f"results file with --out {committed[0]}", file=sys.stderr)
    return 2


def redraw_mismatch(path: Path, holds_the_preset: bool, preset: str) -> int:
    """Exit status of ``--redraw``: 0 when the file holds ``--preset``'s runs, else 2 with a one-line error."""
    if holds_the_preset:
        return 0
    print(f"error: --redraw: {path} does not hold the runs of --preset {preset}; name the preset that wrote it",
          file=sys.stderr)
    return 2


def add_results_file_options(parser: argparse.ArgumentParser, name: str, figures: str,
                             default: str | None = None) -> None:
    """``--out``, ``--force`` and ``--data-dir`` of a command that writes one results file from the Ethanol data.

    ``name``: the default file is ``results/<name>_<preset>.npz``, unless ``default`` names it (a command without
    presets); ``figures``: what is written next to it.
    """
    default = default or f"results/{name}_<preset>.npz"
    parser.add_argument("--out", default=None, help=f"results file (default {default}, or a fresh "
                        f"time-stamped name if that exists); {figures} written next to it")
    parser.add_argument("--force", action="store_true", help="replace the default results file if it exists")
    parser.add_argument("--data-dir", default=None, help="folder holding gas_sensor/ (default: OVERPARAM_DATA_DIR)")


def results_output(args: argparse.Namespace, default: str, run: str, companions: Sequence[str] = (".png",)) -> Path:
    """Where a command writes its results file, settled before any work, and said on standard error.

    :func:`overparam.files.choose_output` with the command's ``--out`` and ``--force`` (``run``: the sub-command
    and scale, checked against a committed file's), and ``companions`` beside it unless ``--no-figures`` (when
    the command has that option); then :func:`overparam.files.check_writable`, and the line "results will be
    written to <path> (<why>)".
    """
    written = () if getattr(args, "no_figures", False) else tuple(companions)
    out, why = choose_output(args.out, default, force=args.force, companions=written, run=run)
    check_writable(out)
    print(f"results will be written to {out} ({why})", file=sys.stderr)
    return out
