"""No regularizer reproduces depth: loop integrals of the end-to-end field (Chapter 5, ``ch-non-regularizer``).

Gradient descent with small steps on a balanced depth-N network moves its end-to-end matrix,
approximately, by :math:`W \\leftarrow W - \\eta F(W)` with the *update field* (the discretization of the
rule that arXiv:1802.06509, Theorem 1, proves for gradient flow)

.. math::

    F(W) = \\lambda N\\, W + \\sum_{j=1}^{N} [W W^\\top]^{\\frac{j-1}{N}}\\,
           \\nabla L^1(W)\\, [W^\\top W]^{\\frac{N-j}{N}} .

Gradient descent on ``L + R`` for any regularizer ``R`` would have
:math:`F = \\nabla(L + R)`, a gradient field, whose integral around every
closed curve is zero. The paper (arXiv:1802.06509, its no-regularizer result; also the authors'
blog) says that the end-to-end update is not the gradient of any function, so that no ``R`` exists,
unless :math:`\\nabla L^1(0) = 0`. Chapter 5 states the result in the form it proves, with its own
proof: for N >= 3, :math:`\\nabla L^1(0) \\neq 0` and at least two weights, the integral around
small half-disks at the origin is not zero. This module holds the
pieces of that argument: planes and closed curves in them, a line integral
accurate to many digits, the field, its closed-form integral and curl, and
gradient descent on a penalized linear model for the chapter's experiment.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from .dynamics import end_to_end_direction, single_output_direction
from .linear import _lp_step_functions, _problem_tensors, _start_vector
from .losses import check_problem
from .training import GDHistory, check_run, to_numpy, train_loop
from .validation import all_finite, check_int, check_real, finite_array, float_array

__all__ = [
    "Arc",
    "Loop",
    "NormPowerPenalty",
    "Plane",
    "Segment",
    "circle",
    "constant_gradient_curl",
    "depth_two_potential",
    "end_to_end_field",
    "gradient_plane",
    "half_disk",
    "half_disk_integral",
    "loop_integral",
    "penalized_gradient_descent",
    "plane_curl",
]

#: A vector field on weights: a point (an array) to an array of the same shape.
Field = Callable[[np.ndarray], np.ndarray]


def _pair(name: str, value: Any) -> tuple[float, float]:
    arr = np.asarray(float_array(value, name=name), dtype=np.float64)
    if arr.shape != (2,) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be two finite plane coordinates (s, q), got {value!r}")
    return float(arr[0]), float(arr[1])


# ---------------------------------------------------------------------------
# A plane through the origin, and closed curves in it
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plane:
    """The plane :math:`\\{s\\,u + q\\,v\\}` through the origin of weight space.

    ``u`` and ``v`` are orthonormal arrays of one shape: vectors (d,) for a
    single output, matrices (k, d) for the general case; inner products are
    entry-wise, :math:`\\langle A, B\\rangle = \\sum A \\odot B`. Defined in
    Chapter 5.
    """

    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        u, v = finite_array("u", self.u), finite_array("v", self.v)
        if u.shape != v.shape or u.size < 2:
            raise ValueError(f"u and v must have one shape with at least 2 entries, got {u.shape} and {v.shape}")
        gram = np.array([[np.sum(u * u), np.sum(u * v)], [np.sum(u * v), np.sum(v * v)]])
        if not np.allclose(gram, np.eye(2), atol=1e-10):
            raise ValueError(f"u and v must be orthonormal, their Gram matrix is {gram.round(12).tolist()}")
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)

    def point(self, s: float, q: float) -> np.ndarray:
        """The weights :math:`s\\,u + q\\,v`."""
        return s * self.u + q * self.v

    def coordinates(self, F: np.ndarray) -> tuple[float, float]:
        """The components :math:`(\\langle F, u\\rangle, \\langle F, v\\rangle)` of an array in the plane."""
        F = np.asarray(F, dtype=np.float64)
        if F.shape != self.u.shape:
            raise ValueError(f"the field must return arrays of the plane's shape {self.u.shape}, got {F.shape}")
        return float((F * self.u).sum()), float((F * self.v).sum())


def gradient_plane(c: np.ndarray, direction: np.ndarray) -> Plane:
    """The plane spanned by a gradient ``c`` and a second ``direction``.

    :math:`u = c/\\|c\\|` and ``v`` = the part of ``direction`` orthogonal to
    ``u``, normalized (one Gram–Schmidt step), so that the plane's first axis
    points along the gradient, as in Chapter 5's proof of the no-regularizer
    theorem of arXiv:1802.06509. Defined in Chapter 5 (``ch-non-regularizer``).

    Parameters
    ----------
    c : ndarray
        Non-zero, e.g. :math:`\\nabla L(0)`; any shape (vector or matrix).
    direction : ndarray
        Same shape as ``c``, not parallel to it.
    """
    c = finite_array("c", c)
    direction = finite_array("direction", direction)
    if direction.shape != c.shape:
        raise ValueError(f"direction must have the shape of c {c.shape}, got {direction.shape}")
    norm = float(np.linalg.norm(c))
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError("c must be finite and non-zero (it fixes the plane's first axis)")
    u = c / norm
    rest = direction - np.sum(direction * u) * u
    rest_norm = float(np.linalg.norm(rest))
    if not rest_norm > 1e-12 * max(float(np.linalg.norm(direction)), 1.0):
        raise ValueError("direction must not be parallel to c")
    return Plane(u, rest / rest_norm)


@dataclass(frozen=True)
class Segment:
    """The straight piece from ``start`` to ``end`` (plane coordinates), t ∈ [0, 1]. Defined in Chapter 5."""

    start: tuple[float, float]
    end: tuple[float, float]

    def __post_init__(self) -> None:
        start, end = _pair("start", self.start), _pair("end", self.end)
        if start == end:
            raise ValueError(f"start and end must be distinct points (a segment of length 0 is no path), got {start}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (n, 2) and velocities d(s, q)/dt (n, 2) at the parameters ``t``."""
        a, b = np.asarray(self.start), np.asarray(self.end)
        t = np.asarray(t, dtype=np.float64)[:, None]
        return a + t * (b - a), np.broadcast_to(b - a, (t.shape[0], 2))


@dataclass(frozen=True)
class Arc:
    """The circular piece :math:`\\text{center} + r(\\cos\\theta, \\sin\\theta)`, θ from ``theta0`` to ``theta1``.

    Defined in Chapter 5 (``ch-non-regularizer``).
    """

    center: tuple[float, float]
    radius: float
    theta0: float
    theta1: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _pair("center", self.center))
        object.__setattr__(self, "radius", check_real("radius", self.radius, above=0))
        theta0, theta1 = check_real("theta0", self.theta0), check_real("theta1", self.theta1)
        if theta0 == theta1:
            raise ValueError(f"theta0 and theta1 must differ (an arc of angle 0 is a point), got {theta0}")
        object.__setattr__(self, "theta0", theta0)
        object.__setattr__(self, "theta1", theta1)

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (n, 2) and velocities d(s, q)/dt (n, 2) at the parameters ``t`` ∈ [0, 1]."""
        span = self.theta1 - self.theta0
        theta = self.theta0 + span * np.asarray(t, dtype=np.float64)
        unit = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        turn = np.stack([-np.sin(theta), np.cos(theta)], axis=1)
        return np.asarray(self.center) + self.radius * unit, self.radius * span * turn


Piece = Segment | Arc


@dataclass(frozen=True)
class Loop:
    """A closed curve in a :class:`Plane`: smooth pieces joined end to start.

    The field may fail to be smooth where pieces meet (the origin, for the
    end-to-end field), never inside a piece; that is what lets
    :func:`loop_integral` use Gauss–Legendre quadrature piece by piece.
    Defined in Chapter 5 (``ch-non-regularizer``).

    Raises
    ------
    ValueError
        ``plane`` is not a :class:`Plane`, ``pieces`` is not a non-empty tuple
        of :class:`Segment` and :class:`Arc`, or they do not form a closed curve.
    """

    plane: Plane
    pieces: tuple[Piece, ...]

    def __post_init__(self) -> None:
        _check_plane(self.plane)
        if isinstance(self.pieces, (Segment, Arc)):
            raise ValueError(f"pieces must be a tuple of Segment/Arc, got a single {type(self.pieces).__name__} "
                             "(pass (piece,))")
        if not isinstance(self.pieces, (tuple, list)) or not all(isinstance(p, (Segment, Arc)) for p in self.pieces):
            raise ValueError(f"pieces must be a tuple of Segment/Arc, got {self.pieces!r:.80}")
        if not self.pieces:
            raise ValueError("pieces must hold at least one Segment or Arc")
        ends = [piece.at(np.array([0.0, 1.0]))[0] for piece in self.pieces]
        size = max(float(np.abs(e).max()) for e in ends) + 1.0
        for i, (this, nxt) in enumerate(zip(ends, ends[1:] + ends[:1])):
            if np.abs(this[1] - nxt[0]).max() > 1e-12 * size:
                raise ValueError(f"pieces must form a closed curve: piece {i} ends at {this[1]}, the next starts at {nxt[0]}")

    def coordinates(self, num: int = 200) -> np.ndarray:
        """``num`` points (s, q) per piece along the loop, shape (num · pieces, 2), for plotting."""
        t = np.linspace(0.0, 1.0, num)
        return np.concatenate([piece.at(t)[0] for piece in self.pieces])


def _check_plane(plane: Any) -> Plane:
    """``plane`` if it is a :class:`Plane`, else a ``ValueError`` naming ``plane``."""
    if not isinstance(plane, Plane):
        raise ValueError(f"plane must be a Plane (see gradient_plane), got {type(plane).__name__}")
    return plane


def half_disk(plane: Plane, radius: float, center: tuple[float, float] = (0.0, 0.0)) -> Loop:
    """Boundary of the upper half-disk of radius r, counter-clockwise (the curve of Chapter 5's
    proof of the no-regularizer theorem of arXiv:1802.06509).

    The diameter along the plane's first axis from (−r, 0) to (r, 0), split
    at the centre, then the semicircle back through (0, r). With
    :func:`gradient_plane` the diameter runs along the gradient. Defined in
    Chapter 5.

    Raises
    ------
    ValueError
        ``plane`` is not a :class:`Plane`, ``radius`` is not a number > 0, or ``center`` not a pair of numbers.
    """
    _check_plane(plane)
    r = check_real("radius", radius, above=0)
    cs, cq = _pair("center", center)
    return Loop(plane, (Segment((cs - r, cq), (cs, cq)), Segment((cs, cq), (cs + r, cq)), Arc((cs, cq), r, 0.0, np.pi)))


def circle(plane: Plane, radius: float, center: tuple[float, float] = (0.0, 0.0)) -> Loop:
    """The circle of radius r around ``center``, counter-clockwise. Defined in Chapter 5 (``ch-non-regularizer``).

    Centred at the origin it cannot detect the end-to-end field's curl
    (the reason Chapter 5's proof of the no-regularizer theorem uses half-disks): there the
    field's extra term is radial and the integral vanishes for every N.

    Raises
    ------
    ValueError
        ``plane`` is not a :class:`Plane`, ``radius`` is not a number > 0, or ``center`` not a pair of numbers.
    """
    _check_plane(plane)
    r = check_real("radius", radius, above=0)
    return Loop(plane, (Arc(_pair("center", center), r, 0.0, 2.0 * np.pi),))


@lru_cache(maxsize=16)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1] (cached: computing them costs an eigenproblem)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    t, w = (nodes + 1.0) / 2.0, weights / 2.0
    t.flags.writeable = w.flags.writeable = False
    return t, w


def _check_field(field: Any) -> None:
    if not callable(field):
        raise ValueError(f"field must be a callable taking a point w and returning an array of its shape "
                         f"(e.g. op.end_to_end_field(c, 3)), got {type(field).__name__}")


def loop_integral(field: Field, loop: Loop, n_points: int = 200) -> float:
    """Line integral :math:`\\oint_\\Gamma F\\cdot dw` of a field around a closed curve.

    With each piece parametrized as :math:`w(t) = s(t)\\,u + q(t)\\,v`, t ∈ [0, 1],

    .. math::

        \\oint_\\Gamma F \\cdot dw = \\sum_{\\text{pieces}} \\int_0^1
        \\bigl(\\langle F(w(t)), u\\rangle\\, s'(t) + \\langle F(w(t)), v\\rangle\\, q'(t)\\bigr)\\, dt,

    each integral by Gauss–Legendre quadrature with ``n_points`` nodes. A
    gradient field gives 0 around every closed curve, the
    test behind the no-regularizer theorem of arXiv:1802.06509. Defined in Chapter 5 (ch-non-regularizer).

    Parameters
    ----------
    field : callable
        ``field(w)`` for one point ``w`` of the plane's shape, returning an
        array of the same shape (e.g. :func:`end_to_end_field`).
    loop : Loop
        E.g. :func:`half_disk` or :func:`circle`.
    n_points : int
        Nodes per piece, >= 1. The default gives the closed form of the
        half-disk to about 10 digits.

    Returns
    -------
    float
    """
    n_points = check_int("n_points", n_points, 1)
    _check_field(field)
    if not isinstance(loop, Loop):
        raise ValueError(f"loop must be a Loop (see half_disk and circle), got {type(loop).__name__}")
    t, weights = _gauss_legendre(int(n_points))
    total = 0.0
    for piece in loop.pieces:
        points, velocity = piece.at(t)
        for (s, q), (ds, dq), wt in zip(points, velocity, weights):
            F_u, F_v = loop.plane.coordinates(field(loop.plane.point(s, q)))
            total += wt * (F_u * ds + F_v * dq)
    return float(total)


# ---------------------------------------------------------------------------
# The end-to-end field and what is known about it in closed form
# ---------------------------------------------------------------------------


def end_to_end_field(gradient: np.ndarray | Field, depth: int, weight_decay: float = 0.0) -> Field:
    """The update field of a balanced depth-N network, as a function of the end-to-end weights.

    .. math::

        F(W) = \\lambda N\\, W + \\sum_{j=1}^{N} [W W^\\top]^{\\frac{j-1}{N}}\\,
        G(W)\\, [W^\\top W]^{\\frac{N-j}{N}},

    so that one step of the end-to-end rule is :math:`W - \\eta F(W)`
    (arXiv:1802.06509: Theorem 1 and the no-regularizer theorem). For a vector ``w`` (one output) it is the
    closed form :math:`\\lambda N w + \\|w\\|^{2-2/N}(G + (N-1)\\,\\mathrm{Pr}_w\\{G\\})`
    of :func:`~overparam.dynamics.single_output_direction`; for a (k, d)
    matrix, :func:`~overparam.dynamics.end_to_end_direction`. Defined in
    Chapter 5.

    Parameters
    ----------
    gradient : ndarray or callable
        A constant array ``c`` (the gradient of the linear loss
        :math:`\\langle c, W\\rangle`, the case of the closed form) or a function
        ``W -> ∇L(W)``.
    depth : int
        N >= 1.
    weight_decay : float
        λ >= 0; adds :math:`\\lambda N W = \\nabla(\\lambda N \\|W\\|^2/2)`, a gradient field.

    Returns
    -------
    callable
        ``W -> F(W)``.
    """
    depth = check_int("depth", depth, 1)
    decay = check_real("weight_decay", weight_decay, at_least=0) * depth
    constant = None
    if not callable(gradient):
        constant = finite_array("gradient", gradient)
        if constant.ndim not in (1, 2):
            raise ValueError(f"gradient must be a finite vector or matrix, or a callable, got shape {constant.shape}")

    def field(W: np.ndarray) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64)
        if constant is not None:
            if W.shape != constant.shape:
                raise ValueError(f"this field takes points of the shape of its gradient {constant.shape}, "
                                 f"got a point of shape {W.shape}")
            G = constant
        else:
            G = np.asarray(gradient(W), dtype=np.float64)
            if G.shape != W.shape:
                raise ValueError(f"gradient(W) returned shape {G.shape}, expected the point's shape {W.shape}")
        direction = single_output_direction if W.ndim == 1 else end_to_end_direction
        return decay * W + direction(W, G, depth)

    return field


def half_disk_integral(c_norm: float, radius: float, depth: int) -> float:
    """Closed form of the end-to-end field's integral around the upper half-disk.

    For a constant gradient c (a linear loss) and the half-disk of
    :func:`half_disk` in a plane whose first axis is :math:`c/\\|c\\|`:

    .. math::

        \\oint F\\cdot dw = 2\\,\\|c\\|\\, r^{\\frac{3N-2}{N}}\\, \\frac{(N-1)(N-2)}{3N-2},

    zero for N = 1, 2 and positive for N >= 3 (the computation behind Chapter 5's no-regularizer theorem).
    The diameter contributes :math:`2N\\|c\\| r^{a+1}/(a+1)` and the
    semicircle :math:`-2\\|c\\| r^{a+1}`, with :math:`a = 2 - 2/N`. Defined in
    Chapter 5.
    """
    c_norm = check_real("c_norm", c_norm, at_least=0)
    r = check_real("radius", radius, above=0)
    N = check_int("depth", depth, 1)
    return 2.0 * c_norm * r ** ((3 * N - 2) / N) * ((N - 1) * (N - 2)) / (3 * N - 2)


def constant_gradient_curl(c_norm: float, depth: int, s: Any, q: Any) -> Any:
    """Curl of the constant-gradient end-to-end field in its gradient plane.

    With :math:`F(w) = \\|w\\|^a (c + b\\langle c, \\hat w\\rangle \\hat w)`,
    :math:`a = 2 - 2/N`, :math:`b = N - 1`, and coordinates (s, q) along
    :math:`u = c/\\|c\\|` and an orthogonal v,

    .. math::

        \\partial_s F_q - \\partial_q F_s = (b - a)\\, \\|c\\|\\, \\|w\\|^{a-2}\\, q
        = \\frac{(N-1)(N-2)}{N}\\, \\|c\\|\\, \\|w\\|^{-2/N}\\, q

    (the opposite orientation,
    :math:`\\partial_q F_u - \\partial_u F_q = (a-b)\\ldots`, flips the sign). Zero for N = 1, 2;
    by Green's theorem its integral over the half-disk is
    :func:`half_disk_integral`. Taken as 0 at the origin. Defined in Chapter 5 (``ch-non-regularizer``).

    Parameters
    ----------
    c_norm : float
        :math:`\\|c\\| \\ge 0`.
    depth : int
        N >= 1.
    s, q : float or ndarray
        Plane coordinates (broadcast together).
    """
    c_norm = check_real("c_norm", c_norm, at_least=0)
    N = check_int("depth", depth, 1)
    s, q = finite_array("s", s), finite_array("q", q)
    try:
        np.broadcast_shapes(s.shape, q.shape)
    except ValueError:
        raise ValueError(f"s and q must broadcast together (one point per pair), got shapes {s.shape} and "
                         f"{q.shape}") from None
    rho2 = s * s + q * q
    safe = np.where(rho2 > 0, rho2, 1.0)
    return np.where(rho2 > 0, (N - 1) * (N - 2) / N * c_norm * safe ** (-1.0 / N) * q, 0.0)


def plane_curl(field: Field, plane: Plane, s: float, q: float, h: float = 1e-5) -> float:
    """Curl :math:`\\partial_s F_q - \\partial_q F_s` of a field in a plane, by central differences.

    :math:`F_s = \\langle F, u\\rangle`, :math:`F_q = \\langle F, v\\rangle`;
    the error is O(h²) where the field is smooth. A gradient field has zero
    curl in every plane. Defined in Chapter 5 (``ch-non-regularizer``).
    """
    h = check_real("h", h, above=0)
    s, q = check_real("s", s), check_real("q", q)
    _check_field(field)
    _check_plane(plane)
    F_q = lambda a, b: plane.coordinates(field(plane.point(a, b)))[1]  # noqa: E731
    F_s = lambda a, b: plane.coordinates(field(plane.point(a, b)))[0]  # noqa: E731
    return float((F_q(s + h, q) - F_q(s - h, q) - F_s(s, q + h) + F_s(s, q - h)) / (2.0 * h))


def depth_two_potential(w: Any, c: Any) -> Any:
    """The potential :math:`\\Phi(w) = \\|w\\|\\,\\langle c, w\\rangle` of the depth-2 field.

    For N = 2 and the linear loss :math:`\\langle c, w\\rangle`,
    :math:`\\nabla\\Phi(w) = \\|w\\|\\, c + \\frac{\\langle c, w\\rangle}{\\|w\\|}\\, w`
    is exactly the end-to-end field: depth 2 *is* gradient descent on a
    modified objective here, which is why Chapter 5's no-regularizer theorem (its statement
    and proof of the result of arXiv:1802.06509) needs N >= 3. Plain arithmetic: works on numpy arrays and torch
    tensors (integer inputs are computed in float64). Defined in Chapter 5 (``ch-non-regularizer``).
    """
    w, c = float_array(w, name="w"), float_array(c, name="c")
    if tuple(w.shape) != tuple(c.shape):
        raise ValueError(f"w and c must have the same shape, got {tuple(w.shape)} and {tuple(c.shape)}")
    for name, a in (("w", w), ("c", c)):
        if not all_finite(a):
            raise ValueError(f"{name} must contain only finite values")
    return (w * w).sum() ** 0.5 * (c * w).sum()


# ---------------------------------------------------------------------------
# Gradient descent on the linear model plus a penalty (the chapter's experiment)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NormPowerPenalty:
    """The penalty :math:`R(w) = \\frac{\\mu}{q}\\,\\|w\\|^q`, gradient :math:`\\mu\\,\\|w\\|^{q-2}\\, w`.

    ``power`` q > 1 (so that the gradient is continuous at 0; a
    ``ValueError`` otherwise); q = 2 is the ℓ2 penalty (ridge, weight decay
    on the linear model). q = (3N − 2)/N makes the penalty's gradient grow like
    :math:`\\|w\\|^{2-2/N}`, the adaptive rate of the depth-N rule
    (arXiv:1802.06509, Equation 12). ``strength`` μ may be negative (a reward for a
    large norm). Plain arithmetic: the methods work on numpy arrays and torch
    tensors (integer inputs are computed in float64). Defined in Chapter 5 (``ch-non-regularizer``).
    """

    strength: float
    power: float = 2.0

    def __post_init__(self) -> None:
        check_real("strength", self.strength)
        check_real("power", self.power, above=1)

    def value(self, w: Any) -> Any:
        """:math:`R(w) = \\mu\\|w\\|^q / q`."""
        w = float_array(w, name="w")
        return self.strength / self.power * ((w * w).sum() ** (self.power / 2))

    def gradient(self, w: Any) -> Any:
        """:math:`\\nabla R(w) = \\mu\\|w\\|^{q-2} w` (0 at w = 0)."""
        w = float_array(w, name="w")
        sq = (w * w).sum()
        if float(sq) == 0.0:
            return 0.0 * w
        return self.strength * sq ** (self.power / 2 - 1) * w


def penalized_gradient_descent(
    X: np.ndarray,
    y: np.ndarray,
    p: int,
    penalty: NormPowerPenalty,
    lr: float,
    num_iters: int,
    *,
    w0: np.ndarray | None = None,
    record_every: int = 1,
    record: int | Sequence[int] | np.ndarray | None = None,
    on_divergence: Literal["raise", "stop"] = "raise",
    dtype: torch.dtype = torch.float64,
) -> GDHistory:
    """Full-batch gradient descent on the ℓp loss plus a penalty (Chapter 5, ``ch-non-regularizer``).

    .. math::

        w^{(t+1)} = w^{(t)} - \\eta\\, \\bigl(\\nabla L(w^{(t)}) + \\nabla R(w^{(t)})\\bigr),

    i.e. gradient descent on the modified objective :math:`L + R`, the only
    thing a regularizer can do (the no-regularizer theorem of arXiv:1802.06509). The recorded loss is
    :math:`L` alone, the training loss every method is judged by; the history's ``objective`` is
    :math:`L + R`, which the failure rule reads (:attr:`~overparam.training.History.failed_at`). Divergence
    and recording as in :func:`~overparam.linear.gradient_descent`, by the
    shared loop :func:`~overparam.training.train_loop` (loss not finite or
    above ``DIVERGENCE_FACTOR`` × its initial value).

    Parameters
    ----------
    X, y, p
        The ℓp problem: X (m, d), y (m,), even p >= 2.
    penalty : NormPowerPenalty
        R; strength 0 gives plain gradient descent.
    lr : float
        η > 0.
    num_iters : int
        Number of steps, >= 0.
    w0 : ndarray, shape (d,) or (1, d), optional
        Initial weights; zeros by default.
    record_every, record, on_divergence, dtype
        As in :func:`~overparam.linear.gradient_descent`.

    Returns
    -------
    GDHistory
    """
    X, y, w0 = check_problem(X, y, p, w0, w_name="w0")
    if not isinstance(penalty, NormPowerPenalty):
        raise ValueError(f"penalty must be a NormPowerPenalty, got {type(penalty).__name__}")
    lr, num_iters, record_every = check_run(lr, num_iters, record_every, on_divergence)
    Xt, yt = _problem_tensors(X, y, dtype)
    step, loss = _lp_step_functions(Xt, yt, p, lambda w, g: w - lr * (g + penalty.gradient(w)))
    trace = train_loop(step, loss, _start_vector(w0, Xt.shape[1], dtype), num_iters, record_every=record_every,
                       record=record, on_divergence=on_divergence, what=f"gradient descent with the penalty {penalty}",
                       start="w0" if w0 is not None else "the default start w0 = 0", data="X and y",
                       observe=lambda w: torch.as_tensor(penalty.value(w)))
    return GDHistory(steps=trace.steps, loss=trace.loss, w=to_numpy(trace.final), lr=lr, p=int(p),
                     diverged_at=trace.diverged_at, dtype=trace.dtype, objective=trace.loss + trace.observed)
