"""The ℓp regression loss, its gradient and its Hessian (Chapter 1, ``ch-lp-regression``).

For a design ``X`` of shape (m, d), targets ``y`` of shape (m,) and an even
integer ``p >= 2`` the paper's test bed is

.. math::

    L(w) = \\frac{1}{p} \\cdot \\frac{1}{m} \\sum_{i=1}^m (x_i^\\top w - y_i)^p .

The functions accept ``w`` as a vector of shape (d,) or as the end-to-end
matrix of a single-output network, shape (1, d), and return arrays of the same
layout. Integer or boolean inputs are converted to float64 first: computed in
the input's integer type, ``r ** 4`` would overflow (int64) or wrap around
(uint8). Their arithmetic works unchanged on numpy arrays and torch tensors, so
the training loops reuse exactly these formulas.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .validation import all_finite, check_int, float_array, is_tensor

__all__ = ["lp_loss", "lp_gradient", "lp_hessian", "check_exponent", "check_problem", "regression_pair"]


def check_exponent(p: Any) -> int:
    """The loss exponent ``p`` as a Python ``int``; ``ValueError`` unless it is an even integer >= 2 (Chapter 1).

    The book's ℓp losses are ℓ2 and ℓ4; an odd ``p`` would make :math:`(x^\top w - y)^p` negative for negative
    residuals, so it is refused everywhere a loss exponent is taken.
    """
    p = check_int("p", p, 2, expected="an even integer >= 2")
    if p % 2:
        raise ValueError(f"p must be an even integer >= 2, got {p}")
    return p


def check_problem(X: Any, y: Any, p: int, w: Any | None = None, *, w_name: str = "w") -> tuple[Any, Any, Any]:
    """Validate an ℓp regression problem; raise ``ValueError`` naming the argument.

    Parameters
    ----------
    X : array-like, shape (m, d)
        At least one row and one column, finite.
    y : array-like, shape (m,)
    p : int
        Even integer, at least 2.
    w : array-like, shape (d,) or (1, d), optional
    w_name : str
        The name of ``w`` in the caller's signature, for the messages (``"w0"``, ``"W_e0"``, ...).

    Returns
    -------
    X, y, w
        The inputs as arrays (lists converted, integers made float64 by
        :func:`~overparam.validation.float_array`; ``w`` stays ``None`` if not given).

    Raises
    ------
    ValueError
        Naming the argument: ``p`` not an even integer >= 2 (checked first), or an array that is not one of real
        numbers (strings, ``None``, a ragged list, complex numbers), has a wrong shape, or a non-finite entry.
    """
    p = check_exponent(p)
    X, y = float_array(X, name="X"), float_array(y, name="y")
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D (examples, features), got shape {tuple(X.shape)}")
    m, d = X.shape
    if m == 0 or d == 0:
        raise ValueError(f"X must have at least one row and one column, got shape {tuple(X.shape)}")
    if tuple(y.shape) != (m,):
        raise ValueError(f"y must have shape ({m},) to match X's {m} rows, got {tuple(y.shape)}")
    if w is not None:
        w = float_array(w, name=w_name)
        if tuple(w.shape) not in {(d,), (1, d)}:
            raise ValueError(f"{w_name} must have shape ({d},) or (1, {d}) to match X's {d} columns, "
                             f"got {tuple(w.shape)}")
    for name, a in (("X", X), ("y", y)) + (((w_name, w),) if w is not None else ()):
        if not all_finite(a):
            raise ValueError(f"{name} must contain only finite values")
    return X, y, w


def _check_same_kind(arrays: tuple[tuple[str, Any], ...]) -> None:
    """Torch tensors do not promote ``float32 @ float64`` and do not mix with numpy arrays: refuse either, by name."""
    tensors = [is_tensor(a) for _, a in arrays]
    if not any(tensors):
        return  # numpy promotes float32 against float64
    names = ", ".join(name for name, _ in arrays)
    if not all(tensors):
        kinds = ", ".join(f"{name} {'tensor' if t else type(a).__name__}" for (name, a), t in zip(arrays, tensors))
        raise ValueError(f"{names} must be all numpy arrays or all torch tensors, got {kinds}")
    if len({a.dtype for _, a in arrays}) > 1:
        dtypes = ", ".join(f"{name} {a.dtype}" for name, a in arrays)
        raise ValueError(f"{names} must share a dtype (torch does not promote float32 against float64), got {dtypes}")


def _checked_lp(w: Any, X: Any, y: Any, p: int) -> tuple[Any, Any, Any]:
    """The arguments of :func:`lp_loss` and its derivatives, checked by :func:`check_problem`, ``w`` required.

    Torch tensors must moreover all be tensors of one dtype: ``X @ w`` and ``X.T @ r`` do not promote.
    """
    if w is None:
        raise ValueError("w must be an array of shape (d,) or (1, d), got None")
    X, y, w = check_problem(X, y, p, w)
    _check_same_kind((("w", w), ("X", X), ("y", y)))
    return X, y, w


def regression_pair(data: Any, name: str = "problem") -> tuple[np.ndarray, np.ndarray]:
    """The checked float64 arrays ``(X, y)`` of a regression data set given as a pair or as an object.

    ``data`` is ``(X, y)`` or anything with attributes ``X`` and ``y`` (e.g.
    ``op.load_standardized_ethanol()``); the arrays pass :func:`check_problem`.
    ``name`` is the argument's name in the caller's signature, for the message.

    Raises
    ------
    ValueError
        ``data`` is neither, or its arrays fail :func:`check_problem`.
    """
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        shape = f" of shape {data.shape}" if isinstance(data, np.ndarray) else ""
        raise ValueError(f"{name} must be a pair (X, y) or an object with attributes X and y "
                         f"(e.g. op.load_standardized_ethanol()), got {type(data).__name__}{shape}")
    X, y, _ = check_problem(X, y, 2)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _residual(w: Any, X: Any, y: Any) -> Any:
    return X @ w.reshape(-1) - y


def _loss_from_residual(r: Any, p: int) -> Any:
    return (r**p).mean() / p


def _gradient_from_residual(r: Any, X: Any, p: int) -> Any:
    return X.T @ r ** (p - 1) / X.shape[0]


def lp_loss(w: np.ndarray, X: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    """ℓp loss :math:`L(w) = \\frac{1}{p}\\,\\mathrm{mean}_i (x_i^\\top w - y_i)^p`.

    Defined in Chapter 1 (``ch-lp-regression``): the ℓp regression objective of
    the paper (arXiv:1802.06509; the authors' blog post writes it with a sum,
    and the mean rather than the sum only rescales the learning rate).

    Parameters
    ----------
    w : ndarray, shape (d,) or (1, d)
    X : ndarray, shape (m, d)
    y : ndarray, shape (m,)
    p : int
        Even integer >= 2.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Naming the argument, as :func:`check_problem`; also for ``w=None``, and for torch
        tensors of different dtypes or mixed with numpy arrays (``X @ w`` does not promote them).
    """
    X, y, w = _checked_lp(w, X, y, p)
    return float(_loss_from_residual(_residual(w, X, y), p))


def lp_gradient(w: np.ndarray, X: np.ndarray, y: np.ndarray, p: int = 2) -> np.ndarray:
    """Gradient :math:`\\nabla L(w) = \\frac{1}{m} X^\\top r^{\\odot(p-1)}`, ``r = Xw - y``.

    Defined in Chapter 1 (``ch-lp-regression``). Returned in the layout of ``w``.

    Parameters
    ----------
    w, X, y, p
        As in :func:`lp_loss`.

    Returns
    -------
    ndarray, the shape of ``w``

    Raises
    ------
    ValueError
        As :func:`lp_loss`.
    """
    X, y, w = _checked_lp(w, X, y, p)
    return _gradient_from_residual(_residual(w, X, y), X, p).reshape(w.shape)


def lp_hessian(w: np.ndarray, X: np.ndarray, y: np.ndarray, p: int = 2) -> np.ndarray:
    """Hessian :math:`\\nabla^2 L(w) = \\frac{p-1}{m} X^\\top \\mathrm{diag}(r^{\\odot(p-2)}) X`.

    Defined in Chapter 1: for p = 2 it is the constant ``X^T X / m``; for p = 4
    it is ``3 X^T diag(r^2) X / m``, huge far from the optimum and vanishing
    as the residuals shrink.

    Parameters
    ----------
    w, X, y, p
        As in :func:`lp_loss`.

    Returns
    -------
    ndarray, shape (d, d), whatever the layout of ``w``

    Raises
    ------
    ValueError
        As :func:`lp_loss`.
    """
    X, y, w = _checked_lp(w, X, y, p)
    r = _residual(w, X, y)
    return (p - 1) * (X.T * r ** (p - 2)) @ X / X.shape[0]
