r"""Convergence from balanced starts on whitened Ethanol (Chapter 7, ``ch-beyond-speed``, Part A).

The follow-up of Arora, Cohen, Golowich and Hu (ICLR 2019, arXiv:1810.02281)
proves that gradient descent on a deep linear network reaches the global
optimum at a linear rate when the start is approximately balanced and has a
*deficiency margin*, and tests it on the paper's Ethanol problem with
PCA-whitened features. This module holds that experiment:

* :func:`whitened_problem`: whitening reduces the ℓ2 loss to
  :math:`\ell(W) = \tfrac12\|W - \Lambda\|_F^2` plus a constant, with
  :math:`\Lambda = \tfrac1m y^\top X_w` rescaled to :math:`\|\Lambda\| = 1`;
  the reduced problem is written as a regression on :math:`\sqrt d\, I`, so
  the batched sweep engine (:func:`overparam.run_sweep`) trains it as it
  trains every other experiment of the book;
* :class:`ConvergencePreset` and :data:`PRESETS`: depths, widths, the grids
  of initialization std and learning rate, the iteration cap;
* :func:`convergence_runs`: three initialization schemes, layer-wise
  Gaussian, balanced (Procedure 1 at the same std) and balanced from the
  same start (Procedure 1 applied to the Gaussian layers' own end-to-end
  row);
* :func:`iterations_by_seed`, :func:`iterations_vs_std`
  (:func:`median_over_seeds`), :func:`plot_iterations_vs_std`: the fastest
  run per std and seed, their median over seeds, the figure of the
  follow-up;
* :func:`deficiency_margin` and :func:`rate_bound`: the theorem's two
  quantities.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .balance import max_imbalance
from .deep import end_to_end, train_deep_linear
from .losses import regression_pair
from .plotting import DEPTH_COLORS, math_power
from .sweep import RunConfig, SweepResult, check_sweep_result, run_sweep, start_layers
from .training import NEVER, format_iterations, measure_at
from .validation import check_int, check_real, check_sequence, finite_array, rng_from_seed

__all__ = [
    "ConvergencePreset",
    "ConvergenceRun",
    "FAILED_ROW_SPACING",
    "PRESETS",
    "SCHEMES",
    "SCHEME_STYLES",
    "WhitenedProblem",
    "convergence_runs",
    "deficiency_margin",
    "depth_color",
    "failed_rows",
    "fastest_run",
    "format_iterations",
    "imbalance_along",
    "iterations_by_seed",
    "iterations_markdown",
    "iterations_vs_std",
    "median_over_seeds",
    "plot_iterations_vs_std",
    "rate_bound",
    "run_convergence",
    "start_margins",
    "whitened_problem",
]

#: The initialization schemes compared (Chapter 7): layer-wise Gaussian; Procedure 1 with the same std for the
#: end-to-end entries; Procedure 1 applied to the Gaussian layers' own end-to-end row (the same start, balanced).
SCHEMES: tuple[str, ...] = ("gaussian", "balanced", "balanced, same start")


@dataclass(frozen=True)
class WhitenedProblem:
    r"""Whitened ℓ2 regression reduced to :math:`\ell(W) = \frac12\|W - \Lambda\|^2` (Chapter 7, ``ch-beyond-speed``).

    Attributes
    ----------
    X, y : ndarray, shapes (d, d) and (d,)
        :math:`\sqrt d\, I` and :math:`\sqrt d\,\Lambda`: a regression whose ℓ2
        loss :math:`\frac1{2d}\|X w - y\|^2` *is* :math:`\frac12\|w - \Lambda\|^2`.
    target : ndarray, shape (d,)
        :math:`\Lambda`, of norm 1; the optimum, where the reduced loss is 0.
    label_scale : float
        The factor applied to the (standardized) label so that :math:`\|\Lambda\| = 1`.
    whitening_error : float
        Largest entry of :math:`|\frac1m X_w^\top X_w - I|` for the whitened features.
    """

    X: np.ndarray
    y: np.ndarray
    target: np.ndarray
    label_scale: float
    whitening_error: float

    def loss(self, w: np.ndarray) -> float:
        """The reduced loss :math:`\\frac12\\|w - \\Lambda\\|^2` of an end-to-end row vector ``w`` (shape (d,) or (1, d))."""
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        if w.shape != self.target.shape:
            raise ValueError(f"w must have {self.target.size} entries, got shape {np.shape(w)}")
        return 0.5 * float(np.sum((w - self.target) ** 2))


def whitened_problem(data: Any) -> WhitenedProblem:
    r"""PCA-whiten the features, rescale the label so that :math:`\|\Lambda_{yx}\| = 1`, reduce (Chapter 7).

    With features :math:`X_w` such that :math:`\frac1m X_w^\top X_w = I`,
    :math:`\frac1{2m}\|X_w w - y\|^2 = \frac12\|w - \Lambda\|^2 + \text{const}`
    where :math:`\Lambda = \frac1m X_w^\top y`: the objective of
    arXiv:1810.02281's experiments. The features are centred first.

    Parameters
    ----------
    data : Standardized or (X, y)
        E.g. ``op.load_standardized_ethanol()``: X of shape (m, d) with
        m, d >= 1, y of shape (m,), both finite.

    Raises
    ------
    ValueError
        If ``data`` is not such a pair, if the feature covariance is singular
        (a direction cannot be whitened) or the label is uncorrelated with
        every feature.
    """
    X, y = regression_pair(data, "data")
    m, d = X.shape
    Xc = X - X.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(Xc.T @ Xc / m)
    if eigvals[0] <= 1e-14 * eigvals[-1]:
        raise ValueError(f"data: the feature covariance is singular (smallest eigenvalue {eigvals[0]:.2e}); "
                         "cannot whiten")
    Xw = Xc @ eigvecs / np.sqrt(eigvals)
    lam = Xw.T @ (y - y.mean()) / m
    norm = float(np.linalg.norm(lam))
    if norm == 0:
        raise ValueError("data: the label is uncorrelated with every feature (Λ = 0)")
    error = float(np.abs(Xw.T @ Xw / m - np.eye(d)).max())
    target = lam / norm
    return WhitenedProblem(X=np.sqrt(d) * np.eye(d), y=np.sqrt(d) * target, target=target,
                           label_scale=1.0 / norm, whitening_error=error)


@dataclass(frozen=True)
class ConvergencePreset:
    """Grids of the convergence experiment (Chapter 7, ``ch-beyond-speed``).

    Attributes
    ----------
    name : str
    depths : tuple of int
        Non-empty, each >= 1.
    width : int
        Every hidden width (32 in arXiv:1810.02281's Ethanol experiments),
        >= 2 (the Gaussian scheme needs hidden layers that are matrices).
    stds : tuple of float
        Initialization std of the layer-wise Gaussian scheme, also the entry
        std of the ``"balanced"`` scheme's end-to-end row (see
        :func:`convergence_runs`). Non-empty, each > 0.
    lrs : tuple of float
        Learning rates tried for every std; the fastest run is kept.
        Non-empty, each > 0.
    num_iters : int
        The cap (10^6 in the follow-up), >= 1.
    epsilon : float
        Converged: reduced loss at most ``epsilon`` (1e-5 in the follow-up), > 0.
    seeds : tuple of int
        Non-empty, each >= 0.

    Raises
    ------
    ValueError
        When the preset is made with a bad field, naming it (e.g. ``lrs[0]``, ``epsilon``).
    """

    name: str
    depths: tuple[int, ...]
    width: int
    stds: tuple[float, ...]
    lrs: tuple[float, ...]
    num_iters: int
    epsilon: float = 1e-5
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        for i, depth in enumerate(check_sequence("depths", self.depths, "integers >= 1")):
            check_int(f"depths[{i}]", depth, 1)
        check_int("width", self.width, 2)
        for i, std in enumerate(check_sequence("stds", self.stds, "numbers > 0")):
            check_real(f"stds[{i}]", std, above=0)
        for i, lr in enumerate(check_sequence("lrs", self.lrs, "numbers > 0")):
            check_real(f"lrs[{i}]", lr, above=0)
        check_int("num_iters", self.num_iters, 1)
        check_real("epsilon", self.epsilon, above=0)
        for i, seed in enumerate(check_sequence("seeds", self.seeds, "integers >= 0")):
            check_int(f"seeds[{i}]", seed, 0)


def _grid(lo: float, hi: float, per_decade: float) -> tuple[float, ...]:
    n = int(round(np.log10(hi / lo) * per_decade)) + 1
    return tuple(float(v) for v in np.geomspace(lo, hi, n))


#: Fast (CI), reader default (one seed each), and ``long``: the follow-up's learning-rate range on a grid twice as
#: fine as the default's, four stds per decade, three seeds, and a cap of 10^5 iterations, a tenth of the follow-up's
#: 10^6, which bounds the cost of training its 1,944 runs.
PRESETS: dict[str, ConvergencePreset] = {
    "fast": ConvergencePreset("fast", (3, 8), 32, _grid(0.01, 1.0, 2), _grid(1e-3, 1.0, 1), 2_000),
    "default": ConvergencePreset("default", (3, 8), 32, _grid(0.005, 1.0, 3), _grid(1e-4, 1.0, 1), 10_000),
    "long": ConvergencePreset("long", (3, 8), 32, _grid(0.002, 1.0, 4), _grid(1e-4, 1.0, 2), 100_000,
                              seeds=(0, 1, 2)),
}


@dataclass(frozen=True)
class ConvergenceRun:
    """One run of the experiment: its place in the grid and its :class:`~overparam.RunConfig`."""

    scheme: str
    depth: int
    std: float
    seed: int
    lr: float
    config: RunConfig


def _check_problem_and_preset(problem: Any, preset: Any) -> None:
    if not isinstance(problem, WhitenedProblem):
        raise ValueError(f"problem must be a WhitenedProblem (see whitened_problem), got {type(problem).__name__}")
    if not isinstance(preset, ConvergencePreset):
        raise ValueError(f"preset must be a ConvergencePreset, got {type(preset).__name__}")


def convergence_runs(problem: WhitenedProblem, preset: ConvergencePreset) -> list[ConvergenceRun]:
    r"""Every run of the experiment: depth × std × seed × learning rate × scheme (Chapter 7, ``ch-beyond-speed``).

    * ``"gaussian"``: layer-wise i.i.d. :math:`\mathcal N(0, s^2)` layers
      (``RunConfig(init="gaussian")``);
    * ``"balanced"``: Procedure 1 of arXiv:1810.02281 applied to an end-to-end
      row :math:`A` with i.i.d. :math:`\mathcal N(0, s^2)` entries: the
      procedure as stated, with the same std;
    * ``"balanced, same start"``: Procedure 1 applied to the Gaussian
      scheme's own end-to-end row :math:`W_e(0) = W_N\cdots W_1` (same depth,
      std and seed), so that the two start from the same end-to-end matrix and
      differ only in how it is split into layers: balanced or not (the book's
      control).

    The ``"balanced"`` row is drawn from ``seed`` (the same for every depth); the Gaussian layers from ``seed`` too.
    """
    _check_problem_and_preset(problem, preset)
    d = problem.target.size
    runs = []
    for depth in preset.depths:
        for std in preset.stds:
            for seed in preset.seeds:
                direction = rng_from_seed(seed, "preset.seeds").standard_normal(d) * std
                gaussian = RunConfig("gd", 1.0, depth=depth, p=2, width=preset.width, init="gaussian",
                                     init_scale=std, seed=seed)
                rows = {"balanced": direction, "balanced, same start": end_to_end(start_layers(gaussian, d))[0]}
                for lr in preset.lrs:
                    for scheme in SCHEMES:
                        if scheme == "gaussian":
                            cfg = replace(gaussian, lr=lr)
                        else:
                            a = rows[scheme]
                            cfg = RunConfig("gd", lr, depth=depth, p=2, width=preset.width, seed=seed,
                                            init_scale=float(np.linalg.norm(a)) ** (1 / depth),
                                            init_direction=tuple(a))
                        runs.append(ConvergenceRun(scheme, depth, std, seed, lr, cfg))
    return runs


def run_convergence(problem: WhitenedProblem, preset: ConvergencePreset, *, threads: int | None = 1,
                    **sweep_options: Any) -> SweepResult:
    """Train every run of :func:`convergence_runs` in lockstep, recording the first step at ``epsilon`` (Chapter 7).

    Float32 unless ``dtype`` is given. ``threads``: torch's thread count for
    the run (restored afterwards). The default is one thread: the matrices
    are small (at most 32 × 128), too small for the work of one product to be
    worth splitting between threads, and one thread does not compete with
    other processes for the cores. ``None`` leaves torch's setting alone.
    """
    import torch

    runs = [r.config for r in convergence_runs(problem, preset)]
    options: dict[str, Any] = dict(record=max(1, preset.num_iters // 100), target=preset.epsilon, dtype="float32")
    options.update(sweep_options)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int("threads", threads, 1))
    try:
        return run_sweep((problem.X, problem.y), runs, preset.num_iters, **options)
    finally:
        torch.set_num_threads(before)


def _check_preset_sweep(result: Any, problem: WhitenedProblem, preset: ConvergencePreset) -> list[ConvergenceRun]:
    """The runs of ``preset`` on ``problem``, after checking that ``result`` is their sweep to ``epsilon``.

    The same configs in the same order, the preset's ``num_iters`` and its ``epsilon`` as the target: a sweep
    of another preset (or a loaded file of another run) would otherwise be read as this one's.

    Raises
    ------
    ValueError
        Naming ``result``: not a :class:`~overparam.sweep.SweepResult`, run without a target, or not the
        sweep of ``preset`` on ``problem``.
    """
    result = check_sweep_result("result", result)
    if result.reached_at is None:
        raise ValueError("result has no reached_at: run it with run_convergence (a target)")
    runs = convergence_runs(problem, preset)
    if len(result) != len(runs) or result.num_iters != preset.num_iters or result.target != preset.epsilon:
        raise ValueError(f"result is not the sweep of preset {preset.name!r} on this problem "
                         f"({len(result)} runs of {result.num_iters} iterations to {result.target:g}; the preset "
                         f"makes {len(runs)} runs of {preset.num_iters} to {preset.epsilon:g})")
    for i, (run, config) in enumerate(zip(runs, result.configs)):
        name = run.config.differs_from(config)
        if name is not None:
            theirs, mine = getattr(config, name), getattr(run.config, name)
            which = f"another {name}" if isinstance(theirs, tuple) else f"{name}={theirs!r}, the preset's {mine!r}"
            raise ValueError(f"result is not the sweep of preset {preset.name!r} on this problem: its run {i} "
                             f"({config.label}) has {which}")
    return runs


def iterations_by_seed(result: SweepResult, problem: WhitenedProblem,
                       preset: ConvergencePreset) -> dict[tuple[str, int], np.ndarray]:
    """Per (scheme, depth): the fewest iterations to ``epsilon`` over learning rates, per std and seed (Chapter 7).

    Row ``k`` is the preset's ``stds[k]``, column ``j`` its ``seeds[j]``;
    :data:`~overparam.training.NEVER` where no learning rate got there within
    ``num_iters`` (Chapter 7, ``ch-beyond-speed``). With several seeds, the
    columns show how much a count owes to the draw.

    Raises
    ------
    ValueError
        If ``result`` is not the sweep of ``preset`` on ``problem`` (same runs, ``num_iters`` and ``epsilon``).
    """
    runs = _check_preset_sweep(result, problem, preset)
    row = {std: k for k, std in enumerate(preset.stds)}
    column = {seed: j for j, seed in enumerate(preset.seeds)}
    table = {(scheme, depth): np.full((len(preset.stds), len(preset.seeds)), NEVER)
             for depth in preset.depths for scheme in SCHEMES}
    for i, run in enumerate(runs):
        cell = table[run.scheme, run.depth]
        k, j = row[run.std], column[run.seed]
        cell[k, j] = min(cell[k, j], float(result.reached_at[i]))
    return table


def iterations_vs_std(result: SweepResult, problem: WhitenedProblem,
                      preset: ConvergencePreset) -> dict[tuple[str, int], np.ndarray]:
    """Per (scheme, depth), for each std of the preset: the median over seeds of the fewest iterations to ``epsilon``.

    For each seed, the fewest iterations over the learning rates
    (:func:`iterations_by_seed`); then the median over the seeds, which with
    one seed is that seed's count, and with an odd number is the middle
    count: :data:`~overparam.training.NEVER` where no more than half of the
    seeds got there within ``num_iters`` (Chapter 7, ``ch-beyond-speed``).
    With an even number it is the mean of the middle two, and never if either is.

    Raises
    ------
    ValueError
        If ``result`` is not the sweep of ``preset`` on ``problem`` (same runs, ``num_iters`` and ``epsilon``).
    """
    return median_over_seeds(iterations_by_seed(result, problem, preset))


def median_over_seeds(by_seed: dict[tuple[str, int], np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
    """Per key, the median over the columns (seeds) of a table of :func:`iterations_by_seed` (Chapter 7).

    :data:`~overparam.training.NEVER` counts as more than any number of
    iterations, as in :func:`iterations_vs_std`.

    Raises
    ------
    ValueError
        If an entry is not a two-dimensional array with at least one column, naming its key.
    """
    out = {}
    for key, counts in by_seed.items():
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] < 1 or np.isnan(counts).any():
            raise ValueError(f"by_seed[{key!r}] must be a (stds, seeds) array of iteration counts with at least one "
                             f"seed and no NaN; got shape {counts.shape}")
        out[key] = np.median(counts, axis=1)
    return out


def iterations_markdown(table: dict[tuple[str, int], np.ndarray], preset: ConvergencePreset) -> str:
    """The iterations to ``epsilon`` against the init std as a Markdown table (Chapter 7, ``ch-beyond-speed``, Part A).

    One row per depth of ``preset`` and scheme of :data:`SCHEMES` (depths in the
    preset's order, the schemes within each depth), one column per std of
    ``preset``; each entry is :func:`format_iterations` of the count.

    Parameters
    ----------
    table : dict
        ``(scheme, depth) -> counts``, one count per std of ``preset``, as
        :func:`iterations_vs_std` returns it.
    preset : ConvergencePreset
        The preset the table was measured with.

    Returns
    -------
    str
        A header ``| depth | scheme | s = … |``, a separator line and one line per row.

    Raises
    ------
    ValueError
        If ``preset`` is not a :class:`ConvergencePreset`, a (scheme, depth) of the preset is missing from
        ``table``, or a row does not have one count per std.
    """
    if not isinstance(preset, ConvergencePreset):
        raise ValueError(f"preset must be a ConvergencePreset, got {type(preset).__name__}")
    lines = ["| depth | scheme | " + " | ".join(f"s = {s:.3g}" for s in preset.stds) + " |",
             "|" + "---|" * (2 + len(preset.stds))]
    for depth in preset.depths:
        for scheme in SCHEMES:
            if (scheme, depth) not in table:
                raise ValueError(f"table has no row for scheme {scheme!r} at depth {depth}")
            row = np.asarray(table[scheme, depth], dtype=np.float64).reshape(-1)
            if row.size != len(preset.stds):
                raise ValueError(f"table[{scheme!r}, {depth}] has {row.size} counts, the preset has "
                                 f"{len(preset.stds)} stds")
            lines.append(f"| {depth} | {scheme} | " + " | ".join(map(format_iterations, row)) + " |")
    return "\n".join(lines)


def fastest_run(result: SweepResult, problem: WhitenedProblem, preset: ConvergencePreset, scheme: str, depth: int,
                std: float, seed: int | None = None) -> ConvergenceRun | None:
    """The run of ``scheme`` and ``depth`` at ``std`` that reached ``epsilon`` first; ``None`` if none did (Chapter 7).

    Over every seed of the preset, or only ``seed``'s runs when it is given. Ties go to the larger step size, as in
    the sweep's :data:`~overparam.sweep.FASTEST_TO_TARGET` rule.

    Raises
    ------
    ValueError
        If ``result`` is not the sweep of ``preset`` on ``problem`` (same runs, ``num_iters`` and ``epsilon``),
        or the preset has no runs of ``scheme`` and ``depth`` at ``std`` (of ``seed``).
    """
    runs = _check_preset_sweep(result, problem, preset)
    idx = [i for i, r in enumerate(runs) if r.scheme == scheme and r.depth == depth and np.isclose(r.std, std)
           and (seed is None or r.seed == seed)]
    if not idx:
        of_seed = "" if seed is None else f" of seed {seed!r}"
        raise ValueError(f"no runs of scheme {scheme!r}, depth {depth} at std {std:g}{of_seed} in preset "
                         f"{preset.name!r}")
    best = min(idx, key=lambda i: (result.reached_at[i], -runs[i].lr))
    return runs[best] if np.isfinite(result.reached_at[best]) else None


def depth_color(depth: int) -> str:
    """The colour of a depth in Chapter 7's figures: the book's :data:`~overparam.plotting.DEPTH_COLORS` (3 ochre, 8 bluish green)."""
    depth = check_int("depth", depth, 1)
    return DEPTH_COLORS[depth % len(DEPTH_COLORS)]


#: Line style and marker of each scheme in Chapter 7's figures.
SCHEME_STYLES: dict[str, tuple[str, str]] = {"gaussian": ("--", "s"), "balanced": ("-", "o"),
                                              "balanced, same start": (":", "^")}
#: Spacing of the rows of failed runs in :func:`plot_iterations_vs_std`, as a fraction of the decades the
#: converged counts span below the cap (at least one decade).
FAILED_ROW_SPACING = 0.07


def failed_rows(table: dict[tuple[str, int], np.ndarray], cap: int) -> dict[tuple[str, int], float]:
    """The height of each (scheme, depth)'s row of failed runs in :func:`plot_iterations_vs_std` (Chapter 7).

    Every (scheme, depth) of ``table`` that has a run which did not converge
    gets its own row above the cap, ``cap · f**k`` for k = 1, 2, … in the
    order of the table's keys, so that no failed marker hides another. The
    factor f spaces the rows evenly on the log axis whatever its range:
    ``FAILED_ROW_SPACING`` times the decades from the fewest iterations in
    the table up to the cap (at least one decade).
    """
    cap = check_int("cap", cap, 1)
    values = [np.asarray(its, dtype=np.float64) for its in table.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.empty(0)
    decades = max(1.0, math.log10(cap / min(cap, finite.min()))) if finite.size else 1.0
    factor = 10.0 ** (FAILED_ROW_SPACING * decades)
    keys = [key for key, its in zip(table, values) if (~np.isfinite(its)).any()]
    return {key: cap * factor ** (k + 1) for k, key in enumerate(keys)}


def plot_iterations_vs_std(table: dict[tuple[str, int], np.ndarray], preset: ConvergencePreset,
                           ax: Any = None, by_seed: dict[tuple[str, int], np.ndarray] | None = None) -> Any:
    """Iterations to ``epsilon`` against the init std, per scheme and depth (Chapter 7, ``ch-beyond-speed``).

    Converged runs: the scheme's marker, filled, joined by the scheme's line
    style, in the depth's colour. Runs that did not converge within the cap:
    the same marker, unfilled, on a row of their own above the cap
    (:func:`failed_rows`), one row per (depth, scheme), labelled at the
    right in dark grey (the depth colours, fine for markers, are too pale for
    small text: WCAG asks 4.5:1 of text); the y-axis ends one row's spacing above the highest. The cap is
    the dotted line; the legend is below the axes.

    With ``by_seed`` (:func:`iterations_by_seed`, for a preset of several
    seeds, ``table`` then being their median), each seed's count where it
    converged is a small dot in the depth's colour behind the median's
    marker, and the legend has an entry for the dots.
    """
    import matplotlib.pyplot as plt

    for scheme, _ in table:
        if scheme not in SCHEMES:
            raise ValueError(f"table keys must be (scheme, depth) with scheme one of {SCHEMES}, got {scheme!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    stds = np.asarray(preset.stds)
    rows = failed_rows(table, preset.num_iters)
    if by_seed is not None:
        for key, counts in by_seed.items():
            counts = np.asarray(counts, dtype=np.float64)
            if key not in table or counts.ndim != 2 or counts.shape[0] != stds.size:
                raise ValueError(f"by_seed[{key!r}] must be a (stds, seeds) array of a (scheme, depth) of table, "
                                 f"{stds.size} rows; got shape {counts.shape}")
            x = np.broadcast_to(stds[:, None], counts.shape)
            done = np.isfinite(counts)
            ax.loglog(x[done], counts[done], ".", ls="none", ms=3, alpha=0.7, color=depth_color(key[1]), zorder=1)
    for (scheme, depth), its in table.items():
        color = depth_color(depth)
        style, marker = SCHEME_STYLES[scheme]
        done = np.isfinite(its)
        ax.loglog(stds[done], its[done], style + marker, color=color, ms=4, label=f"depth {depth}, {scheme}",
                  zorder=2)
        if (scheme, depth) in rows:
            y = rows[scheme, depth]
            ax.loglog(stds[~done], np.full((~done).sum(), y), marker, ls="none", color=color, mfc="none", ms=6,
                      mew=1.2)
            ax.annotate(f"N = {depth}, {scheme}", (1.0, y), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.2", annotation_clip=False)
    if rows:  # room for the rows, one row's spacing above the highest
        highest = max(rows.values())
        ax.set_ylim(top=highest * (highest / preset.num_iters) ** (1 / len(rows)))
    ax.axhline(preset.num_iters, color="0.6", lw=0.8, ls=":")
    ax.annotate("cap", (1.0, preset.num_iters), xycoords=("axes fraction", "data"), xytext=(3, 0),
                textcoords="offset points", va="center", fontsize=8, color="0.4", annotation_clip=False)
    ax.set(xlabel="initialization std s",
           ylabel=f"iterations to ℓ ≤ {math_power(preset.epsilon)}",
           title="convergence time against the initial scale (open: not within the cap)")
    if by_seed is not None:  # a legend entry for the dots, in grey: they take each depth's colour
        n_seeds = {np.shape(counts)[1] for counts in by_seed.values()}
        ax.plot([], [], ".", ls="none", ms=3, color="0.4",
                label=f"each of the {n_seeds.pop()} seeds (where it converged); line: their median"
                if len(n_seeds) == 1 else "each seed (where it converged); line: their median")
    # Below the axes, one column per depth: inside, it would cover the rows of failed runs.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    return ax


def deficiency_margin(W_e: np.ndarray, target: np.ndarray) -> float:
    r"""The deficiency margin :math:`c = \sigma_{\min}(\Phi) - \|W - \Phi\|_F` of ``W_e`` w.r.t. ``target`` (Chapter 7).

    Positive when the ball of radius :math:`\|W - \Phi\|_F` around the target
    contains no rank-deficient matrix (arXiv:1810.02281, Definition 2); then
    every matrix at least as close to the target has
    :math:`\sigma_{\min} \ge c`.
    """
    W = np.atleast_2d(finite_array("W_e", W_e))
    Phi = np.atleast_2d(finite_array("target", target))
    if W.shape != Phi.shape:
        raise ValueError(f"W_e must have the target's shape {Phi.shape}, got {W.shape}")
    return float(np.linalg.svd(Phi, compute_uv=False).min() - np.linalg.norm(W - Phi))


def start_margins(problem: WhitenedProblem, preset: ConvergencePreset) -> dict[tuple[str, int], np.ndarray]:
    """Per (scheme, depth), for each std of the preset: the deficiency margin of the start (Chapter 7).

    The margin (:func:`deficiency_margin`) of the end-to-end row each scheme starts from, for the preset's first
    seed: positive where the start satisfies the margin hypothesis of arXiv:1810.02281's convergence theorem.
    """
    runs = [r for r in convergence_runs(problem, preset) if r.seed == preset.seeds[0] and r.lr == preset.lrs[0]]
    d = problem.target.size
    return {(scheme, depth): np.array([deficiency_margin(end_to_end(start_layers(r.config, d)), problem.target)
                                       for r in runs if r.scheme == scheme and r.depth == depth])
            for depth in preset.depths for scheme in SCHEMES}


def rate_bound(W_e: np.ndarray, depth: int) -> float:
    r"""The rate :math:`2\,\sigma_{\min}(W_e)^{2(N-1)/N}` of the gradient-flow bound :math:`\dot\ell \le -2\sigma_{\min}^{2(N-1)/N}\,\ell`.

    From Claim 1 of arXiv:1802.06509: every eigenvalue of the preconditioner
    :math:`P_{W_e}` is at least :math:`\sigma_{\min}(W_e)^{2(N-1)/N}`, and
    :math:`\|\nabla\ell\|^2 = 2\ell` for :math:`\ell = \frac12\|W - \Phi\|^2`
    (Chapter 7, ``ch-beyond-speed``).
    """
    depth = check_int("depth", depth, 1)
    W = np.atleast_2d(finite_array("W_e", W_e))
    return float(2 * np.linalg.svd(W, compute_uv=False).min() ** (2 * (depth - 1) / depth))


def imbalance_along(problem: WhitenedProblem, config: RunConfig, checkpoints: Sequence[int]) -> np.ndarray:
    r"""The smallest δ for which the layers are δ-balanced, :math:`\max_j \|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F`,
    at step 0 and at every checkpoint of the run ``config`` (Chapter 7; arXiv:1810.02281, Definition 1).

    The run is re-trained in float64 by :func:`overparam.train_deep_linear`
    from the sweep's own start (:func:`overparam.sweep.start_layers`).
    """
    d = problem.target.size
    return measure_at(
        lambda layers, n: list(train_deep_linear(problem.X, problem.y, 2, layers, config.lr, n, record_every=n).factors),
        start_layers(config, d), checkpoints, max_imbalance)
