"""Command line for the paper-scale runs, and for the data they and the chapters read: ``python -m overparam COMMAND``.

Each experiment family registers its own sub-command from a module of :mod:`overparam.cli`;
``python -m overparam --help`` lists them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .data import DataIntegrityError
from .files import InvalidResultsFile, OutputPathError

#: Modules that contribute sub-commands; each defines ``register(subparsers)``.
_COMMAND_MODULES = ("overparam.cli.ethanol", "overparam.cli.edge", "overparam.cli.toy", "overparam.cli.mnist", "overparam.cli.convergence",
                    "overparam.cli.completion", "overparam.cli.data")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="python -m overparam", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "python -m overparam " + " ".join(argv)  # recorded in the results' provenance
    try:
        return int(args.func(args) or 0)
    except OutputPathError as exc:  # a user error found before any work: one line, exit status 2
        parser.error(str(exc))
    # missing or damaged data, or a damaged results file (--redraw): one message
    except (FileNotFoundError, NotADirectoryError, DataIntegrityError, InvalidResultsFile) as exc:
        print(f"python -m overparam {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
