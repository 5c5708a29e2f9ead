"""The end-to-end dynamics of balanced deep linear networks (Chapter 4, ``ch-preconditioner``).

When the layers are balanced, gradient flow on a depth-N linear network moves its
end-to-end matrix by a rule of its own (arXiv:1802.06509, Theorem 1); gradient descent with
small steps follows, approximately, its discretization, the end-to-end update rule:

.. math::

    W_e \\leftarrow (1 - \\eta\\lambda N)\\, W_e
    - \\eta \\sum_{j=1}^{N} [W_e W_e^\\top]^{\\frac{j-1}{N}}\\,
      \\nabla L^1(W_e)\\, [W_e^\\top W_e]^{\\frac{N-j}{N}} ,

a preconditioned gradient step (Claim 1) that depends on the depth N and not
on the hidden widths. For a single output it has the closed form of
Equation 12.
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import torch

from .deep import _as_factors, _product
from .linear import _lp_step_functions, _problem_tensors
from .losses import check_problem
from .training import DeepHistory, check_run, to_numpy, train_loop
from .validation import check_int, check_real, finite_array

__all__ = [
    "end_to_end_direction",
    "end_to_end_step",
    "layer_preconditioner",
    "preconditioner",
    "psd_power",
    "single_output_direction",
    "train_end_to_end",
]

#: Eigenvalues at most this many machine epsilons × n × the largest are round-off, clamped to 0.
CLAMP_EPS_FACTOR = 10.0


def _psd_powers(A: Any, alphas: list[float], rtol: float | None, name: str = "A") -> list[np.ndarray]:
    """``[A]^alpha`` for several exponents from one eigendecomposition (see :func:`psd_power`)."""
    A = finite_array(name, A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix, got shape {A.shape}")
    n = A.shape[0]
    size = float(np.abs(A).max(initial=0.0))
    if np.abs(A - A.T).max(initial=0.0) > 1e-12 * size:
        raise ValueError(f"{name} must be symmetric")
    if rtol is None:
        rtol = CLAMP_EPS_FACTOR * max(n, 1) * np.finfo(np.float64).eps
    lam, V = np.linalg.eigh((A + A.T) / 2)
    tol = rtol * float(np.abs(lam).max(initial=0.0))
    if lam.size and lam[0] < -tol:
        raise ValueError(f"{name} must be positive semidefinite, has eigenvalue {lam[0]:.3g}")
    lam = np.where(lam <= tol, 0.0, lam)
    out = []
    for alpha in alphas:
        if alpha == 0:
            out.append(np.eye(n))
            continue
        M = (V * lam**alpha) @ V.T
        out.append((M + M.T) / 2)
    return out


def psd_power(A: np.ndarray, alpha: float, rtol: float | None = None) -> np.ndarray:
    """Fractional power :math:`[A]^\\alpha` of a symmetric positive semidefinite matrix.

    .. math::

        A = V \\operatorname{diag}(\\lambda) V^\\top
        \\;\\Rightarrow\\; [A]^\\alpha = V \\operatorname{diag}(\\lambda^\\alpha) V^\\top,
        \\qquad [A]^0 := I \\text{ even for singular } A

    (the convention Theorem 1's formula needs; Chapter 4 explains why). Eigenvalues at most ``rtol`` × the largest |eigenvalue|
    are set to exactly 0 first: they are round-off, and a 1e−16 raised to the
    power 1/5 would become 6e−4. The price: applied to a Gram matrix
    :math:`W_e W_e^\\top` or :math:`W_e^\\top W_e`, the clamp also zeroes a genuine
    singular value of :math:`W_e` below about :math:`\\sqrt{\\mathrm{rtol}}\\,\\sigma_{\\max}`
    (1e−7 to 1e−6 of the largest at the default, by n), which round-off in the Gram
    matrix could not resolve anyway. Defined in Chapter 4 (ch-preconditioner).

    Parameters
    ----------
    A : ndarray, shape (n, n)
        Symmetric (to 1e−12 relative) and positive semidefinite.
    alpha : float
        Exponent >= 0.
    rtol : float, optional
        Relative clamping tolerance; default ``CLAMP_EPS_FACTOR · n · eps``.

    Returns
    -------
    ndarray, shape (n, n), symmetric
    """
    alpha = check_real("alpha", alpha, at_least=0)
    rtol = None if rtol is None else check_real("rtol", rtol, at_least=0)
    return _psd_powers(A, [alpha], rtol)[0]


def _check_pair(W_e: Any, grad: Any) -> tuple[np.ndarray, np.ndarray]:
    W_e = finite_array("W_e", W_e)
    grad = finite_array("grad", grad)
    if W_e.ndim != 2:
        raise ValueError(f"W_e must be a 2-D (k, d) matrix, got shape {W_e.shape}")
    if grad.shape != W_e.shape:
        raise ValueError(f"grad must have the shape of W_e {W_e.shape}, got {grad.shape}")
    return W_e, grad


def _gram_powers(W_e: np.ndarray, depth: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``[W_e W_eᵀ]^{i/N}`` and ``[W_eᵀ W_e]^{i/N}`` for i = 0..N−1."""
    if depth == 1:
        return [np.eye(W_e.shape[0])], [np.eye(W_e.shape[1])]
    alphas = [i / depth for i in range(depth)]
    return _psd_powers(W_e @ W_e.T, alphas, None, "W_e W_e^T"), _psd_powers(W_e.T @ W_e, alphas, None, "W_e^T W_e")


def end_to_end_direction(W_e: np.ndarray, grad: np.ndarray, depth: int) -> np.ndarray:
    """Preconditioned gradient of the end-to-end rule (arXiv:1802.06509, Theorem 1).

    .. math::

        \\sum_{j=1}^{N} [W_e W_e^\\top]^{\\frac{j-1}{N}}\\; G \\;[W_e^\\top W_e]^{\\frac{N-j}{N}}

    Defined in Chapter 4 (``ch-preconditioner``). N = 1 returns ``grad``.

    Parameters
    ----------
    W_e : ndarray, shape (k, d)
    grad : ndarray, shape (k, d)
        G, usually :math:`\\nabla L^1(W_e)`.
    depth : int
        N >= 1.
    """
    W_e, grad = _check_pair(W_e, grad)
    depth = check_int("depth", depth, 1)
    left, right = _gram_powers(W_e, depth)
    return sum(left[j - 1] @ grad @ right[depth - j] for j in range(1, depth + 1))


def end_to_end_step(
    W_e: np.ndarray, grad: np.ndarray, depth: int, lr: float, weight_decay: float = 0.0
) -> np.ndarray:
    """One step of the end-to-end update rule (arXiv:1802.06509, Theorem 1).

    .. math::

        W_e^{+} = (1 - \\eta\\lambda N)\\, W_e - \\eta\\,
        \\sum_{j=1}^{N} [W_e W_e^\\top]^{\\frac{j-1}{N}}\\, \\nabla L^1(W_e)\\,
        [W_e^\\top W_e]^{\\frac{N-j}{N}}

    Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    W_e, grad : ndarray, shape (k, d)
    depth : int
        N >= 1.
    lr : float
        η > 0.
    weight_decay : float
        λ >= 0 (the weight decay applied to every layer of the network).
    """
    lr = check_real("lr", lr, above=0)
    weight_decay = check_real("weight_decay", weight_decay, at_least=0)
    direction = end_to_end_direction(W_e, grad, depth)
    return (1.0 - lr * weight_decay * depth) * np.asarray(W_e, dtype=np.float64) - lr * direction


def preconditioner(W_e: np.ndarray, depth: int) -> np.ndarray:
    """The (kd × kd) preconditioner :math:`P_{W_e}` of arXiv:1802.06509, Claim 1.

    .. math::

        P_{W_e} = \\sum_{j=1}^{N} [W_e^\\top W_e]^{\\frac{N-j}{N}} \\otimes [W_e W_e^\\top]^{\\frac{j-1}{N}},
        \\qquad \\operatorname{vec}(\\text{direction}) = P_{W_e} \\operatorname{vec}(G),

    with the column-stacking ``vec(A) = A.flatten(order="F")``. Symmetric
    positive semidefinite; eigenvectors :math:`\\operatorname{vec}(u_r v_{r'}^\\top)`,
    eigenvalues :math:`\\sum_j \\sigma_r^{2(j-1)/N}\\sigma_{r'}^{2(N-j)/N}`.
    Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    W_e : ndarray, shape (k, d)
    depth : int
        N >= 1 (N = 1 gives the identity).
    """
    W_e = finite_array("W_e", W_e)
    if W_e.ndim != 2:
        raise ValueError(f"W_e must be a 2-D (k, d) matrix, got shape {W_e.shape}")
    depth = check_int("depth", depth, 1)
    left, right = _gram_powers(W_e, depth)
    return sum(np.kron(right[depth - j], left[j - 1]) for j in range(1, depth + 1))


def layer_preconditioner(factors: Sequence[np.ndarray]) -> np.ndarray:
    """The (kd × kd) matrix by which one gradient step on the layers moves :math:`W_e`, to first order.

    .. math::

        \\sum_{j=1}^{N} (B_j^\\top B_j) \\otimes (A_j A_j^\\top),
        \\qquad A_j = W_N \\cdots W_{j+1},\\; B_j = W_{j-1} \\cdots W_1,

        \\operatorname{vec}(W_e^{+} - W_e) = -\\eta \\Bigl[\\sum_j (B_j^\\top B_j) \\otimes (A_j A_j^\\top)\\Bigr]
        \\operatorname{vec}(\\nabla L^1(W_e)) + O(\\eta^2),

    empty products being identities and ``vec`` column-stacking, as in
    :func:`preconditioner`. It is :math:`J J^\\top` for the Jacobian J of
    :math:`W_e` with respect to all the layers' entries, so it holds for any
    layers, balanced or not; for balanced layers it equals :math:`P_{W_e}` of
    arXiv:1802.06509, Claim 1 (the step of the proof of Theorem 1). For one
    output with scalar layers :math:`\\omega_2, \\ldots, \\omega_N` above
    :math:`w_1` it is :math:`\\prod_j \\omega_j^2\\, I + \\sum_j \\prod_{i \\ne j}
    \\omega_i^2\\, w_1 w_1^\\top`. Defined in Chapter 2 (``ch-deep-linear``).

    Parameters
    ----------
    factors : list of ndarray
        ``[W_1, …, W_N]``, ``W_j`` of shape (n_j, n_{j−1}).

    Returns
    -------
    ndarray, shape (kd, kd)
        Symmetric positive semidefinite.
    """
    Ws = _as_factors(factors)
    k, d = Ws[-1].shape[0], Ws[0].shape[1]
    P = np.zeros((k * d, k * d))
    for j in range(len(Ws)):
        A = _product(Ws[j + 1:]) if j + 1 < len(Ws) else np.eye(k)
        B = _product(Ws[:j]) if j else np.eye(d)
        P += np.kron(B.T @ B, A @ A.T)
    return (P + P.T) / 2


def _single_output_direction(w: Any, g: Any, depth: int) -> Any:
    """Equation 12's direction; plain arithmetic, so numpy arrays and torch tensors both work."""
    if depth == 1:
        return g
    sq = (w * w).sum()
    coef = (g * w).sum() / sq if sq > 0 else 0.0
    return sq ** (1.0 - 1.0 / depth) * (g + (depth - 1) * coef * w)


def _check_vector_pair(w: Any, grad: Any) -> tuple[np.ndarray, np.ndarray]:
    w = finite_array("w", w)
    grad = finite_array("grad", grad)
    if w.ndim not in (1, 2) or (w.ndim == 2 and w.shape[0] != 1):
        raise ValueError(f"w must be a vector of shape (d,) or (1, d), got shape {w.shape}")
    if grad.shape != w.shape:
        raise ValueError(f"grad must have the shape of w {w.shape}, got {grad.shape}")
    return w, grad


def single_output_direction(w: np.ndarray, grad: np.ndarray, depth: int) -> np.ndarray:
    """The end-to-end direction for one output, in closed form (the single-output case of arXiv:1802.06509, Equation 12).

    .. math::

        \\|w\\|^{2 - 2/N} \\bigl( g + (N-1)\\, \\mathrm{Pr}_w\\{g\\} \\bigr),
        \\qquad \\mathrm{Pr}_w\\{g\\} = \\frac{\\langle g, w\\rangle}{\\|w\\|^2}\\, w
        \\;(0 \\text{ if } w = 0).

    Equals :func:`end_to_end_direction` for k = 1. Defined in Chapter 4 (``ch-preconditioner``).

    Parameters
    ----------
    w, grad : ndarray, shape (d,) or (1, d)
    depth : int
        N >= 1.
    """
    w, grad = _check_vector_pair(w, grad)
    # a copy: for N = 1 the direction is grad itself, which the caller may change later
    return np.array(_single_output_direction(w, grad, check_int("depth", depth, 1)), dtype=np.float64)


def train_end_to_end(
    X: np.ndarray,
    y: np.ndarray,
    p: int,
    W_e0: np.ndarray,
    depth: int,
    lr: float,
    num_iters: int,
    weight_decay: float = 0.0,
    *,
    record_every: int = 1,
    record: int | Sequence[int] | np.ndarray | None = None,
    dtype: torch.dtype = torch.float64,
    on_divergence: Literal["raise", "stop"] = "raise",
) -> DeepHistory:
    """Iterate the end-to-end rule on the ℓp linear model (Chapter 4; arXiv:1802.06509, Figure 2).

    A single-layer model trained with Equation 12 (the closed form of
    :func:`end_to_end_step` for one output, arXiv:1802.06509, Equation 12):

    .. math::

        w \\leftarrow (1 - \\eta\\lambda N)\\, w - \\eta\\, \\|w\\|^{2-2/N}
        \\bigl(\\nabla L(w) + (N-1)\\,\\mathrm{Pr}_w\\{\\nabla L(w)\\}\\bigr).

    Same arguments, history and divergence handling as
    :func:`~overparam.deep.train_deep_linear`, so the two overlay; the
    history's ``factors`` is empty. N = 1 is plain gradient descent.

    Parameters
    ----------
    X, y, p
        The ℓp problem: X of shape (m, d), y of shape (m,), even p >= 2.
    W_e0 : ndarray, shape (d,) or (1, d)
        Initial end-to-end vector (e.g. ``op.end_to_end(factors0)``).
    depth : int
        N >= 1.
    lr, num_iters, weight_decay, record_every, record, dtype, on_divergence
        As in :func:`~overparam.deep.train_deep_linear`.

    Returns
    -------
    DeepHistory
    """
    X, y, W_e0 = check_problem(X, y, p, finite_array("W_e0", W_e0), w_name="W_e0")
    depth = check_int("depth", depth, 1)
    lr, num_iters, record_every = check_run(lr, num_iters, record_every, on_divergence)
    weight_decay = check_real("weight_decay", weight_decay, at_least=0)
    Xt, yt = _problem_tensors(X, y, dtype)
    shrink = 1.0 - lr * weight_decay * depth
    step, loss = _lp_step_functions(Xt, yt, p, lambda w, g: shrink * w - lr * _single_output_direction(w, g, depth))
    trace = train_loop(step, loss, torch.as_tensor(W_e0.reshape(-1), dtype=dtype), num_iters,
                       record_every=record_every, record=record, on_divergence=on_divergence,
                       observe=lambda w: w[None, :], what=f"the depth-{depth} end-to-end rule",
                       start="W_e0", data="X and y")
    return DeepHistory(
        steps=trace.steps,
        loss=trace.loss,
        w=to_numpy(trace.final),
        lr=lr,
        p=int(p),
        diverged_at=trace.diverged_at,
        dtype=trace.dtype,
        W_e=trace.observed,
        depth=depth,
        weight_decay=weight_decay,
    )
