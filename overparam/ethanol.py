"""Reading the Ethanol sweeps on the right yardstick: suboptimality, precision ladders, speed-ups (Chapter 2).

A sweep of :func:`overparam.run_sweep` on the standardized Ethanol problem
records the raw ℓp loss. Its minimum :math:`L^*` (:func:`overparam.lp_optimum`)
is far from 0, so "how fast does depth help" is measured here as the number of
iterations a run needs to come within :math:`\\varepsilon` of the optimum,
:math:`L \\le L^* + \\varepsilon`, for a ladder of absolute precisions
:data:`EPSILONS`, and the speed-up of depth :math:`N` over depth 1 as the ratio
of those counts (arXiv:1802.06509, §3 and §8: ℓ4 regression accelerated by
depth).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .sweep import BEST_FINAL, SweepResult, select_runs

__all__ = ["EPSILONS", "PrecisionRow", "failed_groups", "plot_speedup_vs_precision", "precision_table",
           "speedup_vs_precision"]

#: The absolute precisions ε of the ladder: a run has reached ε when its loss is at most L* + ε.
EPSILONS: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


@dataclass(frozen=True)
class PrecisionRow:
    """One chosen run of a sweep, measured against the optimum (Chapter 2).

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


def precision_table(result: SweepResult, optimum: float, p: int, epsilons: Sequence[float] = EPSILONS,
                    rule: str = BEST_FINAL) -> list[PrecisionRow]:
    """Per method and depth of the ℓp runs, the run chosen by ``rule`` and its iterations to each precision.

    Groups in which no run trained (every run diverged or collapsed, see
    :attr:`overparam.SweepResult.trained`) have no row; :func:`failed_groups`
    lists them.
    """
    if not np.isfinite(optimum):
        raise ValueError(f"optimum must be a finite loss, got {optimum!r}")
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


def speedup_vs_precision(rows: Sequence[PrecisionRow], method: str = "gd") -> dict[int, np.ndarray]:
    """Per depth N > 1, iterations of depth 1 / iterations of depth N at each ε (Chapter 2).

    ``inf`` where depth 1 never reached ε but depth N did (the speed-up is then
    at least ``num_iters`` / iterations of depth N); ``nan`` where depth N did not
    reach it.
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
            out[depth] = ratio
    return out


def failed_groups(result: SweepResult, p: int) -> dict[tuple[str, int], list[str]]:
    """The (method, depth) groups of the ℓp runs in which no run trained, with each run's outcome (Chapter 2)."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, c in enumerate(result.configs):
        if c.p == p:
            groups.setdefault((c.method, c.depth), []).append(i)
    trained = result.trained
    return {key: [f"η={result.configs[i].lr:.3g}: {result.outcome(i)}" for i in idx]
            for key, idx in sorted(groups.items()) if not trained[idx].any()}


def plot_speedup_vs_precision(rows: Sequence[PrecisionRow], num_iters: int, epsilons: Sequence[float] = EPSILONS,
                              ax: Any = None, colors: Sequence[str] | None = None) -> Any:
    """The speed-up of each depth over depth 1 against the precision ε asked for (Chapter 2).

    Filled markers: both reached ε; open markers at ``num_iters`` / iterations
    of depth N: depth 1 never reached ε, so the speed-up is at least that.
    """
    import matplotlib.pyplot as plt

    from .plotting import DEPTH_COLORS

    colors = DEPTH_COLORS if colors is None else colors
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    eps = np.asarray(epsilons, dtype=float)
    by_depth: Mapping[int, PrecisionRow] = {r.depth: r for r in rows if r.method == "gd"}
    for depth, ratio in speedup_vs_precision(rows).items():
        color = colors[depth % len(colors)]
        its = np.asarray(by_depth[depth].iterations)
        exact = np.isfinite(ratio)
        bound = np.isinf(ratio)
        ax.plot(eps[exact], ratio[exact], "o-", color=color, label=f"depth {depth}")
        if bound.any():
            ax.plot(eps[bound], num_iters / its[bound], "^", mfc="none", color=color, ms=8)
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("precision ε asked for: L ≤ L* + ε")
    ax.set_ylabel("iterations of depth 1 / of depth N")
    ax.set_title("speed-up over depth 1 (open: depth 1 never got there, a lower bound)")
    ax.legend(fontsize=8)
    return ax
