r"""The stability edge of a step-size grid: would a finer grid change a comparison? (Chapter 2, ``ch-deep-linear``)

A method tuned on a grid of step sizes often does best at the largest step that still trains for the whole
run: the next step of the grid diverges. The true best lies somewhere between the two, and a comparison of two
methods that are both tuned this way is only as fine as their grids. At the paper's budget of :math:`10^6`
iterations the deep networks diverge late (their effective step grows with :math:`\|w\|^{2-2/N}`, Chapter 4), so
their stability edge depends on the budget too.

This module finds, in a sweep (:func:`overparam.run_sweep`), each *group* of runs (the same configuration but
for the learning rate) whose best final run (:data:`~overparam.sweep.BEST_FINAL`) is its largest step that
trained, just below a step that failed: a :class:`StabilityEdge`. :func:`edge_runs` (the first round) fills the
gap between the two with a finer lattice of :data:`EDGE_PER_DECADE` points per decade and continues a
hyper-parameter grid whose best value sits at its end; :func:`second_round_runs` takes up what the first round left
open; :func:`edge_groups` reads a group across the sweep and its refinement. ``python -m overparam ethanol-edge`` applies this to the teaser's methods of
the paper-scale Ethanol sweep (GD on the linear model and with one extra scalar, and the baselines).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .ethanol import TEASER_NAMES, TEASER_STYLES
from .files import file_sha256
from .plotting import DEPTH_COLORS, loss_axes
from .sweep import RunConfig, SweepResult, check_sweep_result
from .training import NEVER
from .validation import check_int, check_real, check_sequence

__all__ = ["EDGE_PER_DECADE", "EXTEND_STEPS", "HYPER_SYMBOLS", "SECOND_PER_DECADE", "EdgeGroup", "StabilityEdge",
           "axis_extensions", "check_refinement", "concat_sweeps", "edge_groups", "edge_lattice", "edge_markdown",
           "edge_runs", "plot_edge", "second_round_runs", "stability_edges", "teaser_grid"]

#: Points per decade of the refined lattice between a group's last trained step and its first failed one: a
#: sixteenth of a decade (steps about 15% apart), four times finer than the sweeps' quarter-decade grids of GD and
#: eight times finer than the half-decade grid of AdaDelta's step.
EDGE_PER_DECADE = 16
#: Points per decade of the second round's lattice (:func:`second_round_runs`): eight times finer than the first's.
SECOND_PER_DECADE = 128
#: The symbols of the optimizers' hyper-parameters in labels and tables.
HYPER_SYMBOLS = {"momentum": "μ", "beta1": "β₁", "beta2": "β₂", "rho": "ρ", "eps": "ε"}
#: How many values :func:`axis_extensions` adds beyond the end of a hyper-parameter's grid.
EXTEND_STEPS = 2


def _group_key(config: RunConfig) -> RunConfig:
    """The group of a run: its configuration with the learning rate set aside (every other field kept)."""
    return replace(config, lr=1.0)


def _groups(result: SweepResult, runs: Sequence[int]) -> dict[RunConfig, list[int]]:
    """The runs among ``runs`` by group (:func:`_group_key`), groups in order of first appearance."""
    groups: dict[RunConfig, list[int]] = {}
    for i in runs:
        groups.setdefault(_group_key(result.configs[i]), []).append(i)
    return groups


def _best_trained(result: SweepResult, runs: Sequence[int]) -> int | None:
    """The run among ``runs`` with the lowest final loss among those that trained (the first of ties); ``None`` if
    none trained."""
    trained, final = result.trained, result.final_loss
    ok = [i for i in runs if trained[i]]
    return min(ok, key=lambda i: final[i]) if ok else None


def teaser_grid(result: SweepResult) -> list[int]:
    """Indices of the teaser's runs in an Ethanol sweep: every ℓ4 run of GD at depths 1 and 2, and of the baselines.

    The runs :func:`overparam.ethanol.teaser_runs` chooses from (Chapter 2, ``sec-deep-paper-scale``).
    """
    check_sweep_result("result", result)
    return [i for i, c in enumerate(result.configs)
            if c.p == 4 and ((c.method == "gd" and c.depth in (1, 2)) or (c.method in TEASER_NAMES and c.depth == 1))]


@dataclass(frozen=True)
class StabilityEdge:
    """A group of runs whose best final run is its largest trained step, just below a step that failed.

    Attributes
    ----------
    group : RunConfig
        The group's best run (its fields other than ``lr`` define the group).
    trained_lr : float
        Its learning rate: the largest of the group that trained.
    failed_lr : float
        The smallest learning rate of the group above it; that run failed.
    failed_at : float
        The step at which the run at ``failed_lr`` failed (diverged or collapsed).
    """

    group: RunConfig
    trained_lr: float
    failed_lr: float
    failed_at: float

    def lattice(self, per_decade: int = EDGE_PER_DECADE) -> list[float]:
        """The learning rates strictly between ``trained_lr`` and ``failed_lr`` (:func:`edge_lattice`)."""
        return edge_lattice(self.trained_lr, self.failed_lr, per_decade)


def edge_lattice(low: float, high: float, per_decade: int = EDGE_PER_DECADE) -> list[float]:
    """Learning rates strictly between ``low`` and ``high``, about ``per_decade`` per decade, geometrically spaced.

    The interval is cut into ``n = round(per_decade * log10(high / low))`` equal
    ratios, :math:`\\text{low}\\cdot(\\text{high}/\\text{low})^{k/n}` for
    ``k = 1 .. n - 1``, each rounded to three significant digits like the
    sweeps' quarter-decade grids. An interval narrower than one ratio gives none.

    Raises
    ------
    ValueError
        ``low`` is not > 0, ``high`` not > ``low``, or ``per_decade`` not an integer >= 1.

    Examples
    --------
    >>> edge_lattice(0.000562, 0.001)
    [0.000649, 0.00075, 0.000866]
    """
    low = check_real("low", low, above=0)
    high = check_real("high", high, above=low)
    per_decade = check_int("per_decade", per_decade, 1)
    n = round(per_decade * math.log10(high / low))
    return [float(f"{low * (high / low) ** (k / n):.3g}") for k in range(1, n)]


def stability_edges(result: SweepResult, runs: Sequence[int]) -> list[StabilityEdge]:
    """The groups among ``runs`` whose best final run trained at their largest step, below a step that failed.

    Runs form a group when their configurations agree in every field but the
    learning rate. A group has a stability edge when its best final run
    (lowest final loss among the runs that trained, :attr:`SweepResult.trained`)
    is its largest step that trained, and a larger step of the group failed.
    A group whose best run lies inside its grid (bracketed by two steps that
    trained and did worse), or whose top step trained, has none. Of two runs
    with the same final loss, the one listed first counts as the better.

    Parameters
    ----------
    result : SweepResult
    runs : sequence of int
        Run indices to consider (e.g. :func:`teaser_grid`).

    Returns
    -------
    list of StabilityEdge
        In the order the groups first appear among ``runs``.
    """
    check_sweep_result("result", result)
    runs = [check_int(f"runs[{k}]", i, 0, len(result) - 1) for k, i in enumerate(check_sequence(
        "runs", runs, f"run indices in 0..{len(result) - 1}"))]
    trained = result.trained
    edges = []
    for members in _groups(result, runs).values():
        best = _best_trained(result, members)
        if best is None:
            continue
        lr = result.configs[best].lr
        if any(trained[i] and result.configs[i].lr > lr for i in members):
            continue
        above = [i for i in members if result.configs[i].lr > lr]
        if above:
            first = min(above, key=lambda i: result.configs[i].lr)
            edges.append(StabilityEdge(result.configs[best], lr, result.configs[first].lr,
                                       float(result.failed_at[first])))
    return edges


def _method_grid(result: SweepResult, runs: Sequence[int], config: RunConfig) -> list[int]:
    """The runs among ``runs`` of ``config``'s method, depth and loss: the grid that method was tuned on."""
    return [i for i in runs if (result.configs[i].method, result.configs[i].depth, result.configs[i].p)
            == (config.method, config.depth, config.p)]


def axis_extensions(result: SweepResult, runs: Sequence[int], best: RunConfig,
                    steps: int = EXTEND_STEPS) -> dict[str, list[float]]:
    """Values beyond the end of each hyper-parameter grid at which a method's best run sits (Chapter 2).

    A method tuned at the end of a grid of, say, AdaDelta's decay rate ρ might do
    better beyond it. For each hyper-parameter of ``best`` swept over at
    least two values among the method's runs (same method, depth and loss among
    ``runs``) whose value in ``best`` is the lowest or the highest, the
    grid is continued by ``steps`` values in that direction, on its own ratio
    next to the end: geometric in :math:`1 - v` for a decay rate (ρ, momentum,
    β₁, β₂; 0.9, 0.95 continue as 0.975, 0.9875) and in :math:`v` for ε. Values
    outside a parameter's range are left out; each is rounded to six significant digits.

    Returns
    -------
    dict
        ``{name: [values]}`` for the axes continued; empty when none is.
    """
    check_sweep_result("result", result)
    steps = check_int("steps", steps, 0)
    grid = _method_grid(result, runs, best)
    out: dict[str, list[float]] = {}
    for name, value in best.hyper.items():
        values = sorted({result.configs[i].hyper[name] for i in grid})
        if len(values) < 2 or value not in (values[0], values[-1]):
            continue
        neighbour = values[1] if value == values[0] else values[-2]
        decay = name != "eps"
        t_value, t_neighbour = (1 - value, 1 - neighbour) if decay else (value, neighbour)
        ratio = t_value / t_neighbour
        ts = [t_value * ratio ** k for k in range(1, steps + 1)]
        new = [float(f"{1 - t if decay else t:.6g}") for t in ts]
        new = [v for v in new if (0 <= v < 1 if decay else v > 0)]
        if new:
            out[name] = new
    return out


def edge_runs(result: SweepResult, runs: Sequence[int], per_decade: int = EDGE_PER_DECADE,
              extend: int = EXTEND_STEPS) -> tuple[RunConfig, ...]:
    """The runs that refine a sweep's stability edges among ``runs`` (Chapter 2, ``sec-deep-paper-scale``).

    * Every group of :func:`stability_edges` at each learning rate of its
      lattice (:meth:`StabilityEdge.lattice`).
    * Where a method's best run (over all its groups among ``runs``) is an
      edge's group, its hyper-parameter grids are continued
      (:func:`axis_extensions`, ``extend`` values each): the group with each
      new value, one at a time, at the edge's two steps and every step of its lattice.

    Returns
    -------
    tuple of RunConfig
        The lattice runs of every edge, in order, then the extensions.
    """
    edges = stability_edges(result, runs)
    out = [replace(e.group, lr=lr) for e in edges for lr in e.lattice(per_decade)]
    for e in edges:
        if result.configs[_best_trained(result, _method_grid(result, runs, e.group))] != e.group:
            continue
        lrs = [e.trained_lr, *e.lattice(per_decade), e.failed_lr]
        for name, values in axis_extensions(result, runs, e.group, extend).items():
            out += [replace(e.group, lr=lr, **{name: v}) for v in values for lr in lrs]
    return tuple(out)


def concat_sweeps(first: SweepResult, second: SweepResult) -> SweepResult:
    """One sweep holding ``first``'s runs, then ``second``'s: the same problem, budget and recorded steps (Chapter 2).

    The provenance, dtype and device are ``first``'s; the wall time is the sum.

    Raises
    ------
    ValueError
        The two differ in budget, recorded steps or problem size.
    """
    a, b = check_sweep_result("first", first), check_sweep_result("second", second)
    if a.num_iters != b.num_iters or not np.array_equal(a.steps, b.steps) or a.w_e.shape[1:] != b.w_e.shape[1:]:
        raise ValueError(f"second must have first's budget, recorded steps and problem size, got {b.num_iters:,} "
                         f"iterations and w_e {b.w_e.shape} against {a.num_iters:,} and {a.w_e.shape}")
    return replace(a, configs=a.configs + b.configs, loss=np.concatenate([a.loss, b.loss]),
                   diverged_at=np.concatenate([a.diverged_at, b.diverged_at]), w_e=np.concatenate([a.w_e, b.w_e]),
                   factors=a.factors + b.factors, weights_step=np.concatenate([a.weights_step, b.weights_step]),
                   wall_time=a.wall_time + b.wall_time, target=None, reached_at=None)


def second_round_runs(sweep: SweepResult, first: SweepResult, per_decade: int = SECOND_PER_DECADE,
                      extend: int = EXTEND_STEPS) -> tuple[RunConfig, ...]:
    """The runs of the refinement's second round, from the sweep and the first round's results (Chapter 2).

    Read together (:func:`concat_sweeps`), restricted to the methods the first
    round refined, the runs may still leave the tuning unfinished in three ways;
    the second round adds, for each:

    * a group still at a stability edge (:func:`stability_edges`): a lattice
      ``per_decade`` steps per decade between its last trained and first failed step;
    * a group whose best run is its smallest step: ``extend`` smaller steps,
      :data:`EDGE_PER_DECADE` per decade;
    * a method whose best run sits at the end of a hyper-parameter's grid:
      that grid continued by ``extend`` values (:func:`axis_extensions`), at
      the best run's step and its neighbours in its group.

    Each rule adds steps outside what its group has run (inside an open gap,
    below its smallest step, or in a new group), so no run is repeated.
    """
    both = concat_sweeps(sweep, first)
    methods = {(c.method, c.depth, c.p) for c in first.configs}
    grid = [i for i in teaser_grid(both) if (both.configs[i].method, both.configs[i].depth, both.configs[i].p)
            in methods]
    groups = _groups(both, grid)
    out = [replace(e.group, lr=lr) for e in stability_edges(both, grid) for lr in e.lattice(per_decade)]
    for members in groups.values():
        best = _best_trained(both, members)
        if best is not None and both.configs[best].lr == min(both.configs[i].lr for i in members):
            low = both.configs[best].lr
            out += [replace(both.configs[best], lr=float(f"{low * 10 ** (-k / EDGE_PER_DECADE):.3g}"))
                    for k in range(1, extend + 1)]
    for method in sorted(methods):
        best_i = _best_trained(both, [i for i in grid if (both.configs[i].method, both.configs[i].depth,
                                                         both.configs[i].p) == method])
        if best_i is None:
            continue
        best = both.configs[best_i]
        lrs = sorted(both.configs[i].lr for i in groups[_group_key(best)])
        k = lrs.index(best.lr)
        for name, values in axis_extensions(both, grid, best, extend).items():
            out += [replace(best, lr=lr, **{name: v}) for v in values for lr in lrs[max(k - 1, 0):k + 2]]
    return tuple(out)


def _first_runs(result: SweepResult, n: int) -> SweepResult:
    """The sweep of ``result``'s first ``n`` runs (the first round of a refinement)."""
    return replace(result, configs=result.configs[:n], loss=result.loss[:n], diverged_at=result.diverged_at[:n],
                   w_e=result.w_e[:n], factors=result.factors[:n], weights_step=result.weights_step[:n],
                   reached_at=None if result.reached_at is None else result.reached_at[:n])


def check_refinement(refinement: SweepResult, sweep: SweepResult, sweep_path: str | os.PathLike) -> None:
    """Check that ``refinement`` is the refinement of the sweep in ``sweep_path`` (Chapter 2, ``sec-deep-paper-scale``).

    It must hold exactly the runs :func:`edge_runs` gives for the sweep's teaser
    (:func:`teaser_grid`), then those :func:`second_round_runs` gives from
    them, with the sweep's budget, recorded steps and precision, and its
    provenance must name the SHA-256 of the file ``sweep_path`` and the
    number of runs of each round (as ``python -m overparam ethanol-edge``
    records them).

    Raises
    ------
    ValueError
        Saying which of these fails: the two files do not belong together.
    """
    check_sweep_result("refinement", refinement)
    check_sweep_result("sweep", sweep)
    recorded = (refinement.provenance.get("source") or {}).get("sha256")
    actual = file_sha256(sweep_path)
    if recorded != actual:
        raise ValueError(f"refinement: it records the source SHA-256 {recorded!r}, but {os.fspath(sweep_path)} has "
                         f"{actual!r}; run python -m overparam ethanol-edge again on that file")
    if (refinement.num_iters != sweep.num_iters or not np.array_equal(refinement.steps, sweep.steps)
            or refinement.dtype != sweep.dtype):
        raise ValueError("refinement: its budget, recorded steps or precision differ from the sweep's")
    first = edge_runs(sweep, teaser_grid(sweep))
    n = len(first)
    second = second_round_runs(sweep, _first_runs(refinement, n)) if refinement.configs[:n] == first else None
    if second is None or refinement.configs[n:] != second:
        raise ValueError("refinement: its runs are not those edge_runs and second_round_runs give for the sweep's "
                         "teaser (another rule or another version of the library wrote it)")
    if list(refinement.provenance.get("rounds", [])) != [n, len(second)]:
        raise ValueError(f"refinement: its provenance records the rounds {refinement.provenance.get('rounds')!r}, "
                         f"not [{n}, {len(second)}]")


@dataclass(frozen=True)
class EdgeGroup:
    """One group's runs, read across a sweep and its refinement, ordered by learning rate (Chapter 2).

    Attributes
    ----------
    group : RunConfig
        The configuration of the group's best run over both files.
    lr : ndarray
        Learning rates, increasing.
    final_gap : ndarray
        :math:`L - L^*` at the end; ``inf`` for a run that failed.
    lowest_gap : ndarray
        The smallest :math:`L - L^*` recorded before the run ended or failed.
    failed_at : ndarray
        The step at which the run failed; :data:`~overparam.training.NEVER` if it trained.
    refined : ndarray of bool
        Whether the run is one of the refinement's (else the sweep's).
    """

    group: RunConfig
    lr: np.ndarray
    final_gap: np.ndarray
    lowest_gap: np.ndarray
    failed_at: np.ndarray
    refined: np.ndarray

    @property
    def extension(self) -> bool:
        """Whether the group is new in the refinement (a value beyond a hyper-parameter's grid, :func:`axis_extensions`)."""
        return bool(np.all(self.refined))

    @property
    def best(self) -> int:
        """Index (into the arrays) of the run with the lowest final loss (a run that trained, if any did)."""
        return int(np.argmin(self.final_gap))

    def best_of(self, refined: bool | None = None) -> float:
        """The lowest final :math:`L - L^*` among the sweep's runs (``False``), the refinement's (``True``) or both."""
        keep = np.ones_like(self.refined) if refined is None else self.refined == refined
        return float(np.min(self.final_gap[keep], initial=np.inf))

    @property
    def label(self) -> str:
        """The method and its hyper-parameters, e.g. ``"AdaDelta, ρ=0.95, ε=1e-08"`` (:data:`HYPER_SYMBOLS`)."""
        c = self.group
        name = (f"GD, depth {c.depth}" + (" (one extra scalar)" if c.depth == 2 else "") if c.method == "gd"
                else TEASER_NAMES.get(c.method, c.method))
        return name + "".join(f", {HYPER_SYMBOLS.get(k, k)}={v:g}" for k, v in c.hyper.items())


def edge_groups(sweep: SweepResult, refinement: SweepResult, optimum: float) -> list[EdgeGroup]:
    """Every group the refinement holds, with the sweep's runs of the same group, as :class:`EdgeGroup`.

    A group of an extended hyper-parameter grid (:func:`axis_extensions`) has
    runs in the refinement only (:attr:`EdgeGroup.extension`).

    Parameters
    ----------
    sweep : SweepResult
        The sweep whose edges were refined (``python -m overparam ethanol --preset paper``).
    refinement : SweepResult
        The refinement (``python -m overparam ethanol-edge``): the same budget and recorded steps.
    optimum : float
        :math:`L^*` of the loss, strictly below every recorded loss: the gaps are drawn on a log axis, so this
        allows no round-off margin (unlike :func:`overparam.optimum.check_optimum`).

    Raises
    ------
    ValueError
        The two files differ in budget or recorded steps, a refinement's method has no run in the sweep, or
        ``optimum`` is not below every loss.
    """
    check_sweep_result("sweep", sweep)
    check_sweep_result("refinement", refinement)
    optimum = check_real("optimum", optimum)
    if refinement.num_iters != sweep.num_iters or not np.array_equal(refinement.steps, sweep.steps):
        raise ValueError(f"refinement must record the sweep's budget and steps, got {refinement.num_iters:,} "
                         f"iterations against {sweep.num_iters:,}")
    out = []
    for key in dict.fromkeys(_group_key(c) for c in refinement.configs):
        rows = [(sweep, i, False) for i, c in enumerate(sweep.configs) if _group_key(c) == key]
        if not _method_grid(sweep, range(len(sweep)), key):
            raise ValueError(f"refinement: method {key.method!r} at depth {key.depth} on ℓ{key.p} has no run in the "
                             "sweep")
        rows += [(refinement, i, True) for i, c in enumerate(refinement.configs) if _group_key(c) == key]
        rows.sort(key=lambda r: r[0].configs[r[1]].lr)
        lowest = np.array([float(np.nanmin(r.loss[i])) for r, i, _ in rows]) - optimum
        if not np.all(lowest > 0):
            raise ValueError(f"optimum must lie below every recorded loss, got {optimum!r}")
        final = np.array([r.final_loss[i] if r.trained[i] else np.inf for r, i, _ in rows]) - optimum
        group = EdgeGroup(
            group=rows[0][0].configs[rows[0][1]], lr=np.array([r.configs[i].lr for r, i, _ in rows]),
            final_gap=final, lowest_gap=lowest, failed_at=np.array([r.failed_at[i] for r, i, _ in rows]),
            refined=np.array([f for _, _, f in rows]))
        best = rows[group.best]
        out.append(replace(group, group=best[0].configs[best[1]]))
    return out


def plot_edge(groups: Sequence[EdgeGroup], ax: Any = None) -> Any:
    """Final :math:`L - L^*` against the learning rate, per group, at the stability edge (Chapter 2).

    A run that trained is a filled marker at its final :math:`L - L^*`; one that
    failed, an open marker at the lowest :math:`L - L^*` it reached before
    failing (it ended nowhere). The sweep's runs are large markers, the
    refinement's small ones on the same line. GD keeps its depth colour and the
    baselines their teaser styles (:data:`~overparam.ethanol.TEASER_STYLES`).
    A dotted horizontal line in GD's colour marks its best final
    :math:`L - L^*`, so that each baseline's runs read as above or below it.
    The legend, outside the axes on the right, ends with grey entries that say
    what the marker kinds mean.
    """
    groups = list(check_sequence("groups", groups, "EdgeGroup objects"))
    if not all(isinstance(g, EdgeGroup) for g in groups):
        raise ValueError("groups must be EdgeGroup objects (from op.edge.edge_groups)")
    ax = loss_axes(ax, title="ℓ4 at the stability edge: final L − L* against the step size",
                   ylabel="final ℓ4 loss − L*", logx=True)
    ax.set_xlabel("learning rate η")
    markers = ("o", "s", "^", "D", "v", "P", "X", "<")
    for k, g in enumerate(groups):
        c = g.group
        style = dict(TEASER_STYLES.get(c.method, {"color": DEPTH_COLORS[c.depth % len(DEPTH_COLORS)], "ls": "-"}))
        color, marker = style.pop("color"), markers[k % len(markers)]
        ok = g.failed_at == NEVER
        ax.plot(g.lr[ok], g.final_gap[ok], color=color, marker=marker, ms=5, label=g.label, **style)
        for refined, size in ((False, 8), (True, 5)):
            for trained in (True, False):
                sel = (g.refined == refined) & (ok == trained)
                y = np.where(ok, g.final_gap, g.lowest_gap)[sel]
                ax.plot(g.lr[sel], y, ls="none", marker=marker, ms=size, color=color,
                        mfc=color if trained else "white")
        if c.method == "gd" and np.isfinite(g.best_of()):
            ax.axhline(g.best_of(), color=color, ls=":", lw=1.2, label=f"{g.label}: best final")
    # what the marker kinds mean, in grey (empty proxies: legend entries only)
    for size, fill, label in ((8, "0.45", "trained, sweep's grid (final)"), (5, "0.45", "trained, refinement (final)"),
                              (8, "white", "failed (lowest before failing)")):
        ax.plot([], [], ls="none", marker="o", ms=size, color="0.45", mfc=fill, label=label)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax


def edge_markdown(groups: Sequence[EdgeGroup]) -> str:
    """A Markdown table of :func:`edge_groups`: per group, its best run on the sweep's grid and with the refinement.

    Columns: the group; the best learning rate and final :math:`L - L^*` on the
    sweep's grid ("—" for an extension, which has no run there); the same over
    both files; and the smallest learning rate that failed, with the step at
    which it did. A screen reader announces each number with its column.
    """
    groups = list(check_sequence("groups", groups, "EdgeGroup objects"))
    if not all(isinstance(g, EdgeGroup) for g in groups):
        raise ValueError("groups must be EdgeGroup objects (from op.edge.edge_groups)")
    head = ["method", "best η, sweep's grid", "its L − L*", "best η, finer grid", "its L − L*",
            "smallest η that failed (at step)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        swept = ~g.refined & np.isfinite(g.final_gap)
        if swept.any():
            k = int(np.flatnonzero(swept)[np.argmin(g.final_gap[swept])])
            before = [f"{g.lr[k]:.3g}", f"{g.final_gap[k]:.4f}"]
        else:
            before = ["—", "—"]
        failed = np.flatnonzero(g.failed_at != NEVER)
        first = (f"{g.lr[failed[0]]:.3g} ({int(g.failed_at[failed[0]]):,})" if failed.size else "none")
        cells = [g.label, *before, f"{g.lr[g.best]:.3g}", f"{g.final_gap[g.best]:.4f}", first]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
