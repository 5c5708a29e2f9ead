"""Part B's completion experiment over many random draws (Chapter 7, ch-beyond-speed): results file, table, figure.

Chapter 7 runs :func:`overparam.factorization.completion_experiment` live on
one draw (one target, one set of observed entries, one start). Whether
"depth recovers from fewer entries" holds beyond that draw is a question for
many draws. :func:`run_completion_seeds` repeats the experiment at each seed of
a :class:`CompletionSeedsPreset` and keeps only the final state of each run
(no trajectories); :class:`CompletionSeeds` is that results file
(``python -m overparam completion``), and :func:`recovered_counts`,
:func:`recovery_onset`, :func:`seeds_markdown`, :func:`plot_seed_errors`
and :func:`plot_recovered` read it.

A draw with seed ``s`` takes its target and observed entries from ``s`` and
its start from ``s + 1`` (:func:`~overparam.factorization.completion_experiment`);
the presets use even seeds so that no two draws share a generator.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .factorization import CompletionPreset, completion_experiment, completion_methods, counts_table
from .files import atomic_write, invalid_results, json_text, provenance, read_provenance, read_results
from .training import NEVER
from .validation import check_callable, check_int, check_real, check_sequence

__all__ = [
    "NUCLEAR_MAX_ITERS",
    "RECOVERY_THRESHOLD",
    "SEED_PRESETS",
    "CompletionSeeds",
    "CompletionSeedsPreset",
    "method_errors",
    "method_names",
    "plot_recovered",
    "plot_seed_errors",
    "recovered_counts",
    "recovery_onset",
    "resume_from",
    "run_completion_seeds",
    "seeds_markdown",
]

#: ``max_iters`` of each nuclear-norm solve: near the count at which the convex fit starts to recover, ADMM can need
#: more than its default 20,000 iterations to reach its tolerance (three of the long preset's 180 problems took up
#: to about 70,000).
NUCLEAR_MAX_ITERS = 200_000

#: A fit *recovers* the target when its relative error on all entries is at most 1%. Chapter 7 fixed the rule from
#: its single draw, before the twenty-draw file was written: above the error floor that the small start leaves depths
#: 3 and 4, and below the errors of the fits that failed there at 2,000 entries.
RECOVERY_THRESHOLD = 1e-2


@dataclass(frozen=True)
class CompletionSeedsPreset:
    """Part B's experiment (Chapter 7) at every seed of ``seeds``: ``base`` gives all other settings.

    ``base.seed`` is not used. The seeds must be distinct integers >= 0
    (a ``ValueError`` names the field otherwise).
    """

    name: str
    base: CompletionPreset
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        if not isinstance(self.base, CompletionPreset):
            raise ValueError(f"base must be a CompletionPreset, got {type(self.base).__name__}")
        seeds = [check_int(f"seeds[{i}]", s, 0) for i, s in enumerate(check_sequence("seeds", self.seeds, "integers"))]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must list each seed once, got {self.seeds!r}")

    @property
    def settings(self) -> dict[str, Any]:
        """The settings a results file must hold to be this preset's (JSON: numbers and lists)."""
        b = self.base
        return {"n": b.n, "rank": b.rank, "counts": list(b.counts), "depths": list(b.depths), "lr": b.lr,
                "num_iters": b.num_iters, "scale": b.scale, "seeds": list(self.seeds),
                "nuclear_max_iters": NUCLEAR_MAX_ITERS}


#: ``fast``: a small problem for the tests (seconds). ``long``: the book's size (n = 100, rank 5, η = 2, 3,000 steps
#: and start norm 1e-4, as Chapter 7's live run) at nine counts from 1,000 (just above the 975 degrees of freedom of a
#: rank-5 100 × 100 matrix) to 5,000 and twenty draws (even seeds 0-38; about 20 minutes on one CPU core).
SEED_PRESETS: dict[str, CompletionSeedsPreset] = {
    "fast": CompletionSeedsPreset("fast", CompletionPreset("fast", 30, 2, (250, 500), (2, 3), 2.0, 300, 1e-3),
                                  seeds=(0, 2, 4)),
    "long": CompletionSeedsPreset(
        "long", CompletionPreset("long", 100, 5, tuple(range(1000, 5001, 500)), (2, 3, 4), 2.0, 3_000, 1e-4),
        seeds=tuple(range(0, 40, 2))),
}


@dataclass(frozen=True)
class CompletionSeeds:
    """The final state of Part B's runs at every seed (Chapter 7, ch-beyond-speed): S seeds, D depths, C counts.

    Attributes
    ----------
    seeds : ndarray of int, shape (S,)
    counts : ndarray of int, shape (C,)
    depths : ndarray of int, shape (D,)
    errors, final_loss, effective_ranks, diverged_at, seconds : ndarray, shape (S, D, C)
        As the fields of :class:`~overparam.factorization.CompletionExperiment` of the same names, one per seed.
    singular_values : ndarray, shape (S, D, C, top)
        The ``top`` largest singular values of each final W_e (``nan`` for a diverged run).
    nuclear_errors, nuclear_effective_ranks, nuclear_seconds : ndarray, shape (S, C)
        The minimum-nuclear-norm completion of each seed's problems.
    settings : dict
        :attr:`CompletionSeedsPreset.settings` of the run.
    provenance : dict
        :func:`overparam.files.provenance` of the run.
    wall_time : float
        Seconds, the whole run.
    """

    seeds: np.ndarray
    counts: np.ndarray
    depths: np.ndarray
    errors: np.ndarray
    final_loss: np.ndarray
    effective_ranks: np.ndarray
    diverged_at: np.ndarray
    seconds: np.ndarray
    singular_values: np.ndarray
    nuclear_errors: np.ndarray
    nuclear_effective_ranks: np.ndarray
    nuclear_seconds: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0

    _PER_RUN = ("errors", "final_loss", "effective_ranks", "diverged_at", "seconds")
    _PER_SOLVE = ("nuclear_errors", "nuclear_effective_ranks", "nuclear_seconds")
    #: the arrays with one entry per draw (axis 0)
    _PER_DRAW = ("singular_values", *_PER_RUN, *_PER_SOLVE)

    @property
    def diverged(self) -> np.ndarray:
        """Bool array, shape (S, D, C): which network runs diverged (their ``errors`` are ``nan``)."""
        return self.diverged_at != NEVER

    def holds(self, preset: CompletionSeedsPreset) -> bool:
        """Whether this file holds exactly ``preset``'s runs (every setting equal)."""
        return self.settings == preset.settings

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (arrays, plus the JSON metadata as the string member ``completion_json``); no pickle."""
        meta = {"settings": self.settings, "provenance": dict(self.provenance), "wall_time": self.wall_time}
        arrays = {name: getattr(self, name) for name in ("seeds", "counts", "depths", *self._PER_DRAW)}
        text = json_text(meta, "CompletionSeeds.save's metadata")
        return atomic_write(path, lambda fh: np.savez_compressed(fh, completion_json=np.array(text), **arrays))

    @classmethod
    def load(cls, path: str | Path) -> "CompletionSeeds":
        """Read a file written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        InvalidResultsFile
            The file is truncated, lacks a member, is a results file of another kind, or its arrays' shapes do
            not match its seeds, depths and counts.
        """
        with read_results(path) as f:
            meta = json.loads(str(f["completion_json"]))
            result = cls(**{name: f[name] for name in ("seeds", "counts", "depths", *cls._PER_DRAW)},
                         settings=meta["settings"], provenance=read_provenance(meta["provenance"]),
                         wall_time=float(meta["wall_time"]))
        for name in ("seeds", "counts", "depths"):
            held = getattr(result, name)
            if held.ndim != 1 or held.tolist() != result.settings.get(name):
                raise invalid_results(path, f"{name} {held.tolist()} are not those of the file's settings "
                                      f"({result.settings.get(name)})")
        S, D, C = result.seeds.size, result.depths.size, result.counts.size
        expected = {**{name: (S, D, C) for name in cls._PER_RUN}, **{name: (S, C) for name in cls._PER_SOLVE}}
        for name, shape in expected.items():
            if getattr(result, name).shape != shape:
                raise invalid_results(path, f"{name} has shape {getattr(result, name).shape}, expected {shape} for "
                                      f"{S} seeds, {D} depths and {C} counts")
        if result.singular_values.shape[:3] != (S, D, C):
            raise invalid_results(path, f"singular_values has shape {result.singular_values.shape}, expected "
                                  f"({S}, {D}, {C}, top)")
        return result


def _draws(result: CompletionSeeds) -> list[dict[str, np.ndarray]]:
    """The arrays of each draw of ``result``, by field name: what :func:`run_completion_seeds` resumes from."""
    return [{name: getattr(result, name)[k] for name in CompletionSeeds._PER_DRAW} for k in range(result.seeds.size)]


def resume_from(checkpoint: str | Path, preset: CompletionSeedsPreset) -> CompletionSeeds | None:
    """The draws that the checkpoint of an interrupted run of ``preset`` holds (:func:`run_completion_seeds`);
    ``None`` when there is no checkpoint.

    Raises
    ------
    ValueError
        The checkpoint holds other settings, or seeds that are not the first of ``preset``'s.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        return None
    held = CompletionSeeds.load(checkpoint)
    done = held.seeds.tolist()
    if ({**held.settings, "seeds": None} != {**preset.settings, "seeds": None}
            or done != list(preset.seeds[: len(done)])):
        raise ValueError(f"checkpoint: {checkpoint} holds the draws of other settings or seeds than preset "
                         f"{preset.name!r}'s; delete it, or write this run elsewhere")
    return held


def run_completion_seeds(preset: CompletionSeedsPreset, *, command: str | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         checkpoint: str | Path | None = None) -> CompletionSeeds:
    """Part B's experiment (Chapter 7) at every seed of ``preset``, keeping each run's final state.

    Each seed is one call of :func:`~overparam.factorization.completion_experiment` with ``base``'s settings,
    recording only the start and the last step, and :data:`NUCLEAR_MAX_ITERS` iterations allowed to each
    nuclear-norm solve.

    Parameters
    ----------
    preset : CompletionSeedsPreset
    command : str, optional
        The command line recorded in the provenance (default: the running one).
    progress : callable, optional
        ``progress(done, total)`` after each seed.
    checkpoint : path, optional
        A file that holds the draws done so far, written (atomically) after each draw. If it exists when the
        run starts, its draws are taken from it and the run goes on from the next seed, so an interrupted run
        loses at most one draw. The caller removes it once the results are saved.

    Raises
    ------
    ValueError
        ``checkpoint`` holds draws of other settings, or other seeds than the first of ``preset``'s.
    """
    if not isinstance(preset, CompletionSeedsPreset):
        raise TypeError(f"preset must be a CompletionSeedsPreset (see SEED_PRESETS), got {type(preset).__name__}")
    check_callable("progress", progress, "None or a callable (done, total)", optional=True)
    checkpoint = None if checkpoint is None else Path(checkpoint)
    b = preset.base
    began = time.perf_counter()
    held = None if checkpoint is None else resume_from(checkpoint, preset)
    draws = [] if held is None else _draws(held)
    earlier = 0.0 if held is None else held.wall_time

    def stacked(record: dict[str, Any]) -> CompletionSeeds:
        return CompletionSeeds(
            seeds=np.array(preset.seeds[: len(draws)]), counts=np.array(b.counts), depths=np.array(b.depths),
            **{name: np.stack([d[name] for d in draws]) for name in draws[0]},
            settings={**preset.settings, "seeds": list(preset.seeds[: len(draws)])}, provenance=record,
            wall_time=earlier + time.perf_counter() - began)

    record = provenance(command, preset=preset.name, omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                        resumed_draws=len(draws))
    for k in range(len(draws), len(preset.seeds)):
        run = completion_experiment(b.n, b.rank, b.counts, b.depths, b.lr, b.num_iters, b.scale, preset.seeds[k],
                                    record=b.num_iters, nuclear_max_iters=NUCLEAR_MAX_ITERS)
        draws.append({name: run.singular_values[:, :, -1, :] if name == "singular_values" else getattr(run, name)
                      for name in CompletionSeeds._PER_DRAW})
        if checkpoint is not None and k + 1 < len(preset.seeds):
            stacked(record).save(checkpoint)
        if progress is not None:
            progress(k + 1, len(preset.seeds))
    return stacked(record)


def method_names(result: CompletionSeeds) -> list[str]:
    """``["depth 2", …, "nuclear norm"]``: the rows of :func:`method_errors`
    (:func:`~overparam.factorization.completion_methods`)."""
    return completion_methods(result.depths)


def method_errors(result: CompletionSeeds) -> np.ndarray:
    """Relative errors, shape (S, D + 1, C): the depths, then the nuclear norm (``nan`` for a diverged run)."""
    return np.concatenate([result.errors, result.nuclear_errors[:, None, :]], axis=1)


def recovered_counts(result: CompletionSeeds, threshold: float = RECOVERY_THRESHOLD) -> np.ndarray:
    """How many seeds each method recovers at each count, shape (D + 1, C) (rows of :func:`method_names`).

    A fit recovers when its relative error is at most ``threshold`` (:data:`RECOVERY_THRESHOLD`); a diverged
    run does not.
    """
    threshold = check_real("threshold", threshold, above=0)
    errors = method_errors(result)
    return np.sum(np.where(np.isnan(errors), False, errors <= threshold), axis=0)


def recovery_onset(result: CompletionSeeds, threshold: float = RECOVERY_THRESHOLD, fraction: float = 0.5
                   ) -> np.ndarray:
    """Per method, the smallest count from which at least ``fraction`` of the draws recover, at every larger count too.

    A draw recovers when its error is at most ``threshold`` (:func:`recovered_counts`). ``fraction = 0.5``
    (the default) is Chapter 7's onset, "half the draws or more"; ``fraction = 1`` asks for every draw.

    Returns
    -------
    ndarray, shape (D + 1,), float
        In the order of :func:`method_names`; ``nan`` for a method that does not reach ``fraction`` at the
        grid's last count.
    """
    fraction = check_real("fraction", fraction, above=0)
    if fraction > 1:
        raise ValueError(f"fraction must be in (0, 1], a share of the draws, got {fraction!r}")
    enough = recovered_counts(result, threshold) >= fraction * result.seeds.size
    onset = np.full(enough.shape[0], np.nan)
    for m, row in enumerate(enough):
        if row[-1]:
            first = row.size - int(np.argmin(row[::-1])) if not row.all() else 0
            onset[m] = result.counts[first]
    return onset


def seeds_markdown(result: CompletionSeeds, threshold: float = RECOVERY_THRESHOLD) -> str:
    """A Markdown table: per count (a row) and method (a column), the median relative error and how many draws
    recover (Chapter 7), by :func:`~overparam.factorization.counts_table`."""
    errors, hits, S = method_errors(result), recovered_counts(result, threshold), result.seeds.size
    median = np.median(np.where(np.isnan(errors), np.inf, errors), axis=0)  # a diverged run counts as the worst
    cells = [[f"{e:.2g} ({k}/{S})" for e, k in zip(median[m], hits[m])] for m in range(median.shape[0])]
    return (f"Median relative error over {S} draws; in parentheses, the number of draws with error ≤ {threshold:g}:"
            "\n\n" + counts_table(result.counts, method_names(result), cells))


def _method_style(result: CompletionSeeds, m: int) -> tuple[str, str, bool]:
    """The legend label, colour and kind (nuclear norm or not) of row ``m`` of :func:`method_names` in a figure."""
    from .plotting import DEPTH_COLORS

    if m == result.depths.size:
        return "minimum nuclear norm", "black", True
    return f"depth {int(result.depths[m])}", DEPTH_COLORS[int(result.depths[m]) % len(DEPTH_COLORS)], False


def plot_seed_errors(result: CompletionSeeds, ax: Any = None, threshold: float = RECOVERY_THRESHOLD) -> Any:
    """Median error against the count, per method, with the band from the smallest to the largest draw (Chapter 7)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    errors = method_errors(result)
    floor = 1e-12  # an error of exactly 0 would vanish from the log axis; it is drawn there instead
    for m in range(errors.shape[1]):
        label, color, nuclear = _method_style(result, m)
        band = np.maximum(errors[:, m, :], floor)  # a run without an error (nan) is left out, and said in the legend
        lost = int(np.isnan(band).sum())
        why = "not solved" if nuclear else "diverged"
        ax.fill_between(result.counts, np.nanmin(band, axis=0), np.nanmax(band, axis=0), color=color, alpha=0.15,
                        linewidth=0)
        ax.semilogy(result.counts, np.nanmedian(band, axis=0), "s--" if nuclear else "o-", color=color, ms=4,
                    label=label + (f" ({lost} {why} left out)" if lost else ""))
    ax.axhline(threshold, color="0.4", lw=0.8, ls=":", label=f"recovery threshold {threshold:g}")
    ax.set(xlabel=r"observed entries $|\Omega|$", ylabel=r"$\|W - W^*\|_F \,/\, \|W^*\|_F$",
           title=f"matrix completion over {result.seeds.size} draws: median and range")
    ax.legend(loc="lower left", fontsize="small")
    return ax


def plot_recovered(result: CompletionSeeds, ax: Any = None, threshold: float = RECOVERY_THRESHOLD) -> Any:
    """The fraction of draws each method recovers (:func:`recovered_counts`) against the count (Chapter 7)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    fraction = recovered_counts(result, threshold) / result.seeds.size
    for m in range(fraction.shape[0]):
        label, color, nuclear = _method_style(result, m)
        # markers that shrink from one method to the next: where lines coincide (at 0 or 1), each stays visible
        ax.plot(result.counts, fraction[m], "s--" if nuclear else "o-", color=color, ms=max(9 - 2 * m, 3),
                mfc="none" if m % 2 else color, label=label)
    ax.set(xlabel=r"observed entries $|\Omega|$", ylabel=f"fraction of draws with error ≤ {threshold:g}",
           ylim=(-0.03, 1.03), title=f"fraction of the {result.seeds.size} draws recovered")
    # beside the axes: the methods' lines rise across the whole count range, through any spot inside
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize="small")
    return ax
