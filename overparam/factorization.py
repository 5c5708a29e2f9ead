"""Deep matrix factorization for matrix completion, and its nuclear-norm baseline (Chapter 7, ch-beyond-speed, Part B).

Arora, Cohen, Hu & Luo, "Implicit Regularization in Deep Matrix Factorization"
(NeurIPS 2019, arXiv:1905.13655) fit a few observed entries of a low-rank
matrix :math:`W^*` with a product :math:`W_e = W_N \\cdots W_1` of square
layers trained by gradient descent from near zero, and find that depth
N >= 3 recovers :math:`W^*` from fewer entries than depth 2 and than the
minimum-nuclear-norm completion. This module holds the pieces Chapter 7 calls:

* the problem: a random low-rank target (:func:`low_rank_matrix`), the
  observed entries and the completion loss (:class:`CompletionProblem`,
  :func:`completion_problem`);
* the network: a small exactly balanced start (:func:`small_balanced_start`)
  and gradient descent on the layers (:func:`train_deep_factorization`), run
  by the book's one loop, :func:`overparam.training.train_loop`, with the
  layer gradients of :func:`overparam.deep.layer_gradients`;
* the lens: the singular-value dynamics of the end-to-end matrix under
  gradient flow from a balanced start (:func:`singular_value_rates`) and the
  effective rank (:func:`effective_rank`);
* the baseline: minimum nuclear norm subject to the observations, by ADMM
  with singular value thresholding (:func:`singular_value_threshold`,
  :func:`nuclear_norm_completion`), a short solver instead of a convex-solver
  dependency;
* the experiment of Part B in one call (:func:`completion_experiment`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from .balance import balanced_factors
from .deep import _as_factors, _layer_gradients, _product, end_to_end
from .sweep import log_steps
from .training import NEVER, History, check_record, check_run, train_loop
from .validation import check_int, check_real, check_sequence, finite_array, rng_from_seed

__all__ = [
    "COMPLETION_PRESETS",
    "CompletionExperiment",
    "CompletionPreset",
    "ConvergenceError",
    "counts_table",
    "CompletionProblem",
    "FactorizationHistory",
    "NuclearNormResult",
    "completion_experiment",
    "completion_markdown",
    "completion_methods",
    "completion_problem",
    "effective_rank",
    "low_rank_matrix",
    "nuclear_norm_completion",
    "plot_errors_vs_count",
    "plot_singular_values",
    "run_completion",
    "singular_value_rate_error",
    "singular_value_rates",
    "singular_value_threshold",
    "small_balanced_start",
    "train_deep_factorization",
]

Seed = int | np.random.Generator


def _matrix(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite 2-D float64 array, or a ``ValueError`` naming ``name``."""
    out = finite_array(name, value)
    if out.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {out.shape}")
    return out


# ---------------------------------------------------------------------------
# The problem
# ---------------------------------------------------------------------------


def low_rank_matrix(n_rows: int, n_cols: int, rank: int, seed: Seed) -> np.ndarray:
    """A random rank-``rank`` matrix :math:`U V^\\top`, scaled to Frobenius norm 1.

    U (n_rows × rank) and V (n_cols × rank) have i.i.d. standard Gaussian
    entries. **The book's rule:** the product is divided by its Frobenius
    norm, so every target of Chapter 7 (ch-beyond-speed) has
    :math:`\\|W^*\\|_F = 1` (the exact normalization of arXiv:1905.13655 is
    not claimed here).

    Parameters
    ----------
    n_rows, n_cols : int
        >= 1.
    rank : int
        1 <= rank <= min(n_rows, n_cols).
    seed : int or numpy Generator
        An integer >= 0, or a Generator to draw from.

    Returns
    -------
    ndarray, shape (n_rows, n_cols)
        Rank ``rank`` (with probability 1), Frobenius norm 1.

    Raises
    ------
    ValueError
        For a bad argument, naming it (e.g. ``seed=-1`` or ``seed=1.5``).
    """
    n_rows, n_cols = check_int("n_rows", n_rows, 1), check_int("n_cols", n_cols, 1)
    rank = check_int("rank", rank, 1, min(n_rows, n_cols))
    rng = rng_from_seed(seed)
    U = rng.standard_normal((n_rows, rank))
    V = rng.standard_normal((n_cols, rank))
    W = U @ V.T
    return W / np.linalg.norm(W)


@dataclass(frozen=True, eq=False)
class CompletionProblem:
    """A matrix-completion problem: a target and the set Ω of its observed entries.

    The loss is the **sum** (not the mean) over observed entries,

    .. math::

        \\ell(W) = \\tfrac12 \\sum_{(i,j) \\in \\Omega} (W_{ij} - W^*_{ij})^2,
        \\qquad \\nabla \\ell(W) = P_\\Omega(W - W^*),

    :math:`P_\\Omega` keeping the observed entries and zeroing the others: the
    completion loss of arXiv:1905.13655 in the book's normalization (a sum
    over Ω with the factor ½). Defined in Chapter 7 (ch-beyond-speed).

    Attributes
    ----------
    target : ndarray, shape (n_rows, n_cols)
        :math:`W^*`, finite (stored as a read-only float64 copy).
    mask : ndarray of bool, shape (n_rows, n_cols)
        True at the observed entries (a read-only copy); at least one.

    Raises
    ------
    ValueError
        ``target`` is not a finite 2-D matrix, or ``mask`` is not a boolean
        array of its shape with at least one True entry.
    """

    target: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        target = _matrix("target", self.target).copy()
        mask = np.asarray(self.mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be a boolean array (True = observed), got dtype {mask.dtype}")
        if mask.shape != target.shape:
            raise ValueError(f"mask must have the shape of target {target.shape}, got {mask.shape}")
        if not mask.any():
            raise ValueError("mask must observe at least one entry (True somewhere; with none the loss is 0 "
                             "for every W), got no True entry")
        mask = mask.copy()
        target.flags.writeable = False
        mask.flags.writeable = False
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "mask", mask)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_rows, n_cols)."""
        return self.target.shape  # type: ignore[return-value]

    @property
    def num_observed(self) -> int:
        """|Ω|, the number of observed entries."""
        return int(self.mask.sum())

    def _check(self, W: Any) -> np.ndarray:
        W = finite_array("W", W)
        if W.shape != self.target.shape:
            raise ValueError(f"W must have the target's shape {self.target.shape}, got {W.shape}")
        return W

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """:math:`\\nabla\\ell(W) = P_\\Omega(W - W^*)`: the residual on Ω, 0 elsewhere."""
        return self._gradient(self._check(W))

    def loss(self, W: np.ndarray) -> float:
        """:math:`\\ell(W) = \\frac12 \\sum_{(i,j)\\in\\Omega} (W_{ij} - W^*_{ij})^2` (a sum over Ω, not a mean)."""
        return self._loss(self._check(W))

    def _gradient(self, W: np.ndarray) -> np.ndarray:
        """:meth:`gradient` of a float64 array of the target's shape, unchecked (the training loop's)."""
        return np.where(self.mask, W - self.target, 0.0)

    def _loss(self, W: np.ndarray) -> float:
        """:meth:`loss` of a float64 array of the target's shape, unchecked (the training loop's)."""
        residual = self._gradient(W)
        return 0.5 * float(np.sum(residual * residual))

    def reconstruction_error(self, W: np.ndarray) -> float:
        """:math:`\\|W - W^*\\|_F / \\|W^*\\|_F` over **all** entries, observed or not.

        Raises
        ------
        ValueError
            If the target is the zero matrix (the relative error is undefined).
        """
        W = self._check(W)
        norm = float(np.linalg.norm(self.target))
        if norm == 0:
            raise ValueError("target is the zero matrix: the relative reconstruction error is undefined")
        return float(np.linalg.norm(W - self.target)) / norm


def completion_problem(n: int, rank: int, num_observed: int, seed: Seed, n_cols: int | None = None
                       ) -> CompletionProblem:
    """A random completion problem: a :func:`low_rank_matrix` target and ``num_observed`` entries drawn uniformly.

    One generator draws the target first, then a uniformly random ordering
    of all entries, of which the first ``num_observed`` are observed
    (uniform sampling without replacement). Hence, for one seed, the target
    does not depend on ``num_observed`` and the observed sets are **nested**:
    a larger count observes every entry a smaller one does, so a sweep over
    counts (Chapter 7, ch-beyond-speed) adds observations to one problem.

    Parameters
    ----------
    n : int
        Rows (and columns unless ``n_cols`` is given), >= 1.
    rank : int
        Rank of the target, 1 <= rank <= min(n, n_cols).
    num_observed : int
        1 <= num_observed <= n · n_cols.
    seed : int or numpy Generator
        An integer >= 0, or a Generator to draw from.
    n_cols : int, optional
        Columns; default ``n`` (square).

    Returns
    -------
    CompletionProblem
    """
    n = check_int("n", n, 1)
    n_cols = n if n_cols is None else check_int("n_cols", n_cols, 1)
    rank = check_int("rank", rank, 1, min(n, n_cols))
    num_observed = check_int("num_observed", num_observed, 1, n * n_cols)
    rng = rng_from_seed(seed)
    target = low_rank_matrix(n, n_cols, rank, rng)
    mask = np.zeros(n * n_cols, dtype=bool)
    mask[rng.permutation(n * n_cols)[:num_observed]] = True
    return CompletionProblem(target=target, mask=mask.reshape(n, n_cols))


# ---------------------------------------------------------------------------
# The network: a balanced start and gradient descent on the layers
# ---------------------------------------------------------------------------


def small_balanced_start(n_rows: int, n_cols: int, depth: int, scale: float, seed: Seed) -> list[np.ndarray]:
    """Exactly balanced layers whose product is a Gaussian matrix of Frobenius norm ``scale``.

    Draw :math:`A` (n_rows × n_cols) with i.i.d. N(0, 1) entries, rescale it
    to :math:`\\|A\\|_F =` ``scale`` and split it by Procedure 1
    (:func:`overparam.balance.balanced_factors`), every hidden width
    min(n_rows, n_cols). So :math:`W_N \\cdots W_1 = A` (to round-off), the
    layers are balanced (:math:`D_j = 0`), and for a small ``scale`` the start
    is near zero: the setting in which :func:`singular_value_rates` holds
    exactly under gradient flow. (A small random start of independent layers
    is balanced only approximately; this one makes the theory exact.)
    Note the rule differs from :func:`overparam.balance.balanced_init`, which
    fixes the spectral norm of every layer. Defined in Chapter 7
    (ch-beyond-speed).

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of the end-to-end matrix, >= 1.
    depth : int
        N >= 1.
    scale : float
        :math:`\\|W_e\\|_F` at the start, > 0.
    seed : int or numpy Generator
        An integer >= 0, or a Generator to draw from.

    Returns
    -------
    list of ndarray
        ``[W_1, …, W_N]``: ``W_1`` of shape (m, n_cols), ``W_N`` of shape
        (n_rows, m), the others (m, m), m = min(n_rows, n_cols).
    """
    n_rows, n_cols = check_int("n_rows", n_rows, 1), check_int("n_cols", n_cols, 1)
    depth = check_int("depth", depth, 1)
    scale = check_real("scale", scale, above=0)
    A = rng_from_seed(seed).standard_normal((n_rows, n_cols))
    A *= scale / np.linalg.norm(A)
    return balanced_factors(A, depth)


@dataclass(frozen=True, kw_only=True)
class FactorizationHistory(History):
    """A run of gradient descent on a deep matrix factorization (Chapter 7, ch-beyond-speed).

    Everything of :class:`~overparam.training.History` (``steps``, ``loss``,
    ``diverged_at``; the loss is :meth:`CompletionProblem.loss` of the
    end-to-end matrix), plus:

    Attributes
    ----------
    factors : tuple of ndarray
        Final layers ``(W_1, …, W_N)``; for a diverged run, the last iterate
        before the divergence.
    W_e : ndarray, shape (n_rows, n_cols)
        The final end-to-end matrix :math:`W_N \\cdots W_1` only (unlike
        :class:`~overparam.training.DeepHistory`, which keeps one per recorded
        step: at 100 × 100 that would cost memory; record what you need with
        ``observe``).
    lr : float
        η.
    depth : int
        N.
    observed : ndarray or None
        ``observe(W_e)`` at every recorded step, stacked, shape
        ``(len(steps), *shape)``; ``None`` without ``observe``.
    """

    factors: tuple[np.ndarray, ...]
    W_e: np.ndarray
    lr: float
    depth: int
    observed: np.ndarray | None = None


def train_deep_factorization(
    problem: CompletionProblem,
    factors: Sequence[np.ndarray],
    lr: float,
    num_iters: int,
    *,
    record_every: int = 1,
    record: int | Sequence[int] | None = None,
    on_divergence: Literal["raise", "stop"] = "raise",
    observe: Callable[[np.ndarray], Any] | None = None,
) -> FactorizationHistory:
    """Gradient descent on the layers of :math:`W_e = W_N \\cdots W_1` for the completion loss.

    .. math::

        W_j \\leftarrow W_j - \\eta\\, (W_N \\cdots W_{j+1})^\\top \\,
        P_\\Omega(W_e - W^*)\\, (W_{j-1} \\cdots W_1)^\\top, \\qquad j = 1..N,

    all layers from the same iterate (the layer gradients of
    :func:`overparam.deep.layer_gradients` with :math:`\\nabla\\ell` of
    :class:`CompletionProblem`): the deep matrix factorization of
    arXiv:1905.13655. Run by :func:`overparam.training.train_loop`, so the
    divergence rule, the recording rule and ``on_divergence`` are the book's
    (Chapter 7, ch-beyond-speed). In float64, numpy.

    Parameters
    ----------
    problem : CompletionProblem
    factors : list of ndarray
        Initial ``[W_1, …, W_N]``, finite: ``W_1`` with n_cols columns,
        ``W_N`` with n_rows rows (e.g. :func:`small_balanced_start`).
    lr : float
        η > 0.
    num_iters : int
        Number of steps, >= 0.
    record_every : int
        Record the loss (and ``observe``) every ``record_every`` steps and at
        the last step.
    record : int or sequence of int, optional
        Record every ``record`` steps, or at these steps (and at 0 and the last step), e.g. a
        log-spaced grid from :func:`overparam.sweep.log_steps` merged with a
        linear one, as :func:`overparam.run_sweep` takes it. ``record_every``
        must then keep its default, 1 (a ``ValueError`` otherwise).
        ``observe`` is called at these steps only.
    on_divergence : {"raise", "stop"}
        Raise :class:`~overparam.training.DivergenceError` naming the step, or
        keep the history up to the step before (a diverged run also records
        its last step before the divergence, as :func:`~overparam.training.train_loop`
        does).
    observe : callable, optional
        ``observe(W_e) -> array`` of a fixed shape, kept at every recorded
        step, e.g. ``lambda W: np.linalg.svd(W, compute_uv=False)`` for the
        singular values.

    Returns
    -------
    FactorizationHistory

    Raises
    ------
    ValueError
        For a bad argument, naming it; a start that is not finite is one
        (``"factors[j] must contain only finite values"``), not a divergence.
    DivergenceError
        With ``on_divergence="raise"``, naming the step at which the run diverged.
    """
    if not isinstance(problem, CompletionProblem):
        raise ValueError(f"problem must be a CompletionProblem, got {type(problem).__name__}")
    Ws0 = _as_factors(factors)  # the one check of the layers: the loop below uses the unchecked helpers
    n_rows, n_cols = problem.shape
    if Ws0[0].shape[1] != n_cols or Ws0[-1].shape[0] != n_rows:
        raise ValueError(
            f"factors must multiply to the target's shape {problem.shape}: W_1 needs {n_cols} columns and W_N "
            f"{n_rows} rows, got W_1 {Ws0[0].shape} and W_N {Ws0[-1].shape}")
    lr, num_iters, record_every = check_run(lr, num_iters, record_every, on_divergence)
    if observe is not None and not callable(observe):
        raise ValueError(f"observe must be None or a callable taking W_e, got {type(observe).__name__}")

    def loss(Ws: list[np.ndarray]) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return problem._loss(_product(Ws))

    def step(Ws: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        with np.errstate(over="ignore", invalid="ignore"):
            grad_e = problem._gradient(_product(Ws))
            value = 0.5 * float(np.sum(grad_e * grad_e))
            if not math.isfinite(value):  # the loop stops here; no step from a non-finite state
                return value, Ws
            return value, [W - lr * G for W, G in zip(Ws, _layer_gradients(Ws, grad_e))]

    watch = None
    if observe is not None:
        def watch(Ws: list[np.ndarray]) -> torch.Tensor:
            return torch.as_tensor(np.asarray(observe(_product(Ws)), dtype=np.float64))

    trace = train_loop(step, loss, Ws0, num_iters, record_every=record_every, record=record,
                       on_divergence=on_divergence, observe=watch, start="factors", data="problem.target",
                       what=f"gradient descent on a depth-{len(Ws0)} matrix factorization")
    final = [W.copy() for W in trace.final]
    return FactorizationHistory(
        steps=trace.steps,
        loss=trace.loss,
        diverged_at=trace.diverged_at,
        dtype=trace.dtype,
        factors=tuple(final),
        W_e=end_to_end(final),
        lr=lr,
        depth=len(final),
        observed=trace.observed,
    )


# ---------------------------------------------------------------------------
# The lens: singular-value dynamics and effective rank
# ---------------------------------------------------------------------------


def singular_value_rates(W_e: np.ndarray, grad_e: np.ndarray, depth: int) -> np.ndarray:
    """Time derivatives of the singular values of :math:`W_e` under gradient flow from a balanced start.

    For a depth-N factorization whose layers are balanced at the start,
    gradient flow moves every singular value :math:`\\sigma_r` of the
    end-to-end matrix (with singular vectors :math:`u_r, v_r`) as

    .. math::

        \\dot\\sigma_r = -N\\, (\\sigma_r^2)^{1 - 1/N}\\,
        \\langle \\nabla\\ell(W_e),\\, u_r v_r^\\top \\rangle

    (the singular-value dynamics of arXiv:1905.13655's dynamical analysis): the
    factor :math:`\\sigma_r^{2 - 2/N}` speeds up large singular values and
    stalls small ones the more the deeper the network, the book's reading of
    why depth finds low rank. It is :math:`-u_r^\\top D v_r` for the direction
    D of the end-to-end rule (:func:`overparam.dynamics.end_to_end_direction`,
    arXiv:1802.06509, Claim 1), whose preconditioner has eigenvalue
    :math:`N\\sigma_r^{2-2/N}` on :math:`u_r v_r^\\top`. N = 1 gives
    :math:`-u_r^\\top \\nabla\\ell\\, v_r`. Defined in Chapter 7
    (ch-beyond-speed).

    Parameters
    ----------
    W_e : ndarray, shape (k, d)
    grad_e : ndarray, shape (k, d)
        :math:`\\nabla\\ell(W_e)`, e.g. :meth:`CompletionProblem.gradient`.
    depth : int
        N >= 1.

    Returns
    -------
    ndarray, shape (min(k, d),)
        :math:`\\dot\\sigma_r` for the singular values in decreasing order (thin SVD).
    """
    W_e, grad_e = _matrix("W_e", W_e), _matrix("grad_e", grad_e)
    if grad_e.shape != W_e.shape:
        raise ValueError(f"grad_e must have the shape of W_e {W_e.shape}, got {grad_e.shape}")
    depth = check_int("depth", depth, 1)
    U, s, Vt = np.linalg.svd(W_e, full_matrices=False)
    inner = np.einsum("ir,ij,rj->r", U, grad_e, Vt)
    return -depth * s ** (2.0 - 2.0 / depth) * inner


def singular_value_rate_error(
    problem: CompletionProblem, factors: Sequence[np.ndarray], lr: float, top: int | None = None
) -> float:
    r"""How far one real gradient step departs from the singular-value dynamics (Chapter 7, ch-beyond-speed).

    Takes one step of :func:`train_deep_factorization` with step ``lr`` from
    ``factors`` and compares the finite difference
    :math:`(\sigma_r(1) - \sigma_r(0))/\eta` of the ``top`` largest singular
    values of :math:`W_e` with :func:`singular_value_rates` at the start (the
    depth is ``len(factors)``). The rates hold for gradient flow from a
    balanced start, so at a balanced point the error is the step's own,
    first order in η, and away from balance it also measures the imbalance.

    Parameters
    ----------
    problem : CompletionProblem
    factors : sequence of ndarray
        The layers ``(W_1, …, W_N)`` to step from.
    lr : float
        η > 0.
    top : int, optional
        How many of the largest singular values to compare (default: all).

    Returns
    -------
    float
        :math:`\max_r |\text{finite difference}_r - \dot\sigma_r| \,/\, \max_r |\dot\sigma_r|`
        over the ``top`` largest.

    Raises
    ------
    ValueError
        A bad argument (named), or rates that are all 0 at ``factors`` (e.g. at
        the saddle :math:`W_e = 0`), against which no error is relative.
    """
    if not isinstance(problem, CompletionProblem):
        raise ValueError(f"problem must be a CompletionProblem, got {type(problem).__name__}")
    factors = [_matrix(f"factors[{j}]", W) for j, W in enumerate(factors)]
    lr = check_real("lr", lr, above=0.0)
    W_e = end_to_end(factors)
    top = check_int("top", min(W_e.shape) if top is None else top, 1, min(W_e.shape))
    rates = singular_value_rates(W_e, problem.gradient(W_e), len(factors))[:top]
    after = train_deep_factorization(problem, factors, lr, 1).W_e
    if not np.abs(rates).max() > 0:
        raise ValueError("the singular-value rates at factors are all 0 (no gradient along any u_r v_r^T): "
                         "the relative error is undefined")
    difference = (np.linalg.svd(after, compute_uv=False)[:top] - np.linalg.svd(W_e, compute_uv=False)[:top]) / lr
    return float(np.abs(difference - rates).max() / np.abs(rates).max())


def effective_rank(W: np.ndarray) -> float:
    """The effective rank of Roy & Vetterli (2007): :math:`\\exp(-\\sum_i p_i \\log p_i)`, :math:`p_i = \\sigma_i / \\sum_j \\sigma_j`.

    The exponential of the entropy of the normalized singular values (with
    0 log 0 = 0): between 1 and the rank, equal to k for k equal non-zero
    singular values, unchanged by scaling W: a measure of low rank without a
    threshold. Chapter 7 (ch-beyond-speed) reads it off every final
    :math:`W_e`.

    Parameters
    ----------
    W : ndarray, 2-D

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If W is not a finite 2-D matrix, or is the zero matrix (no distribution p).
    """
    s = np.linalg.svd(_matrix("W", W), compute_uv=False)
    total = float(s.sum())
    if total == 0:
        raise ValueError("W must be a non-zero matrix: the effective rank of 0 is undefined")
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


# ---------------------------------------------------------------------------
# The baseline: minimum nuclear norm by ADMM
# ---------------------------------------------------------------------------


def singular_value_threshold(W: np.ndarray, tau: float) -> np.ndarray:
    """Singular value thresholding :math:`U \\max(\\Sigma - \\tau, 0) V^\\top`.

    The proximal operator of :math:`\\tau\\|\\cdot\\|_*`: the minimizer of
    :math:`\\tau\\|X\\|_* + \\frac12\\|X - W\\|_F^2`. Defined in Chapter 7
    (ch-beyond-speed).

    Parameters
    ----------
    W : ndarray, 2-D
    tau : float
        Threshold, >= 0 (0 returns W).

    Returns
    -------
    ndarray, the shape of W
    """
    W = _matrix("W", W)
    tau = check_real("tau", tau, at_least=0)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return (U * np.maximum(s - tau, 0.0)) @ Vt


@dataclass(frozen=True)
class NuclearNormResult:
    """The minimum-nuclear-norm completion found by :func:`nuclear_norm_completion`.

    Attributes
    ----------
    solution : ndarray, shape (n_rows, n_cols)
        X: equal to the target on Ω exactly, the last iterate elsewhere.
    dual : ndarray, shape (n_rows, n_cols)
        Y = ρU, the scaled dual variable times ρ: at the optimum a subgradient
        of the nuclear norm at X supported on Ω (the optimality certificate:
        ``‖Y‖_2 <= 1``, ``<Y, X> = ‖X‖_*``, ``Y = 0`` off Ω).
    iterations : int
        ADMM iterations taken.
    primal_residual, dual_residual : float
        :math:`\\|X - Z\\|_F` and :math:`\\rho\\|Z - Z_{prev}\\|_F` at the last
        iteration.
    rho : float
        The penalty ρ at the end (it adapts unless ``adapt_rho=False``).
    """

    solution: np.ndarray
    dual: np.ndarray
    iterations: int
    primal_residual: float
    dual_residual: float
    rho: float

    @property
    def nuclear_norm(self) -> float:
        """:math:`\\|X\\|_*` of the solution."""
        return float(np.linalg.svd(self.solution, compute_uv=False).sum())


class ConvergenceError(RuntimeError):
    """An iterative solver stopped at its iteration limit before meeting its tolerance."""


def nuclear_norm_completion(
    problem: CompletionProblem,
    *,
    rho: float | None = None,
    tol: float = 1e-7,
    max_iters: int = 20000,
    adapt_rho: bool = True,
    relaxation: float = 1.6,
) -> NuclearNormResult:
    """Minimum nuclear norm subject to the observations, by ADMM.

    Solves :math:`\\min_X \\|X\\|_*` subject to :math:`X_{ij} = W^*_{ij}` on Ω,
    the convex baseline that arXiv:1905.13655 compares deep factorizations
    with, split as :math:`\\min \\|Z\\|_* + \\iota_C(X)` s.t. X = Z (C the
    matrices that agree with :math:`W^*` on Ω) and iterated in scaled form:

    .. math::

        X &\\leftarrow P_C(Z - U) \\quad\\text{(observed entries reset to } W^*\\text{)},\\\\
        \\hat X &\\leftarrow \\alpha X + (1 - \\alpha) Z \\quad\\text{(over-relaxation, } 1 \\le \\alpha < 2\\text{)},\\\\
        Z &\\leftarrow \\mathrm{SVT}_{1/\\rho}(\\hat X + U) \\quad\\text{(:func:`singular_value_threshold`)},\\\\
        U &\\leftarrow U + \\hat X - Z.

    It stops when the primal residual :math:`r = \\|X - Z\\|_F` and the dual
    residual :math:`s = \\rho\\|Z - Z_{prev}\\|_F` are both at most ``tol``
    times :math:`\\max(\\|X\\|_F, \\|Z\\|_F)` and :math:`\\|\\rho U\\|_F`
    respectively (relative tolerances). With ``adapt_rho`` ρ is doubled or
    halved (and U rescaled) whenever one residual exceeds ten times the other,
    the usual residual balancing; α = ``relaxation`` > 1 over-relaxes (both
    devices as in Boyd et al., "Distributed Optimization and Statistical
    Learning via the Alternating Direction Method of Multipliers", 2011,
    Section 3.4; α = 1 is plain ADMM). A short, tested solver instead of a
    convex-optimization dependency (Chapter 7, ch-beyond-speed).

    Parameters
    ----------
    problem : CompletionProblem
        With at least one observed entry and a target not zero on Ω.
    rho : float, optional
        Initial penalty ρ > 0; default :math:`1 / \\|P_\\Omega(W^*)\\|_2`
        (the SVT threshold starts at the top singular value of the data).
    tol : float
        Relative tolerance, > 0.
    max_iters : int
        >= 1.
    adapt_rho : bool
        Residual balancing on (default) or off.
    relaxation : float
        α in [1, 2) (over-relaxation; 1 is plain ADMM); default 1.6
        (measured: ``docs/design-notes.md``).

    Returns
    -------
    NuclearNormResult

    Raises
    ------
    ConvergenceError
        If the tolerance is not met within ``max_iters`` iterations (the
        message gives both residuals): a baseline that silently stopped short
        would bias the comparison, so this solver never returns unconverged.
    ValueError
        For a bad argument, naming it.
    """
    if not isinstance(problem, CompletionProblem):
        raise ValueError(f"problem must be a CompletionProblem, got {type(problem).__name__}")
    tol = check_real("tol", tol, above=0)
    max_iters = check_int("max_iters", max_iters, 1)
    if not isinstance(adapt_rho, (bool, np.bool_)):
        raise ValueError(f"adapt_rho must be True or False, got {adapt_rho!r}")
    mask = problem.mask
    observed = np.where(mask, problem.target, 0.0)
    data_norm = float(np.linalg.norm(observed, 2))
    if data_norm == 0:
        raise ValueError("problem must observe at least one non-zero entry (else X = 0 is the solution)")
    rho = 1.0 / data_norm if rho is None else check_real("rho", rho, above=0)
    alpha = check_real("relaxation", relaxation, at_least=1, below=2)

    Z = np.zeros_like(observed)
    U = np.zeros_like(observed)
    for it in range(1, max_iters + 1):
        X = np.where(mask, observed, Z - U)
        X_hat = alpha * X + (1.0 - alpha) * Z
        Z_prev = Z
        Z = singular_value_threshold(X_hat + U, 1.0 / rho)
        U = U + X_hat - Z
        r = float(np.linalg.norm(X - Z))
        s = rho * float(np.linalg.norm(Z - Z_prev))
        if (r <= tol * max(float(np.linalg.norm(X)), float(np.linalg.norm(Z)))
                and s <= tol * rho * float(np.linalg.norm(U))):
            return NuclearNormResult(solution=X, dual=rho * U, iterations=it, primal_residual=r, dual_residual=s,
                                     rho=rho)
        if adapt_rho and r > 10 * s:
            rho, U = 2 * rho, U / 2
        elif adapt_rho and s > 10 * r:
            rho, U = rho / 2, 2 * U
    raise ConvergenceError(
        f"nuclear_norm_completion did not reach tol={tol:g} in max_iters={max_iters} iterations "
        f"(primal residual {r:.3g}, dual residual {s:.3g}); raise max_iters or loosen tol")


# ---------------------------------------------------------------------------
# The experiment of Part B
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionExperiment:
    """Deep factorizations of several depths and the nuclear norm, on one target at several observation counts.

    Attributes
    ----------
    counts : ndarray of int, shape (C,)
        The observation counts |Ω| (nested sets, :func:`completion_problem`).
    depths : ndarray of int, shape (D,)
    errors : ndarray, shape (D, C)
        :meth:`CompletionProblem.reconstruction_error` of each final W_e
        (``nan`` for a diverged run).
    final_loss : ndarray, shape (D, C)
        Training loss at the last step (``inf`` for a diverged run).
    effective_ranks : ndarray, shape (D, C)
        :func:`effective_rank` of each final W_e.
    nuclear_errors, nuclear_effective_ranks : ndarray, shape (C,)
        The same for :func:`nuclear_norm_completion` (``nan`` when it was not run).
    steps : ndarray of int, shape (T,)
        The recorded steps (shared by every run that did not diverge).
    singular_values : ndarray, shape (D, C, T, top)
        The ``top`` largest singular values of W_e at each recorded step
        (``nan`` from a divergence on).
    seconds : ndarray, shape (D, C)
        Wall time of each network run; ``nuclear_seconds``, shape (C,), of each solve.
    diverged_at : ndarray, shape (D, C)
        The step at which each network run diverged
        (:attr:`FactorizationHistory.diverged_at`), :data:`~overparam.training.NEVER`
        (``inf``) for a run that did not: the book's format for an array of
        steps, as in :attr:`overparam.SweepResult.diverged_at`.
    """

    counts: np.ndarray
    depths: np.ndarray
    errors: np.ndarray
    final_loss: np.ndarray
    effective_ranks: np.ndarray
    nuclear_errors: np.ndarray
    nuclear_effective_ranks: np.ndarray
    steps: np.ndarray
    singular_values: np.ndarray
    seconds: np.ndarray
    nuclear_seconds: np.ndarray
    diverged_at: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """Bool array, shape (D, C): which network runs diverged (their ``errors`` are ``nan``)."""
        return self.diverged_at != NEVER


def _per_depth(name: str, value: float | Sequence[float], depths: list[int]) -> list[float]:
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != len(depths):
            raise ValueError(f"{name} must be one number or one per depth ({len(depths)}), got {len(value)}")
        return [check_real(f"{name}[{i}]", v, above=0) for i, v in enumerate(value)]
    return [check_real(name, value, above=0)] * len(depths)


def completion_experiment(
    n: int,
    rank: int,
    counts: Sequence[int],
    depths: Sequence[int],
    lr: float | Sequence[float],
    num_iters: int,
    scale: float,
    seed: int,
    *,
    record_every: int = 100,
    record: int | Sequence[int] | None = None,
    top: int | None = None,
    nuclear: bool = True,
    nuclear_max_iters: int = 20_000,
) -> CompletionExperiment:
    """Part B of Chapter 7 (ch-beyond-speed) in one call: depth against the nuclear norm on an n × n completion.

    For every count, :func:`completion_problem` ``(n, rank, count, seed)``
    (one target, nested observed sets); for every depth, gradient descent
    (:func:`train_deep_factorization`, ``on_divergence="stop"``) from
    :func:`small_balanced_start` with Frobenius norm ``scale`` (the same
    Gaussian direction for every depth and count, drawn with ``seed + 1``);
    and :func:`nuclear_norm_completion` for every count. Chapter 7 runs it at
    the book's own size (n = 100, rank 5; the chapter says why).

    Parameters
    ----------
    n, rank : int
        Size of the square target and its rank.
    counts : sequence of int
        Observation counts, each in [1, n²].
    depths : sequence of int
        Depths N >= 1.
    lr : float or sequence of float
        η, one for every depth or one per depth.
    num_iters : int
        Steps per run.
    scale : float
        :math:`\\|W_e\\|_F` at the start (the target has Frobenius norm 1).
    seed : int
        >= 0.
    record_every : int
        Recording interval of the losses and singular values, when ``record`` is not given.
    record : int or sequence of int, optional
        Record every ``record`` steps, or at these steps (and at 0 and ``num_iters``), e.g.
        :attr:`CompletionPreset.record`: a log-spaced grid merged with a
        linear one, so that a log-x figure sees the fast early growth
        (:func:`train_deep_factorization`).
    top : int, optional
        Singular values kept per recorded step; default ``min(n, 2 * rank + 2)``.
    nuclear : bool
        Also solve the nuclear-norm baseline (default True), by :func:`nuclear_norm_completion` at its
        default ``tol``.
    nuclear_max_iters : int
        ``max_iters`` of each solve. Near the count at which the convex fit starts to recover, ADMM can need more
        than the default 20,000 iterations (three of the 180 problems of Chapter 7's twenty draws did).

    Returns
    -------
    CompletionExperiment
        A run that diverges is kept up to the step before (``errors`` ``nan``,
        ``final_loss`` ``inf``) and its step is in ``diverged_at``.
    """
    n, rank = check_int("n", n, 1), check_int("rank", rank, 1, n)
    seed = check_int("seed", seed, 0)
    counts = [check_int(f"counts[{i}]", c, 1, n * n) for i, c in enumerate(counts)]
    depths = [check_int(f"depths[{i}]", N, 1) for i, N in enumerate(depths)]
    if not counts or not depths:
        raise ValueError("counts and depths must each list at least one value")
    lrs = _per_depth("lr", lr, depths)
    num_iters = check_int("num_iters", num_iters, 1)
    record_every = check_int("record_every", record_every, 1)
    scale = check_real("scale", scale, above=0)
    top = min(n, 2 * rank + 2) if top is None else check_int("top", top, 1, n)
    nuclear_max_iters = check_int("nuclear_max_iters", nuclear_max_iters, 1)

    steps = check_record(record_every if record is None else record, num_iters)  # record, if given, wins
    D, C, T = len(depths), len(counts), len(steps)
    errors, final_loss, eff = (np.full((D, C), np.nan) for _ in range(3))
    seconds = np.zeros((D, C))
    diverged_at = np.full((D, C), NEVER)
    svals = np.full((D, C, T, top), np.nan)
    nuc_err, nuc_eff, nuc_sec = np.full(C, np.nan), np.full(C, np.nan), np.full(C, np.nan)

    def top_singular_values(W: np.ndarray) -> np.ndarray:
        return np.linalg.svd(W, compute_uv=False)[:top]

    for c, count in enumerate(counts):
        problem = completion_problem(n, rank, count, seed)
        for d, (depth, lr_d) in enumerate(zip(depths, lrs)):
            start = small_balanced_start(n, n, depth, scale, seed + 1)
            began = time.perf_counter()
            run = train_deep_factorization(problem, start, lr_d, num_iters, record=steps, on_divergence="stop",
                                           observe=top_singular_values)
            seconds[d, c] = time.perf_counter() - began
            final_loss[d, c] = run.final_loss
            kept = np.isin(run.steps, steps)  # a diverged run's extra last step is left out
            svals[d, c, np.searchsorted(steps, run.steps[kept])] = run.observed[kept]
            if run.diverged:
                diverged_at[d, c] = run.diverged_at
            else:
                errors[d, c] = problem.reconstruction_error(run.W_e)
                eff[d, c] = effective_rank(run.W_e)
        if nuclear:
            began = time.perf_counter()
            solved = nuclear_norm_completion(problem, max_iters=nuclear_max_iters)
            nuc_sec[c] = time.perf_counter() - began
            nuc_err[c] = problem.reconstruction_error(solved.solution)
            nuc_eff[c] = effective_rank(solved.solution)
    return CompletionExperiment(
        counts=np.array(counts), depths=np.array(depths), errors=errors, final_loss=final_loss,
        effective_ranks=eff, nuclear_errors=nuc_err, nuclear_effective_ranks=nuc_eff, steps=steps,
        singular_values=svals, seconds=seconds, nuclear_seconds=nuc_sec, diverged_at=diverged_at)


@dataclass(frozen=True)
class CompletionPreset:
    """Settings of Part B's experiment (Chapter 7): the book's size (n = 100, rank 5) at a budget per scale.

    The fields are the arguments of :func:`completion_experiment` of the same
    names, checked when the preset is made (a ``ValueError`` naming the field),
    except ``log_per_decade``: the experiment records on :attr:`record`, every
    ``record_every`` steps merged with ``log_per_decade`` log-spaced steps per
    decade (:func:`overparam.sweep.log_steps`).
    """

    name: str
    n: int
    rank: int
    counts: tuple[int, ...]
    depths: tuple[int, ...]
    lr: float
    num_iters: int
    scale: float
    seed: int = 0
    record_every: int = 50
    log_per_decade: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")
        n = check_int("n", self.n, 1)
        check_int("rank", self.rank, 1, n)
        for i, c in enumerate(check_sequence("counts", self.counts, "integers")):
            check_int(f"counts[{i}]", c, 1, n * n)
        depths = [check_int(f"depths[{i}]", N, 1) for i, N in enumerate(check_sequence("depths", self.depths, "integers"))]
        _per_depth("lr", self.lr, depths)
        check_int("num_iters", self.num_iters, 1)
        check_real("scale", self.scale, above=0)
        check_int("seed", self.seed, 0)
        check_int("record_every", self.record_every, 1)
        check_int("log_per_decade", self.log_per_decade, 1)

    @property
    def record(self) -> np.ndarray:
        """The recorded steps: log-spaced (``log_per_decade`` per decade) merged with every ``record_every``-th."""
        return log_steps(self.num_iters, self.log_per_decade, every=self.record_every)


#: CI's fast mode and the reader default (one seed). lr = 2 converges at every count (Chapter 7 asserts that no
#: run diverged); the start scale 1e-4 (Frobenius norm, the target's is 1) sets the deep networks' error floor.
COMPLETION_PRESETS: dict[str, CompletionPreset] = {
    "fast": CompletionPreset("fast", 100, 5, (2000, 4000), (2, 3, 4), 2.0, 2_000, 1e-4),
    "default": CompletionPreset("default", 100, 5, (1000, 2000, 3000, 4000, 5000), (2, 3, 4), 2.0, 3_000, 1e-4),
}


def run_completion(preset: CompletionPreset) -> CompletionExperiment:
    """:func:`completion_experiment` with a preset's settings (Chapter 7, ``ch-beyond-speed``)."""
    return completion_experiment(preset.n, preset.rank, preset.counts, preset.depths, preset.lr, preset.num_iters,
                                 preset.scale, preset.seed, record=preset.record)


def counts_table(counts: Sequence[int], columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table with one row per observation count and one column per method (Chapter 7).

    ``cells[m][c]`` is the text of method ``m`` at count ``c``. The counts run down the rows so that a table of many
    counts still fits the book's text column.
    """
    if len(cells) != len(columns) or any(len(row) != len(counts) for row in cells):
        raise ValueError(f"cells must hold one row of {len(counts)} texts (one per count) for each of the "
                         f"{len(columns)} columns")
    head = "| \\|Ω\\| | " + " | ".join(columns) + " |\n|" + "---|" * (1 + len(columns))
    rows = [f"| {int(count):,} | " + " | ".join(row[c] for row in cells) + " |" for c, count in enumerate(counts)]
    return head + "\n" + "\n".join(rows)


def completion_methods(depths: Sequence[int]) -> list[str]:
    """The methods of Part B's tables, in order: ``"depth N"`` per depth, then ``"nuclear norm"`` (Chapter 7)."""
    return [f"depth {int(N)}" for N in depths] + ["nuclear norm"]


def completion_markdown(experiment: CompletionExperiment) -> str:
    """The table of :func:`completion_experiment`: per count and method, the relative error and the fit's
    :func:`effective_rank` (Chapter 7, ``ch-beyond-speed``)."""
    names = completion_methods(experiment.depths)
    errors = np.vstack([experiment.errors, experiment.nuclear_errors])
    ranks = np.vstack([experiment.effective_ranks, experiment.nuclear_effective_ranks])
    cells = [[f"{e:.2g} (rank {r:.2f})" for e, r in zip(errors[m], ranks[m])] for m in range(len(names))]
    return "Relative error (effective rank of the fit):\n\n" + counts_table(experiment.counts, names, cells)


def plot_errors_vs_count(experiment: CompletionExperiment, ax: Any = None) -> Any:
    """Reconstruction error against the number of observed entries, per depth and for the nuclear norm (Chapter 7).

    With fewer than four counts the points are drawn without connecting
    lines: two or three points joined by straight lines would draw
    crossings between counts that were never run.
    """
    import matplotlib.pyplot as plt

    from .plotting import DEPTH_COLORS

    if ax is None:
        _, ax = plt.subplots(figsize=(6.2, 4.0))
    joined = len(experiment.counts) >= 4
    for d, depth in enumerate(experiment.depths):
        ax.semilogy(experiment.counts, experiment.errors[d], "o-" if joined else "o",
                    color=DEPTH_COLORS[int(depth) % len(DEPTH_COLORS)], label=f"depth {depth}")
    if np.isfinite(experiment.nuclear_errors).any():
        ax.semilogy(experiment.counts, np.maximum(experiment.nuclear_errors, 1e-12), "k--s" if joined else "ks", ms=4,
                    label="minimum nuclear norm")
    ax.set(xlabel=r"observed entries $|\Omega|$", ylabel=r"$\|W - W^*\|_F \,/\, \|W^*\|_F$",
           title="matrix completion: error on all entries")
    if not joined:
        ax.set_xticks(experiment.counts)
        ax.margins(x=0.15)
    ax.legend()
    return ax


#: The grey of the singular values beyond the target's rank in :func:`plot_singular_values`: dark enough to stay
#: ΔE 17 or more from depths 2 to 4's colours for a colour-blind reader (0.55 came within 7.4 of depth 2's rose).
_REST_GREY = "0.35"


def plot_singular_values(experiment: CompletionExperiment, count_index: int, axes: Any = None, *,
                         rank: int | None = None) -> Any:
    """The largest singular values of W_e along training, one panel per depth, at one observation count (Chapter 7).

    Log-log axes; step 0 is left out (it has no place on a log axis; the
    first recorded step after it is step 1, see
    :attr:`CompletionPreset.record`). With ``rank``, the ``rank`` largest
    values are drawn in the depth's colour (:data:`overparam.plotting.DEPTH_COLORS`)
    and the others in grey.
    """
    import matplotlib.pyplot as plt

    from .plotting import DEPTH_COLORS

    count_index = check_int("count_index", count_index, 0, len(experiment.counts) - 1)
    top = experiment.singular_values.shape[-1]
    rank = top if rank is None else check_int("rank", rank, 1, top)
    if axes is None:
        _, axes = plt.subplots(1, len(experiment.depths), figsize=(3.6 * len(experiment.depths), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    later = experiment.steps > 0
    for ax, d in zip(axes, range(len(experiment.depths))):
        depth = int(experiment.depths[d])
        sv = experiment.singular_values[d, count_index][later]
        steps = experiment.steps[later]
        ax.loglog(steps, sv[:, rank:], lw=1.0, color=_REST_GREY)
        ax.loglog(steps, sv[:, :rank], lw=1.4, color=DEPTH_COLORS[depth % len(DEPTH_COLORS)])
        ax.set(xlabel="iteration", title=f"depth {depth}")
    axes[0].set_ylabel("singular values of $W_e$")
    if rank < top:
        first = DEPTH_COLORS[int(experiment.depths[0]) % len(DEPTH_COLORS)]
        axes[0].legend(handles=[plt.Line2D([], [], color=first, lw=1.4, label=f"the {rank} largest"),
                                plt.Line2D([], [], color=_REST_GREY, lw=1.0, label=f"$\\sigma_{{{rank + 1}}}$ to $\\sigma_{{{top}}}$")],
                       fontsize=8, loc="lower right")
    return axes
