"""Does a deep network follow the end-to-end rule? Measuring it (Chapter 4, ``ch-preconditioner``).

Theorem 1 of the paper (arXiv:1802.06509) says that gradient flow on balanced
layers moves the end-to-end matrix by a preconditioned rule of its own; the
paper's Figure 2 checks the discrete version by training depth-2 and depth-3
networks and a single-layer model with Equation 12 side by side. This
module holds the small pieces Chapter 4 needs for that comparison: the
step-by-step gap between two runs, a network-versus-rule run from one
initialization, its plot (also the callback of the chapter's widget), the
curvature the rule sees through its preconditioner (which says when a step
size is too large), and the relative imbalance that decides whether the rule
applies at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from .balance import balanced_init, max_imbalance
from .deep import DeepHistory, _as_factors, end_to_end, train_deep_linear
from .dynamics import layer_preconditioner, preconditioner, psd_power, train_end_to_end
from .losses import check_problem
from .optimum import check_optimum, suboptimality
from .plotting import DEPTH_COLORS, hollow_band, loss_axes, note_scale, plot_loss
from .validation import finite_array

__all__ = [
    "RuleComparison",
    "RunGap",
    "compare_network_and_rule",
    "network_sharpness",
    "plot_comparison",
    "preconditioned_sharpness",
    "relative_imbalance",
    "rule_demo",
    "run_gap",
]


def _relative(diff: np.ndarray, size: np.ndarray) -> np.ndarray:
    """``diff / size``, with 0/0 = 0 and x/0 = inf for x > 0."""
    out = np.full(diff.shape, np.inf)
    np.divide(diff, size, out=out, where=size > 0)
    out[(size == 0) & (diff == 0)] = 0.0
    return out


@dataclass(frozen=True)
class RunGap:
    """How far a run is from a reference run, at the steps both recorded (Chapter 4, ``ch-preconditioner``).

    Attributes
    ----------
    steps : ndarray of int
        The recorded steps the two runs share (a diverged run shares only its
        steps before the divergence).
    loss_gap : ndarray
        :math:`|L_{\\mathrm{run}}(t) - L_{\\mathrm{ref}}(t)| \\,/\\, L_{\\mathrm{ref}}(t)`.
    W_e_gap : ndarray
        :math:`\\|W_{\\mathrm{run}}(t) - W_{\\mathrm{ref}}(t)\\|_F \\,/\\, \\|W_{\\mathrm{ref}}(t)\\|_F`.
    """

    steps: np.ndarray
    loss_gap: np.ndarray
    W_e_gap: np.ndarray

    @property
    def max_loss_gap(self) -> float:
        """The largest relative loss gap."""
        return float(self.loss_gap.max())

    @property
    def max_W_e_gap(self) -> float:
        """The largest relative distance between the end-to-end matrices."""
        return float(self.W_e_gap.max())

    @property
    def step_of_max(self) -> int:
        """The step at which the relative loss gap is largest."""
        return int(self.steps[np.argmax(self.loss_gap)])

    def first_step_above(self, threshold: float, of: Literal["loss", "W_e"] = "loss") -> int | None:
        """First shared step whose relative gap (of the loss, or of W_e) exceeds ``threshold``; ``None`` if none."""
        if of not in ("loss", "W_e"):
            raise ValueError(f"of must be 'loss' or 'W_e', got {of!r}")
        gap = self.loss_gap if of == "loss" else self.W_e_gap
        hit = np.flatnonzero(gap > threshold)
        return int(self.steps[hit[0]]) if hit.size else None


def run_gap(run: DeepHistory, reference: DeepHistory) -> RunGap:
    """Relative gap of ``run`` from ``reference``, step by step (Chapter 4; paper Figure 2).

    .. math::

        \\frac{|L_{\\mathrm{run}}(t) - L_{\\mathrm{ref}}(t)|}{L_{\\mathrm{ref}}(t)},
        \\qquad
        \\frac{\\|W_{e,\\mathrm{run}}(t) - W_{e,\\mathrm{ref}}(t)\\|_F}{\\|W_{e,\\mathrm{ref}}(t)\\|_F}

    at every step t recorded by both runs (0/0 counts as 0, x/0 as inf).
    Chapter 4 (``ch-preconditioner``) compares a deep network with the
    end-to-end rule this way, the comparison of the paper's Figure 2.

    Parameters
    ----------
    run, reference : DeepHistory
        E.g. ``op.train_deep_linear(...)`` and ``op.train_end_to_end(...)``
        with the same W_e(0); their W_e must have the same shape.

    Returns
    -------
    RunGap
    """
    for name, h in (("run", run), ("reference", reference)):
        if not isinstance(h, DeepHistory):
            raise ValueError(f"{name} must be a DeepHistory (a run of op.train_deep_linear or op.train_end_to_end)")
    if run.W_e.shape[1:] != reference.W_e.shape[1:]:
        raise ValueError(
            f"run and reference must have end-to-end matrices of one shape, got {run.W_e.shape[1:]} "
            f"and {reference.W_e.shape[1:]}"
        )
    steps, i, j = np.intersect1d(run.steps, reference.steps, return_indices=True)
    if steps.size == 0:
        stopped = [f"{name} diverged at step {h.diverged_at}" for name, h in (("run", run), ("reference", reference))
                   if h.diverged and h.steps.size == 0]
        raise ValueError("run and reference share no recorded step; "
                         + ("; ".join(stopped) if stopped else "record both at the same steps"))
    axes = tuple(range(1, run.W_e.ndim))
    return RunGap(
        steps=steps,
        loss_gap=_relative(np.abs(run.loss[i] - reference.loss[j]), np.abs(reference.loss[j])),
        W_e_gap=_relative(
            np.sqrt(((run.W_e[i] - reference.W_e[j]) ** 2).sum(axis=axes)),
            np.sqrt((reference.W_e[j] ** 2).sum(axis=axes)),
        ),
    )


@dataclass(frozen=True, repr=False)
class RuleComparison:
    """A deep network and the end-to-end rule, run from the same W_e(0) (Chapter 4, ``ch-preconditioner``).

    Attributes
    ----------
    network : DeepHistory
        Gradient descent on the layers.
    rule : DeepHistory
        The single-output rule (Equation 12) on one layer, same depth N.
    gap : RunGap
        ``run_gap(network, rule)``.
    """

    network: DeepHistory
    rule: DeepHistory
    gap: RunGap

    @property
    def depth(self) -> int:
        """N."""
        return self.network.depth

    @property
    def lr(self) -> float:
        """η."""
        return self.network.lr

    def __repr__(self) -> str:
        status = "".join(f", {name} diverged at step {h.diverged_at}"
                         for name, h in (("network", self.network), ("rule", self.rule)) if h.diverged)
        return (f"RuleComparison(depth {self.depth}, η = {self.lr:.3g}, {self.network.steps[-1]:,} steps: "
                f"largest relative loss gap {self.gap.max_loss_gap:.2e} at step {self.gap.step_of_max}{status})")


def compare_network_and_rule(
    X: np.ndarray,
    y: np.ndarray,
    p: int,
    factors0: Sequence[np.ndarray],
    lr: float,
    num_iters: int,
    weight_decay: float = 0.0,
    *,
    record_every: int = 1,
    record: int | Sequence[int] | np.ndarray | None = None,
    dtype: torch.dtype = torch.float64,
) -> RuleComparison:
    """Train a deep linear network and the end-to-end rule from its W_e(0); measure the gap.

    The network runs :func:`~overparam.deep.train_deep_linear` from
    ``factors0``; the rule runs :func:`~overparam.dynamics.train_end_to_end`
    (the paper's Equation 12 for one output) from :math:`W_e(0) = W_N \\cdots W_1` with
    N = ``len(factors0)``, with the same η, λ, iterations and recording. A
    diverging run stops (``on_divergence="stop"``) and the gap covers the
    steps both reached. This is the paper's Figure 2 experiment.
    Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    X, y, p
        The ℓp problem (X of shape (m, d), y of shape (m,), even p >= 2).
    factors0 : list of ndarray
        Initial layers ``[W_1, …, W_N]`` with one output.
    lr, num_iters, weight_decay, record_every, record, dtype
        As in :func:`~overparam.deep.train_deep_linear`: both runs are
        recorded at the same steps.

    Returns
    -------
    RuleComparison
    """
    factors0 = _as_factors(factors0, "factors0")
    with np.errstate(over="ignore", invalid="ignore"):
        finite_product = bool(np.isfinite(end_to_end(factors0)).all())
    if not finite_product:
        raise ValueError("factors0 must have a finite product W_e(0) = W_N ⋯ W_1 (it overflows)")
    kwargs: dict[str, Any] = dict(record_every=record_every, record=record, dtype=dtype, on_divergence="stop")
    network = train_deep_linear(X, y, p, factors0, lr, num_iters, weight_decay, **kwargs)
    rule = train_end_to_end(X, y, p, end_to_end(factors0), len(factors0), lr, num_iters, weight_decay, **kwargs)
    return RuleComparison(network=network, rule=rule, gap=run_gap(network, rule))


def plot_comparison(comparison: RuleComparison, ax: Any = None, *, title: str | None = None,
                    optimum: Any = None) -> Any:
    """Overlay the network's loss (a :func:`~overparam.plotting.hollow_band`) and the rule's (dashed) on log-log axes.

    Colour by depth (``op.DEPTH_COLORS``); a run that diverged is marked with
    an ×. Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    comparison : RuleComparison
    ax : matplotlib axes, optional
    title : str, optional
    optimum : LpOptimum or float, optional
        The minimal loss :math:`L^*` of the problem (:func:`overparam.lp_optimum`);
        given, the curves show the suboptimality :math:`L - L^*`
        (:func:`overparam.suboptimality`, Chapter 1) instead of the loss.

    Returns
    -------
    matplotlib axes
    """
    if not isinstance(comparison, RuleComparison):
        raise ValueError("comparison must be a RuleComparison (from compare_network_and_rule)")
    N = comparison.depth
    if title is None:
        title = f"depth {N}, η = {comparison.lr:g}"
    ax = loss_axes(ax, title=title, logx=True, ylabel="training loss" if optimum is None else "L − L*")
    color = DEPTH_COLORS[N % len(DEPTH_COLORS)]
    for h, label, style in ((comparison.network, f"depth-{N} network (GD)", "-"),
                            (comparison.rule, f"end-to-end rule, N = {N}", "--")):
        curve = h.loss if optimum is None else suboptimality(h.loss, optimum)
        band = {"path_effects": hollow_band(color), "lw": 5.0} if style == "-" else {"lw": 1.4}
        plot_loss(ax, h.steps, curve, label, color=color, ls=style, **band)
        if h.diverged:
            ax.plot(max(h.steps[-1], 1), curve[-1], "x", color=color, ms=9, mew=2)
    ax.legend()
    return ax


def rule_demo(
    depth: int,
    lr: float,
    *,
    X: np.ndarray,
    y: np.ndarray,
    p: int = 4,
    num_iters: int = 500,
    scale: float = 0.3,
    seed: int,
    optimum: Any = None,
) -> RuleComparison:
    """Network versus rule for one depth and step size, plotted: the chapter widget's callback.

    Balanced initialization ``op.balanced_init(d, 1, depth, scale, seed)``,
    then :func:`compare_network_and_rule`; draws the two losses (or, given
    ``optimum``, their suboptimality :math:`L - L^*`, as
    :func:`plot_comparison`) and their relative loss gap side by side. Meant for
    ``ipywidgets.interact(rule_demo, depth=..., lr=..., X=fixed(X), ...)``:
    the function only draws (it does not show); ``interact`` displays the
    figures a callback drew, then the returned comparison's one-line summary.
    Defined in Chapter 4 (``ch-preconditioner``).

    Returns
    -------
    RuleComparison

    Raises
    ------
    ValueError
        ``X``, ``y`` or ``p`` fail :func:`~overparam.losses.check_problem` (checked before any run), or
        ``optimum`` is not an LpOptimum or a finite number, or lies above some loss of the runs beyond
        round-off (:func:`~overparam.optimum.check_optimum`, checked before anything is drawn).
    """
    import matplotlib.pyplot as plt

    X, y, _ = check_problem(X, y, p)
    if optimum is not None:
        check_optimum(optimum, np.empty(0))  # its type, before the runs
    comparison = compare_network_and_rule(X, y, p, balanced_init(X.shape[1], 1, depth, scale, seed), lr, num_iters)
    if optimum is not None:
        check_optimum(optimum, np.concatenate([comparison.network.loss, comparison.rule.loss]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3))
    plot_comparison(comparison, ax1, title=f"ℓ{p} loss, depth {depth}, η = {lr:.2g}", optimum=optimum)
    gap = comparison.gap
    after0 = gap.steps > 0  # log axis: no place for step 0 (where the gap is 0 anyway)
    ax2.loglog(gap.steps[after0], np.maximum(gap.loss_gap[after0], 1e-16), color="0.3")
    ax2.set(xlabel="iteration", ylabel="relative loss gap",
            title=r"$|L_{\mathrm{net}} - L_{\mathrm{rule}}| \,/\, L_{\mathrm{rule}}$")
    fig.tight_layout()
    note_scale(fig, f"{num_iters:,} iterations", independent=True)  # the budget is the caller's, at every scale
    return comparison


def relative_imbalance(factors: Sequence[np.ndarray]) -> float:
    """Imbalance measured against the size of the layers.

    .. math::

        \\frac{\\max_j \\|W_{j+1}^\\top W_{j+1} - W_j W_j^\\top\\|_F}{\\max_j \\|W_j\\|_2^2}

    A scale-free version of δ-balancedness (Definition 1 of Arora, Cohen,
    Golowich & Hu, ICLR 2019, arXiv:1810.02281). Theorem 1's
    balancedness matters only relative to :math:`\\|W_j\\|^2`: the ratio is
    invariant under rescaling all layers by one factor, so a layer-wise
    Gaussian initialization is no more balanced, in this sense, at a smaller
    standard deviation. 0 for N = 1. The numerator is a Frobenius norm and the
    denominator a spectral one, so the ratio can exceed 1, and at the same
    spectral imbalance it grows with the hidden width (about as its square
    root): it compares runs of one architecture, not different widths.
    Defined in Chapter 2 (``ch-deep-linear``), used again in Chapter 4
    (``ch-preconditioner``).
    """
    Ws = _as_factors(factors)
    size = max(float(np.linalg.norm(W, 2)) ** 2 for W in Ws)
    if size == 0:
        raise ValueError("factors must not all be zero (the ratio is undefined)")
    return max_imbalance(Ws) / size


def preconditioned_sharpness(W_e: np.ndarray, depth: int, hessian: np.ndarray) -> float:
    """Largest eigenvalue of :math:`P_{W_e} H`: the curvature the end-to-end rule sees.

    .. math::

        \\lambda_{\\max}\\bigl(P_{W_e} H\\bigr)
        = \\lambda_{\\max}\\bigl(P_{W_e}^{1/2}\\, H\\, P_{W_e}^{1/2}\\bigr),

    with :math:`P_{W_e}` of the paper's Claim 1 and H the Hessian of
    :math:`L^1` at :math:`W_e` in the same column-stacked order (for one
    output, ``op.lp_hessian(w, X, y, p)``). Near a point where the gradient is
    small, the rule :math:`\\mathrm{vec}(W_e) \\leftarrow \\mathrm{vec}(W_e) -
    \\eta P_{W_e} \\mathrm{vec}(\\nabla L^1)` is, to first order and ignoring
    how :math:`P_{W_e}` changes along the way, stable only while
    :math:`\\eta\\,\\lambda_{\\max}(P_{W_e} H) < 2`, the analogue of
    :math:`\\eta < 2/\\lambda_{\\max}(H)` for plain gradient descent (Chapter 1, ``ch-lp-regression``).
    N = 1 gives :math:`\\lambda_{\\max}(H)`. Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    W_e : ndarray, shape (k, d)
    depth : int
        N >= 1.
    hessian : ndarray, shape (kd, kd)
        Symmetric.

    Returns
    -------
    float
    """
    return _sharpness(preconditioner(W_e, depth), hessian)


def network_sharpness(factors: Sequence[np.ndarray], hessian: np.ndarray) -> float:
    """Largest eigenvalue of :math:`J J^\\top H`: the curvature one gradient step on the layers sees.

    .. math::

        \\lambda_{\\max}\\bigl(J J^\\top H\\bigr),

    with :math:`J J^\\top` from :func:`~overparam.dynamics.layer_preconditioner`
    (any layers, balanced or not) and H the Hessian of :math:`L^1` at
    :math:`W_e`, column-stacked. Where :math:`\\nabla L^1(W_e) = 0` these are
    the nonzero eigenvalues of the Hessian of :math:`L^N` with respect to all
    the layers' entries, so gradient descent on the layers is stable there, to
    first order, only while :math:`\\eta\\,\\lambda_{\\max} < 2`. For balanced
    layers it equals :func:`preconditioned_sharpness`. Defined in Chapter 2
    (``ch-deep-linear``).

    Parameters
    ----------
    factors : list of ndarray
        ``[W_1, …, W_N]``.
    hessian : ndarray, shape (kd, kd)
        Symmetric.

    Returns
    -------
    float
    """
    return _sharpness(layer_preconditioner(factors), hessian)


def _sharpness(P: np.ndarray, hessian: np.ndarray) -> float:
    """:math:`\\lambda_{\\max}(P H)` for a positive semidefinite P, as that of :math:`P^{1/2} H P^{1/2}`."""
    H = finite_array("hessian", hessian)
    if H.shape != P.shape:
        raise ValueError(f"hessian must have shape {P.shape} (k·d squared, column-stacked), got {H.shape}")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12 * float(np.abs(H).max(initial=1.0))):
        raise ValueError("hessian must be symmetric")
    root = psd_power(P, 0.5)
    return float(np.linalg.eigvalsh(root @ ((H + H.T) / 2) @ root)[-1])
