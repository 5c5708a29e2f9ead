"""The minimum of the convex ℓp regression problem, the yardstick of every Ethanol experiment (Chapter 1).

For even ``p >= 2`` the loss :math:`L(w) = \\frac1p\\,\\mathrm{mean}_i (x_i^\\top w - y_i)^p`
of :func:`overparam.lp_loss` is convex, so gradient descent at any depth can at
best approach its minimum :math:`L^* = \\min_w L(w)`. Progress is measured as the
*suboptimality* :math:`L - L^*`, which goes to zero; the raw loss does not
(the scale on which the book reads the paper's ℓp regression experiments on
the Ethanol data, arXiv:1802.06509).

:func:`lp_optimum` computes the minimizer: least squares for ``p = 2``, damped
Newton's method from the least-squares solution for ``p >= 4``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import check_problem, lp_gradient, lp_hessian, lp_loss
from .validation import check_int, check_real, finite_array, float_array

__all__ = ["LpOptimum", "OPTIMUM_ATOL", "OPTIMUM_RTOL", "check_optimum", "lp_optimum", "suboptimality"]

#: How far below :math:`L^*` a loss may lie, relative to :math:`|L^*|`, and still be round-off
#: (:func:`check_optimum`): about 100 float32 epsilons, the round-off of a float32 run's loss; an optimum
#: computed for other data or another ``p`` lies far above some loss.
OPTIMUM_RTOL = 1e-5
#: The same margin in absolute terms, for an optimum that is itself round-off (data fitted exactly, where the
#: computed :math:`L^*` may be 1e-32 and a run's loss 0).
OPTIMUM_ATOL = 1e-12


@dataclass(frozen=True)
class LpOptimum:
    """The minimizer of an ℓp regression problem (Chapter 1, ``ch-lp-regression``).

    Attributes
    ----------
    w : ndarray, shape (d,)
        The minimizer :math:`w^*`.
    loss : float
        :math:`L^* = L(w^*)`.
    p : int
    iterations : int
        Newton steps taken (0 for ``p = 2``).
    decrement : float
        The final Newton decrement :math:`\\sqrt{g^\\top H^{-1} g}`; half its
        square is the quadratic model's estimate of :math:`L(w) - L^*` near the
        optimum, exact to leading order (0 for ``p = 2``).
    gradient_norm : float
        :math:`\\|\\nabla L(w^*)\\|`.
    """

    w: np.ndarray
    loss: float
    p: int
    iterations: int
    decrement: float
    gradient_norm: float


#: Below this squared Newton decrement (relative to the loss) Newton's full step is taken without a line
#: search: the loss change it predicts is then too close to round-off for the Armijo test to be meaningful.
_QUADRATIC_REGION = 1e-8


def _least_squares(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(X, y, rcond=None)[0]


#: A residual within this many float64 epsilons of the size of its terms is round-off (:func:`_interpolates`).
_ROUND_OFF_EPS = 1e3


def _interpolates(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> bool:
    """Whether every residual :math:`x_i^\\top w - y_i` is round-off: then :math:`w` fits the data exactly.

    Every ℓp loss is then 0 to round-off, its minimum, and Newton's method has
    nothing left to measure (the loss is below the resolution of its own test).
    """
    scale = np.abs(X) @ np.abs(w) + np.abs(y)
    return bool(np.all(np.abs(X @ w - y) <= _ROUND_OFF_EPS * np.finfo(np.float64).eps * scale))


def lp_optimum(X: np.ndarray, y: np.ndarray, p: int, *, tol: float = 1e-16, max_iter: int = 200) -> LpOptimum:
    """Minimize the ℓp loss exactly: least squares (p = 2) or damped Newton (p >= 4) (Chapter 1).

    Newton's step solves :math:`H\\,\\Delta = -\\nabla L` with the Hessian of
    :func:`overparam.lp_hessian`, then halves the step until the loss satisfies
    the Armijo condition :math:`L(w + s\\Delta) \\le L(w) - \\tfrac14 s\\,\\lambda^2`,
    :math:`\\lambda^2 = -\\nabla L^\\top\\Delta` the squared Newton decrement. It
    stops when :math:`\\lambda^2/2 \\le \\text{tol}\\cdot L(w)` (half the squared
    decrement estimates :math:`L(w) - L^*` to leading order near the optimum), or
    when a full step taken near the optimum does not shrink :math:`\\lambda^2`:
    the decrement has then reached the round-off of the gradient, which happens
    on data fitted almost exactly (residuals a few digits above round-off), where
    ``tol`` relative to the tiny :math:`L^*` is out of reach. Data that a linear model fits exactly (noise-free
    :math:`y = Xw`) have :math:`L^* = 0`, reached by least squares already:
    Newton's method is then skipped (``iterations`` 0).

    Parameters
    ----------
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    p : int
        Even integer >= 2.
    tol : float
        Relative accuracy asked of :math:`L^*`.
    max_iter : int
        Newton steps allowed.

    Returns
    -------
    LpOptimum

    Raises
    ------
    ValueError
        Naming the argument: ``X``, ``y`` or ``p`` fail :func:`~overparam.losses.check_problem` (not arrays
        of finite real numbers, wrong shapes, ``p`` not an even integer >= 2), ``tol`` is not a number > 0,
        or ``max_iter`` not an integer >= 1.
    RuntimeError
        Newton's method did not reach ``tol`` within ``max_iter`` steps, or a
        line search could not decrease the loss (the message gives the
        decrement reached).
    """
    X, y, _ = check_problem(finite_array("X", X), finite_array("y", y), p)
    tol = check_real("tol", tol, above=0)
    max_iter = check_int("max_iter", max_iter, 1)
    w = _least_squares(X, y)
    if p == 2:
        return LpOptimum(w, lp_loss(w, X, y, 2), 2, 0, 0.0, float(np.linalg.norm(lp_gradient(w, X, y, 2))))
    loss = lp_loss(w, X, y, p)
    full_step_from = np.inf  # the squared decrement before the last full (undamped) step
    for it in range(1, max_iter + 1):
        g = lp_gradient(w, X, y, p)
        if _interpolates(w, X, y):  # L* = 0 to round-off: nothing left for Newton's method to resolve
            return LpOptimum(w, loss, int(p), it - 1, 0.0, float(np.linalg.norm(g)))
        H = lp_hessian(w, X, y, p)
        step = -np.linalg.lstsq(H, g, rcond=None)[0]
        dec2 = float(-g @ step)
        if dec2 <= 0:  # no descent direction left: we are at the optimum to round-off
            dec2 = 0.0
        # converged; or a full step near w* failed to shrink the decrement: round-off, nothing left to gain
        if dec2 / 2 <= tol * loss or dec2 >= full_step_from:
            return LpOptimum(w, loss, int(p), it - 1, float(np.sqrt(dec2)), float(np.linalg.norm(g)))
        s = 1.0
        while dec2 > _QUADRATIC_REGION * loss:  # far from w*: damp; near it, full steps converge quadratically
            trial = w + s * step
            trial_loss = lp_loss(trial, X, y, p)
            if trial_loss <= loss - 0.25 * s * dec2:
                break
            s /= 2
            if s < 1e-12:
                raise RuntimeError(
                    f"lp_optimum(p={p}): the line search failed at Newton step {it} "
                    f"(squared decrement {dec2:.3g}, loss {loss:.6g}); the problem may be badly scaled: standardize X"
                )
        else:
            trial = w + step
            trial_loss = lp_loss(trial, X, y, p)
            full_step_from = dec2
        w, loss = trial, trial_loss
    raise RuntimeError(f"lp_optimum(p={p}): not converged in max_iter={max_iter} Newton steps "
                       f"(squared decrement {dec2:.3g} against tol * L = {tol * loss:.3g})")


def check_optimum(optimum: LpOptimum | float, loss: np.ndarray, name: str = "optimum") -> float:
    """:math:`L^*` as a float, checked to lie below every finite entry of ``loss`` beyond round-off.

    The rule of :meth:`overparam.SweepResult.spikes` ("optimum must lie below
    every recorded loss"), with a margin: a loss may lie up to
    :data:`OPTIMUM_RTOL` × :math:`|L^*|` + :data:`OPTIMUM_ATOL` below
    :math:`L^*` (a run that reached the optimum to round-off). NaN and inf
    entries are not compared.

    Parameters
    ----------
    optimum : LpOptimum or float
        :math:`L^*`.
    loss : ndarray
        Float losses (already checked as an array of real numbers).
    name : str
        The argument's name, for the messages.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``"<name> must be an LpOptimum or a finite number (L*), got ..."``, or
        ``"<name> must lie below every loss ..."`` when some loss lies below it
        by more than round-off (an optimum of other data, or of another ``p``).
    """
    best = optimum.loss if isinstance(optimum, LpOptimum) else check_real(
        name, optimum, expected="an LpOptimum or a finite number (L*)")
    finite = np.asarray(loss)[np.isfinite(loss)]
    if finite.size and finite.min() < best - (OPTIMUM_RTOL * abs(best) + OPTIMUM_ATOL):
        raise ValueError(f"{name} must lie below every loss (L* is their minimum, to round-off: "
                         f"{OPTIMUM_RTOL:g} × |L*| + {OPTIMUM_ATOL:g}), got L* = {best!r} and a loss of {float(finite.min())!r}; "
                         "compute L* with lp_optimum on the same data and p")
    return float(best)


def suboptimality(loss: np.ndarray, optimum: LpOptimum | float) -> np.ndarray:
    """:math:`L - L^*`, the distance to the optimum that every Ethanol figure plots (Chapter 1, ``ch-lp-regression``).

    ``loss`` may hold NaN (steps after a divergence) and stays NaN there, and
    inf (a diverged run's ``final_loss``): the chapters plot sweep rows that
    hold them. Values that round-off puts slightly below 0 are clipped to 0.

    Raises
    ------
    ValueError
        If ``loss`` is not an array of real numbers (``None``, strings,
        complex numbers, a ragged list), or ``optimum`` is not finite or lies
        above some loss beyond round-off (:func:`check_optimum`).
    """
    values = np.asarray(float_array(loss, name="loss"), dtype=np.float64)
    best = check_optimum(optimum, values)
    return np.maximum(values - best, 0.0)
