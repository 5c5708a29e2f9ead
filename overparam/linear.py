"""Gradient descent on the convex linear model (Chapter 1, ``ch-lp-regression``).

Full-batch gradient descent ``w <- w - lr * grad L(w)`` on the ℓp loss of
:mod:`overparam.losses`, run in torch (float64 by default; why torch:
``docs/design-notes.md``) and
returned as a small :class:`GDHistory` by the shared loop of
:mod:`overparam.training`. A run that diverges stops at once and says at which
step, instead of filling the history with NaNs.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Literal, TypeVar

import numpy as np
import torch

from .losses import _gradient_from_residual, _loss_from_residual, check_problem
from .training import (  # DIVERGENCE_FACTOR, DivergenceError, GDHistory, largest_stable: re-exported
    DIVERGENCE_FACTOR,
    DivergenceError,
    GDHistory,
    History,
    LossFunction,
    StepFunction,
    check_run,
    largest_stable,
    to_numpy,
    train_loop,
)
from .validation import finite_array

__all__ = ["DivergenceError", "GDHistory", "check_record", "gradient_descent", "keep_steps", "largest_stable",
           "quadratic_lr_limit"]

#: An update of the weights from the gradient: ``update(w, grad L(w)) -> next w``.
Update = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


#: Any run history (a :class:`~overparam.training.Trace`, a :class:`GDHistory`, a ``DeepHistory``).
H = TypeVar("H", bound=History)


def check_record(record: Iterable[int] | None, num_iters: int, record_every: int = 1) -> np.ndarray | None:
    """The steps at which a trainer keeps the loss when given ``record=`` (Chapters 1, 2, 4 and 5).

    A log-spaced grid merged with a linear one (``op.log_steps(num_iters, 20,
    every=...)``) shows the start of a run on a log x-axis and its end on a
    linear one; the trainers take it as ``record``, like :func:`overparam.run_sweep`.

    Parameters
    ----------
    record : array_like of int, or None
        Steps in ``[0, num_iters]``, sorted, without repeats (``np.union1d``
        gives that); 0 and ``num_iters`` are added. ``None``: the trainer
        records every ``record_every`` steps instead.
    num_iters : int
        The run's length (already checked).
    record_every : int
        The trainer's other recording argument: with ``record`` it must be
        left at 1.

    Returns
    -------
    ndarray of int64 or None
        The steps, 0 and ``num_iters`` included; ``None`` when ``record`` is.

    Raises
    ------
    ValueError
        Naming ``record``: not a non-empty 1-D array of integers, a step
        outside ``[0, num_iters]``, unsorted or repeated steps, or
        ``record_every`` given as well.
    """
    if record is None:
        return None
    if record_every != 1:
        raise ValueError(f"give record or record_every, not both (got record_every={record_every})")
    steps = np.asarray(list(record) if not isinstance(record, np.ndarray) else record)
    if steps.ndim != 1 or steps.size == 0 or steps.dtype.kind not in "iu":
        raise ValueError("record must be a non-empty 1-D sequence of integer steps, e.g. "
                         f"op.log_steps(num_iters, 20, every=50); got {record!r:.80}")
    if steps.min() < 0 or steps.max() > num_iters:
        raise ValueError(f"record must hold steps in [0, num_iters={num_iters}], got {steps.min()} to {steps.max()}")
    if np.any(np.diff(steps) <= 0):
        raise ValueError("record must be sorted and without repeated steps (np.unique or np.union1d gives that)")
    return np.union1d(steps, [0, num_iters]).astype(np.int64)


def keep_steps(history: H, record: np.ndarray) -> H:
    """An every-step history cut down to the steps of ``record`` (and, for a diverged run, its last step).

    How the trainers honour ``record=``: the shared loop records every step,
    and this keeps the requested ones, so the kept values are exactly those of
    an every-step run. A diverged run keeps its last admissible step, as every
    history of the book does. Per-step arrays (``steps``, ``loss``, and
    ``observed`` or ``W_e`` where present) are cut; every other field is kept.

    Parameters
    ----------
    history : History
        Recorded at every step (``record_every=1``).
    record : ndarray of int
        From :func:`check_record`.

    Returns
    -------
    History
        Of the same type as ``history``.
    """
    keep = np.isin(history.steps, record)
    if history.diverged and keep.size:
        keep[-1] = True
    changes = {"steps": history.steps[keep], "loss": history.loss[keep]}
    for name in ("observed", "W_e"):
        values = getattr(history, name, None)
        if values is not None and len(values) == keep.size:
            changes[name] = values[keep]
    return dataclasses.replace(history, **changes)


def problem_tensors(X: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The data ``X``, ``y`` of an ℓp problem as torch tensors of ``dtype`` (``torch.float32`` or ``torch.float64``)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return torch.as_tensor(np.asarray(X), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=dtype)


def start_vector(w0: np.ndarray | None, d: int, dtype: torch.dtype) -> torch.Tensor:
    """The initial weight vector: a copy of ``w0`` flattened to (d,), zeros if ``w0`` is None."""
    if w0 is None:
        return torch.zeros(d, dtype=dtype)
    return torch.as_tensor(np.asarray(w0).reshape(-1), dtype=dtype).clone()


def lp_step_functions(Xt: torch.Tensor, yt: torch.Tensor, p: int, update: Update) -> tuple[StepFunction, LossFunction]:
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
    record: Iterable[int] | None = None,
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
    w0 : ndarray, shape (d,), optional
        Initial weights; zeros by default.
    record_every : int
        Keep the loss every ``record_every`` steps (and at the last one).
    record : array_like of int, optional
        Keep the loss at these steps instead (sorted, unique, in
        ``[0, num_iters]``; 0 and ``num_iters`` are added), e.g. a log-spaced
        grid for a log x-axis (:func:`check_record`). The values are those of
        an every-step run at the same steps (it records every step and keeps these).
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
    kept = check_record(record, num_iters, record_every)
    Xt, yt = problem_tensors(X, y, dtype)
    step, loss = lp_step_functions(Xt, yt, p, lambda w, g: w - lr * g)
    trace = train_loop(step, loss, start_vector(w0, Xt.shape[1], dtype), num_iters,
                       record_every=record_every, on_divergence=on_divergence)
    if kept is not None:
        trace = keep_steps(trace, kept)
    return GDHistory(steps=trace.steps, loss=trace.loss, w=to_numpy(trace.final), lr=lr, p=int(p),
                     diverged_at=trace.diverged_at)


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
