"""The progress bar of the long commands: :mod:`tqdm` on standard error, with an ETA."""
from __future__ import annotations

import sys
from typing import Mapping, TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """A ``progress(done, total[, stats])`` callback for :func:`overparam.run_sweep` and the convnet trainer.

    Parameters
    ----------
    label : str
        Shown before the bar.
    unit : str
        What is counted (``"it"`` iterations, ``"step"`` SGD steps).
    stream : text file, optional
        Default: standard error. On a file that is not a terminal the bar is
        redrawn at most every 30 s, so a log of a long background run stays short.
    runs_after : int
        Runs of the same size still to come after this one: the bar then also
        shows the ETA of the whole command, assuming each takes as long as this one.
    """

    def __init__(self, label: str, unit: str = "it", stream: TextIO | None = None, runs_after: int = 0):
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.runs_after = int(runs_after)
        self.bar = tqdm(desc=label, unit=unit, file=self.stream, mininterval=0.5 if tty else 30.0,
                        ncols=None if tty else 110, dynamic_ncols=tty)

    def __call__(self, done: int, total: int, stats: Mapping[str, float] | None = None) -> None:
        if self.bar.total != total:
            self.bar.total = total
        parts = []
        if stats:
            parts.append(" ".join(f"{k} {stats[k]:.3g}" for k in ("cross_entropy", "penalty") if k in stats))
        if self.runs_after and done:
            elapsed = self.bar.format_dict["elapsed"]
            left = elapsed * (total - done) / done
            parts.append(f"all runs {left + self.runs_after * (elapsed + left):.0f} s left")
        if parts:
            self.bar.set_postfix_str(", ".join(parts), refresh=False)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
