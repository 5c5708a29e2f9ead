"""``python -m overparam ethanol``: the paper's Ethanol sweeps, at three scales (Chapters 2 and 4).

One lockstep sweep (:func:`overparam.sweep.run_sweep`) on the standardized Ethanol problem
(2565 x 128, no bias) holds

* the depth sweeps of ``paper.md`` §3.4 / T11, T12, T15: full-batch GD on depth-N linear
  networks with scalar hidden layers, for the ℓ2 and the ℓ4 loss, a learning-rate grid per
  depth;
* the teaser of §3.2 / T13: on ℓ4, GD on the linear model (depth 1) and with one extra scalar
  (depth 2) — both from the depth sweep — against AdaGrad, AdaDelta, heavy-ball momentum and
  Adam on the linear model, each over a grid of its hyper-parameters.

Every run starts from the same end-to-end vector :math:`w_e(0) = 0.01\\,u` (u a seeded unit
vector): a depth-N network from the balanced factors :math:`\\|w_1\\| = |\\omega_j| = 0.01^{1/N}`
(``paper.md`` §5.6 used 0.1 per factor, i.e. :math:`w_e(0) = 0.1^N u`; at depth 8 that start is
so close to the saddle at 0 that no η in our grids leaves it within 10⁶ iterations, so the
book compares depths from one common :math:`w_e(0)`).

Learning-rate grids lie on the quarter-decade lattice :math:`10^{k/4}`. For ℓ4 the grid of
depth N is the two (default) lattice points just below the first η that diverged within 10⁵
iterations in our calibration (float32, all 2565 rows, η from 1e-5 to 0.1): 5.6e-3 (N = 1,
diverged at once), 3.2e-3 (N = 2, after 21k iterations), 1e-3 (N = 3, 4; after 98k and 43k),
5.6e-4 (N = 5-8; after 94k-48k). Deep networks diverge *late* (their effective step grows with
‖w‖^{2-2/N}, Chapter 4), so over the paper's 10⁶ iterations the boundary moves down: a first
paper-scale run with three points per depth left depths 2-4 with one trained η at the bottom
of their grid and depths 5-8 with at most one, so the paper preset takes three points for
depth 1, four for depths 2-4 and five for depths 5-8 (down to 3.2e-5).
The ℓ2 grid is the same for every depth (ℓ2 runs are cheap).
The paper's own grids and hyper-parameters are not known (``paper.md`` §3, UNVERIFIED); these
are ours, chosen by the rules stated here.

Arithmetic is float32 by default: over 2·10⁵ iterations its loss curves stayed within 2.4e-4
(relative) of float64 for GD at depths 1-3 and ℓ2/ℓ4, and within 5e-3 for Adam; ``--dtype
float64`` costs about twice the time.

The figures show, per depth and per method, the run with the lowest final loss among those
that trained (:data:`overparam.sweep.BEST_FINAL`); the printed summary also names the
largest stable η (:data:`overparam.sweep.LARGEST_STABLE`). The results file holds every run.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cli_args import device_name, positive_int
from .data import load_ethanol, standardize
from .files import check_writable, choose_output
from .optimum import lp_optimum
from .plotting import DEPTH_COLORS, loss_axes, plot_loss, use_book_style
from .sweep import (BEST_FINAL, LARGEST_STABLE, RunConfig, SweepResult, log_steps, product_runs, quarter_decades,
                    run_sweep, select_runs)

#: ‖w_e(0)‖, shared by every run.
W_E0_NORM = 0.01
#: Top of the ℓ4 learning-rate grid per depth (first η that diverged within 1e5 iterations).
L4_GRID_TOP = {1: 10**-2.25, 2: 10**-2.5, 3: 10**-3, 4: 10**-3, 5: 10**-3.25, 6: 10**-3.25, 7: 10**-3.25, 8: 10**-3.25}
#: ℓ4 loss that the summary's "iterations to target" uses (``paper.md`` T12), and the ℓ2 one (T11).
TARGETS = {4: 0.1, 2: 0.07}
#: Legend names of the teaser's methods.
TEASER_NAMES = {"adagrad": "AdaGrad", "adadelta": "AdaDelta", "momentum": "momentum", "adam": "Adam"}


def _init_scale(depth: int) -> float:
    return W_E0_NORM ** (1 / depth)


@dataclass(frozen=True)
class EthanolPreset:
    """One scale of the Ethanol sweeps.

    Attributes
    ----------
    name : str
    num_iters : int
    depths : tuple of int
        Depths of the GD sweeps (both losses).
    l4_points : int or dict of int to int
        ℓ4 grid per depth: this many quarter-decade points below :data:`L4_GRID_TOP`
        (one number for every depth, or one per depth).
    l2_grid : tuple of float
        ℓ2 grid, the same for every depth.
    baselines : dict
        Per baseline method, the grid axes handed to :func:`overparam.sweep.product_runs`
        (ℓ4, linear model).
    """

    name: str
    num_iters: int
    depths: tuple[int, ...]
    l4_points: int | dict[int, int]
    l2_grid: tuple[float, ...]
    baselines: dict[str, dict[str, Any]]

    def runs(self) -> tuple[RunConfig, ...]:
        """Every run of the preset: ℓ2 depth sweep, ℓ4 depth sweep, ℓ4 baselines."""
        runs: list[RunConfig] = []
        for depth in self.depths:
            runs += product_runs(method="gd", depth=depth, p=2, lr=list(self.l2_grid), init_scale=_init_scale(depth))
        for depth in self.depths:
            top = round(4 * np.log10(L4_GRID_TOP[depth]))
            points = self.l4_points if isinstance(self.l4_points, int) else self.l4_points[depth]
            runs += product_runs(method="gd", depth=depth, p=4, lr=quarter_decades(top - points, top - 1),
                                 init_scale=_init_scale(depth))
        for method, axes in self.baselines.items():
            runs += product_runs(method=method, p=4, init_scale=W_E0_NORM, **axes)
        return tuple(runs)

    def record(self) -> np.ndarray:
        """Recorded steps: 20 per decade (log plots) and every 1/200 of the run (linear plots)."""
        return np.union1d(log_steps(self.num_iters, 20), np.arange(0, self.num_iters + 1, max(1, self.num_iters // 200)))


#: The three scales. ``fast``: CI, seconds. ``default``: a reader's laptop, about a minute on
#: two cores. ``paper``: the paper's budget of 10⁶ iterations, all eight depths (about ten
#: minutes on two quiet cores; the ℓ4 runs cost one pair of 2565 x 128 products per iteration
#: each, the ℓ2 runs almost nothing).
#:
#: Baseline grids (ℓ4, linear model), from a 10⁵-iteration calibration in which AdaGrad was best
#: at η = 0.01, AdaDelta trained only with ε = 1e-8 and η <= 0.1 (ε = 1e-6 or 1e-4 diverged for
#: η in 0.1-3, as in ``paper.md`` §5.6), heavy ball was best at μ = 0.99 and the largest stable
#: η = 1.8e-3, and Adam at η = 1e-3 - 1.8e-3.
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


class _Progress:
    """Plain-text progress on stderr, at most one line every ``every`` seconds."""

    def __init__(self, label: str, every: float = 10.0):
        self.label, self.every, self.done = label, every, -1
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == self.done or (now - self.last < self.every and done < total):
            return
        self.last, self.done = now, done
        elapsed = now - self.start
        left = elapsed * (total - done) / done if done else float("nan")
        print(f"[{self.label}] {done:,}/{total:,} iterations ({100 * done / max(total, 1):.0f}%), "
              f"{elapsed:.0f} s elapsed, about {left:.0f} s left", file=sys.stderr, flush=True)


def _stamp(fig: Any, result: SweepResult, preset: str) -> None:
    fig.text(0.99, 0.005, f"preset: {preset}, {result.num_iters:,} iterations, {result.dtype}",
             ha="right", va="bottom", fontsize=7, color="0.35")


def _curve(result: SweepResult, i: int, optimum: float | None) -> np.ndarray:
    """Run ``i``'s recorded loss, or its suboptimality L − L* when ``optimum`` is given."""
    return result.loss[i] if optimum is None else np.maximum(result.loss[i] - optimum, 0.0)


def _loss_label(p: int, optimum: float | None) -> str:
    return f"ℓ{p} loss" if optimum is None else f"ℓ{p} loss − L*"


def plot_depth_sweep(result: SweepResult, p: int, ax: Any = None, optimum: float | None = None) -> Any:
    """Plot, per depth, the chosen GD run of the ℓp depth sweep (Chapter 2; arXiv:1802.06509 §8).

    The run per depth is the best final loss among those that trained
    (:data:`~overparam.sweep.BEST_FINAL`). With ``optimum`` (:math:`L^*` of
    :func:`overparam.lp_optimum`) the curves are the suboptimality
    :math:`L - L^*`. Log-log axes; returns the axes.
    """
    chosen = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    ax = loss_axes(ax, title=f"ℓ{p}, GD on depth-N linear networks", ylabel=_loss_label(p, optimum), logx=True)
    after0 = result.steps > 0  # log axis
    for (method, depth, pp), i in sorted(chosen.items()):
        if method == "gd" and pp == p:
            plot_loss(ax, result.steps[after0], _curve(result, i, optimum)[after0],
                      f"N={depth}, η={result.configs[i].lr:g}", color=DEPTH_COLORS[depth % len(DEPTH_COLORS)])
    ax.legend(fontsize=8)
    return ax


def teaser_runs(result: SweepResult) -> dict[str, int]:
    """The teaser's runs (ℓ4, best final loss per method): GD at depths 1 and 2, and each baseline."""
    chosen = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    picks = {f"GD, depth {n}" + (" (one extra scalar)" if n == 2 else ""): chosen.get(("gd", n, 4)) for n in (1, 2)}
    picks.update({name: chosen.get((m, 1, 4)) for m, name in TEASER_NAMES.items()})
    return {k: v for k, v in picks.items() if v is not None}


def plot_teaser(result: SweepResult, ax: Any = None, optimum: float | None = None) -> Any:
    """Plot the teaser (Chapter 2; arXiv:1802.06509 §3): overparameterized GD against adaptive methods on ℓ4.

    With ``optimum`` the curves are the suboptimality :math:`L - L^*`.
    """
    ax = loss_axes(ax, title="ℓ4: one extra scalar vs. adaptive methods", ylabel=_loss_label(4, optimum), logx=True)
    after0 = result.steps > 0
    for name, i in teaser_runs(result).items():
        cfg = result.configs[i]
        tuned = {k: v for k, v in cfg.hyper.items()
                 if len({result.configs[j].hyper[k] for j in result.select(method=cfg.method)}) > 1}
        label = f"{name} (η={cfg.lr:g}{''.join(f', {k}={v:g}' for k, v in tuned.items())})"
        plot_loss(ax, result.steps[after0], _curve(result, i, optimum)[after0], label)
    ax.legend(fontsize=7)
    return ax


def _save(ax: Any, result: SweepResult, preset: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    _stamp(ax.figure, result, preset)
    ax.figure.savefig(path, bbox_inches="tight")
    plt.close(ax.figure)


def summary(result: SweepResult, optima: dict[int, float] | None = None) -> str:
    """A plain-text table per loss, method and depth: the chosen η by both rules, the final loss and outcome.

    Columns: the largest η that trained (:data:`~overparam.sweep.LARGEST_STABLE`),
    the η with the best final loss (:data:`~overparam.sweep.BEST_FINAL`), its
    final loss and, with ``optima`` (p -> L*), its final suboptimality
    :math:`L - L^*`, and its iterations to the loss target of :data:`TARGETS`.
    A group in which no run trained is listed as such, with every run's outcome.
    """
    lines = []
    best = select_runs(result, BEST_FINAL, by=["method", "depth", "p"])
    stable = select_runs(result, LARGEST_STABLE, by=["method", "depth", "p"])
    for p in sorted({c.p for c in result.configs}):
        target = TARGETS.get(p, 0.1)
        hits = result.iterations_to(target)
        optimum = None if optima is None else optima.get(p)
        gap_head = "     L − L*" if optimum is not None else ""
        lines.append(f"ℓ{p} loss      method  depth  largest stable η  best-final η  final loss{gap_head}  "
                     f"iterations to {target:g}")
        groups = sorted({(c.method, c.depth) for c in result.configs if c.p == p})
        for method, depth in groups:
            key = (method, depth, p)
            if key not in best:
                outcomes = "; ".join(f"η={result.configs[i].lr:.3g} {result.outcome(i)}"
                                     for i in result.select(method=method, depth=depth, p=p))
                lines.append(f"{'':9s} {method:>9s} {depth:6d}  no run trained at this budget: {outcomes}")
                continue
            i, j = best[key], stable.get(key)
            largest = f"{result.configs[j].lr:.3g}" if j is not None else "-"
            its = f"{hits[i]:,.0f}" if np.isfinite(hits[i]) else "not reached"
            gap = f" {result.final_loss[i] - optimum:10.4g}" if optimum is not None else ""
            lines.append(f"{'':9s} {method:>9s} {depth:6d} {largest:>17s} {result.configs[i].lr:13.3g} "
                         f"{result.final_loss[i]:11.4g}{gap}  {its:>18s}")
    failed = ~result.trained
    lines.append(f"{int(failed.sum())} of {len(result)} runs failed ({int(result.diverged.sum())} diverged, "
                 f"{int((failed & ~result.diverged).sum())} collapsed); wall time {result.wall_time:.0f} s")
    return "\n".join(lines)


#: The figures written beside a results file ``<stem>.npz``.
FIGURE_SUFFIXES = ("_depth_l2.png", "_depth_l4.png", "_teaser.png")


def run(args: argparse.Namespace) -> int:
    """Run one preset, write the results file and the figures, print the summary."""
    preset = PRESETS[args.preset]
    if args.threads:
        torch.set_num_threads(args.threads)
    out, why = choose_output(args.out, f"results/ethanol_{preset.name}.npz", force=args.force,
                             companions=() if args.no_figures else FIGURE_SUFFIXES)
    check_writable(out)
    print(f"results will be written to {out} ({why})", file=sys.stderr)
    raw = load_ethanol(args.data_dir)
    data = standardize(raw.X, raw.y)
    optima = {p: lp_optimum(data.X, data.y, p).loss for p in (2, 4)}
    runs = preset.runs()
    print(f"ethanol {preset.name}: {len(runs)} runs x {preset.num_iters:,} iterations, {args.dtype} on {args.device}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)
    result = run_sweep(data, runs, preset.num_iters, record=preset.record(), dtype=args.dtype, device=args.device,
                       progress=_Progress(f"ethanol {preset.name}"),
                       command=args.command_line)
    result.provenance["optimum_loss"] = {str(p): v for p, v in optima.items()}  # L* of lp_optimum, per p
    result.save(out)
    written = [out]
    if not args.no_figures:
        use_book_style()
        stem = out.with_suffix("")
        for p, suffix in zip((2, 4), FIGURE_SUFFIXES):
            written.append(Path(f"{stem}{suffix}"))
            _save(plot_depth_sweep(result, p, optimum=optima[p]), result, preset.name, written[-1])
        written.append(Path(f"{stem}{FIGURE_SUFFIXES[2]}"))
        _save(plot_teaser(result, optimum=optima[4]), result, preset.name, written[-1])
    print(summary(result, optima))
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``ethanol`` sub-command to ``python -m overparam``."""
    parser = subparsers.add_parser(
        "ethanol",
        help="the paper's Ethanol sweeps: depths 1-8 on ℓ2/ℓ4, and the ℓ4 teaser against adaptive methods",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="fast (CI, seconds), default (a few minutes), paper (10^6 iterations, depths 1-8)")
    parser.add_argument("--out", default=None, help="results file (default results/ethanol_<preset>.npz, or a fresh "
                        "time-stamped name if that exists); figures are written next to it")
    parser.add_argument("--force", action="store_true", help="replace the default results file if it exists")
    parser.add_argument("--data-dir", default=None, help="folder holding gas_sensor/ (default: OVERPARAM_DATA_DIR)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", type=device_name, default="cpu", help="torch device: cpu, cuda or cuda:K")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-figures", action="store_true", help="write the results file only")
    parser.set_defaults(func=run)
