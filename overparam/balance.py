"""Balancedness: measuring it, and initializations that have it (Chapter 3, ``ch-balancedness``).

Layers ``[W_1, …, W_N]`` are **balanced** when

.. math::

    D_j := W_{j+1}^\\top W_{j+1} - W_j W_j^\\top = 0, \\qquad j = 1, \\dots, N-1

(the balancedness condition of Arora, Cohen & Hazan, arXiv:1802.06509), and
δ-balanced when every :math:`\\|D_j\\|_F \\le \\delta` (Definition 1 of the
follow-up paper, Arora, Cohen, Golowich & Hu, ICLR 2019, arXiv:1810.02281).
Balancedness is what lets the end-to-end matrix follow a rule of its own
(Theorem 1 of the paper); gradient flow conserves it, gradient descent breaks
it only at second order in the learning rate (Chapter 3, ``ch-balancedness``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .deep import _as_factors
from .validation import check_int, check_real, check_sequence, finite_array, is_sequence, rng_from_seed

__all__ = [
    "balanced_factors",
    "balanced_init",
    "gaussian_init",
    "gaussian_std_for_size",
    "imbalance",
    "max_imbalance",
    "random_orthogonal",
    "rotate_hidden",
    "scalar_layers_start",
]

Seed = int | np.random.Generator


def imbalance(factors: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Imbalance matrices :math:`D_j = W_{j+1}^\\top W_{j+1} - W_j W_j^\\top`, j = 1..N−1.

    The layers are balanced in the paper's sense when every ``D_j`` is 0;
    defined in Chapter 3. ``D_j`` has shape (n_j, n_j); the list is empty for
    N = 1.
    """
    Ws = _as_factors(factors)
    return [Wn.T @ Wn - W @ W.T for W, Wn in zip(Ws[:-1], Ws[1:])]


def max_imbalance(factors: Sequence[np.ndarray]) -> float:
    """Smallest δ for which the layers are δ-balanced: :math:`\\max_j \\|D_j\\|_F`.

    Definition 1 of Arora, Cohen, Golowich & Hu (ICLR 2019, arXiv:1810.02281);
    0.0 for N = 1. Defined in Chapter 3 (``ch-balancedness``).
    """
    return max((float(np.linalg.norm(D)) for D in imbalance(factors)), default=0.0)


def random_orthogonal(n: int, seed: Seed) -> np.ndarray:
    """A Haar-random orthogonal (n, n) matrix: QR of a Gaussian matrix, signs fixed by diag(R).

    Defined in Chapter 3 (``ch-balancedness``).
    """
    n = check_int("n", n, 1)
    Q, R = np.linalg.qr(rng_from_seed(seed).standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def rotate_hidden(factors: Sequence[np.ndarray], seed: Seed) -> list[np.ndarray]:
    """Change the basis of every hidden layer by a random orthogonal matrix.

    .. math::

        W_j \\mapsto Q_j W_j Q_{j-1}^\\top, \\qquad Q_0 = I_d,\\; Q_N = I_k,

    with Haar-random :math:`Q_1, …, Q_{N-1}`. The end-to-end matrix is
    unchanged and :math:`D_j \\mapsto Q_j D_j Q_j^\\top`, so balancedness is kept;
    gradient descent is equivariant under this change, so wide and narrow
    networks started from such layers follow the same end-to-end trajectory.
    Defined in Chapter 3 (``ch-balancedness``).
    """
    Ws = _as_factors(factors)
    rng = rng_from_seed(seed)
    Qs = [np.eye(Ws[0].shape[1])] + [random_orthogonal(W.shape[0], rng) for W in Ws[:-1]] + [np.eye(Ws[-1].shape[0])]
    return [Qs[j + 1] @ W @ Qs[j].T for j, W in enumerate(Ws)]


def _check_widths(widths: Sequence[int] | None, depth: int, k: int, d: int) -> list[int]:
    m = min(k, d)
    if widths is None:
        return [m] * (depth - 1)
    if not is_sequence(widths):
        raise ValueError(f"widths must be a sequence of depth - 1 = {depth - 1} hidden widths, got {widths!r}")
    widths = list(widths)
    if len(widths) != depth - 1:
        raise ValueError(f"widths must list depth - 1 = {depth - 1} hidden widths, got {len(widths)}")
    return [check_int(f"widths[{i}]", n, m, expected=f"an integer >= min(k, d) = {m} (no rank bottleneck)")
            for i, n in enumerate(widths)]


def balanced_factors(
    W_e: np.ndarray,
    depth: int,
    widths: Sequence[int] | None = None,
    seed: Seed | None = None,
) -> list[np.ndarray]:
    """Exactly balanced layers whose product is ``W_e`` (Procedure 1 of arXiv:1810.02281).

    With the thin SVD :math:`W_e = U \\Sigma V^\\top` (r = min(k, d) singular values),

    .. math::

        W_N \\simeq U \\Sigma^{1/N}, \\qquad W_j \\simeq \\Sigma^{1/N}\\;(1 < j < N),
        \\qquad W_1 \\simeq \\Sigma^{1/N} V^\\top,

    where ≃ pads with zeros to the layer's shape. Every layer then carries the
    singular values :math:`\\sigma_r^{1/N}` and :math:`D_j = 0` up to round-off.
    Defined in Chapter 3 (``ch-balancedness``).

    Parameters
    ----------
    W_e : ndarray, shape (k, d)
    depth : int
        N >= 1 (N = 1 returns ``[W_e]``).
    widths : sequence of int, optional
        Hidden widths n_1..n_{N−1}, each >= min(k, d); default min(k, d).
    seed : int or numpy Generator, optional
        If given, mix the hidden spaces with :func:`rotate_hidden` so the
        layers are no longer zero-padded (still exactly balanced).

    Returns
    -------
    list of ndarray
        ``[W_1, …, W_N]``.
    """
    W_e = finite_array("W_e", W_e)
    if W_e.ndim != 2:
        raise ValueError(f"W_e must be a 2-D (k, d) matrix, got shape {W_e.shape}")
    depth = check_int("depth", depth, 1)
    k, d = W_e.shape
    dims = [d] + _check_widths(widths, depth, k, d) + [k]
    if depth == 1:
        return [W_e.copy()]
    U, s, Vt = np.linalg.svd(W_e, full_matrices=False)
    root = s ** (1.0 / depth)
    blocks = [root[:, None] * Vt] + [np.diag(root)] * (depth - 2) + [U * root]
    factors = []
    for j, block in enumerate(blocks):
        W = np.zeros((dims[j + 1], dims[j]))
        W[: block.shape[0], : block.shape[1]] = block
        factors.append(W)
    return factors if seed is None else rotate_hidden(factors, seed)


def balanced_init(
    d: int,
    k: int,
    depth: int,
    scale: float,
    seed: Seed,
    widths: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Balanced near-zero initialization: Procedure 1 on a rescaled Gaussian matrix.

    Draw :math:`A \\in \\mathbb{R}^{k\\times d}` with i.i.d. N(0, 1) entries,
    rescale it to :math:`A \\cdot \\mathrm{scale}^N / \\sigma_{\\max}(A)` and
    split it with :func:`balanced_factors` (Procedure 1 of arXiv:1810.02281).
    **Rule:** every layer then has spectral norm ``scale``, and
    :math:`\\|W_e\\|_2 = \\mathrm{scale}^N`. For a single output (k = 1) every
    layer has Frobenius norm ``scale`` too: :math:`\\|w_1\\| = |\\omega_j| =`
    ``scale``, the same start as the sweep engine's ``init_scale``
    (:class:`overparam.sweep.RunConfig`). Defined in Chapter 3 (``ch-balancedness``).

    Parameters
    ----------
    d, k : int
        Inputs and outputs.
    depth : int
        N >= 1.
    scale : float
        Norm of every layer, > 0.
    seed : int or numpy Generator
    widths : sequence of int, optional
        Hidden widths (default min(k, d), i.e. width 1 for a scalar output).

    Returns
    -------
    list of ndarray
    """
    d, k, depth = check_int("d", d, 1), check_int("k", k, 1), check_int("depth", depth, 1)
    scale = check_real("scale", scale, above=0)
    try:
        norm_e = scale**depth
    except OverflowError:
        norm_e = math.inf
    if not 0 < norm_e < math.inf:
        raise ValueError(f"scale must keep scale**depth a positive finite float, got scale={scale:g} and depth={depth}")
    A = rng_from_seed(seed).standard_normal((k, d))
    A *= norm_e / np.linalg.norm(A, 2)
    return balanced_factors(A, depth, widths)


def gaussian_init(dims: Sequence[int], std: float, seed: Seed) -> list[np.ndarray]:
    """Layer-wise i.i.d. Gaussian initialization :math:`(W_j)_{ab} \\sim \\mathcal{N}(0, \\mathrm{std}^2)`.

    Only approximately balanced: :math:`D_j` has entries of order
    :math:`\\mathrm{std}^2` (δ-balanced with δ ∝ std², as arXiv:1810.02281
    notes for small std).
    Defined in Chapter 3 (``ch-balancedness``).

    Parameters
    ----------
    dims : sequence of int
        ``(n_0 = d, n_1, …, n_{N−1}, n_N = k)``: inputs first, outputs last;
        N = ``len(dims) - 1`` >= 1.
    std : float
        Standard deviation, >= 0.
    seed : int or numpy Generator

    Returns
    -------
    list of ndarray
        ``[W_1, …, W_N]``, ``W_j`` of shape (dims[j], dims[j−1]).
    """
    dims = check_sequence("dims", dims, "layer sizes (d, ..., k)")
    dims = [check_int(f"dims[{j}]", n, 1) for j, n in enumerate(dims)]
    if len(dims) < 2:
        raise ValueError(f"dims must list at least two integers >= 1 (d, ..., k), got {dims!r}")
    std = check_real("std", std, at_least=0)
    rng = rng_from_seed(seed)
    return [std * rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(dims[:-1], dims[1:])]


def gaussian_std_for_size(dims: Sequence[int], size: float) -> float:
    """The std at which :func:`gaussian_init` gives an end-to-end matrix of root-mean-square norm ``size``.

    For independent layers with i.i.d. :math:`\\mathcal N(0, s^2)` entries,
    :math:`\\mathbb E\\,\\|W_N \\cdots W_1\\|_F^2 = s^{2N} \\prod_j n_j` (the
    product over all of ``dims``), so :math:`s = (\\text{size} / \\sqrt{\\prod_j n_j})^{1/N}`.
    Chapter 2 uses it to compare widths from starts of equal expected size.

    Parameters
    ----------
    dims : sequence of int
        As for :func:`gaussian_init`: ``(d, n_1, ..., n_{N-1}, k)``.
    size : float
        Target root-mean-square :math:`\\|W_e\\|_F`, > 0.
    """
    dims = check_sequence("dims", dims, "layer sizes (d, ..., k)")
    dims = [check_int(f"dims[{j}]", n, 1) for j, n in enumerate(dims)]
    if len(dims) < 2:
        raise ValueError(f"dims must list at least two integers >= 1 (d, ..., k), got {dims!r}")
    size = check_real("size", size, above=0)
    rms_at_unit_std = np.sqrt(dims[0]) * float(np.prod(np.sqrt(dims[1:])))
    return float((size / rms_at_unit_std) ** (1 / (len(dims) - 1)))


def scalar_layers_start(direction: Any, depth: int, scale: float) -> list[np.ndarray]:
    r"""The balanced start of a single-output network with width-1 hidden layers (Chapters 2-4).

    .. math::

        W_1 = s\,u^\top, \qquad \omega_2 = \dots = \omega_N = s \qquad (\|u\| = 1),

    exactly balanced (:math:`\|W_1\|^2 = \omega_j^2 = s^2`, Chapter 3), with
    :math:`W_e = s^N u^\top`. It is the start of every width-1 run of the
    sweep engine (``RunConfig.init_scale``) and of the two-example toy.

    Parameters
    ----------
    direction : array_like, shape (d,)
        The unit vector u (its norm must be 1 within 1e-12; it is not
        normalized again, so that a start is the same to the last bit
        whoever builds it).
    depth : int
        N >= 1.
    scale : float
        s >= 0 (0 starts at the saddle at the origin).

    Returns
    -------
    list of ndarray
        ``[W_1]`` of shape (1, d), then N - 1 arrays of shape (1, 1).
    """
    u = finite_array("direction", direction)
    depth, scale = check_int("depth", depth, 1), check_real("scale", scale, at_least=0)
    norm = float(np.linalg.norm(u))
    if u.ndim != 1 or abs(norm - 1) > 1e-12:
        raise ValueError(f"direction must be a unit vector, got shape {u.shape} and norm {norm:g}")
    return [scale * u[None, :]] + [np.full((1, 1), scale) for _ in range(depth - 1)]
