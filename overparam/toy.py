"""The two-example ℓ4 toy: why depth accelerates ℓ4 regression (Chapter 4, ``ch-preconditioner``).

Two training examples :math:`x = (1, 0)` and :math:`x = (0, 1)` with labels
:math:`y_1 \\gg y_2` and the ℓ4 loss of :math:`w = (w_{(1)}, w_{(2)})`

.. math::

    L(w) = \\tfrac14 \\left[ (w_{(1)} - y_1)^4 + (w_{(2)} - y_2)^4 \\right]

(a small example of when depth accelerates; this runnable version and its
settings are the course's: targets :math:`(y_1, 1)`, depths
1-3 with scalar hidden layers, balanced near-zero initialization
:math:`\\|w_1\\| = |\\omega_j| = 0.01` (first layer :math:`w_1`, scalar layers
:math:`\\omega_j`) with :math:`w_1 \\propto (1, 1)`, a
quarter-decade learning-rate grid, iterations to reach :math:`L < 10^{-5}`).

Plain gradient descent decouples, :math:`w_{(i)} \\leftarrow w_{(i)} - \\eta
(w_{(i)} - y_i)^3`; stability of the large coordinate from :math:`w \\approx 0` forces
:math:`\\eta < 2 / y_1^2`, and with that step the small coordinate crawls.
Under the end-to-end rule the step is multiplied by
:math:`\\|w\\|^{2-2/N}` (Equation 12): once the large coordinate has settled
near :math:`y_1`, it lends its norm to the small one.

Everything runs through :func:`overparam.sweep.run_sweep`: the problem is an
ordinary ℓ4 regression problem whose features are scaled so that the book's
mean-loss convention reproduces the sum above exactly.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence

import numpy as np
import torch

from .balance import scalar_layers_start
from .files import find_results
from .losses import check_exponent
from .plotting import DEPTH_COLORS, math_power
from .sweep import (FASTEST_TO_TARGET, RunConfig, SweepResult, check_sweep_result, log_steps, product_runs, quarter_decades,
                    run_sweep, select_runs)
from .training import NEVER
from .validation import check_int, check_real, check_sequence

__all__ = [
    "TOY_LR_GRID",
    "TOY_TARGET",
    "TOY_INIT_SCALE",
    "TOY_DIRECTION",
    "ToyPreset",
    "TOY_PRESETS",
    "ToyRow",
    "two_example_problem",
    "toy_runs",
    "toy_initial_factors",
    "run_toy",
    "toy_table",
    "depth1_stability_limit",
    "predicted_iterations",
    "toy_results_paths",
    "load_toy_results",
    "find_toy_results",
    "format_toy_table",
    "plot_iterations_vs_lr",
]

#: Learning rates: the quarter-decade lattice 10^{k/4} from 1e-6 to 10^{0.5} (27 points), exact powers of
#: ten, not rounded (a rounded η can end a run near the stability edge differently).
TOY_LR_GRID: tuple[float, ...] = tuple(quarter_decades(-24, 2, digits=None))
#: "Iterations to reach L < ε" uses ε = 1e-5 (Chapter 4, ``ch-preconditioner``).
TOY_TARGET = 1e-5
#: ‖w_1‖ = |ω_j| = 0.01 at initialization.
TOY_INIT_SCALE = 0.01
#: w_1(0) points along (1, 1).
TOY_DIRECTION = (1.0, 1.0)


def two_example_problem(y1: float, y2: float = 1.0, p: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The toy's design and targets, ``(X, y)``, for :func:`overparam.run_sweep` (Chapter 4, ``ch-preconditioner``).

    The book's loss is the *mean* :math:`\\frac1p\\,\\frac1m\\sum_i r_i^p`
    (:func:`overparam.lp_loss`), the toy's the sum
    :math:`\\frac1p\\sum_i (w_{(i)} - y_i)^p`. Scaling both examples by
    :math:`c = m^{1/p} = 2^{1/p}`, i.e. :math:`X = cI_2` and
    :math:`y = c\\,(y_1, y_2)`, makes the two equal for every :math:`w`, and
    the gradients too (:math:`\\nabla L = (w - y)^{p-1}` elementwise), so the
    learning rates mean what they mean for the sum.

    Parameters
    ----------
    y1, y2 : float
        The two labels (finite).
    p : int
        Even loss exponent >= 2 (the toy uses 4).

    Returns
    -------
    X : ndarray, shape (2, 2)
    y : ndarray, shape (2,)
    """
    p = check_exponent(p)
    y1, y2 = check_real("y1", y1), check_real("y2", y2)
    c = 2.0 ** (1.0 / p)
    return c * np.eye(2), c * np.array([y1, y2])


def toy_runs(depths: Sequence[int] = (1, 2, 3), lrs: Sequence[float] = TOY_LR_GRID,
             init_scale: float = TOY_INIT_SCALE, method: str = "gd") -> tuple[RunConfig, ...]:
    """The toy's grid: GD on depth-N nets with scalar hidden layers, aligned balanced start (Chapter 4).

    Every run starts from :math:`w_1 = s\\,(1, 1)/\\sqrt2`, :math:`\\omega_j = s`
    (``s = init_scale``), i.e. :math:`w_e(0) = s^N (1, 1)/\\sqrt2`; ``p = 4``.
    ``depths`` and ``lrs`` are non-empty sequences (of integers >= 1 and of
    numbers > 0). ``method`` is the optimizer of every run, one of
    :data:`overparam.sweep.METHODS` (checked by :class:`~overparam.sweep.RunConfig`).
    """
    check_sequence("depths", depths, "integers >= 1")
    check_sequence("lrs", lrs, "numbers > 0")
    return product_runs(method=method, depth=list(depths), p=4, lr=list(lrs), init_scale=init_scale,
                        init_direction=TOY_DIRECTION)


def toy_initial_factors(depth: int, init_scale: float = TOY_INIT_SCALE) -> list[np.ndarray]:
    """The same start as :func:`toy_runs`, as layers for :func:`overparam.train_deep_linear` (Chapter 4).

    Returns ``[W_1, ω_2, …, ω_N]`` with :math:`W_1 = s\\,(1, 1)/\\sqrt2` of
    shape (1, 2) and each :math:`\\omega_j = s` of shape (1, 1): exactly
    balanced (:math:`\\|W_1\\|^2 = \\omega_j^2 = s^2`).
    """
    init_scale = check_real("init_scale", init_scale, above=0)
    return scalar_layers_start(np.asarray(TOY_DIRECTION) / np.linalg.norm(TOY_DIRECTION), depth, init_scale)


def depth1_stability_limit(y1: float) -> float:
    """:math:`2 / y_1^2`: above it, plain GD on the toy diverges from :math:`w \\approx 0` (Chapter 4).

    The large coordinate's error :math:`e = w_{(1)} - y_1` follows
    :math:`e \\leftarrow e - \\eta e^3 = e (1 - \\eta e^2)`; starting from
    :math:`|e| \\approx |y_1|`, it shrinks only if :math:`\\eta y_1^2 < 2`.
    """
    return 2.0 / check_real("y1", y1, nonzero=True) ** 2


def predicted_iterations(lr: float, depth: int, y1: float, y2: float = 1.0, target: float = TOY_TARGET) -> float:
    """The late-phase estimate of the iterations the toy needs to reach ``target`` (Chapter 4, ``ch-preconditioner``).

    Near the solution :math:`w^* = (y_1, y_2)` the single-output rule
    (Equation 12 of arXiv:1802.06509) scales the step orthogonal to :math:`w`
    by :math:`\\rho = \\eta\\|w^*\\|^{2-2/N}` and the step along :math:`w` by
    :math:`N\\rho`. Treating the large coordinate as "along" and the small one
    as "orthogonal", each error follows the quartic recursion
    :math:`e \\leftarrow e - \\rho_i e^3`, whose tail is
    :math:`e_t \\approx 1/\\sqrt{2\\rho_i t}` whatever the start (Chapter 1, ``ch-lp-regression``).
    Then :math:`L \\approx \\frac14 (2\\rho t)^{-2}(1 + N^{-2})`, and
    :math:`L = \\varepsilon` at

    .. math::

        t^* \\approx \\frac{1}{4\\,\\eta\\,\\|w^*\\|^{2-2/N}} \\sqrt{\\frac{1 + N^{-2}}{\\varepsilon}} .

    For N = 1 the rule is plain GD and this is :math:`1/(\\eta\\sqrt{8\\varepsilon})`
    in the limit. It ignores the escape from the origin and the tilt of
    :math:`w^*` away from the first axis, so it is an estimate, which
    Chapter 4 compares with the measured counts.

    Returns
    -------
    float
        The estimate; :data:`~overparam.training.NEVER` (``inf``) for N = 1 at or above
        the stability limit :math:`2/\\max(y_1^2, y_2^2)` (:func:`depth1_stability_limit`),
        where plain GD from near 0 never gets there (it diverges, or oscillates at the limit).
        For N >= 2 no such limit is known in closed form: the estimate is returned whatever ``lr``.
    """
    lr, target = check_real("lr", lr, above=0), check_real("target", target, above=0)
    depth = check_int("depth", depth, 1)
    norm = math.hypot(check_real("y1", y1), check_real("y2", y2))
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"y1, y2 must be finite and not both zero, got {y1!r}, {y2!r}")
    if depth == 1 and lr >= depth1_stability_limit(max(abs(float(y1)), abs(float(y2)))):
        return NEVER
    return math.sqrt((1 + depth**-2) / target) / (4 * lr * norm ** (2 - 2 / depth))


@dataclass(frozen=True)
class ToyPreset:
    """One scale of the toy (Chapter 4; ``python -m overparam toy``).

    Attributes
    ----------
    name : str
    num_iters : int
        Budget per run, >= 1. The fastest run per depth does not depend on it
        as long as it exceeds that run's count.
    y1_values : tuple of float
        Non-empty, each finite and non-zero (the figure marks :math:`2/y_1^2`).
    depths : tuple of int
        Non-empty, each >= 1.

    Raises
    ------
    ValueError
        When the preset is made with a bad field, naming it.
    """

    name: str
    num_iters: int
    y1_values: tuple[float, ...] = (5.0, 10.0, 20.0)
    depths: tuple[int, ...] = (1, 2, 3)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        check_int("num_iters", self.num_iters, 1)
        for i, y1 in enumerate(check_sequence("y1_values", self.y1_values, "non-zero numbers")):
            check_real(f"y1_values[{i}]", y1, nonzero=True)
        for i, depth in enumerate(check_sequence("depths", self.depths, "integers >= 1")):
            check_int(f"depths[{i}]", depth, 1)


#: ``paper``: the full budget (4·10⁵ iterations per run). ``default`` (a reader's run) and ``fast`` (CI)
#: only cap the budget.
TOY_PRESETS: dict[str, ToyPreset] = {
    "fast": ToyPreset("fast", 40_000),
    "default": ToyPreset("default", 100_000),
    "paper": ToyPreset("paper", 400_000),
}


def run_toy(y1: float, num_iters: int, *, depths: Sequence[int] = (1, 2, 3), lrs: Sequence[float] = TOY_LR_GRID,
            init_scale: float = TOY_INIT_SCALE, target: float = TOY_TARGET, dtype: Any = torch.float64,
            progress: Callable[[int, int], None] | None = None, command: str | None = None) -> SweepResult:
    """Run the toy's grid for one ``y1`` (targets ``(y1, 1)``) in one lockstep sweep (Chapter 4, ``ch-preconditioner``).

    Records the loss on a log grid (20 per decade) and, exactly, the first
    iteration with :math:`L \\le` ``target`` (``result.reached_at``).
    """
    return run_sweep(two_example_problem(y1), toy_runs(depths, lrs, init_scale), num_iters,
                     record=log_steps(num_iters, 20), dtype=dtype, target=target, chunk=2000,
                     progress=progress, command=command)


@dataclass(frozen=True)
class ToyRow:
    """One cell of the toy's table: the fastest run of one depth for one ``y1``."""

    y1: float
    depth: int
    iterations: int | None
    lr: float | None
    index: int | None

    @property
    def reached(self) -> bool:
        """Whether any learning rate of the grid reached the target."""
        return self.iterations is not None


def toy_table(results: dict[float, SweepResult], depths: Sequence[int] | None = None) -> list[ToyRow]:
    """Per ``y1`` and depth, the fewest iterations to the target over the grid (Chapter 4, ``ch-preconditioner``).

    The rule is :data:`overparam.sweep.FASTEST_TO_TARGET`: among the runs that
    reached the target and trained (neither diverged nor collapsed within the
    budget, :attr:`overparam.SweepResult.trained`), the one that reached it
    first. A depth whose runs all failed gets a row with ``iterations = None``.

    Raises
    ------
    ValueError
        ``results`` is not a dict of sweep results with ``reached_at``, or
        ``depths`` is given but is not a non-empty tuple.
    """
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a dict {{y1: SweepResult}} (e.g. load_toy_results), "
                         f"got {type(results).__name__}")
    if depths is not None:
        check_sequence("depths", depths, "depths")
    rows = []
    for y1, result in results.items():
        if check_sweep_result(f"results[{y1!r}]", result).reached_at is None:
            raise ValueError(f"results[{y1!r}] has no reached_at: run it with run_toy (or run_sweep(target=...))")
        chosen = select_runs(result, FASTEST_TO_TARGET, by=["depth"])
        for depth in (sorted({c.depth for c in result.configs}) if depths is None else depths):
            i = chosen.get((depth,))
            rows.append(ToyRow(float(y1), int(depth), None if i is None else int(result.reached_at[i]),
                               None if i is None else result.configs[i].lr, i))
    return rows


# ---------------------------------------------------------------------------
# Results files, table and figure of the toy (Chapter 4, ``ch-preconditioner``)
# ---------------------------------------------------------------------------
def _not_a_stem(stem: Any, what: str = "") -> NoReturn:
    """Raise the ``ValueError`` for a ``stem`` argument that is not a file stem (``what`` says what it is instead)."""
    got = repr(str(stem)) if isinstance(stem, (str, os.PathLike)) else f"{stem!r} ({type(stem).__name__})"
    raise ValueError(f"stem must be a file stem such as results/toy_paper (which stands for results/toy_paper_y5.npz, "
                     f"...){f', not {what}' if what else ''}, got {got}")


def toy_results_paths(stem: str | Path, y1_values: tuple[float, ...] = TOY_PRESETS["paper"].y1_values) -> dict[float, Path]:
    """The results file of each :math:`y_1` for a file stem, e.g. ``results/toy_paper`` → ``results/toy_paper_y5.npz``.

    Raises
    ------
    ValueError
        ``stem`` is not a str or path, or names a ``.npz`` file rather than a stem, or
        ``y1_values`` is not a non-empty tuple.
    """
    check_sequence("y1_values", y1_values, "y1 values (targets (y1, 1))")
    if not isinstance(stem, (str, os.PathLike)):
        _not_a_stem(stem)
    if Path(stem).suffix == ".npz":
        _not_a_stem(stem, "a .npz file's name")
    stem = Path(stem)
    return {float(y1): stem.with_name(f"{stem.name}_y{y1:g}.npz") for y1 in y1_values}


def load_toy_results(stem: str | Path,
                     y1_values: tuple[float, ...] = TOY_PRESETS["paper"].y1_values) -> dict[float, SweepResult] | None:
    """Load the files written by ``python -m overparam toy`` (Chapter 4); ``None`` if any is missing.

    Raises
    ------
    ValueError
        ``stem`` is a ``.npz`` file's name or a folder, not a stem (see :func:`toy_results_paths`).
    InvalidResultsFile
        One of the files is truncated, lacks a member, or does not match its runs.
    """
    paths = toy_results_paths(stem, y1_values)
    if Path(stem).is_dir():  # it would look for <folder>_y5.npz beside the folder
        _not_a_stem(stem, "a folder")
    if not all(p.exists() for p in paths.values()):
        return None
    return {y1: SweepResult.load(p) for y1, p in paths.items()}


def find_toy_results(name: str = "toy_paper", y1_values: tuple[float, ...] = TOY_PRESETS["paper"].y1_values, *,
                     download: bool = True) -> dict[float, SweepResult] | None:
    """The committed paper-scale toy files, found like every results file (Chapter 4); ``None`` if any is missing.

    Each ``<name>_y<y1>.npz`` is looked for (and, with ``download``,
    fetched) by :func:`overparam.find_results`, so the chapter finds them in
    a clone, from ``chapters/``, or on Colab, where only the package is installed.
    """
    found = {y1: find_results(path.name, download=download) for y1, path in toy_results_paths(name, y1_values).items()}
    if any(path is None for path in found.values()):
        return None
    return {y1: SweepResult.load(path) for y1, path in found.items()}


#: Width of a depth's column in :func:`format_toy_table`: the widest cell, "1,000,000 (η=0.00056)", and a space.
#: Three depths then take 72 characters, within the 76 that the book's text column shows of a printed line.
TOY_TABLE_COLUMN = 22


def format_toy_table(results: dict[float, SweepResult]) -> str:
    """Plain text: per :math:`y_1` and depth the fewest iterations to :math:`L \\le` target and the η that did it.

    A column of 4 characters and two spaces for :math:`y_1`, then one right-aligned column of
    :data:`TOY_TABLE_COLUMN` characters per depth. A depth that some :math:`y_1`'s results do not hold shows
    "not run" there.
    """
    rows = {(r.y1, r.depth): r for r in toy_table(results)}
    depths = sorted({depth for _, depth in rows})
    lines = ["  y1  " + "".join(f"depth {n}".rjust(TOY_TABLE_COLUMN) for n in depths)]
    for y1 in results:
        cells = []
        for n in depths:
            r = rows.get((float(y1), n))
            cells.append("not run" if r is None else
                         f"{r.iterations:,} (η={r.lr:.2g})" if r.reached else "not reached")
        lines.append(f"{y1:4g}  " + "".join(c.rjust(TOY_TABLE_COLUMN) for c in cells))
    return "\n".join(lines)


#: Each depth's row of failed runs above the budget lies at budget × ROW_STEP ** depth (Chapter 4's toy figure).
ROW_STEP = 1.6


def plot_iterations_vs_lr(results: dict[float, SweepResult], axes: Any = None) -> Any:
    """One panel per :math:`y_1`: iterations to the target against η, one line per depth (Chapter 4).

    Every run of the grid is drawn. A run that reached the target is a point
    on its depth's line, at the step it reached it (a run that reached the
    target and collapsed later is drawn there too; :func:`toy_table` does not
    choose it). The runs that did not reach it are marked above the budget
    (dashed line, "budget"), one row per depth at budget × :data:`ROW_STEP` ** depth:
    ▽ (open) for a run that neither reached the target nor diverged within
    the budget, × for a run that diverged. A dotted vertical line marks the
    depth-1 stability limit :math:`2/y_1^2` (legend: "depth-1 limit").
    """
    import matplotlib.pyplot as plt

    if not isinstance(results, Mapping) or not results:
        got = "an empty dict" if isinstance(results, Mapping) else type(results).__name__
        raise ValueError(f"results must be a non-empty dict {{y1: SweepResult}}, got {got}")
    for y1, result in results.items():
        if check_sweep_result(f"results[{y1!r}]", result).reached_at is None or result.target is None:
            raise ValueError(f"results[{y1!r}] has no target: run it with run_toy (or run_sweep(target=...))")
    if axes is None:
        _, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (y1, result) in zip(axes, results.items()):
        lrs = np.array([c.lr for c in result.configs])
        depth = np.array([c.depth for c in result.configs])
        top = result.num_iters
        reached = (result.reached_at != NEVER) & ~result.diverged
        for n in sorted(set(depth)):
            color = DEPTH_COLORS[n % len(DEPTH_COLORS)]
            ok = (depth == n) & reached
            ax.loglog(lrs[ok], result.reached_at[ok], "o-", ms=3, color=color, label=f"N = {n}")
            row = top * ROW_STEP ** n
            for failed, marker in (((depth == n) & result.diverged, "x"),
                                   ((depth == n) & ~reached & ~result.diverged, "v")):
                ax.plot(lrs[failed], np.full(failed.sum(), row), marker, ms=4, color=color,
                        mfc="none" if marker == "v" else color)
        ax.axhline(top, color="0.4", ls="--", lw=1)  # dashed: in the legend, apart from the dotted limit
        ax.axvline(depth1_stability_limit(y1), color="k", ls=":", lw=1)
        if ax is axes[0]:
            ax.plot([], [], "v", color="0.3", mfc="none", ms=4, label="not within the budget")
            ax.plot([], [], "x", color="0.3", ms=4, label="diverged")
            ax.plot([], [], "--", color="0.4", lw=1, label="budget")
            ax.plot([], [], ":", color="k", lw=1, label="depth-1 limit $2/y_1^2$")
        ax.set(xlabel="learning rate η", title=f"targets ({y1:g}, 1)")
    axes[0].set_ylabel(f"iterations to $L \\leq$ {math_power(result.target)}")
    axes[0].legend(fontsize=8, loc="lower left")
    return axes
