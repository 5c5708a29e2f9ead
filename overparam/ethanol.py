r"""The paper's Ethanol experiments: presets, figures, summaries and the precision yardstick (Chapters 2 and 4).

One lockstep sweep (:func:`overparam.run_sweep`) on the standardized Ethanol problem
(2565 x 128, no bias) holds the paper's ℓp regression experiments (arXiv:1802.06509; the
authors' blog post shows the same figures):

* the depth sweeps: full-batch GD on depth-N linear networks with scalar hidden layers, for
  the ℓ2 and the ℓ4 loss, a learning-rate grid per depth;
* the teaser: on ℓ4, GD on the linear model (depth 1) and with one extra scalar (depth 2),
  both from the depth sweep, against AdaGrad and AdaDelta (the paper's baselines) and
  heavy-ball momentum and Adam (ours), each over a grid of its hyper-parameters.

Every run starts from the same end-to-end vector :math:`w_e(0) = 0.01\,u` (u a seeded unit
vector): a depth-N network from the balanced factors :math:`\|w_1\| = |\omega_j| = 0.01^{1/N}`.
The paper's own initialization scale, grids and hyper-parameters are not known; these are
ours, chosen by rules stated in Chapter 2, and how the grids were calibrated is recorded in
``docs/design-notes.md``. Learning-rate grids lie on the quarter-decade lattice
:math:`10^{k/4}`; the deep networks' grids reach lower at the paper's budget because their
effective step grows with :math:`\|w\|^{2-2/N}` (Chapter 4, ``ch-preconditioner``), so they diverge late.

The figures show, per depth and per method, the run with the lowest final loss among those
that trained (:data:`overparam.sweep.BEST_FINAL`); the printed summary also names the
largest stable η (:data:`overparam.sweep.LARGEST_STABLE`). The results file holds every run.

Reading the sweeps on the right yardstick:

A sweep of :func:`overparam.run_sweep` on the standardized Ethanol problem
records the raw ℓp loss. Its minimum :math:`L^*` (:func:`overparam.lp_optimum`)
is far from 0, so "how fast does depth help" is measured here as the number of
iterations a run needs to come within :math:`\\varepsilon` of the optimum,
:math:`L \\le L^* + \\varepsilon`, for a ladder of absolute precisions
:data:`EPSILONS`, and the speed-up of depth :math:`N` over depth 1 as the ratio
of those counts (arXiv:1802.06509: ℓ4 regression accelerated by
depth).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .optimum import check_optimum, suboptimality
from .plotting import BASELINE_COLORS, DEPTH_COLORS, depth_linestyle, loss_axes, plot_loss
from .sweep import (BEST_FINAL, LARGEST_STABLE, RunConfig, SweepResult, check_sweep_result, log_steps, product_runs,
                    quarter_decades, select_runs)
from .training import format_iterations
from .validation import check_int, check_real, check_sequence

__all__ = ["EPSILONS", "EthanolPreset", "L4_GRID_TOP", "PRESETS", "PrecisionRow", "TARGETS", "TEASER_NAMES",
           "TEASER_STYLES", "W_E0_NORM", "failed_groups", "gap_ratio_range", "grid_position", "plot_depth_sweep",
           "plot_speedup_vs_precision", "plot_teaser", "precision_markdown", "precision_table", "speedup_vs_precision",
           "summary", "summary_markdown", "teaser_runs"]

#: The absolute precisions ε of the ladder: a run has reached ε when its loss is at most L* + ε.
EPSILONS: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


@dataclass(frozen=True)
class PrecisionRow:
    """One chosen run of a sweep, measured against the optimum (Chapter 2, ``ch-deep-linear``).

    Attributes
    ----------
    method : str
    depth : int
    index : int
        Row of the run in the sweep.
    lr : float
    final_gap : float
        :math:`L - L^*` at the end of the run.
    iterations : tuple of float
        Per ε of the ladder, the first recorded iteration with
        :math:`L \\le L^* + \\varepsilon`; ``inf`` if never.
    """

    method: str
    depth: int
    index: int
    lr: float
    final_gap: float
    iterations: tuple[float, ...]


def _loss_exponent(result: SweepResult, p: Any) -> int:
    """``p`` checked as an even integer >= 2 that is the loss exponent of some run of ``result``."""
    check_sweep_result("result", result)
    p = check_int("p", p, 2, expected="an even integer >= 2")
    held = sorted({c.p for c in result.configs})  # even: RunConfig checks it
    if p not in held:
        raise ValueError(f"p must be the exponent of an ℓp loss the results hold, one of {held}, got {p}")
    return p


def precision_table(result: SweepResult, optimum: float, p: int, epsilons: Sequence[float] = EPSILONS,
                    rule: str = BEST_FINAL) -> list[PrecisionRow]:
    """Per method and depth of the ℓp runs, the run chosen by ``rule`` and its iterations to each precision.

    Groups in which no run trained (every run diverged or collapsed, see
    :attr:`overparam.SweepResult.trained`) have no row; :func:`failed_groups`
    lists them.

    Parameters
    ----------
    result : SweepResult
    optimum : float
        :math:`L^*` of the ℓp loss.
    p : int
        The exponent whose runs are tabulated.
    epsilons : sequence of float
        The precisions ε > 0; each row gives the iterations to :math:`L \\le L^* + \\varepsilon`.
    rule : str
        How a group's run is chosen (:func:`overparam.select_runs`), by default the best final loss.

    Raises
    ------
    ValueError
        If ``optimum`` is not a finite number or lies above some recorded loss
        of the ℓp runs beyond round-off (:func:`overparam.optimum.check_optimum`),
        ``p`` is not the exponent of some run of ``result`` (the message lists
        those it holds), or an ε is not > 0.
    """
    optimum = check_real("optimum", optimum, expected="a finite loss")
    p = _loss_exponent(result, p)
    check_optimum(optimum, result.loss[[c.p == p for c in result.configs]])
    eps = [float(e) for e in epsilons]
    if not eps or any(not (np.isfinite(e) and e > 0) for e in eps):
        raise ValueError(f"epsilons must be positive numbers, got {epsilons!r}")
    chosen = select_runs(result, rule, by=["method", "depth", "p"])
    hits = np.array([result.iterations_to(optimum + e) for e in eps])  # (E, B)
    rows = []
    for (method, depth, pp), i in sorted(chosen.items()):
        if pp == p:
            rows.append(PrecisionRow(method, depth, i, result.configs[i].lr, float(result.final_loss[i] - optimum),
                                     tuple(float(h) for h in hits[:, i])))
    return rows


def _row_epsilons(rows: Sequence[PrecisionRow], epsilons: Sequence[float]) -> list[float]:
    """``epsilons`` as floats, checked to be the ladder the rows were measured on (one count per ε)."""
    eps = [float(e) for e in epsilons]
    if any(len(r.iterations) != len(eps) for r in rows):
        raise ValueError(f"rows must have one iteration count per ε ({len(eps)}); build them with the same epsilons")
    return eps


def precision_markdown(rows: Sequence[PrecisionRow], epsilons: Sequence[float] = EPSILONS) -> str:
    """:func:`precision_table`'s rows as a Markdown table: η, final :math:`L - L^*`, iterations per ε (Chapter 2).

    "not reached" marks a precision the run never reached.
    """
    eps = _row_epsilons(rows, epsilons)
    head = "| method | depth | η | final L − L* | " + " | ".join(f"ε = {e:g}" for e in eps) + " |"
    body = [f"| {r.method} | {r.depth} | {r.lr:.3g} | {r.final_gap:.4f} | " + " | ".join(map(format_iterations, r.iterations)) + " |"
            for r in rows]
    return head + "\n|" + "---|" * (4 + len(eps)) + "\n" + "\n".join(body)


def speedup_vs_precision(rows: Sequence[PrecisionRow], method: str = "gd") -> dict[int, np.ndarray]:
    """Per depth N > 1, iterations of depth 1 / iterations of depth N at each ε (Chapter 2, ``ch-deep-linear``).

    ``inf`` where depth 1 never reached ε but depth N did (the speed-up is then
    at least ``num_iters`` / iterations of depth N); ``nan`` where depth N did not
    reach it; 1 where both were there at step 0 (an ε above both starts' loss: no
    speed-up either way).
    """
    by_depth = {r.depth: np.asarray(r.iterations) for r in rows if r.method == method}
    if 1 not in by_depth:
        raise ValueError(f"no trained depth-1 run of method {method!r} to compare with")
    base = by_depth[1]
    out = {}
    for depth, its in sorted(by_depth.items()):
        if depth > 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(np.isfinite(its), base / its, np.nan)
            ratio[(its == 0) & (base == 0)] = 1.0  # 0 / 0: both at ε from the start
            out[depth] = ratio
    return out


def failed_groups(result: SweepResult, p: int) -> dict[tuple[str, int], list[str]]:
    """The (method, depth) groups of the ℓp runs in which no run trained, with each run's outcome (Chapter 2).

    ``p`` must be the exponent of some run of ``result`` (else a ``ValueError`` listing those it holds).
    """
    p = _loss_exponent(result, p)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, c in enumerate(result.configs):
        if c.p == p:
            groups.setdefault((c.method, c.depth), []).append(i)
    trained = result.trained
    return {key: [f"η={result.configs[i].lr:.3g}: {result.outcome(i)}" for i in idx]
            for key, idx in sorted(groups.items()) if not trained[idx].any()}


def plot_speedup_vs_precision(rows: Sequence[PrecisionRow], num_iters: int, epsilons: Sequence[float] = EPSILONS,
                              ax: Any = None) -> Any:
    """The speed-up of each depth over depth 1 against the precision ε asked for (Chapter 2, ``ch-deep-linear``).

    Filled markers: both reached ε; open markers at ``num_iters`` / iterations
    of depth N: depth 1 never reached ε, so the speed-up is at least that.
    """
    import matplotlib.pyplot as plt

    num_iters = check_int("num_iters", num_iters, 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    eps = np.asarray(_row_epsilons(rows, epsilons))
    by_depth: Mapping[int, PrecisionRow] = {r.depth: r for r in rows if r.method == "gd"}
    for depth, ratio in speedup_vs_precision(rows).items():
        color = DEPTH_COLORS[depth % len(DEPTH_COLORS)]
        its = np.asarray(by_depth[depth].iterations)
        exact = np.isfinite(ratio)
        bound = np.isinf(ratio)
        ax.plot(eps[exact], ratio[exact], marker="o", ls=depth_linestyle(depth), color=color, label=f"depth {depth}")
        if bound.any():
            ax.plot(eps[bound], num_iters / its[bound], "^", mfc="none", color=color, ms=8)
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(eps, [f"{e:g}" for e in eps])  # the ladder itself, not just the decades
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.invert_xaxis()
    ax.set_xlabel("precision ε asked for: L ≤ L* + ε")
    ax.set_ylabel("iterations of depth 1 / of depth N")
    ax.set_title("speed-up over depth 1 (open: depth 1 never got there, a lower bound)")
    ax.legend(fontsize=8)
    return ax


#: ‖w_e(0)‖, shared by every run.
W_E0_NORM = 0.01
#: Top of the ℓ4 learning-rate grid per depth (first η that diverged within 1e5 iterations).
L4_GRID_TOP = {1: 10**-2.25, 2: 10**-2.5, 3: 10**-3, 4: 10**-3, 5: 10**-3.25, 6: 10**-3.25, 7: 10**-3.25, 8: 10**-3.25}
#: Loss levels of the summary's "iterations to target" column, per p (Chapter 2 measures against L* instead).
TARGETS = {4: 0.1, 2: 0.07}
#: Legend names of the teaser's methods.
TEASER_NAMES = {"adagrad": "AdaGrad", "adadelta": "AdaDelta", "momentum": "momentum", "adam": "Adam"}
#: Line styles of the teaser's baselines: colours outside :data:`~overparam.plotting.DEPTH_COLORS`
#: (:data:`~overparam.plotting.BASELINE_COLORS`, black and grey) and broken lines, so that GD keeps its depth colour
#: (solid) and no baseline reads as a depth. AdaGrad's short dashes and AdaDelta's long ones tell apart two colours
#: that are close in lightness.
TEASER_STYLES = {
    "adagrad": {"color": BASELINE_COLORS[0], "ls": "--"},
    "adadelta": {"color": BASELINE_COLORS[1], "ls": (0, (9, 3))},
    "momentum": {"color": "0.45", "ls": "-."},
    "adam": {"color": "0.0", "ls": ":"},
}


def _init_scale(depth: int) -> float:
    return W_E0_NORM ** (1 / depth)


@dataclass(frozen=True)
class EthanolPreset:
    """One scale of the Ethanol sweeps.

    Attributes
    ----------
    name : str
    num_iters : int
        >= 1.
    depths : tuple of int
        Depths of the GD sweeps (both losses), non-empty, each a key of
        :data:`L4_GRID_TOP` (1 to 8).
    l4_points : int or dict of int to int
        ℓ4 grid per depth: this many quarter-decade points below :data:`L4_GRID_TOP`
        (one number >= 1 for every depth, or one per depth of ``depths``).
    l2_grid : tuple of float
        ℓ2 grid, the same for every depth, non-empty, each > 0.
    baselines : dict
        Per baseline method, the grid axes handed to :func:`overparam.sweep.product_runs`
        (ℓ4, linear model).

    Raises
    ------
    ValueError
        When the preset is made with a bad field, naming it.
    """

    name: str
    num_iters: int
    depths: tuple[int, ...]
    l4_points: int | dict[int, int]
    l2_grid: tuple[float, ...]
    baselines: dict[str, dict[str, Any]]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        check_int("num_iters", self.num_iters, 1)
        depths = check_sequence("depths", self.depths, f"integers in 1 to {max(L4_GRID_TOP)}")
        for i, depth in enumerate(depths):
            check_int(f"depths[{i}]", depth, min(L4_GRID_TOP), max(L4_GRID_TOP),
                      expected=f"a depth of L4_GRID_TOP, an integer in 1 to {max(L4_GRID_TOP)}")
        if isinstance(self.l4_points, Mapping):
            missing = [depth for depth in depths if depth not in self.l4_points]
            if missing:
                raise ValueError(f"l4_points must have an entry for every depth of depths, missing {missing}")
            for depth in depths:
                check_int(f"l4_points[{depth}]", self.l4_points[depth], 1)
        else:
            check_int("l4_points", self.l4_points, 1, expected="an integer >= 1 or a dict {depth: integer >= 1}")
        for i, lr in enumerate(check_sequence("l2_grid", self.l2_grid, "numbers > 0")):
            check_real(f"l2_grid[{i}]", lr, above=0)
        if not isinstance(self.baselines, Mapping) or not all(isinstance(a, Mapping) for a in self.baselines.values()):
            raise ValueError(f"baselines must be a dict {{method: {{field: values}}}}, got {self.baselines!r}")

    def runs(self) -> tuple[RunConfig, ...]:
        """Every run of the preset: ℓ2 depth sweep, ℓ4 depth sweep, ℓ4 baselines."""
        runs: list[RunConfig] = []
        for depth in self.depths:
            runs += product_runs(method="gd", depth=depth, p=2, lr=list(self.l2_grid), init_scale=_init_scale(depth))
        for depth in self.depths:
            top = round(4 * np.log10(L4_GRID_TOP[depth]))
            points = self.l4_points[depth] if isinstance(self.l4_points, Mapping) else self.l4_points
            runs += product_runs(method="gd", depth=depth, p=4, lr=quarter_decades(top - points, top - 1),
                                 init_scale=_init_scale(depth))
        for method, axes in self.baselines.items():
            runs += product_runs(method=method, p=4, init_scale=W_E0_NORM, **axes)
        return tuple(runs)

    def record(self) -> np.ndarray:
        """Recorded steps: 20 per decade (log plots) and every 1/200 of the run (linear plots)."""
        return log_steps(self.num_iters, 20, every=max(1, self.num_iters // 200))


#: The three scales. ``fast``: CI. ``default``: a reader's laptop (times: ``instructors.md``).
#: ``paper``: the paper's budget of 10⁶ iterations, all eight depths. The baseline grids
#: (ℓ4, linear model) bracket the best value found in a calibration (``docs/design-notes.md``).
PRESETS: dict[str, EthanolPreset] = {
    "fast": EthanolPreset(
        "fast", 2_000, (1, 2, 3), 2, (0.01, 0.0178),
        {
            "adagrad": {"lr": [0.01]},
            "adadelta": {"lr": [0.1], "rho": [0.95], "eps": [1e-8]},
            "momentum": {"lr": [1e-3], "momentum": [0.99]},
            "adam": {"lr": [1e-3]},
        },
    ),
    "default": EthanolPreset(
        "default", 100_000, (1, 2, 3, 4), 2, tuple(quarter_decades(-10, -6)),
        {
            "adagrad": {"lr": [0.01]},
            "adadelta": {"lr": [0.1], "rho": [0.95], "eps": [1e-8]},
            "momentum": {"lr": [1e-3, 1.78e-3], "momentum": [0.99]},
            "adam": {"lr": [3.16e-4, 1e-3]},
        },
    ),
    "paper": EthanolPreset(
        "paper", 1_000_000, tuple(range(1, 9)), {1: 3, 2: 4, 3: 4, 4: 4, 5: 5, 6: 5, 7: 5, 8: 5},
        tuple(quarter_decades(-12, -4)),
        {
            "adagrad": {"lr": quarter_decades(-9, -7)},
            "adadelta": {"lr": [0.0316, 0.1], "rho": [0.9, 0.95], "eps": [1e-8]},
            "momentum": {"lr": [1e-3, 1.78e-3], "momentum": [0.9, 0.99]},
            "adam": {"lr": quarter_decades(-14, -12)},
        },
    ),
}


def _curve(result: SweepResult, i: int, optimum: float | None) -> np.ndarray:
    """Run ``i``'s recorded loss, or its suboptimality L − L* when ``optimum`` is given."""
    return result.loss[i] if optimum is None else suboptimality(result.loss[i], optimum)


def _loss_label(p: int, optimum: float | None) -> str:
    return f"ℓ{p} loss" if optimum is None else f"ℓ{p} loss − L*"


def plot_depth_sweep(result: SweepResult, p: int, ax: Any = None, optimum: float | None = None) -> Any:
    """Plot, per depth, the chosen GD run of the ℓp depth sweep (Chapter 2; the depth experiments of arXiv:1802.06509).

    The run per depth is the best final loss among those that trained
    (:data:`~overparam.sweep.BEST_FINAL`). With ``optimum`` (:math:`L^*` of
    :func:`overparam.lp_optimum`) the curves are the suboptimality
    :math:`L - L^*`. Log-log axes; returns the axes. ``p`` must be the exponent
    of some run of ``result``.
    """
    p = _loss_exponent(result, p)
    chosen = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    ax = loss_axes(ax, title=f"ℓ{p}, GD on depth-N linear networks", ylabel=_loss_label(p, optimum), logx=True)
    after0 = result.steps > 0  # log axis
    for (method, depth, pp), i in sorted(chosen.items()):
        if method == "gd" and pp == p:
            plot_loss(ax, result.steps[after0], _curve(result, i, optimum)[after0],
                      f"N={depth}, η={result.configs[i].lr:g}", color=DEPTH_COLORS[depth % len(DEPTH_COLORS)],
                      ls=depth_linestyle(depth))
    ax.legend(fontsize=8)
    return ax


def teaser_runs(result: SweepResult) -> dict[str, int]:
    """The teaser's runs (ℓ4, best final loss per method): GD at depths 1 and 2, and each baseline."""
    chosen = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    picks = {f"GD, depth {n}" + (" (one extra scalar)" if n == 2 else ""): chosen.get(("gd", n, 4)) for n in (1, 2)}
    picks.update({name: chosen.get((m, 1, 4)) for m, name in TEASER_NAMES.items()})
    return {k: v for k, v in picks.items() if v is not None}



def gap_ratio_range(result: SweepResult, run: int, reference: int, optimum: float) -> tuple[float, float]:
    """How close two runs' curves stay: the lowest and highest ratio of their :math:`L - L^*` (Chapter 2).

    The ratio is run ``run``'s suboptimality over run ``reference``'s at every
    recorded step after the start (at step 0 a common start gives 1). Chapter 2
    uses it to say how closely the teaser's AdaGrad curve follows plain GD's
    (``ch-deep-linear``): a range within a few percent of 1 means the two
    curves lie on top of each other on a log axis.

    Parameters
    ----------
    result : SweepResult
    run, reference : int
        Row indices of the two runs, e.g. from :func:`teaser_runs`.
    optimum : float
        :math:`L^*` of the runs' loss (both must share the loss exponent).

    Returns
    -------
    (float, float)
        The minimum and maximum of the ratio over the recorded steps after 0.

    Raises
    ------
    ValueError
        ``run`` or ``reference`` is not a row; the two runs have different loss
        exponents; either diverged (its record holds NaN); the reference reaches
        :math:`L^*` to round-off at a recorded step (the ratio is undefined); or
        ``optimum`` lies above a recorded loss (:func:`check_optimum`).
    """
    check_sweep_result("result", result)
    run = check_int("run", run, 0, len(result) - 1)
    reference = check_int("reference", reference, 0, len(result) - 1)
    if result.configs[run].p != result.configs[reference].p:
        raise ValueError(f"run and reference: runs {run} and {reference} minimize different losses "
                         f"(p = {result.configs[run].p} and {result.configs[reference].p}); compare runs of one loss")
    for name, i in (("run", run), ("reference", reference)):
        if not np.all(np.isfinite(result.loss[i])):
            raise ValueError(f"{name}: run {i} diverged at step {result.diverged_at[i]:.0f}; "
                             "compare runs that trained")
    gap = suboptimality(result.loss[[run, reference], 1:], optimum)
    if np.any(gap[1] == 0):
        step = int(result.steps[1:][np.argmax(gap[1] == 0)])
        raise ValueError(f"reference: run {reference} is at L* to round-off at step {step:,}, so the ratio of the "
                         "suboptimalities is undefined there")
    ratio = gap[0] / gap[1]
    return float(ratio.min()), float(ratio.max())

def grid_position(result: SweepResult, i: int) -> dict[str, tuple[float, str, int]]:
    """Where run ``i``'s settings lie in the grid its method was swept over (Chapter 2, ``ch-deep-linear``).

    The grid is every run of the sweep with run ``i``'s method, depth and loss
    exponent. For the learning rate and for each hyper-parameter (AdaDelta's
    ρ, momentum's β, ...) it tells whether run ``i``'s value is the lowest,
    the highest or inside the values swept, or the only one. A method whose
    chosen run (:data:`~overparam.sweep.BEST_FINAL`) sits inside its grid on
    an axis was bracketed there: both neighbours were run and lost. At an
    edge a wider grid might have found a better run; it could never find a
    worse best run, since the best of more runs is at least as good.

    Returns
    -------
    dict
        ``{axis: (value, position, count)}`` with ``axis`` ``"lr"`` or a
        hyper-parameter's name, ``position`` one of ``"only"``, ``"lowest"``,
        ``"highest"``, ``"inside"``, and ``count`` the number of distinct
        values swept on that axis.
    """
    check_sweep_result("result", result)
    i = check_int("i", i, 0, len(result) - 1)
    chosen = result.configs[i]
    grid = [result.configs[j] for j in result.select(method=chosen.method, depth=chosen.depth, p=chosen.p)]
    axes = {"lr": (chosen.lr, [c.lr for c in grid])}
    axes.update({k: (v, [c.hyper[k] for c in grid]) for k, v in chosen.hyper.items()})
    out: dict[str, tuple[float, str, int]] = {}
    for axis, (value, swept) in axes.items():
        values = sorted(set(swept))
        position = ("only" if len(values) == 1 else "lowest" if value == values[0] else
                    "highest" if value == values[-1] else "inside")
        out[axis] = (float(value), position, len(values))
    return out


def plot_teaser(result: SweepResult, ax: Any = None, optimum: float | None = None) -> Any:
    """Plot the teaser (Chapter 2; the ℓ4 plot of the authors' blog post on arXiv:1802.06509): overparameterized GD
    against the baselines (AdaGrad, AdaDelta, heavy-ball momentum, Adam) on ℓ4.

    With ``optimum`` the curves are the suboptimality :math:`L - L^*`.
    """
    check_sweep_result("result", result)
    ax = loss_axes(ax, title="ℓ4: one extra scalar vs. the baselines", ylabel=_loss_label(4, optimum), logx=True)
    after0 = result.steps > 0
    for name, i in teaser_runs(result).items():
        cfg = result.configs[i]
        tuned = {k: v for k, v in cfg.hyper.items()
                 if len({result.configs[j].hyper[k] for j in result.select(method=cfg.method)}) > 1}
        label = f"{name} (η={cfg.lr:g}{''.join(f', {k}={v:g}' for k, v in tuned.items())})"
        style = TEASER_STYLES.get(cfg.method, {"color": DEPTH_COLORS[cfg.depth % len(DEPTH_COLORS)]})
        plot_loss(ax, result.steps[after0], _curve(result, i, optimum)[after0], label, **style)
    ax.legend(fontsize=8)
    return ax


@dataclass(frozen=True)
class _SummaryRow:
    """One (method, depth) group of :func:`summary`: its cells, or why no run trained (``failed``)."""

    method: str
    depth: int
    largest: str = "none"
    best_lr: float = float("nan")
    final_loss: float = float("nan")
    gap: float | None = None
    iterations: str = ""
    failed: str = ""


def _summary_parts(result: SweepResult, optima: dict[int, float] | None
                   ) -> tuple[list[tuple[int, float, bool, list[_SummaryRow]]], list[str]]:
    """What :func:`summary` and :func:`summary_markdown` show: per loss (p, target, has L*, rows), then the notes."""
    check_sweep_result("result", result)
    if optima is not None:
        if not isinstance(optima, Mapping):
            raise ValueError(f"optima must be a dict {{p: L*}}, got {type(optima).__name__}")
        optima = {p: check_real(f"optima[{p!r}]", v, expected="a finite loss") for p, v in optima.items()}
    blocks, any_censored = [], False
    best = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    stable = select_runs(result, LARGEST_STABLE, by=["method", "depth", "p"])
    for p in sorted({c.p for c in result.configs}):
        target = TARGETS.get(p, 0.1)
        hits = result.iterations_to(target)
        optimum = None if optima is None else optima.get(p)
        failed = failed_groups(result, p)
        rows = []
        for method, depth in sorted({(c.method, c.depth) for c in result.configs if c.p == p}):
            if (method, depth) in failed:
                rows.append(_SummaryRow(method, depth, failed="; ".join(failed[method, depth])))
                continue
            key = (method, depth, p)
            i, j = best[key], stable.get(key)
            largest = "none"
            if j is not None:
                top = max(result.configs[k].lr for k in result.select(method=method, depth=depth, p=p))
                censored = result.configs[j].lr >= top
                any_censored |= censored
                largest = ("≥ " if censored else "") + f"{result.configs[j].lr:.3g}"
            rows.append(_SummaryRow(
                method, depth, largest, result.configs[i].lr, float(result.final_loss[i]),
                None if optimum is None else float(result.final_loss[i] - optimum),
                format_iterations(hits[i])))
        blocks.append((p, target, optimum is not None, rows))
    notes = ["≥: the top of the grid trained, so the largest stable η is at least that"] if any_censored else []
    failed = ~result.trained
    notes.append(f"{int(failed.sum())} of {len(result)} runs failed ({int(result.diverged.sum())} diverged, "
                 f"{int((failed & ~result.diverged).sum())} collapsed); wall time {result.wall_time:.0f} s")
    return blocks, notes


def summary(result: SweepResult, optima: dict[int, float] | None = None) -> str:
    """A plain-text table per loss, method and depth: the chosen η by both rules, the final loss and outcome.

    Columns: the largest η that trained (:data:`~overparam.sweep.LARGEST_STABLE`;
    marked "≥" when it is the top of the group's grid, so the true limit lies
    beyond the grid), the η with the best final loss
    (:data:`~overparam.sweep.BEST_FINAL`), its
    final loss and, with ``optima`` (p -> L*), its final suboptimality
    :math:`L - L^*`, and its iterations to the loss target of :data:`TARGETS`.
    A group in which no run trained is listed as such, with every run's outcome.
    For a terminal (the command line); a chapter shows :func:`summary_markdown`.
    """
    blocks, notes = _summary_parts(result, optima)
    lines = []
    for p, target, has_gap, rows in blocks:
        gap_head = "     L − L*" if has_gap else ""
        last_head = f"iterations to loss {target:g}"
        lines.append(f"ℓ{p} loss      method  depth  largest stable η  best-final η  final loss{gap_head}  {last_head}")
        for r in rows:
            if r.failed:
                lines.append(f"{'':9s} {r.method:>9s} {r.depth:6d}  no run trained at this budget: {r.failed}")
                continue
            gap = f" {r.gap:10.4g}" if has_gap else ""
            lines.append(f"{'':9s} {r.method:>9s} {r.depth:6d} {r.largest:>17s} {r.best_lr:13.3g} "
                         f"{r.final_loss:11.4g}{gap}  {r.iterations:>{len(last_head)}s}")
    return "\n".join(lines + notes)


def summary_markdown(result: SweepResult, optima: dict[int, float] | None = None) -> str:
    """:func:`summary` as Markdown: one table per loss, with header cells, then its notes (Chapter 2).

    A screen reader announces each number with its column, which it cannot
    do for the plain-text table. A group in which no run trained gets "no run
    trained" in its η column, empty cells after it (its runs have losses, but
    none is the group's), and every run's outcome in the last.
    """
    blocks, notes = _summary_parts(result, optima)
    parts = []
    for p, target, has_gap, rows in blocks:
        head = ["method", "depth", "largest stable η", "best-final η", "final loss"] + (["L − L*"] if has_gap else [])
        head.append(f"iterations to loss {target:g}")
        table = [f"**ℓ{p} loss**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            if r.failed:
                cells = [r.method, str(r.depth), "no run trained"] + [""] * (len(head) - 4) + [r.failed]
            else:
                cells = [r.method, str(r.depth), r.largest, f"{r.best_lr:.3g}", f"{r.final_loss:.4g}"]
                cells += [f"{r.gap:.4g}"] if has_gap else []
                cells.append(r.iterations)
            table.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(table))
    return "\n\n".join(parts + ["\n".join(f"- {note}" for note in notes)])
