"""Deep linear networks: the end-to-end matrix, layer gradients, training (Chapter 2).

A depth-N linear network with hidden widths n_1, …, n_{N−1} has weights
``factors = [W_1, …, W_N]``, ``W_j`` of shape (n_j, n_{j−1}) with n_0 = d
(inputs) and n_N = k (outputs). It computes the **end-to-end matrix**

.. math::

    W_e = W_N W_{N-1} \\cdots W_1 \\in \\mathbb{R}^{k \\times d},

and is trained on ``L^N(W_1, …, W_N) := L^1(W_e)`` (``paper.md`` §1). The
training loops here run full-batch gradient descent with torch autograd on the
ℓp loss of :mod:`overparam.losses` (scalar regression, k = 1) and return a
:class:`DeepHistory`, the deep-network version of :class:`~overparam.linear.GDHistory`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from .linear import DIVERGENCE_FACTOR, DivergenceError, GDHistory, _check_run
from .losses import _loss_from_residual, check_problem
from .validation import check_real

__all__ = [
    "DeepHistory",
    "WarmupStep",
    "end_to_end",
    "layer_gradients",
    "train_deep_linear",
    "warmup_step",
]


def _as_factors(factors: Sequence[Any]) -> list[np.ndarray]:
    """Validate a chain of layer matrices; return them as float64 arrays."""
    if isinstance(factors, np.ndarray) or len(factors) == 0:
        raise ValueError("factors must be a non-empty list [W_1, ..., W_N] of 2-D arrays")
    out = [np.asarray(W, dtype=np.float64) for W in factors]
    for j, W in enumerate(out):
        if W.ndim != 2:
            raise ValueError(f"factors[{j}] (W_{j + 1}) must be 2-D, got shape {W.shape}")
        if j and W.shape[1] != out[j - 1].shape[0]:
            raise ValueError(
                f"factors[{j}] (W_{j + 1}) has shape {W.shape}; its {W.shape[1]} columns must equal "
                f"the {out[j - 1].shape[0]} rows of factors[{j - 1}] (W_{j})"
            )
    return out


def end_to_end(factors: Sequence[np.ndarray]) -> np.ndarray:
    """End-to-end matrix :math:`W_e = W_N \\cdots W_1` (``paper.md`` §1).

    Defined in Chapter 2.

    Parameters
    ----------
    factors : list of ndarray
        ``[W_1, …, W_N]``, ``W_j`` of shape (n_j, n_{j−1}).

    Returns
    -------
    ndarray, shape (k, d) = (n_N, n_0)
    """
    Ws = _as_factors(factors)
    W_e = Ws[0]
    for W in Ws[1:]:
        W_e = W @ W_e
    return W_e


def layer_gradients(factors: Sequence[np.ndarray], grad_e: np.ndarray) -> list[np.ndarray]:
    """Gradients of :math:`L^N` with respect to each layer, by the chain rule.

    .. math::

        \\frac{\\partial L^N}{\\partial W_j}
        = (W_N \\cdots W_{j+1})^\\top \\, \\nabla L^1(W_e) \\, (W_{j-1} \\cdots W_1)^\\top ,

    empty products being identities (``paper.md`` §1; target T1). Defined in Chapter 2.

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
    grad_e = np.asarray(grad_e, dtype=np.float64)
    if grad_e.shape != (k, d):
        raise ValueError(f"grad_e must have the end-to-end shape ({k}, {d}), got {grad_e.shape}")
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
# The warm-up: one extra multiplicative scalar (paper.md §2.1)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmupStep:
    """One gradient step on ``w = w_1 · ω_2`` (Chapter 2, ``paper.md`` §2.1).

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


def warmup_step(w1: np.ndarray, omega2: float, grad: np.ndarray, lr: float) -> WarmupStep:
    """Gradient descent on :math:`L(w_1\\omega_2)`, one step, and its reading on ``w``.

    GD on the pair, :math:`w_1^+ = w_1 - \\eta\\,\\omega_2 \\nabla L(w)` and
    :math:`\\omega_2^+ = \\omega_2 - \\eta \\langle \\nabla L(w), w_1\\rangle`, moves
    :math:`w = w_1\\omega_2` exactly as

    .. math::

        w^{+} = (1 - \\gamma)\\,\\bigl(w - \\rho\\,\\nabla L(w)\\bigr),
        \\qquad \\rho = \\eta\\,\\omega_2^2, \\quad
        \\gamma = \\eta\\,\\langle \\nabla L(w), w_1 \\rangle / \\omega_2

    (``paper.md`` §2.1; target T7): an adaptive learning rate ρ and a
    momentum-like memory γ. Defined in Chapter 2.

    Parameters
    ----------
    w1 : ndarray, shape (d,)
    omega2 : float
        Non-zero (γ divides by it).
    grad : ndarray, shape (d,)
        :math:`\\nabla L(w)` at :math:`w = w_1 \\omega_2`, e.g. ``op.lp_gradient(w1 * omega2, X, y, p)``.
    lr : float
        Learning rate η >= 0.

    Returns
    -------
    WarmupStep
    """
    w1 = np.asarray(w1, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    if w1.ndim != 1:
        raise ValueError(f"w1 must be a vector of shape (d,), got shape {w1.shape}")
    if grad.shape != w1.shape:
        raise ValueError(f"grad must have the shape of w1 {w1.shape}, got {grad.shape}")
    omega2 = check_real("omega2", omega2, nonzero=True, expected="a finite non-zero number (gamma divides by it)")
    lr = check_real("lr", lr, at_least=0)
    inner = float(grad @ w1)
    return WarmupStep(
        rho=lr * omega2**2,
        gamma=lr * inner / omega2,
        w1=w1 - lr * omega2 * grad,
        omega2=omega2 - lr * inner,
    )


# ---------------------------------------------------------------------------
# Training (full-batch GD, torch)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DeepHistory(GDHistory):
    """A run of GD on a deep linear network, or of the end-to-end rule (Chapters 2 and 4).

    Everything of :class:`~overparam.linear.GDHistory` (``steps``, ``loss``,
    ``w`` = final end-to-end vector of shape (d,), ``lr``, ``p``,
    ``diverged_at``, ``iterations_to``, …), so :func:`~overparam.linear.largest_stable`
    accepts it, plus:

    Attributes
    ----------
    W_e : ndarray, shape (len(steps), 1, d)
        End-to-end matrix at each recorded step.
    depth : int
        N.
    factors : tuple of ndarray
        Final layers ``(W_1, …, W_N)`` of a network run (the last finite
        iterate for a diverged one); empty for a run of the end-to-end rule.
    weight_decay : float
        λ.
    """

    W_e: np.ndarray
    depth: int
    factors: tuple[np.ndarray, ...] = ()
    weight_decay: float = 0.0


#: One training step: (state, update) -> (loss at state, W_e at state, next state; the same state if not update).
_Advance = Callable[[list[torch.Tensor], bool], tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]]


def _run(
    advance: _Advance,
    state: list[torch.Tensor],
    num_iters: int,
    *,
    record_every: int,
    on_divergence: str,
    what: str,
    lr: float,
    p: int,
    depth: int,
    weight_decay: float,
    keep_factors: bool,
) -> DeepHistory:
    """Iterate ``advance`` from ``state``; record losses and W_e; stop at the first diverging step.

    A step diverges when its loss is not finite or exceeds ``DIVERGENCE_FACTOR``
    times the initial loss (the criterion of :mod:`overparam.linear`). The
    final state of a diverged run is the last one with an admissible loss.
    """
    steps: list[int] = []
    losses: list[float] = []
    W_rec: list[torch.Tensor] = []
    limit = None
    diverged_at = None
    good = state
    for t in range(num_iters + 1):
        loss_t, W_e, nxt = advance(state, t < num_iters)
        value = float(loss_t)
        if limit is None:
            limit = value * DIVERGENCE_FACTOR if value > 0 else DIVERGENCE_FACTOR
        if not value <= limit:  # also catches NaN
            diverged_at = t
            break
        if t % record_every == 0 or t == num_iters:
            steps.append(t)
            losses.append(value)
            W_rec.append(W_e)
        good, last_W, last_value = state, W_e, value
        state = nxt
    if diverged_at is not None:
        if on_divergence == "raise":
            raise DivergenceError(diverged_at, value, what)
        if diverged_at == 0:
            last_W = W_e
        elif steps[-1] != diverged_at - 1:
            steps.append(diverged_at - 1)
            losses.append(last_value)
            W_rec.append(last_W)
    return DeepHistory(
        steps=np.asarray(steps, dtype=np.int64),
        loss=np.asarray(losses, dtype=np.float64),
        w=_to_numpy(last_W).reshape(-1),
        lr=float(lr),
        p=int(p),
        diverged_at=diverged_at,
        W_e=_to_numpy(torch.stack(W_rec)) if W_rec else np.empty((0,) + tuple(last_W.shape)),
        depth=depth,
        factors=tuple(_to_numpy(W) for W in good) if keep_factors else (),
        weight_decay=float(weight_decay),
    )


def _to_numpy(T: torch.Tensor) -> np.ndarray:
    return T.detach().numpy().astype(np.float64)


def _tensors(X: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(np.asarray(X), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=dtype)


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
    dtype: torch.dtype = torch.float64,
    on_divergence: Literal["raise", "stop"] = "raise",
) -> DeepHistory:
    """Full-batch gradient descent on a deep linear network, ℓp loss (Chapter 2).

    .. math::

        W_j \\leftarrow (1 - \\eta\\lambda)\\, W_j - \\eta\\,
        \\frac{\\partial L^N}{\\partial W_j}(W_1, \\dots, W_N), \\quad j = 1..N,

    with :math:`L^N(W_1..W_N) = L^1(W_N \\cdots W_1)` the ℓp loss of
    :func:`~overparam.losses.lp_loss` (``paper.md`` §1). Gradients by torch
    autograd; no biases; any depth and hidden widths. The recorded loss is
    :math:`L^1(W_e)`, without the weight-decay penalty.

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
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    on_divergence : {"raise", "stop"}
        Raise :class:`~overparam.linear.DivergenceError` naming the step, or
        return the history up to the last finite step.

    Returns
    -------
    DeepHistory
    """
    check_problem(X, y, p)
    Ws0 = _as_factors(factors0)
    d = np.shape(X)[1]
    if Ws0[0].shape[1] != d or Ws0[-1].shape[0] != 1:
        raise ValueError(
            f"factors0 must map the {d} inputs of X to one output: W_1 needs {d} columns and W_N one row, "
            f"got W_1 {Ws0[0].shape} and W_N {Ws0[-1].shape}"
        )
    lr, num_iters, record_every, weight_decay = _check_run(lr, num_iters, record_every, weight_decay, on_divergence)
    Xt, yt = _tensors(X, y, dtype)
    shrink = 1.0 - lr * weight_decay

    def advance(Ws: list[torch.Tensor], update: bool):
        W_e = Ws[0]
        for W in Ws[1:]:
            W_e = W @ W_e
        loss = _loss_from_residual(Xt @ W_e[0] - yt, p)
        if not update:
            return loss.detach(), W_e.detach(), Ws
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            nxt = [(shrink * W - lr * G).requires_grad_() for W, G in zip(Ws, grads)]
        return loss.detach(), W_e.detach(), nxt

    state = [torch.tensor(W, dtype=dtype, requires_grad=True) for W in Ws0]
    return _run(
        advance,
        state,
        num_iters,
        record_every=record_every,
        on_divergence=on_divergence,
        what=f"gradient descent on a depth-{len(Ws0)} linear network",
        lr=lr,
        p=p,
        depth=len(Ws0),
        weight_decay=weight_decay,
        keep_factors=True,
    )
