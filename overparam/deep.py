"""Deep linear networks: the end-to-end matrix, layer gradients, training (Chapter 2, ``ch-deep-linear``).

A depth-N linear network with hidden widths n_1, …, n_{N−1} has weights
``factors = [W_1, …, W_N]``, ``W_j`` of shape (n_j, n_{j−1}) with n_0 = d
(inputs) and n_N = k (outputs). It computes the **end-to-end matrix**

.. math::

    W_e = W_N W_{N-1} \\cdots W_1 \\in \\mathbb{R}^{k \\times d},

and is trained on ``L^N(W_1, …, W_N) := L^1(W_e)``, the setting of
arXiv:1802.06509, Theorem 1. :func:`train_deep_linear` runs full-batch
gradient descent with torch autograd on the ℓp loss of
:mod:`overparam.losses` (scalar regression, k = 1) through the shared loop of
:mod:`overparam.training` and returns a :class:`~overparam.training.DeepHistory`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from .linear import _problem_tensors
from .losses import _loss_from_residual, check_problem
from .training import DeepHistory, DivergenceError, check_run, to_numpy, train_loop  # DeepHistory: re-exported
from .validation import check_int, check_real, finite_array, float_array

__all__ = [
    "DeepHistory",
    "WarmupStep",
    "WarmupTrajectory",
    "end_to_end",
    "layer_gradients",
    "train_deep_linear",
    "unrolled_warmup",
    "warmup_step",
    "warmup_trajectory",
]


def _as_factors(factors: Sequence[Any], name: str = "factors") -> list[np.ndarray]:
    """Validate a chain of finite layer matrices; return them as float64 arrays.

    ``name`` is the argument's name in the caller's signature, for the messages.
    """
    if not isinstance(factors, (list, tuple)) or len(factors) == 0:
        got = f"an empty {type(factors).__name__}" if isinstance(factors, (list, tuple)) else type(factors).__name__
        raise ValueError(f"{name} must be a non-empty list [W_1, ..., W_N] of 2-D arrays, got {got}")
    out = [finite_array(f"{name}[{j}]", W) for j, W in enumerate(factors)]
    for j, W in enumerate(out):
        if W.ndim != 2:
            raise ValueError(f"{name}[{j}] (W_{j + 1}) must be 2-D, got shape {W.shape}")
        if j and W.shape[1] != out[j - 1].shape[0]:
            raise ValueError(
                f"{name}[{j}] (W_{j + 1}) has shape {W.shape}; its {W.shape[1]} columns must equal "
                f"the {out[j - 1].shape[0]} rows of {name}[{j - 1}] (W_{j})"
            )
    return out


def _product(Ws: Sequence[Any]) -> Any:
    """:math:`W_N \\cdots W_1`, multiplied from the input side (numpy arrays or torch tensors)."""
    W_e = Ws[0]
    for W in Ws[1:]:
        W_e = W @ W_e
    return W_e


def end_to_end(factors: Sequence[np.ndarray]) -> np.ndarray:
    """End-to-end matrix :math:`W_e = W_N \\cdots W_1` (arXiv:1802.06509, Theorem 1).

    Defined in Chapter 2 (ch-deep-linear).

    Parameters
    ----------
    factors : list of ndarray
        ``[W_1, …, W_N]``, ``W_j`` of shape (n_j, n_{j−1}).

    Returns
    -------
    ndarray, shape (k, d) = (n_N, n_0)
    """
    factors = _as_factors(factors)
    # one factor is copied, so that the caller's layer is never the result
    return factors[0].copy() if len(factors) == 1 else _product(factors)


def layer_gradients(factors: Sequence[np.ndarray], grad_e: np.ndarray) -> list[np.ndarray]:
    """Gradients of :math:`L^N` with respect to each layer, by the chain rule.

    .. math::

        \\frac{\\partial L^N}{\\partial W_j}
        = (W_N \\cdots W_{j+1})^\\top \\, \\nabla L^1(W_e) \\, (W_{j-1} \\cdots W_1)^\\top ,

    empty products being identities (the chain rule behind arXiv:1802.06509, Theorem 1). Defined in
    Chapter 2.

    Parameters
    ----------
    factors : list of ndarray
        ``[W_1, …, W_N]``.
    grad_e : ndarray, shape (k, d)
        :math:`\\nabla L^1` evaluated at the end-to-end matrix.

    Returns
    -------
    list of ndarray
        ``[G_1, …, G_N]``, ``G_j`` of the shape of ``W_j``.
    """
    Ws = _as_factors(factors)
    k, d = Ws[-1].shape[0], Ws[0].shape[1]
    grad_e = finite_array("grad_e", grad_e)
    if grad_e.shape != (k, d):
        raise ValueError(f"grad_e must have the end-to-end shape ({k}, {d}), got {grad_e.shape}")
    return _layer_gradients(Ws, grad_e)


def _layer_gradients(Ws: Sequence[np.ndarray], grad_e: np.ndarray) -> list[np.ndarray]:
    """:func:`layer_gradients` without the checks, for training loops that validated their start once."""
    k, d = Ws[-1].shape[0], Ws[0].shape[1]
    below = [np.eye(d)]  # below[j] = W_j ⋯ W_1 (below[0] = I_d)
    for W in Ws:
        below.append(W @ below[-1])
    above = np.eye(k)  # W_N ⋯ W_{j+1}, built from the top down
    grads: list[np.ndarray] = [np.empty(0)] * len(Ws)
    for j in range(len(Ws) - 1, -1, -1):
        grads[j] = (above.T @ grad_e) @ below[j].T
        above = above @ Ws[j]
    return grads


# ---------------------------------------------------------------------------
# The warm-up: one extra multiplicative scalar (arXiv:1802.06509, the ℓp-regression warm-up)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmupStep:
    """One gradient step on ``w = w_1 · ω_2`` (Chapter 2, the warm-up of arXiv:1802.06509).

    Attributes
    ----------
    rho : float
        Adaptive learning rate :math:`\\rho = \\eta\\,\\omega_2^2`.
    gamma : float
        Memory coefficient :math:`\\gamma = \\eta \\langle \\nabla L(w), w_1\\rangle / \\omega_2`.
    w1, omega2 : ndarray, float
        The factors after the step.
    """

    rho: float
    gamma: float
    w1: np.ndarray
    omega2: float

    @property
    def w(self) -> np.ndarray:
        """The new end-to-end vector :math:`w^{+} = w_1^{+}\\,\\omega_2^{+}`."""
        return self.w1 * self.omega2


def _check_omega2(omega2: Any) -> float:
    """``omega2`` as a finite non-zero float: γ divides by it."""
    return check_real("omega2", omega2, nonzero=True, expected="a finite non-zero number (gamma divides by it)")


def warmup_step(w1: np.ndarray, omega2: float, grad: np.ndarray, lr: float) -> WarmupStep:
    """Gradient descent on :math:`L(w_1\\omega_2)`, one step, and its reading on ``w``.

    GD on the pair, :math:`w_1^+ = w_1 - \\eta\\,\\omega_2 \\nabla L(w)` and
    :math:`\\omega_2^+ = \\omega_2 - \\eta \\langle \\nabla L(w), w_1\\rangle`, moves
    :math:`w = w_1\\omega_2` exactly as

    .. math::

        w^{+} = (1 - \\gamma)\\,\\bigl(w - \\rho\\,\\nabla L(w)\\bigr),
        \\qquad \\rho = \\eta\\,\\omega_2^2, \\quad
        \\gamma = \\eta\\,\\langle \\nabla L(w), w_1 \\rangle / \\omega_2

    (the ℓp-regression warm-up of arXiv:1802.06509): an adaptive learning
    rate ρ and a momentum-like memory γ. Defined in Chapter 2 (``ch-deep-linear``).

    Parameters
    ----------
    w1 : ndarray, shape (d,)
    omega2 : float
        Non-zero (γ divides by it).
    grad : ndarray, shape (d,)
        :math:`\\nabla L(w)` at :math:`w = w_1 \\omega_2`, e.g. ``op.lp_gradient(w1 * omega2, X, y, p)``.
    lr : float
        Learning rate η > 0.

    Returns
    -------
    WarmupStep
    """
    w1 = finite_array("w1", w1)
    grad = finite_array("grad", grad)
    if w1.ndim != 1:
        raise ValueError(f"w1 must be a vector of shape (d,), got shape {w1.shape}")
    if grad.shape != w1.shape:
        raise ValueError(f"grad must have the shape of w1 {w1.shape}, got {grad.shape}")
    omega2 = _check_omega2(omega2)
    return _warmup_step(w1, omega2, grad, check_real("lr", lr, above=0))


def _warmup_step(w1: np.ndarray, omega2: float, grad: np.ndarray, lr: float) -> WarmupStep:
    """:func:`warmup_step` without the checks, for :func:`warmup_trajectory`'s loop (which checks once)."""
    inner = float(grad @ w1)
    return WarmupStep(
        rho=lr * omega2**2,
        gamma=lr * inner / omega2,
        w1=w1 - lr * omega2 * grad,
        omega2=omega2 - lr * inner,
    )


@dataclass(frozen=True)
class WarmupTrajectory:
    """Gradient descent on the pair :math:`(w_1, \\omega_2)` beside its first-order reading on ``w`` (Chapter 2).

    Attributes
    ----------
    rho, gamma : ndarray, shape (T,)
        The network's :math:`\\rho(t)` and :math:`\\gamma(t)` at each step (:func:`warmup_step`).
    network : ndarray, shape (T + 1, d)
        :math:`w(t) = w_1(t)\\,\\omega_2(t)` of gradient descent on the pair.
    recursion : ndarray, shape (T + 1, d)
        The first-order recursion :math:`w \\leftarrow (1 - \\gamma(t))\\,w - \\rho(t)\\,\\nabla L(w)`,
        fed the network's coefficients but its own gradients, from the same start.
    recursion_gradients : ndarray, shape (T, d)
        :math:`\\nabla L` at the recursion's iterates ``recursion[:-1]``.
    """

    rho: np.ndarray
    gamma: np.ndarray
    network: np.ndarray
    recursion: np.ndarray
    recursion_gradients: np.ndarray

    @property
    def relative_gap(self) -> np.ndarray:
        """:math:`\\|w_{rec}(t) - w(t)\\| / \\|w(t)\\|` after each step, shape (T,)."""
        diff = np.linalg.norm(self.recursion[1:] - self.network[1:], axis=1)
        return diff / np.linalg.norm(self.network[1:], axis=1)


def warmup_trajectory(w1: np.ndarray, omega2: float, gradient: Callable[[np.ndarray], np.ndarray], lr: float,
                      num_steps: int) -> WarmupTrajectory:
    """Run the warm-up of Chapter 2 for ``num_steps`` steps: GD on the pair, and the recursion it implies on ``w``.

    Each step takes :func:`warmup_step` on the pair, with ``gradient`` at
    :math:`w = w_1\\omega_2`, and moves the recursion's own iterate with that
    step's ρ and γ: the test of whether dropping the :math:`\\gamma\\rho` term
    (the first-order reading of arXiv:1802.06509's warm-up) still tracks the
    network.

    Parameters
    ----------
    w1 : ndarray, shape (d,)
    omega2 : float
        Non-zero.
    gradient : callable
        ``gradient(w) -> ndarray (d,)``, e.g. ``lambda w: op.lp_gradient(w, X, y, 4)``.
    lr : float
        η > 0.
    num_steps : int
        T >= 1.

    Returns
    -------
    WarmupTrajectory
        ``.rho`` and ``.gamma`` (each step's ρ(t) and γ(t), shape (T,)), ``.network`` and ``.recursion`` (the two
        runs' iterates w(t), shape (T + 1, d)), ``.recursion_gradients``, and ``.relative_gap`` (the gap between
        the two runs after each step, relative to the network's w(t)).

    Raises
    ------
    DivergenceError
        When an iterate of either run, or its gradient, stops being finite, or a step drives the scalar layer
        ω₂ to 0 (γ divides by it); the message names the step.
    ValueError
        For a bad argument, naming it; when ``gradient`` returns an array of another shape than ``w1``'s, or
        one whose entries are not real numbers (complex, strings, None).
    """
    num_steps = check_int("num_steps", num_steps, 1)
    w1 = finite_array("w1", w1)
    if w1.ndim != 1:
        raise ValueError(f"w1 must be a vector of shape (d,), got shape {w1.shape}")
    omega2 = _check_omega2(omega2)
    lr = check_real("lr", lr, above=0)
    if not callable(gradient):
        raise ValueError(f"gradient must be a callable w -> ∇L(w), e.g. lambda w: op.lp_gradient(w, X, y, 4), "
                         f"got {type(gradient).__name__}")
    w_rec = w1 * omega2
    rho, gamma, network, recursion, grads = [], [], [w_rec.copy()], [w_rec.copy()], []
    for t in range(1, num_steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            grad_net, grad_rec = (np.asarray(float_array(gradient(w), name="the value of gradient(w)"),
                                             dtype=np.float64) for w in (w1 * omega2, w_rec))
            if t == 1:  # the shapes cannot change after the first step
                for G in (grad_net, grad_rec):
                    if G.shape != w1.shape:
                        raise ValueError(f"gradient(w) returned shape {G.shape}, expected {w1.shape} (the shape of w1)")
            finite = np.isfinite(grad_net).all() and np.isfinite(grad_rec).all()
            if finite:  # w1, omega2 and both gradients are finite: of warmup_step's checks, only omega2 != 0 is left
                if omega2 == 0:  # the argument was checked: a step of the run drove the scalar layer to 0
                    raise DivergenceError(t, None, "the warm-up", "the scalar layer ω₂ reached 0 at the step before, "
                                          "and γ divides by it; use a smaller learning rate")
                step = _warmup_step(w1, omega2, grad_net, lr)
                w_rec = (1 - step.gamma) * w_rec - step.rho * grad_rec
                w_net = step.w
                finite = np.isfinite(w_net).all() and np.isfinite(w_rec).all() and np.isfinite(step.omega2)
        if not finite:
            raise DivergenceError(t, None, "the warm-up",
                                  "w(t) or its gradient is no longer finite; use a smaller learning rate")
        grads.append(grad_rec)
        w1, omega2 = step.w1, step.omega2
        rho.append(step.rho)
        gamma.append(step.gamma)
        network.append(w_net)
        recursion.append(w_rec.copy())
    return WarmupTrajectory(rho=np.array(rho), gamma=np.array(gamma), network=np.array(network),
                            recursion=np.array(recursion), recursion_gradients=np.array(grads))


def unrolled_warmup(trajectory: WarmupTrajectory, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The recursion's step ``t`` written out over its whole past, with the coefficients μ(t, τ) (Chapter 2).

    Unrolling :math:`w(\\tau + 1) = (1 - \\gamma(\\tau))\\,w(\\tau) - \\rho(\\tau)\\,\\nabla L(w(\\tau))` gives

    .. math::

        w(t+1) = w(t) - \\rho(t)\\,\\nabla L(w(t)) - \\sum_{\\tau < t} \\mu(t, \\tau)\\,\\nabla L(w(\\tau))
                 - \\gamma(t) \\prod_{\\tau < t} (1 - \\gamma(\\tau))\\, w(0),
        \\qquad \\mu(t, \\tau) = -\\gamma(t)\\,\\rho(\\tau) \\prod_{\\tau < s < t} (1 - \\gamma(s)).

    Returns
    -------
    (ndarray, ndarray)
        The right-hand side, to compare with ``trajectory.recursion[t + 1]``,
        and its last term (the start's share).
    """
    if not isinstance(trajectory, WarmupTrajectory):
        raise ValueError(f"trajectory must be a WarmupTrajectory (from warmup_trajectory), got {type(trajectory).__name__}")
    t = check_int("t", t, 0)
    if t >= len(trajectory.rho):
        raise ValueError(f"t must be below the trajectory's {len(trajectory.rho)} steps, got {t}")
    gammas, rhos, grads = trajectory.gamma, trajectory.rho, trajectory.recursion_gradients
    one_minus = 1 - gammas
    mu = [-gammas[t] * rhos[tau] * np.prod(one_minus[tau + 1 : t]) for tau in range(t)]
    start_term = -gammas[t] * np.prod(one_minus[:t]) * trajectory.recursion[0]
    history = sum((m * g for m, g in zip(mu, grads[:t])), np.zeros_like(grads[0]))
    unrolled = trajectory.recursion[t] - rhos[t] * grads[t] - history + start_term
    return unrolled, start_term


# ---------------------------------------------------------------------------
# Training (full-batch GD, torch, by the loop of overparam.training)
# ---------------------------------------------------------------------------


def train_deep_linear(
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
    on_divergence: Literal["raise", "stop"] = "raise",
) -> DeepHistory:
    """Full-batch gradient descent on a deep linear network, ℓp loss (Chapter 2, ``ch-deep-linear``).

    .. math::

        W_j \\leftarrow (1 - \\eta\\lambda)\\, W_j - \\eta\\,
        \\frac{\\partial L^N}{\\partial W_j}(W_1, \\dots, W_N), \\quad j = 1..N,

    with :math:`L^N(W_1..W_N) = L^1(W_N \\cdots W_1)` the ℓp loss of
    :func:`~overparam.losses.lp_loss` (the setting of arXiv:1802.06509,
    Theorem 1). Gradients by torch autograd; no biases; any depth and hidden
    widths. The recorded loss is :math:`L^1(W_e)`, without the weight-decay
    penalty. Run by :func:`~overparam.training.train_loop`: divergence and
    recording as in :func:`~overparam.linear.gradient_descent`.

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    p : int
        Even loss exponent >= 2.
    factors0 : list of ndarray
        Initial ``[W_1, …, W_N]``: ``W_1`` with d columns, ``W_N`` with one row.
    lr : float
        Learning rate η > 0.
    num_iters : int
        Number of GD steps.
    weight_decay : float
        λ >= 0.
    record_every : int
        Record the loss and W_e every ``record_every`` steps and at the last
        step. Memory: ``num_iters / record_every`` copies of W_e.
    record : int or array_like of int, optional
        Record every ``record`` steps, or at these steps (sorted, unique, in
        ``[0, num_iters]``); 0 and ``num_iters`` are added. E.g. ``op.log_steps(num_iters, 20,
        every=50)`` (checked by :func:`~overparam.training.check_record`).
        Memory: one copy of W_e per recorded step.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    on_divergence : {"raise", "stop"}
        Raise :class:`~overparam.training.DivergenceError` naming the step,
        or return the history up to the last step before the divergence.

    Returns
    -------
    DeepHistory
    """
    X, y, _ = check_problem(X, y, p)
    Ws0 = _as_factors(factors0, "factors0")
    d = np.shape(X)[1]
    if Ws0[0].shape[1] != d or Ws0[-1].shape[0] != 1:
        raise ValueError(
            f"factors0 must map the {d} inputs of X to one output: W_1 needs {d} columns and W_N one row, "
            f"got W_1 {Ws0[0].shape} and W_N {Ws0[-1].shape}"
        )
    lr, num_iters, record_every = check_run(lr, num_iters, record_every, on_divergence)
    weight_decay = check_real("weight_decay", weight_decay, at_least=0)
    Xt, yt = _problem_tensors(X, y, dtype)
    shrink = 1.0 - lr * weight_decay

    def network_loss(Ws: list[torch.Tensor]) -> torch.Tensor:
        return _loss_from_residual(Xt @ _product(Ws)[0] - yt, p)

    def loss(Ws: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return network_loss(Ws)

    def step(Ws: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        value = network_loss(Ws)
        grads = torch.autograd.grad(value, Ws)
        with torch.no_grad():
            return value.detach(), [(shrink * W - lr * G).requires_grad_() for W, G in zip(Ws, grads)]

    def observe(Ws: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return _product(Ws)

    start = [torch.tensor(W, dtype=dtype, requires_grad=True) for W in Ws0]
    trace = train_loop(step, loss, start, num_iters, record_every=record_every, record=record,
                       on_divergence=on_divergence, observe=observe,
                       what=f"gradient descent on a depth-{len(Ws0)} linear network", start="factors0",
                       data="X and y")
    return DeepHistory(
        steps=trace.steps,
        loss=trace.loss,
        w=to_numpy(observe(trace.final)).reshape(-1),
        lr=lr,
        p=int(p),
        diverged_at=trace.diverged_at,
        dtype=trace.dtype,
        W_e=trace.observed,
        depth=len(Ws0),
        factors=tuple(to_numpy(W) for W in trace.final),
        weight_decay=weight_decay,
    )
