r"""The stability edge of a step-size grid: would a finer grid change a comparison? (Chapter 2, ``ch-deep-linear``)

A method tuned on a grid of step sizes often does best at the largest step that still trains for the whole
run: the next step of the grid diverges. The true best lies somewhere between the two, and a comparison of two
methods that are both tuned this way is only as fine as their grids. At the paper's budget of :math:`10^6`
iterations the deep networks diverge late (their effective step grows with :math:`\|w\|^{2-2/N}`, Chapter 4), so
their stability edge depends on the budget too.

This module finds, in a sweep (:func:`overparam.run_sweep`), each *group* of runs (the same configuration but
for the learning rate) whose best final run (:data:`~overparam.sweep.BEST_FINAL`) is its largest step that
trained, just below a step that failed: a :class:`StabilityEdge`. :func:`edge_runs` fills the gap between the
two with a finer lattice of :data:`EDGE_PER_DECADE` points per decade, and :func:`edge_groups` reads a group
across the sweep and its refinement. ``python -m overparam ethanol-edge`` applies this to the teaser's methods of
the paper-scale Ethanol sweep (GD on the linear model and with one extra scalar, and the baselines).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .ethanol import TEASER_NAMES, TEASER_STYLES
from .plotting import DEPTH_COLORS, loss_axes
from .sweep import RunConfig, SweepResult, check_sweep_result
from .training import NEVER
from .validation import check_int, check_real, check_sequence

__all__ = ["EDGE_PER_DECADE", "EdgeGroup", "StabilityEdge", "edge_groups", "edge_lattice", "edge_runs",
           "plot_edge", "stability_edges", "teaser_grid"]

#: Points per decade of the refined lattice between a group's last trained step and its first failed one: a
#: sixteenth of a decade (steps about 15% apart), four times finer than the quarter-decade grids of the sweeps.
EDGE_PER_DECADE = 16


def _group_key(config: RunConfig) -> RunConfig:
    """The group of a run: its configuration with the learning rate set aside (every other field kept)."""
    return replace(config, lr=1.0)


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
    trained and did worse), or whose top step trained, has none.

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
    groups: dict[RunConfig, list[int]] = {}
    for i in runs:
        groups.setdefault(_group_key(result.configs[i]), []).append(i)
    trained, final = result.trained, result.final_loss
    edges = []
    for members in groups.values():
        ok = [i for i in members if trained[i]]
        if not ok:
            continue
        best = min(ok, key=lambda i: final[i])
        lr = result.configs[best].lr
        if any(result.configs[i].lr > lr for i in ok):
            continue
        above = [i for i in members if result.configs[i].lr > lr]
        if above:
            first = min(above, key=lambda i: result.configs[i].lr)
            edges.append(StabilityEdge(result.configs[best], lr, result.configs[first].lr,
                                       float(result.failed_at[first])))
    return edges


def edge_runs(edges: Sequence[StabilityEdge], per_decade: int = EDGE_PER_DECADE) -> tuple[RunConfig, ...]:
    """The runs that refine each edge: its group's configuration at every learning rate of its lattice."""
    return tuple(replace(e.group, lr=lr) for e in edges for lr in e.lattice(per_decade))


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
    def best(self) -> int:
        """Index (into the arrays) of the run with the lowest final loss; it trained."""
        return int(np.argmin(self.final_gap))

    def best_of(self, refined: bool | None = None) -> float:
        """The lowest final :math:`L - L^*` among the sweep's runs (``False``), the refinement's (``True``) or both."""
        keep = np.ones_like(self.refined) if refined is None else self.refined == refined
        return float(np.min(self.final_gap[keep], initial=np.inf))

    @property
    def label(self) -> str:
        """The method and its hyper-parameters, e.g. ``"AdaDelta, rho=0.95, eps=1e-08"``."""
        c = self.group
        name = (f"GD, depth {c.depth}" + (" (one extra scalar)" if c.depth == 2 else "") if c.method == "gd"
                else TEASER_NAMES.get(c.method, c.method))
        return name + "".join(f", {k}={v:g}" for k, v in c.hyper.items())


def edge_groups(sweep: SweepResult, refinement: SweepResult, optimum: float) -> list[EdgeGroup]:
    """Every group the refinement holds, with the sweep's runs of the same group, as :class:`EdgeGroup`.

    Parameters
    ----------
    sweep : SweepResult
        The sweep whose edges were refined (``python -m overparam ethanol --preset paper``).
    refinement : SweepResult
        The refinement (``python -m overparam ethanol-edge``): the same budget and recorded steps.
    optimum : float
        :math:`L^*` of the loss, below every recorded loss.

    Raises
    ------
    ValueError
        The two files differ in budget or recorded steps, a refinement's run has no group in the sweep, or
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
        if not rows:
            raise ValueError(f"refinement: its runs of method {key.method!r}, depth {key.depth}, p {key.p} and "
                             f"{key.hyper} have no group in the sweep")
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
    """
    groups = list(check_sequence("groups", groups, "EdgeGroup objects"))
    if not all(isinstance(g, EdgeGroup) for g in groups):
        raise ValueError("groups must be EdgeGroup objects (from op.edge.edge_groups)")
    ax = loss_axes(ax, title="ℓ4 at the stability edge: final L − L* against the step size",
                   ylabel="final ℓ4 loss − L*", logx=True)
    ax.set_xlabel("learning rate η")
    markers = ("o", "s", "^", "D", "v")
    for k, g in enumerate(groups):
        c = g.group
        style = dict(TEASER_STYLES.get(c.method, {"color": DEPTH_COLORS[c.depth % len(DEPTH_COLORS)], "ls": "-"}))
        color, marker = style.pop("color"), markers[k % len(markers)]
        ok = g.failed_at == NEVER
        ax.plot(g.lr[ok], g.final_gap[ok], color=color, marker=marker, label=g.label, **style)
        for refined, size in ((False, 8), (True, 5)):
            for trained in (True, False):
                sel = (g.refined == refined) & (ok == trained)
                y = np.where(ok, g.final_gap, g.lowest_gap)[sel]
                ax.plot(g.lr[sel], y, ls="none", marker=marker, ms=size, color=color,
                        mfc=color if trained else "white")
    ax.legend(fontsize=8)
    return ax
