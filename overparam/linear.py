"""Gradient descent on the convex linear model (Chapter 1).

Full-batch gradient descent ``w <- w - lr * grad L(w)`` on the ℓp loss of
:mod:`overparam.losses`, run in torch (float64 by default: for the Ethanol
shapes, torch's kernels are several times faster than numpy's here) and
returned as a small :class:`GDHistory`. A run that diverges stops at once and
says at which step, instead of filling the history with NaNs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from .losses import _gradient_from_residual, _loss_from_residual, check_problem
from .validation import check_int, check_real

__all__ = ["DivergenceError", "GDHistory", "gradient_descent", "largest_stable", "quadratic_lr_limit"]

#: A run counts as diverged when its loss is not finite or exceeds this multiple of its initial loss.
DIVERGENCE_FACTOR = 1e6


class DivergenceError(RuntimeError):
    """A training run diverged; ``step`` and ``loss`` say where."""

    def __init__(self, step: int, loss: float, what: str = "gradient descent", hint: str | None = None):
        self.step, self.loss = step, loss
        hint = hint or ("use a smaller learning rate, or pass on_divergence='stop' to keep the history up to that step")
        super().__init__(f"{what} diverged at step {step} (loss {loss:.3g}); {hint}")


@dataclass(frozen=True)
class GDHistory:
    """One run of gradient descent.

    Attributes
    ----------
    steps : ndarray of int
        Iterations at which the loss was recorded (0 is the initial point).
    loss : ndarray
        Training loss at those iterations.
    w : ndarray, shape (d,)
        Final weights; for a diverged run, a finite iterate from at most 1000
        steps before the divergence.
    lr : float
        Learning rate.
    p : int
        Loss exponent.
    diverged_at : int or None
        First step whose loss was non-finite or above ``DIVERGENCE_FACTOR``
        times the initial loss; ``None`` for a stable run.
    """

    steps: np.ndarray
    loss: np.ndarray
    w: np.ndarray
    lr: float
    p: int
    diverged_at: int | None = None

    @property
    def diverged(self) -> bool:
        """Whether the run diverged."""
        return self.diverged_at is not None

    @property
    def final_loss(self) -> float:
        """The last recorded loss (``inf`` for a diverged run)."""
        return float("inf") if self.diverged else float(self.loss[-1])

    def iterations_to(self, target: float) -> int | None:
        """First recorded iteration whose loss is at most ``target`` (``None`` if never)."""
        hit = np.flatnonzero(self.loss <= target)
        return int(self.steps[hit[0]]) if hit.size else None


def _first_divergence(loss: torch.Tensor, limit: float) -> int | None:
    bad = ~torch.isfinite(loss) | (loss > limit)
    idx = torch.nonzero(bad)
    return int(idx[0, 0]) if idx.numel() else None


def _check_run(lr: float, num_iters: int, record_every: int, weight_decay: float,
               on_divergence: str) -> tuple[float, int, int, float]:
    """The arguments every trainer shares, checked and as Python numbers: ``lr, num_iters, record_every, weight_decay``."""
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
    return (check_real("lr", lr, above=0), check_int("num_iters", num_iters, 0),
            check_int("record_every", record_every, 1), check_real("weight_decay", weight_decay, at_least=0))


def gradient_descent(
    X: np.ndarray,
    y: np.ndarray,
    p: int,
    lr: float,
    num_iters: int,
    *,
    w0: np.ndarray | None = None,
    record_every: int = 1,
    on_divergence: Literal["raise", "stop"] = "raise",
    dtype: torch.dtype = torch.float64,
) -> GDHistory:
    """Full-batch gradient descent on the ℓp linear model (Chapter 1).

    .. math::

        w^{(t+1)} = w^{(t)} - \\eta \\, \\nabla L(w^{(t)}),
        \\qquad \\nabla L(w) = \\tfrac{1}{m} X^\\top (Xw - y)^{\\odot (p-1)} .

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
    on_divergence : {"raise", "stop"}
        What to do when the run diverges: raise :class:`DivergenceError`
        naming the step, or stop and return the history up to that step with
        ``diverged_at`` set.
    dtype : torch.dtype
        Arithmetic precision.

    Returns
    -------
    GDHistory
    """
    check_problem(X, y, p, w0)
    lr, num_iters, record_every, _ = _check_run(lr, num_iters, record_every, 0.0, on_divergence)
    Xt = torch.as_tensor(np.asarray(X), dtype=dtype)
    yt = torch.as_tensor(np.asarray(y), dtype=dtype)
    w = torch.zeros(Xt.shape[1], dtype=dtype) if w0 is None else torch.as_tensor(np.asarray(w0), dtype=dtype).clone()

    losses = torch.empty(num_iters + 1, dtype=dtype)
    chunk = 1000
    limit = None
    diverged_at = None
    w_last_good = w.clone()
    t = 0
    with torch.no_grad():
        while t <= num_iters:
            stop = min(t + chunk, num_iters + 1)
            start = t
            w_last_good = w.clone()
            for t in range(start, stop):
                r = Xt @ w - yt
                losses[t] = _loss_from_residual(r, p)
                if t < num_iters:
                    w = w - lr * _gradient_from_residual(r, Xt, p)
            t = stop
            if limit is None:
                limit = float(losses[0]) * DIVERGENCE_FACTOR if float(losses[0]) > 0 else DIVERGENCE_FACTOR
            bad = _first_divergence(losses[start:stop], limit)
            if bad is not None:
                diverged_at = start + bad
                if on_divergence == "raise":
                    raise DivergenceError(diverged_at, float(losses[diverged_at]))
                break
    last = num_iters if diverged_at is None else diverged_at - 1
    steps = np.unique(np.r_[np.arange(0, last + 1, record_every), last]) if last >= 0 else np.array([], dtype=int)
    final_w = w if diverged_at is None else w_last_good
    return GDHistory(
        steps=steps.astype(np.int64),
        loss=losses[steps].numpy().astype(np.float64),
        w=final_w.numpy().astype(np.float64),
        lr=float(lr),
        p=int(p),
        diverged_at=diverged_at,
    )


def largest_stable(histories: Sequence[GDHistory]) -> GDHistory:
    """The run with the largest learning rate that did not diverge.

    The learning-rate rule of Chapter 1 (and of the depth experiments): on a
    grid, keep the largest η stable for the *whole* run.

    Raises
    ------
    ValueError
        If ``histories`` is empty or every run diverged.
    """
    stable = [h for h in histories if not h.diverged]
    if not stable:
        raise ValueError("histories: every run diverged; extend the learning-rate grid downwards")
    return max(stable, key=lambda h: h.lr)


def quadratic_lr_limit(X: np.ndarray) -> float:
    """Stability limit ``2 / λ_max(XᵀX/m)`` of fixed-step GD on the ℓ2 loss.

    Chapter 1: on a quadratic, GD converges for every start iff
    ``0 < η < 2/λ_max`` of the Hessian, here ``(1/m) XᵀX``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    return float(2.0 / np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1])
