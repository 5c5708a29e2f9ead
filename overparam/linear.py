"""Gradient descent on the convex linear model (Chapter 1, ``ch-lp-regression``).

Full-batch gradient descent ``w <- w - lr * grad L(w)`` on the ℓp loss of
:mod:`overparam.losses`, run in torch (float64 by default; why torch:
``docs/design-notes.md``) and
returned as a small :class:`GDHistory` by the shared loop of
:mod:`overparam.training`. A run that diverges stops at once and says at which
step, instead of filling the history with NaNs.
"""
from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np
import torch

from .losses import _gradient_from_residual, _loss_from_residual, check_problem
from .training import (  # DIVERGENCE_FACTOR, DivergenceError, GDHistory, largest_stable: re-exported
    DIVERGENCE_FACTOR,
    DivergenceError,
    GDHistory,
    LossFunction,
    StepFunction,
    check_run,
    largest_stable,
    to_numpy,
    train_loop,
)
from .validation import finite_array

__all__ = ["DivergenceError", "GDHistory", "gradient_descent", "largest_stable", "quadratic_lr_limit"]

#: An update of the weights from the gradient: ``update(w, grad L(w)) -> next w``.
Update = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _problem_tensors(X: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The data ``X``, ``y`` of an ℓp problem as torch tensors of ``dtype`` (``torch.float32`` or ``torch.float64``)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return torch.as_tensor(np.asarray(X), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=dtype)


def _start_vector(w0: np.ndarray | None, d: int, dtype: torch.dtype) -> torch.Tensor:
    """The initial weight vector: a copy of ``w0`` flattened to (d,), zeros if ``w0`` is None."""
    if w0 is None:
        return torch.zeros(d, dtype=dtype)
    return torch.as_tensor(np.asarray(w0).reshape(-1), dtype=dtype).clone()


def _lp_step_functions(Xt: torch.Tensor, yt: torch.Tensor, p: int, update: Update) -> tuple[StepFunction, LossFunction]:
    """The step and loss functions of a method that moves a weight vector by ``update(w, grad L(w))``.

    For :func:`~overparam.training.train_loop`: the ℓp loss
    :math:`L(w) = \\tfrac{1}{p}\\,\\mathrm{mean}_i (x_i^\\top w - y_i)^p` and its gradient
    share one residual per step. Gradient descent (Chapter 1, ``ch-lp-regression``), the end-to-end
    rule of arXiv:1802.06509, Equation 12 (Chapter 4, ``ch-preconditioner``) and penalized gradient
    descent (Chapter 5, ``ch-non-regularizer``) differ only in ``update``.

    Parameters
    ----------
    Xt : tensor, shape (m, d)
    yt : tensor, shape (m,)
    p : int
        Even loss exponent >= 2 (checked by the caller).
    update : callable
        ``update(w, g) -> next w``, ``g`` the gradient at ``w``.

    Returns
    -------
    step, loss : callable
    """

    def loss(w: torch.Tensor) -> torch.Tensor:
        return _loss_from_residual(Xt @ w - yt, p)

    def step(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = Xt @ w - yt
        return _loss_from_residual(r, p), update(w, _gradient_from_residual(r, Xt, p))

    return step, loss


def gradient_descent(
    X: np.ndarray,
    y: np.ndarray,
    p: int,
    lr: float,
    num_iters: int,
    *,
    w0: np.ndarray | None = None,
    record_every: int = 1,
    record: int | Sequence[int] | np.ndarray | None = None,
    on_divergence: Literal["raise", "stop"] = "raise",
    dtype: torch.dtype = torch.float64,
) -> GDHistory:
    """Full-batch gradient descent on the ℓp linear model (Chapter 1, ``ch-lp-regression``).

    .. math::

        w^{(t+1)} = w^{(t)} - \\eta \\, \\nabla L(w^{(t)}),
        \\qquad \\nabla L(w) = \\tfrac{1}{m} X^\\top (Xw - y)^{\\odot (p-1)} ,

    run by :func:`~overparam.training.train_loop`.

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    p : int
        Even loss exponent >= 2.
    lr : float
        Learning rate, > 0.
    num_iters : int
        Number of GD steps, >= 0.
    w0 : ndarray, shape (d,) or (1, d), optional
        Initial weights; zeros by default.
    record_every : int
        Keep the loss every ``record_every`` steps (and at the last one).
    record : int or array_like of int, optional
        Keep the loss every ``record`` steps, or at these steps (sorted, unique,
        in ``[0, num_iters]``), e.g. a log-spaced grid for a log x-axis; 0 and
        ``num_iters`` are added. The same rule as :func:`overparam.run_sweep`
        (:func:`~overparam.training.check_record`).
    on_divergence : {"raise", "stop"}
        What to do when the run diverges (loss not finite or above
        ``DIVERGENCE_FACTOR`` times the initial loss): raise
        :class:`DivergenceError` naming the step, or stop and return the
        history up to the step before, with ``diverged_at`` set.
    dtype : torch.dtype
        Arithmetic precision.

    Returns
    -------
    GDHistory
    """
    X, y, w0 = check_problem(X, y, p, w0, w_name="w0")
    lr, num_iters, record_every = check_run(lr, num_iters, record_every, on_divergence)
    Xt, yt = _problem_tensors(X, y, dtype)
    step, loss = _lp_step_functions(Xt, yt, p, lambda w, g: w - lr * g)
    trace = train_loop(step, loss, _start_vector(w0, Xt.shape[1], dtype), num_iters,
                       record_every=record_every, record=record, on_divergence=on_divergence,
                       start="w0" if w0 is not None else "the default start w0 = 0", data="X and y")
    return GDHistory(steps=trace.steps, loss=trace.loss, w=to_numpy(trace.final), lr=lr, p=int(p),
                     diverged_at=trace.diverged_at, dtype=trace.dtype)


def quadratic_lr_limit(X: np.ndarray) -> float:
    """Stability limit ``2 / λ_max(XᵀX/m)`` of fixed-step GD on the ℓ2 loss.

    Chapter 1: on a quadratic, GD converges for every start iff
    ``0 < η < 2/λ_max`` of the Hessian, here ``(1/m) XᵀX``.

    Parameters
    ----------
    X : ndarray, shape (m, d)

    Returns
    -------
    float
    """
    X = finite_array("X", X)
    if X.ndim != 2 or X.size == 0:
        raise ValueError(f"X must be 2-D with at least one row and one column, got shape {X.shape}")
    top = float(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1])
    if top <= 0:
        raise ValueError("X must not be all zeros (the ℓ2 loss is then flat and every step size is stable)")
    return 2.0 / top
