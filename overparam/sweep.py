"""Many training runs in lockstep on one ℓp regression problem (Chapters 2 and 4).

The paper's ℓp regression experiments on the Ethanol data (arXiv:1802.06509)
train the same scalar-output problem many times: several depths, the ℓ2 and ℓ4
losses, and the baselines AdaGrad and AdaDelta, for up to 10⁶ iterations
(full batch here: our reading of the paper's "gradient descent", Chapter 2).
The book (Chapters 2 and 4) adds a learning-rate grid per depth and the
baselines momentum and Adam. Run one at a time, that is many
millions of small Python-level steps; here the ``B`` runs of a sweep are rows
of one batched tensor program. Per iteration,
with the end-to-end vectors of all runs stacked as the rows of ``W_e`` (B, d),

.. math::

    R = W_e X^\\top - \\mathbf{1} y^\\top \\in \\mathbb{R}^{B\\times m}, \\qquad
    G = \\tfrac{1}{m}\\, R^{\\odot(p-1)} X \\in \\mathbb{R}^{B\\times d},

(two matrix products for all runs; for p = 2 the precomputed moments
``XᵀX/m`` and ``Xᵀy/m`` replace them), then each run's parameters take one
step from its row of ``G`` by elementwise tensor operations: there is no
Python loop over runs inside the iteration loop.

What a run is: :class:`RunConfig` (method, depth, lr, p, seed, ...). What a
sweep returns: :class:`SweepResult` (loss records, divergence steps, final
weights, provenance; ``save``/``load`` to ``.npz`` without pickle). How to
read it: :func:`select_runs` (three learning-rate rules) and
:meth:`SweepResult.iterations_to`.

An iteration is two matrix products plus about a dozen small tensor
operations per block of runs, in plain eager PyTorch. Divergence checks and
loss records are batched per ``chunk`` iterations, so the loop never waits on
a Python-side test. On a CUDA device a full chunk is captured once as a CUDA
graph and replayed (``run_sweep(..., cuda_graph=...)``), since there the
kernel launches, not the arithmetic, set the pace; ``fuse=True`` further
compiles each iteration with ``torch.compile``, so that a block's elementwise
operations run as a few fused kernels. Measurements of the engine's speed and
the design choices they led to are in ``docs/design-notes.md``
(``scripts/bench_sweep.py`` re-measures them).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from itertools import product
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from .balance import balanced_factors, gaussian_init, rotate_hidden, scalar_layers_start
from .files import atomic_write, invalid_results, json_text, read_provenance, read_results
from .files import provenance as make_provenance
from .training import (NEVER, COLLAPSE_FACTOR, GDHistory, as_step_array, check_record, collapse_step, divergence_limit,
                       is_divergent, outcome_phrase, step_or_none)
from .losses import check_exponent, regression_pair
from .optimum import OPTIMUM_ATOL, OPTIMUM_RTOL, check_optimum
from .validation import check_callable, check_int, check_real

__all__ = [
    "METHODS",
    "RunConfig",
    "SweepResult",
    "SweepComparison",
    "check_sweep_result",
    "compare_sweeps",
    "run_sweep",
    "start_layers",
    "product_runs",
    "log_steps",
    "quarter_decades",
    "select_runs",
    "LARGEST_STABLE",
    "BEST_FINAL",
    "FASTEST_TO_TARGET",
]

#: Hyper-parameters of each method and their defaults (torch.optim's defaults, except momentum's 0.9: torch's SGD
#: defaults to 0, no momentum at all).
_HYPER_DEFAULTS: dict[str, dict[str, float]] = {
    "gd": {},
    "e2e": {},
    "momentum": {"momentum": 0.9},
    "adagrad": {"eps": 1e-10},
    "adadelta": {"rho": 0.9, "eps": 1e-6},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}
#: The methods a run may use.
METHODS: tuple[str, ...] = tuple(_HYPER_DEFAULTS)
#: How a wide network's layers start (:attr:`RunConfig.init`).
INITS: tuple[str, ...] = ("balanced", "gaussian")
_HYPER_NAMES = ("momentum", "beta1", "beta2", "rho", "eps")

#: Learning-rate rules of :func:`select_runs`.
LARGEST_STABLE = "largest_stable"
BEST_FINAL = "best_final"
FASTEST_TO_TARGET = "fastest_to_target"


# ---------------------------------------------------------------------------
# Run configurations
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """One training run of a sweep (Chapters 2 and 4).

    Parameters
    ----------
    method : str
        ``"gd"``: gradient descent on a depth-``depth`` linear network
        :math:`W_e = W_N \\cdots W_1` (the paper's model), hidden width
        ``width``; depth 1 is plain GD on the linear model. ``"e2e"``: the
        single-output end-to-end update rule (the paper's Equation 12) for
        depth ``depth``, run on one layer. ``"momentum"`` (heavy ball),
        ``"adagrad"``, ``"adadelta"``, ``"adam"``: baselines (the paper compares
        with AdaGrad and AdaDelta; the book adds momentum and Adam), with
        torch.optim's update formulas, applied to
        the parameters of the same network (depth 1: the linear model).
    lr : float
        Learning rate η > 0 (AdaDelta: the step multiplier, 1.0 in Zeiler 2012).
    depth : int
        N >= 1.
    p : int
        Loss exponent (even, >= 2) of :math:`L = \\frac1p \\mathrm{mean}(Xw - y)^p`.
    seed : int
        Seeds the direction :math:`u` of the initial end-to-end vector (the
        same ``u`` for every depth, unless ``init_direction`` fixes it) and,
        for wide layers, their rotations.
    init_scale : float
        s >= 0 of the balanced near-zero initialization (Chapter 2, ``ch-deep-linear``):
        :math:`\\|w_1\\| = |\\omega_j| = s`, so :math:`w_e(0) = s^N u`. The
        e2e rule starts from the same :math:`s^N u`.
    init_direction : tuple of float, optional
        A fixed direction for :math:`u` (normalized here; length d of the
        problem, checked by :func:`run_sweep`), e.g. ``(1.0, 1.0)`` for the
        aligned start of the two-example ℓ4 toy of Chapter 4.
        ``None``: a random direction drawn from ``seed``.
    width : int
        Hidden width; 1 (scalar hidden layers, closed-form gradients) unless
        ``method == "gd"`` and ``depth >= 2``.
    init : str
        ``"balanced"`` (default): the balanced start above (Procedure 1 of
        arXiv:1810.02281 applied to :math:`s^N u`). ``"gaussian"``: layer-wise
        i.i.d. :math:`\\mathcal N(0, s^2)` entries with ``s = init_scale``
        (:func:`overparam.gaussian_init`, seeded by ``seed``), only balanced
        approximately; needs ``width > 1`` (Chapter 7, ``ch-beyond-speed``).
    momentum, beta1, beta2, rho, eps : float, optional
        Hyper-parameters, allowed only for the methods that use them
        (momentum: ``momentum``; adagrad: ``eps``; adadelta: ``rho``, ``eps``;
        adam: ``beta1``, ``beta2``, ``eps``). ``None`` takes the default
        (0.9; 1e-10; 0.9, 1e-6; 0.9, 0.999, 1e-8), which is then stored in the
        config: torch.optim's defaults, except momentum's 0.9 (torch.optim's
        SGD defaults to no momentum).

    Raises
    ------
    ValueError
        A field is out of its range (the message names it), ``init_scale**depth`` overflows, or a
        combination is not allowed (a width > 1 without method "gd" and depth >= 2, ...).
    """

    method: str
    lr: float
    depth: int = 1
    p: int = 2
    seed: int = 0
    init_scale: float = 0.1
    width: int = 1
    momentum: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    rho: float | None = None
    eps: float | None = None
    init_direction: tuple[float, ...] | None = None
    init: str = "balanced"

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in _HYPER_DEFAULTS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        checked = {"lr": check_real("lr", self.lr, above=0), "depth": check_int("depth", self.depth, 1),
                   "p": check_exponent(self.p),
                   "seed": check_int("seed", self.seed, 0),
                   "init_scale": check_real("init_scale", self.init_scale, at_least=0),
                   "width": check_int("width", self.width, 1)}
        for name, value in checked.items():  # Python numbers, so that the configuration is saved as JSON
            object.__setattr__(self, name, value)
        try:  # the start's size, s^N: balanced_init refuses an overflow too
            math.pow(self.init_scale, self.depth)  # noqa: B018
        except OverflowError:
            raise ValueError(f"init_scale must keep init_scale**depth a finite float, got init_scale="
                             f"{self.init_scale:g} and depth={self.depth}") from None
        if self.width > 1 and (self.method != "gd" or self.depth < 2):
            raise ValueError(f"width > 1 needs method 'gd' and depth >= 2, got method {self.method!r}, depth {self.depth}")
        if self.method == "e2e" and self.width != 1:
            raise ValueError("width must be 1 for method 'e2e' (the rule acts on the end-to-end vector)")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.init == "gaussian" and (self.width < 2 or self.method != "gd" or self.init_direction is not None):
            raise ValueError("init 'gaussian' needs method 'gd', width > 1 (hidden layers that are matrices) and no "
                             f"init_direction, got method {self.method!r}, width {self.width}")
        if self.init_direction is not None:
            try:
                direction = np.asarray(self.init_direction, dtype=np.float64)
            except (TypeError, ValueError):
                direction = np.empty(0)
            if direction.ndim != 1 or direction.size == 0 or not np.isfinite(direction).all() or not direction.any():
                raise ValueError(f"init_direction must be a non-zero, finite vector, got {self.init_direction!r}")
            object.__setattr__(self, "init_direction", tuple(float(v) for v in direction))
        defaults = _HYPER_DEFAULTS[self.method]
        for name in _HYPER_NAMES:
            value = getattr(self, name)
            if name not in defaults:
                if value is not None:
                    raise ValueError(f"{name} is not a hyper-parameter of method {self.method!r}")
                continue
            value = defaults[name] if value is None else value
            bounds = dict(above=0) if name == "eps" else dict(at_least=0, below=1)
            object.__setattr__(self, name, check_real(name, value, **bounds))
        object.__setattr__(self, "init_scale", float(self.init_scale))
        for name in ("depth", "p", "seed", "width"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def hyper(self) -> dict[str, float]:
        """The method's hyper-parameters other than ``lr``."""
        return {name: getattr(self, name) for name in _HYPER_DEFAULTS[self.method]}

    def differs_from(self, other: RunConfig, rtol: float = 1e-12) -> str | None:
        """The first field in which ``other`` is another run, or ``None`` when both are the same run (Chapter 7).

        Real numbers are the same when they agree to a relative ``rtol``, and two ``init_direction`` vectors
        when no entry differs by more than ``rtol`` times the largest entry (an entry near zero may lose all its
        relative accuracy to cancellation). A config computed from data, such as Chapter 7's start row (a
        product of random layers) and its ``init_scale`` (that row's norm), can differ in its last bits from one
        machine's BLAS to another's, and a results file written on one machine must still be recognized on the
        other.

        Raises
        ------
        TypeError
            If ``other`` is not a :class:`RunConfig`.
        """
        if not isinstance(other, RunConfig):
            raise TypeError(f"other must be a RunConfig, got {type(other).__name__}")
        rtol = check_real("rtol", rtol, at_least=0, below=1)

        def close(a: Any, b: Any) -> bool:
            if isinstance(a, float) and isinstance(b, float):
                return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)
            return a == b

        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, tuple) and isinstance(theirs, tuple):
                gap = np.abs(np.subtract(mine, theirs)) if len(mine) == len(theirs) else None
                same = gap is not None and bool(np.all(gap <= rtol * np.max(np.abs(mine), initial=0.0)))
            else:
                same = close(mine, theirs)
            if not same:
                return f.name
        return None

    @property
    def label(self) -> str:
        """A short legend entry, e.g. ``"gd N=3 lr=0.0006"``."""
        extra = "".join(f" {k}={v:g}" for k, v in self.hyper.items())
        width = f" width={self.width}" if self.width > 1 else ""
        init = " gaussian" if self.init == "gaussian" else ""
        return f"{self.method} N={self.depth}{width}{init} lr={self.lr:g}{extra}"


def product_runs(**axes: Any) -> tuple[RunConfig, ...]:
    """All combinations of the given :class:`RunConfig` fields (Chapters 2 and 4).

    Each keyword is a field of :class:`RunConfig`; a list, tuple or range is
    an axis of the grid, anything else a constant. For ``init_direction`` a
    vector (tuple or array) is a constant and a list of vectors an axis.

    Examples
    --------
    >>> runs = product_runs(method="gd", depth=[1, 2, 3], lr=[1e-3, 3e-3], p=4)
    >>> len(runs)
    6
    """
    names = list(axes)

    def is_axis(name: str, v: Any) -> bool:
        if name == "init_direction":  # a vector is one value; an axis is a list of vectors
            return isinstance(v, list) and all(isinstance(e, (list, tuple, np.ndarray)) for e in v)
        return isinstance(v, (list, tuple, range, np.ndarray))

    values = [list(v) if is_axis(k, v) else [v] for k, v in axes.items()]
    return tuple(RunConfig(**dict(zip(names, combo))) for combo in product(*values))


def quarter_decades(low_exp4: int, high_exp4: int, digits: int | None = 3) -> list[float]:
    """The learning-rate lattice :math:`10^{k/4}` for ``low_exp4 <= k <= high_exp4`` (Chapters 2 and 4).

    The book's learning-rate grids (quarter decades), rounded to ``digits``
    significant digits (``None``: the exact powers of ten, as the toy of
    Chapter 4 uses; its outcomes can change in the fourth digit of η).
    """
    low_exp4, high_exp4 = check_int("low_exp4", low_exp4), check_int("high_exp4", high_exp4)
    if low_exp4 > high_exp4:
        raise ValueError(f"low_exp4 must be <= high_exp4, got {low_exp4}, {high_exp4}")
    if digits is not None:
        digits = check_int("digits", digits, 1, expected="an integer >= 1 or None")
    exact = [10 ** (k / 4) for k in range(low_exp4, high_exp4 + 1)]
    return exact if digits is None else [float(f"{v:.{digits}g}") for v in exact]


def log_steps(num_iters: int, per_decade: int = 10, every: int | None = None) -> np.ndarray:
    """Roughly log-spaced integer steps in ``[0, num_iters]``, both ends included.

    For loss-versus-iteration plots on a log axis (Chapter 2, ``ch-deep-linear``): pass the result
    as ``record`` to :func:`run_sweep` or to the trainers (:func:`overparam.gradient_descent`, ...).
    With ``every`` (an integer >= 1), every ``every``-th step is merged in, so that the same
    record serves a linear axis too.
    """
    num_iters, per_decade = check_int("num_iters", num_iters, 0), check_int("per_decade", per_decade, 1)
    linear = np.zeros(0, dtype=np.int64) if every is None else np.arange(0, num_iters + 1, check_int("every", every, 1))
    if num_iters == 0:
        return np.zeros(1, dtype=np.int64)
    count = int(math.ceil(math.log10(num_iters) * per_decade)) + 1
    grid = np.round(np.logspace(0, math.log10(num_iters), count)).astype(np.int64)
    return np.union1d(np.r_[0, grid, num_iters], linear).astype(np.int64)


# ---------------------------------------------------------------------------
# Initialization
# ---------------------------------------------------------------------------
def _init_direction(cfg: RunConfig, d: int) -> tuple[np.ndarray, np.random.Generator]:
    """The unit vector u of w_e(0) = s^N u; the generator then seeds the rotations."""
    rng = np.random.default_rng(cfg.seed)
    u = rng.standard_normal(d)  # drawn even when replaced, so the rotations see the same stream either way
    if cfg.init_direction is not None:
        u = np.asarray(cfg.init_direction)
    return u / np.linalg.norm(u), rng


def start_layers(cfg: RunConfig, d: int) -> list[np.ndarray]:
    r"""The layers a wide run (``width > 1``) starts from: layer-wise Gaussian (``init="gaussian"``, Chapter 7) or balanced.

    Balanced: Procedure 1 (:func:`overparam.balanced_factors`) of the
    end-to-end start :math:`s^N u^\top`, whose exactly balanced layers of
    width ``cfg.width`` are then mixed by random orthogonal matrices
    (:func:`overparam.rotate_hidden`, seeded by the run's seed) so that the
    extra width is really used (Chapter 3, ``ch-balancedness``).

    Parameters
    ----------
    cfg : RunConfig
        The run; its ``init_direction``, if set, must have length ``d``.
    d : int
        The input dimension, >= 1.

    Raises
    ------
    ValueError
        ``cfg`` is not a :class:`RunConfig`, ``d`` is not an integer >= 1, or
        ``cfg.init_direction`` does not have length ``d``.
    """
    if not isinstance(cfg, RunConfig):
        raise ValueError(f"cfg must be a RunConfig, got {type(cfg).__name__}")
    d = check_int("d", d, 1)
    if cfg.init_direction is not None and len(cfg.init_direction) != d:
        raise ValueError(f"cfg.init_direction must have length d = {d}, got {len(cfg.init_direction)}")
    if cfg.init == "gaussian":
        return gaussian_init([d] + [cfg.width] * (cfg.depth - 1) + [1], cfg.init_scale, cfg.seed)
    u, rng = _init_direction(cfg, d)
    start = cfg.init_scale ** cfg.depth * u[None, :]
    return rotate_hidden(balanced_factors(start, cfg.depth, [cfg.width] * (cfg.depth - 1)), rng)


# ---------------------------------------------------------------------------
# Optimizers: elementwise updates of a parameter matrix, one run per row
# ---------------------------------------------------------------------------
class _Optimizer:
    """Plain GD, θ ← θ − η g, and the base of the others.

    Each hyper-parameter of the method becomes a (B, 1) column of per-run
    values; each name in ``slots`` a zero-initialized state like θ. ``step``
    updates θ and the state in place and reads the step number t + 1 from
    ``count``, a one-element float64 tensor on the device (not a Python
    int), so that a chunk of steps can be captured once as a CUDA graph and
    replayed.
    """

    method, slots = "gd", ()

    def __init__(self, configs: Sequence[RunConfig], theta: torch.Tensor):
        for name in _HYPER_DEFAULTS[self.method]:
            column = [[getattr(c, name)] for c in configs]
            setattr(self, name, torch.tensor(column, dtype=theta.dtype, device=theta.device))
        for name in self.slots:
            setattr(self, name, torch.zeros_like(theta))

    def state(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.slots]

    def step(self, theta: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, count: torch.Tensor) -> None:
        theta.addcmul_(lr, g, value=-1)


class _Momentum(_Optimizer):
    """Heavy ball as in ``torch.optim.SGD``: v ← μ v + g, θ ← θ − η v (v starts at 0)."""

    method, slots = "momentum", ("v",)

    def step(self, theta: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, count: torch.Tensor) -> None:
        self.v.mul_(self.momentum).add_(g)
        theta.addcmul_(lr, self.v, value=-1)


class _AdaGrad(_Optimizer):
    """AdaGrad as in ``torch.optim.Adagrad`` (Duchi, Hazan, Singer 2011): s ← s + g², θ ← θ − η g / (√s + ε)."""

    method, slots = "adagrad", ("sum",)

    def step(self, theta: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, count: torch.Tensor) -> None:
        self.sum.addcmul_(g, g)
        theta.addcmul_(lr, g / (self.sum.sqrt() + self.eps), value=-1)


class _AdaDelta(_Optimizer):
    """AdaDelta as in ``torch.optim.Adadelta`` (Zeiler 2012).

    a ← ρ a + (1−ρ) g², δ = √(b + ε)/√(a + ε) · g, b ← ρ b + (1−ρ) δ², θ ← θ − η δ.
    """

    method, slots = "adadelta", ("sq", "acc")

    def step(self, theta: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, count: torch.Tensor) -> None:
        self.sq.mul_(self.rho).addcmul_(g * g, 1 - self.rho)
        delta = (self.acc + self.eps).sqrt_().div_((self.sq + self.eps).sqrt_()).mul_(g)
        self.acc.mul_(self.rho).addcmul_(delta * delta, 1 - self.rho)
        theta.addcmul_(lr, delta, value=-1)


class _Adam(_Optimizer):
    """Adam as in ``torch.optim.Adam`` (Kingma & Ba 2015), step t = 1, 2, ...

    m ← β₁ m + (1−β₁) g, v ← β₂ v + (1−β₂) g²,
    θ ← θ − η/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε).
    """

    method, slots = "adam", ("m", "v")

    def __init__(self, configs: Sequence[RunConfig], theta: torch.Tensor):
        super().__init__(configs, theta)
        self.powers = [(b.double(), b * b * b) for b in (self.beta1, self.beta2)]  # β in float64, β·β·β

    @staticmethod
    def _power(beta_64: torch.Tensor, beta_cubed: torch.Tensor, count: torch.Tensor,
               third: torch.Tensor) -> torch.Tensor:
        """β^t for a device tensor t, bit for bit torch's ``β.pow(t)`` for a Python int t (checked on the CPU).

        For a Python int, torch rounds a float64 power to β's dtype, except at
        t = 3 (``third``), which it computes as β·β·β in that dtype.
        """
        return torch.where(third, beta_cubed, beta_64.pow(count).to(beta_cubed.dtype))

    def step(self, theta: torch.Tensor, g: torch.Tensor, lr: torch.Tensor, count: torch.Tensor) -> None:
        self.m.lerp_(g, 1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(g * g, 1 - self.beta2)
        third = count == 3
        (b1_64, b1_cubed), (b2_64, b2_cubed) = self.powers
        bias1 = 1 - self._power(b1_64, b1_cubed, count, third)
        bias2_sqrt = (1 - self._power(b2_64, b2_cubed, count, third)).sqrt_()
        denom = (self.v.sqrt() / bias2_sqrt).add_(self.eps)
        theta.addcmul_(lr / bias1, self.m / denom, value=-1)


_OPTIMIZERS = {c.method: c for c in (_Optimizer, _Momentum, _AdaGrad, _AdaDelta, _Adam)}


# ---------------------------------------------------------------------------
# Blocks: the runs of one kind, owning contiguous rows of W_e and G
# ---------------------------------------------------------------------------
class _Block:
    """A block's runs are frozen by zeroing their learning rates (a (B, ...) tensor ``lr``).

    ``step`` and ``write_we`` write into tensors allocated once, in
    ``__init__``, and never rebind an attribute: a captured CUDA graph keeps
    reading and writing the same memory on every replay.
    """

    lr: torch.Tensor

    def write_we(self) -> None:
        pass

    def freeze(self, rows: torch.Tensor) -> None:
        self.lr[rows] = 0


class _ScalarNets(_Block):
    """Depth-N networks with scalar hidden layers, one optimizer, mixed depths.

    Row b holds θ_b = (w_1, ω_2, ..., ω_K+1) with K = max depth − 1; a run of
    depth N < K+1 has its surplus ω fixed at 1 (learning rate 0 there). With
    g = ∇L^1(w_e) and w_e = (Π_j ω_j) w_1 (the paper's warm-up example, one
    extra scalar, generalized to N − 1 scalars),

        ∇_{w_1} = (Π_j ω_j) g,    ∇_{ω_j} = ⟨g, w_1⟩ Π_{i≠j} ω_i.
    """

    def __init__(self, configs: Sequence[RunConfig], we: torch.Tensor):
        self.configs, self.we = configs, we
        B, d = we.shape
        self.d, self.k = d, max(c.depth for c in configs) - 1
        init = np.ones((B, d + self.k))
        lr = np.zeros((B, d + self.k))
        for b, c in enumerate(configs):
            layers = scalar_layers_start(_init_direction(c, d)[0], c.depth, c.init_scale)
            init[b, :d] = layers[0][0]
            init[b, d : d + c.depth - 1] = [omega.item() for omega in layers[1:]]
            lr[b, : d + c.depth - 1] = c.lr
        # With no hidden scalars the parameters *are* the end-to-end vectors.
        self.theta = we if self.k == 0 else torch.empty(B, d + self.k, dtype=we.dtype, device=we.device)
        self.theta.copy_(torch.as_tensor(init))
        self.lr = torch.as_tensor(lr, dtype=we.dtype, device=we.device)
        self.grad = torch.empty_like(self.theta)
        self.diagonal = torch.eye(self.k, dtype=torch.bool, device=we.device)
        self.prod = torch.empty(B, 1, dtype=we.dtype, device=we.device)  # Π_j ω_j per run
        self.opt = _OPTIMIZERS[configs[0].method](configs, self.theta)
        self.write_we()

    def write_we(self) -> None:
        if self.k:
            torch.prod(self.theta[:, self.d :], 1, keepdim=True, out=self.prod)
            self.we.copy_(self.theta[:, : self.d] * self.prod)

    def step(self, g: torch.Tensor, count: torch.Tensor) -> None:
        if self.k:
            w1, omega = self.theta[:, : self.d], self.theta[:, self.d :]
            # copy_ into column slices rather than out= (which torch.compile cannot trace for a strided view)
            self.grad[:, : self.d].copy_(g * self.prod)
            if self.k == 1:  # one hidden scalar: ∇_ω = ⟨g, w_1⟩
                self.grad[:, self.d].copy_(torch.linalg.vecdot(g, w1))
            else:
                others = torch.where(self.diagonal, 1.0, omega.unsqueeze(1)).prod(2)  # Π_{i≠j} ω_i, zeros allowed
                self.grad[:, self.d :].copy_(others * torch.linalg.vecdot(g, w1).unsqueeze(1))
            g = self.grad
        self.opt.step(self.theta, g, self.lr, count)
        self.write_we()

    def state(self) -> list[torch.Tensor]:
        return [self.theta, *self.opt.state()]

    def factors(self) -> list[list[np.ndarray]]:
        theta = self.theta.detach().cpu().double().numpy()
        return [
            [theta[b, None, : self.d]] + [theta[b, self.d + j, None, None] for j in range(c.depth - 1)]
            for b, c in enumerate(self.configs)
        ]


class _EndToEnd(_Block):
    """The single-output end-to-end rule (the paper's Equation 12, λ = 0), one layer, mixed N.

    w ← w − η ‖w‖^{2−2/N} (g + (N−1) ⟨g, w⟩/‖w‖² · w), with Pr_w{g} = 0 at w = 0.
    """

    def __init__(self, configs: Sequence[RunConfig], we: torch.Tensor):
        self.configs, self.we = configs, we
        like = dict(dtype=we.dtype, device=we.device)
        for b, c in enumerate(configs):
            u, _ = _init_direction(c, we.shape[1])
            we[b] = torch.as_tensor(c.init_scale**c.depth * u)
        depth = torch.tensor([[c.depth] for c in configs], **like)
        self.power = 1 - 1 / depth
        self.along = depth - 1
        self.lr = torch.tensor([[c.lr] for c in configs], **like)
        self.tiny = torch.finfo(we.dtype).tiny

    def step(self, g: torch.Tensor, count: torch.Tensor) -> None:
        w = self.we
        norm2 = torch.linalg.vecdot(w, w).unsqueeze(1)
        coef = self.along * torch.linalg.vecdot(g, w).unsqueeze(1) / norm2.clamp_min(self.tiny)
        w.addcmul_(torch.addcmul(g, w, coef), self.lr * norm2.pow(self.power), value=-1)

    def state(self) -> list[torch.Tensor]:
        return [self.we]

    def factors(self) -> list[list[np.ndarray]]:
        we = self.we.detach().cpu().double().numpy()
        return [[we[b, None, :]] for b in range(len(self.configs))]


class _WideNets(_Block):
    """Depth-N networks with hidden width n > 1 (one N and n per block), GD by batched matmuls.

    Layers W_1 (n, d), W_2..W_{N-1} (n, n), W_N (1, n) per run. With
    A_j = W_N···W_{j+1} and B_j = W_{j−1}···W_1 (the chain rule, Chapter 2)

        ∂L^N/∂W_j = A_jᵀ g B_jᵀ.
    """

    def __init__(self, configs: Sequence[RunConfig], we: torch.Tensor):
        self.configs, self.we = configs, we
        like = dict(dtype=we.dtype, device=we.device)
        per_run = [start_layers(c, we.shape[1]) for c in configs]
        self.layers = [torch.as_tensor(np.stack(ws), **like) for ws in zip(*per_run)]
        self.lr = torch.tensor([[[c.lr]] for c in configs], **like)
        # above[j] = A_j = W_N ··· W_{j+1} (B, 1, n); above[N−1] = 1
        B = len(configs)
        self.above = [torch.empty(B, 1, layer.shape[2], **like) for layer in self.layers[1:]]
        self.above.append(torch.ones(B, 1, 1, **like))
        self.write_we()

    def write_we(self) -> None:
        W, above = self.layers, self.above
        for j in range(len(W) - 2, -1, -1):
            torch.matmul(above[j + 1], W[j + 1], out=above[j])
        self.we.copy_((above[0] @ W[0]).squeeze(1))

    def step(self, g: torch.Tensor, count: torch.Tensor) -> None:
        # B_j gᵀ = W_{j-1} ... W_1 gᵀ by matrix-vector products (the output is a row: no matrix chain is formed)
        g = g.unsqueeze(1)
        pulled = [self.layers[0] @ g.transpose(1, 2)]
        for layer in self.layers[1:-1]:
            pulled.append(layer @ pulled[-1])
        grads = [self.above[0].transpose(1, 2) @ g]
        grads += [a.transpose(1, 2) @ v.transpose(1, 2) for a, v in zip(self.above[1:], pulled)]
        for layer, grad in zip(self.layers, grads):
            layer.addcmul_(self.lr, grad, value=-1)
        self.write_we()

    def state(self) -> list[torch.Tensor]:
        return list(self.layers)

    def factors(self) -> list[list[np.ndarray]]:
        layers = [w.detach().cpu().double().numpy() for w in self.layers]
        return [[w[b] for w in layers] for b in range(len(self.configs))]


def _block_key(c: RunConfig) -> tuple:
    if c.width > 1:
        return ("wide", c.depth, c.width)
    return ("e2e",) if c.method == "e2e" else ("scalar", c.method)


def _make_block(key: tuple, configs: Sequence[RunConfig], we: torch.Tensor) -> Any:
    kind = {"wide": _WideNets, "e2e": _EndToEnd, "scalar": _ScalarNets}[key[0]]
    return kind(configs, we)


# ---------------------------------------------------------------------------
# The lockstep program
# ---------------------------------------------------------------------------
class _Lockstep:
    """All runs of a sweep as row blocks of one tensor program.

    Rows are grouped by p (one pair of matrix products per p) and within a p
    by block; each p-group is padded with inert zero rows to a multiple of
    ``pad_rows``. ``We`` is (rows, d+1) with a last column of ones, so that

    * direct form: R = We [Xᵀ; −yᵀ] = Xw − y, G = R^{p−1} [X, −y] / m and
      ⟨We_b, G_b⟩ = mean(r^p) = p L;
    * moment form (p = 2): G = We [[H, −b], [−bᵀ, 2c]] with H = XᵀX/m,
      b = Xᵀy/m, c = mean(y²)/2, and ⟨We_b, G_b⟩ = 2 L.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, runs: Sequence[RunConfig], dtype: torch.dtype,
                 device: torch.device, gram: bool, pad_rows: int):
        m, d = X.shape
        self.d = d
        like = dict(dtype=dtype, device=device)
        order = sorted(range(len(runs)), key=lambda i: (runs[i].p, _block_key(runs[i])))
        ps = sorted({c.p for c in runs})
        rows_of = {}  # run index -> row
        self.groups = []  # (row slice, p, moment_form)
        row = 0
        plan = []
        for p in ps:
            members = [i for i in order if runs[i].p == p]
            start = row
            keys: dict[tuple, list[int]] = {}
            for i in members:
                keys.setdefault(_block_key(runs[i]), []).append(i)
            for key, idx in keys.items():
                plan.append((key, idx, slice(row, row + len(idx))))
                rows_of.update({i: row + k for k, i in enumerate(idx)})
                row += len(idx)
            row = start + -(-(row - start) // pad_rows) * pad_rows
            self.groups.append((slice(start, row), p, gram and p == 2))
        self.rows = row
        self.row_of = np.array([rows_of[i] for i in range(len(runs))])
        self.We = torch.zeros(row, d + 1, **like)
        self.We[:, d] = 1
        self.G = torch.zeros(row, d + 1, **like)
        self.scale = torch.zeros(row, dtype=torch.float64)
        Xa = np.c_[X, -y]
        self.XaT = torch.as_tensor(Xa.T, **like).contiguous()
        self.Xa_m = torch.as_tensor(Xa / m, **like)
        self.moments = torch.as_tensor(Xa.T @ Xa / m, **like)
        self.buffers = {}
        for sl, p, moment in self.groups:
            self.scale[sl] = 0.5 if moment else 1.0 / p
            if not moment:
                self.buffers[sl.start] = torch.empty(sl.stop - sl.start, m, **like)
        self.blocks = [(sl, _make_block(key, [runs[i] for i in idx], self.We[sl, :d])) for key, idx, sl in plan]
        # t + 1 of the next update. Shape (1,), not 0-d: torch.compile (2.13, CPU) drops an in-place update
        # of a 0-d tensor attribute (it stays 1), which the fused path's test caught.
        self.count = torch.ones(1, dtype=torch.float64, device=device)

    def gradient(self, raw_loss: torch.Tensor) -> None:
        """G for every row and ⟨We, G⟩ (p·L, or 2·L in moment form) into ``raw_loss``."""
        for sl, p, moment in self.groups:
            if moment:
                torch.mm(self.We[sl], self.moments, out=self.G[sl])
                continue
            r = torch.mm(self.We[sl], self.XaT, out=self.buffers[sl.start])
            if p > 2:
                r.pow_(p - 1)
            torch.mm(r, self.Xa_m, out=self.G[sl])
        torch.linalg.vecdot(self.We, self.G, out=raw_loss)

    def update(self) -> None:
        """One step of every run from ``G``; ``count`` (t + 1, on the device) then moves on."""
        for sl, block in self.blocks:
            block.step(self.G[sl, : self.d], self.count)
        self.count.add_(1)

    def snapshot(self) -> list[list[torch.Tensor]]:
        return [[x.clone() for x in block.state()] for _, block in self.blocks]

    def restore_and_freeze(self, rows: np.ndarray, snap: list[list[torch.Tensor]]) -> None:
        for (sl, block), saved in zip(self.blocks, snap):
            local = rows[(rows >= sl.start) & (rows < sl.stop)] - sl.start
            if local.size == 0:
                continue
            idx = torch.as_tensor(local, device=self.We.device)
            for x, s in zip(block.state(), saved):
                x[idx] = s[idx]
            block.freeze(idx)
            block.write_we()

    def factors(self) -> list[list[np.ndarray]]:
        out: list[list[np.ndarray]] = [[] for _ in range(self.rows)]
        for sl, block in self.blocks:
            out[sl] = block.factors()
        return out


class _Steps:
    """The two halves of an iteration of ``prog``: eager, or each compiled once with ``torch.compile`` (``fuse``).

    Compiled (inductor), the dozens of small elementwise operations of the
    blocks' updates become a few fused kernels, with the same tensors read
    and written in place, so the CUDA graph of :class:`_Chunks` can capture
    them too. The results then agree with the eager engine to round-off, not
    bit for bit (a fused kernel may round a product and a sum once, not
    twice). Compiling happens at the first call, inside the sweep's wall
    time; ``torch._dynamo.reset()`` first drops earlier sweeps' programs, so
    that a session of many sweeps never reaches torch.compile's limit of
    programs per function (beyond which it would fall back to eager
    silently).
    """

    def __init__(self, prog: _Lockstep, fuse: bool):
        self.prog = prog
        self.gradient: Callable[[torch.Tensor], None] = prog.gradient
        self.update: Callable[[], None] = prog.update
        if fuse:
            torch._dynamo.reset()
            self.gradient = torch.compile(prog.gradient, fullgraph=True)
            self.update = torch.compile(prog.update, fullgraph=True)


def _iterate(steps: _Steps, raw: torch.Tensor, n: int, updates: int) -> None:
    """``n`` iterations: iteration i writes its loss into ``raw[i]``; the first ``updates`` of them then step."""
    for i in range(n):
        steps.gradient(raw[i])
        if i < updates:
            steps.update()


class _Chunks:
    """Runs the chunks of a sweep: eagerly, or on CUDA as one captured graph (``cuda_graph``).

    Eagerly, each of the dozens of small tensor operations of an iteration
    is one kernel launch from Python; on a GPU the launches, not the
    arithmetic, then set the pace. With ``cuda_graph`` the first full chunk
    (``chunk`` iterations, each followed by a step) runs eagerly on a side
    stream (the warm-up that capture needs: library handles and workspaces
    are created there), the second is captured once as a
    ``torch.cuda.CUDAGraph`` and every full chunk from then on is one replay.
    Shorter chunks (the last one) run eagerly. Both ways run
    :func:`_iterate` on the same tensors, which every block updates in place,
    so a replay does the same arithmetic as the eager loop; divergence checks
    and records stay at chunk boundaries, between replays.
    """

    def __init__(self, steps: _Steps, raw: torch.Tensor, chunk: int, cuda_graph: bool):
        self.steps, self.raw, self.chunk, self.cuda_graph = steps, raw, chunk, cuda_graph
        self.side: Any = None  # the warm-up and capture stream
        self.graph: Any = None

    def run(self, n: int, updates: int) -> None:
        if not (self.cuda_graph and n == self.chunk and updates == n):
            _iterate(self.steps, self.raw, n, updates)
            return
        device = self.raw.device
        with torch.cuda.device(device):
            if self.side is None:  # warm-up, on the stream that will capture
                self.side, main = torch.cuda.Stream(device), torch.cuda.current_stream(device)
                self.side.wait_stream(main)
                with torch.cuda.stream(self.side):
                    _iterate(self.steps, self.raw, n, n)
                main.wait_stream(self.side)
                return
            if self.graph is None:
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph, stream=self.side):  # records the kernels; runs nothing
                    _iterate(self.steps, self.raw, n, n)
            self.graph.replay()


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SweepResult:
    """The outcome of :func:`run_sweep`: one row per run, in the order given.

    Attributes
    ----------
    configs : tuple of RunConfig
    steps : ndarray of int, shape (S,)
        Recorded iterations (0 and ``num_iters`` always included).
    loss : ndarray, shape (B, S)
        Training loss of each run at ``steps``; NaN from a run's divergence
        step on.
    diverged_at : ndarray of float, shape (B,)
        First step (a whole number) whose loss was non-finite or above ``DIVERGENCE_FACTOR``
        (1e6) times the run's initial loss (the rule of
        :func:`overparam.gradient_descent`); :data:`~overparam.training.NEVER`
        (``inf``) for a stable run. Float, so that "never" sorts last.
    w_e : ndarray, shape (B, d)
        Final end-to-end vectors (for a diverged run: see ``weights_step``).
    factors : tuple of tuple of ndarray
        Per run its layers W_1 (n_1, d), ..., W_N (1, n_{N−1}) in the paper's
        convention (a scalar hidden layer is a (1, 1) array; depth 1, e2e and
        baselines: the single layer (1, d)).
    weights_step : ndarray of int, shape (B,)
        The iteration ``w_e``/``factors`` belong to: ``num_iters`` for a
        stable run, a finite, non-diverged earlier iterate for a diverged one.
    num_iters : int
    wall_time : float
        Seconds spent in the training loop.
    dtype, device : str
    provenance : dict
        The format of :func:`overparam.files.provenance` (``command``,
        ``date_utc``, library versions) plus ``problem_shape``.
    target : float or None
        The ``target`` loss passed to :func:`run_sweep`.
    reached_at : ndarray of float, shape (B,), or None
        With a ``target``: the first iteration at which each run's loss was
        <= ``target`` (exact, at every step, not only the recorded ones),
        :data:`~overparam.training.NEVER` if it never was before ``num_iters``
        or its divergence.
    """

    configs: tuple[RunConfig, ...]
    steps: np.ndarray
    loss: np.ndarray
    diverged_at: np.ndarray
    w_e: np.ndarray
    factors: tuple[tuple[np.ndarray, ...], ...]
    weights_step: np.ndarray
    num_iters: int
    wall_time: float
    dtype: str
    device: str
    provenance: Mapping[str, Any] = field(default_factory=dict)
    target: float | None = None
    reached_at: np.ndarray | None = None

    def __post_init__(self) -> None:
        # One format for arrays of steps (float, NEVER for never), whatever the caller or the file used.
        object.__setattr__(self, "diverged_at", as_step_array(self.diverged_at))
        if self.reached_at is not None:
            object.__setattr__(self, "reached_at", as_step_array(self.reached_at))

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask of the runs that diverged."""
        return self.diverged_at != NEVER

    @property
    def failed_at(self) -> np.ndarray:
        """The step at which each run failed; :data:`~overparam.training.NEVER` for a run that trained (Chapters 2, 4).

        A run fails by *diverging* (its ``diverged_at``) or by *collapsing*
        (:func:`~overparam.training.collapse_step`, the rule the trainers'
        histories share: it ends at or above its initial loss, or at or above
        :data:`COLLAPSE_FACTOR` times the best loss it had reached, a rise
        within the round-off of the sweep's ``dtype`` excepted).
        """
        out = self.diverged_at.astype(float)
        for i in np.flatnonzero(~self.diverged):
            step = collapse_step(self.steps, self.loss[i], self.dtype)
            if step is not None:
                out[i] = step
        return out

    def spikes(self, i: int, optimum: float, factor: float = COLLAPSE_FACTOR) -> tuple[np.ndarray, np.ndarray]:
        """Where run ``i``'s suboptimality jumped above ``factor`` times its best so far (Chapters 2, 4).

        At the edge of stability a run can shoot up for a few steps and fall
        back: its L − L* at a recorded step is then many times the best it had
        reached before. Such a run still trains (:attr:`failed_at` counts
        only a run that *ends* far above its best or diverges), but its final
        loss depends on where the run happens to stop. Recorded steps only, so
        a spike between two of them is not seen; a diverged run is read up to
        its divergence.

        Parameters
        ----------
        i : int
            The run.
        optimum : float
            :math:`L^*`, below every recorded loss of the run up to round-off
            (the rule of :func:`~overparam.optimum.check_optimum`); an
            :math:`L - L^*` smaller than that round-off margin is read as the
            margin.
        factor : float
            > 1; default :data:`COLLAPSE_FACTOR`.

        Returns
        -------
        steps, ratios : ndarray
            The recorded steps of the spikes and, for each, L − L* over the
            smallest L − L* recorded before it.
        """
        i = self._run_index(i)
        factor = check_real("factor", factor, above=1.0)
        n = len(self.steps) if not self.diverged[i] else int(np.searchsorted(self.steps, self.diverged_at[i]))
        best = check_optimum(optimum, self.loss[i, :n])
        # L − L* within round-off of 0 counts as round-off, so jitter at the optimum is no spike
        gap = np.maximum(self.loss[i, :n] - best, OPTIMUM_RTOL * abs(best) + OPTIMUM_ATOL)
        ratios = gap[1:] / np.minimum.accumulate(gap)[:-1]
        hit = ratios > factor
        return self.steps[1:n][hit], ratios[hit]

    @property
    def trained(self) -> np.ndarray:
        """Boolean mask of the runs that neither diverged nor collapsed (see :attr:`failed_at`)."""
        return self.failed_at == NEVER

    def outcome(self, i: int) -> str:
        """One phrase for run ``i`` (Chapters 2, 4): how it ended, by the rule of :attr:`failed_at` (:func:`~overparam.training.outcome_phrase`).

        Raises
        ------
        ValueError
            If ``i`` is not a run index in ``0 .. len - 1``.
        """
        i = self._run_index(i)
        return outcome_phrase(self.loss[i], step_or_none(self.diverged_at[i]), step_or_none(self.failed_at[i]))

    def _run_index(self, i: Any) -> int:
        """``i`` checked as a run index, for the methods that read one run."""
        return check_int("i", i, 0, len(self) - 1, expected=f"a run index in 0..{len(self) - 1} (len - 1)")

    @property
    def final_loss(self) -> np.ndarray:
        """Loss at ``num_iters`` (``inf`` for a diverged run)."""
        return np.where(self.diverged, np.inf, self.loss[:, -1])

    def select(self, **criteria: Any) -> list[int]:
        """Indices of the runs whose config fields equal ``criteria``, e.g. ``select(method="gd", p=4)``."""
        names = {f.name for f in fields(RunConfig)}
        unknown = set(criteria) - names
        if unknown:
            raise ValueError(f"criteria must be RunConfig fields, got {sorted(unknown)}")
        return [i for i, c in enumerate(self.configs) if all(getattr(c, k) == v for k, v in criteria.items())]

    def iterations_to(self, target: float, interpolate: bool = False) -> np.ndarray:
        """First recorded iteration at which each run's loss is <= ``target``; :data:`~overparam.training.NEVER` if never.

        The "iterations to reach a target loss" by which Chapter 2 compares
        depths. Its resolution is the recording grid ``steps``: the count is
        the first recorded step at or below the target, up to one grid spacing
        above the true one. With ``interpolate=True`` the crossing is read
        between that step and the one before it, on the straight line through
        their losses (exact where the loss is linear in the step between two
        records, and far finer than the grid where it is smooth); a run at or
        below the target at its first record returns that record's step.

        Parameters
        ----------
        target : float
            The loss level.
        interpolate : bool
            Read the crossing between records (default: the first record at
            or below the target).

        Returns
        -------
        ndarray, shape (runs,)
        """
        target = check_real("target", target)
        loss = np.nan_to_num(self.loss, nan=np.inf)
        hit = loss <= target
        first = np.argmax(hit, axis=1)
        out = np.where(hit.any(axis=1), self.steps[first].astype(float), NEVER)
        if interpolate:
            rows = np.flatnonzero(hit.any(axis=1) & (first > 0))
            before, after = loss[rows, first[rows] - 1], loss[rows, first[rows]]
            t0, t1 = self.steps[first[rows] - 1].astype(float), self.steps[first[rows]].astype(float)
            out[rows] = t0 + (before - target) / (before - after) * (t1 - t0)
        return out

    def history(self, i: int) -> GDHistory:
        """Run ``i`` as a :class:`overparam.GDHistory` (records up to its divergence).

        For a diverged run the history's ``w`` is the iterate of step ``weights_step[i]``, the last one the
        sweep kept (up to two chunks before the divergence), not the last admissible iterate that
        :func:`overparam.gradient_descent` returns; the recorded losses stop at the last recorded step
        before the divergence.
        """
        i = self._run_index(i)
        c = self.configs[i]
        keep = ~np.isnan(self.loss[i])
        return GDHistory(steps=self.steps[keep], loss=self.loss[i, keep], w=self.w_e[i], lr=c.lr, p=c.p,
                         diverged_at=step_or_none(self.diverged_at[i]), dtype=self.dtype)

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (arrays, plus the JSON metadata as a string entry); no pickle.

        ``SweepResult.load(path)`` returns equal arrays and configs, bit for bit.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "configs": [asdict(c) for c in self.configs],
            "num_iters": self.num_iters,
            "wall_time": self.wall_time,
            "dtype": self.dtype,
            "device": self.device,
            "provenance": dict(self.provenance),
            "factor_counts": [len(f) for f in self.factors],
            "target": self.target,
        }
        arrays = {"steps": self.steps, "loss": self.loss, "diverged_at": self.diverged_at, "w_e": self.w_e,
                  "weights_step": self.weights_step, "meta": np.array(json_text(meta, "SweepResult.save's metadata"))}
        if self.reached_at is not None:
            arrays["reached_at"] = self.reached_at
        for i, layers in enumerate(self.factors):
            arrays.update({f"factor_{i}_{j}": w for j, w in enumerate(layers)})
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> "SweepResult":
        """Read a file written by :meth:`save` (``np.load(..., allow_pickle=False)``).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        InvalidResultsFile
            The file is truncated, lacks a member, or its arrays do not match
            its list of runs.
        """
        path = Path(path)
        with read_results(path) as f:
            meta = json.loads(str(f["meta"]))
            factors = tuple(tuple(f[f"factor_{i}_{j}"] for j in range(n))
                            for i, n in enumerate(meta["factor_counts"]))
            result = cls(
                configs=tuple(RunConfig(**c) for c in meta["configs"]),
                steps=f["steps"], loss=f["loss"], diverged_at=f["diverged_at"], w_e=f["w_e"], factors=factors,
                weights_step=f["weights_step"], num_iters=meta["num_iters"], wall_time=meta["wall_time"],
                dtype=meta["dtype"], device=meta["device"], provenance=read_provenance(meta["provenance"]),
                target=meta.get("target"), reached_at=f["reached_at"] if "reached_at" in f else None,
            )
        runs = len(result.configs)
        shapes = {"loss": (runs, len(result.steps)), "diverged_at": (runs,), "w_e": (runs,)}
        if result.reached_at is not None:
            shapes["reached_at"] = (runs,)
        for name, expected in shapes.items():
            got = getattr(result, name).shape[: len(expected)]
            if got != expected:
                raise invalid_results(path, f"{name} has shape {got}, expected {expected} for {runs} runs")
        if len(result.factors) != runs:
            raise invalid_results(path, f"{len(result.factors)} factor lists for {runs} runs")
        return result


@dataclass(frozen=True)
class SweepComparison:
    """How two sweeps of the same runs agree (e.g. the CPU and a GPU engine; see :func:`compare_sweeps`).

    Attributes
    ----------
    runs : int
    diverged_in_both, diverged_only_first, diverged_only_second : tuple of int
        Run indices by where they diverged.
    same_divergence_step : bool
        Every run that diverged in both did so at the same step.
    final_rel_diff : ndarray
        ``|L_a − L_b| / |L_a|`` of the final loss, for the runs that diverged
        in neither sweep (in run order; NaN where both losses are 0, inf where
        only ``L_a`` is). A run that collapsed ran every iteration and is
        compared too.
    completed_in_both : tuple of int
        The runs of ``final_rel_diff``.
    """

    runs: int
    diverged_in_both: tuple[int, ...]
    diverged_only_first: tuple[int, ...]
    diverged_only_second: tuple[int, ...]
    same_divergence_step: bool
    final_rel_diff: np.ndarray
    completed_in_both: tuple[int, ...]

    @property
    def max_rel_diff(self) -> float:
        """Largest relative difference of the final losses (0 if no run completed in both)."""
        return float(np.nanmax(self.final_rel_diff)) if self.final_rel_diff.size else 0.0

    @property
    def median_rel_diff(self) -> float:
        """Median relative difference of the final losses (0 if no run completed in both)."""
        return float(np.nanmedian(self.final_rel_diff)) if self.final_rel_diff.size else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"runs": self.runs, "diverged_in_both": list(self.diverged_in_both),
                "diverged_only_first": list(self.diverged_only_first),
                "diverged_only_second": list(self.diverged_only_second),
                "same_divergence_step": self.same_divergence_step, "completed_in_both": len(self.completed_in_both),
                "max_rel_diff": self.max_rel_diff, "median_rel_diff": self.median_rel_diff}


def check_sweep_result(name: str, value: Any) -> SweepResult:
    """``value`` if it is a :class:`SweepResult`, else a ``ValueError`` naming ``name`` (Chapters 2, 4 and 7).

    For the functions that read a sweep's results (:func:`select_runs`, :func:`compare_sweeps`, the
    Ethanol tables and figures), which would otherwise fail on a missing attribute.
    """
    if not isinstance(value, SweepResult):
        raise ValueError(f"{name} must be a SweepResult (from op.run_sweep or SweepResult.load), "
                         f"got {type(value).__name__}")
    return value


def compare_sweeps(first: SweepResult, second: SweepResult) -> SweepComparison:
    """Compare two sweeps of the same runs: which diverged where, and how close their final losses are.

    Used to check a GPU sweep against the CPU engine (``scripts/gpu_sweep_check.sh``).

    Raises
    ------
    ValueError
        If the two sweeps do not hold the same runs (configs and ``num_iters``).
    """
    first, second = check_sweep_result("first", first), check_sweep_result("second", second)
    if first.configs != second.configs or first.num_iters != second.num_iters:
        raise ValueError(f"first and second must be sweeps of the same runs, got {len(first)} runs x "
                         f"{first.num_iters} iterations and {len(second)} runs x {second.num_iters}")
    a, b = first.diverged, second.diverged
    both = np.flatnonzero(~a & ~b)
    la, lb = first.final_loss[both], second.final_loss[both]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(la - lb) / np.abs(la)
    return SweepComparison(
        runs=len(first), diverged_in_both=tuple(np.flatnonzero(a & b).tolist()),
        diverged_only_first=tuple(np.flatnonzero(a & ~b).tolist()),
        diverged_only_second=tuple(np.flatnonzero(~a & b).tolist()),
        same_divergence_step=bool(np.array_equal(first.diverged_at[a & b], second.diverged_at[a & b])),
        final_rel_diff=rel, completed_in_both=tuple(both.tolist()))


def select_runs(result: SweepResult, rule: str = LARGEST_STABLE,
                by: Sequence[str] | None = None) -> dict[tuple, int]:
    """Pick one run per group of a learning-rate grid (Chapters 2 and 4).

    Groups are runs that agree on the fields ``by`` (default: every field
    except ``lr`` and the optimizer hyper-parameters, i.e. per method, depth,
    p, seed, init scale, width, init direction and init scheme ``init``). Within a group, among the runs that
    *trained* (:attr:`SweepResult.trained`: did not diverge, and did not
    collapse back above their initial loss or far above their own best, as a
    deep net thrown back onto the saddle at 0 by a too-large step does):

    * ``"largest_stable"`` (:data:`LARGEST_STABLE`): the largest η stable for
      the *whole* run (deeper nets can diverge late, Chapter 2); ties between other
      hyper-parameters go to the lowest final loss;
    * ``"best_final"`` (:data:`BEST_FINAL`): the lowest loss at ``num_iters``;
    * ``"fastest_to_target"`` (:data:`FASTEST_TO_TARGET`, for a sweep run with
      a ``target``): among those that reached it, the fewest iterations to the
      target (``reached_at``; the toy of Chapter 4), ties to the larger η.

    Returns
    -------
    dict
        Group key (the values of ``by``, in order) -> run index; groups in
        which no run trained are left out.
    """
    result = check_sweep_result("result", result)
    if rule not in (LARGEST_STABLE, BEST_FINAL, FASTEST_TO_TARGET):
        raise ValueError(f"rule must be {LARGEST_STABLE!r}, {BEST_FINAL!r} or {FASTEST_TO_TARGET!r}, got {rule!r}")
    if rule == FASTEST_TO_TARGET and result.reached_at is None:
        raise ValueError(f"rule {FASTEST_TO_TARGET!r} needs a result of run_sweep(..., target=...)")
    names = [f.name for f in fields(RunConfig)]
    if isinstance(by, str):
        raise ValueError(f"by must be a list of RunConfig fields, e.g. [{by!r}], got the string {by!r}")
    by = [n for n in names if n not in ("lr", *_HYPER_NAMES)] if by is None else list(by)
    if set(by) - set(names):
        raise ValueError(f"by must name RunConfig fields, got {sorted(set(by) - set(names))}")
    final = result.final_loss

    def rank(i: int) -> tuple[float, float]:
        lr = -result.configs[i].lr
        if rule == FASTEST_TO_TARGET:
            return (float(result.reached_at[i]), lr)
        return (lr, final[i]) if rule == LARGEST_STABLE else (final[i], lr)

    trained = result.trained.copy()
    if rule == FASTEST_TO_TARGET:
        trained &= result.reached_at != NEVER
    chosen: dict[tuple, int] = {}
    for i in np.flatnonzero(trained):
        key = tuple(getattr(result.configs[i], n) for n in by)
        if key not in chosen or rank(i) < rank(chosen[key]):
            chosen[key] = int(i)
    return chosen


# ---------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------
def _as_dtype(dtype: Any) -> torch.dtype:
    table = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
             torch.float64: torch.float64, np.float32: torch.float32, np.float64: torch.float64}
    try:
        return table[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None


def _check_start(start: np.ndarray, runs: Sequence[RunConfig]) -> None:
    """Raise the trainers' ``ValueError`` when a run's loss at step 0 (``start``, one per run) is not finite."""
    bad = np.flatnonzero(~np.isfinite(start))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"run_sweep: the loss at the start is {start[i]} for {bad.size} of the runs (runs[{i}]: "
                         f"{runs[i].label}) before any step was taken, so the learning rate is not the cause; check "
                         "init_scale and the scale of X and y (or use float64)")


def run_sweep(
    problem: Any,
    runs: Sequence[RunConfig],
    num_iters: int,
    *,
    record: int | Iterable[int] = 1,
    dtype: Any = torch.float64,
    device: str | torch.device = "cpu",
    gram: bool = True,
    pad_rows: int = 4,
    chunk: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    command: str | None = None,
    target: float | None = None,
    cuda_graph: bool | None = None,
    fuse: bool = False,
) -> SweepResult:
    """Train every run of ``runs`` for ``num_iters`` full-batch iterations, in lockstep.

    Defined in Chapter 2 (used again in Chapter 4). Each run minimizes the ℓp
    loss :math:`L^1(w) = \\frac1p \\mathrm{mean}_i (x_i^\\top w - y_i)^p`
    through its own parameterization and optimizer (see :class:`RunConfig`);
    per iteration all runs share two matrix products

    .. math::

        R = W_e X^\\top - \\mathbf 1 y^\\top, \\qquad G = \\tfrac1m R^{\\odot(p-1)} X

    (rows = runs; for p = 2 and ``gram=True`` the moment form
    :math:`G = W_e X^\\top X/m - y^\\top X/m`), then update elementwise.

    The loss of every run is computed at every iteration (from ⟨w_e, G⟩, no
    extra pass over the data). A run whose loss is non-finite or exceeds
    ``DIVERGENCE_FACTOR`` times its initial loss is *frozen*: its learning
    rate becomes 0 and its parameters are reset to a finite iterate from at
    most ``2 * chunk`` steps earlier, so NaN or inf never reaches the other
    runs; the sweep goes on without it and stops early once every run is
    frozen. Runs never mix: each run's arithmetic only involves its own row.

    Parameters
    ----------
    problem : object with ``X``, ``y`` attributes (e.g. :class:`overparam.Standardized`) or a tuple ``(X, y)``
        X of shape (m, d), y of shape (m,).
    runs : sequence of RunConfig
        Any mix of methods, depths and p.
    num_iters : int
        Iterations per run (>= 0).
    record : int or sequence of int
        Record the loss every ``record`` steps, or at the given steps (see
        :func:`log_steps`); 0 and ``num_iters`` are always recorded. The
        trainers take ``record`` by the same rule (:func:`~overparam.training.check_record`).
    dtype : {"float64", "float32"} or torch dtype
        Precision of all arithmetic.
    device : str or torch.device
        E.g. ``"cpu"`` or ``"cuda"``.
    gram : bool
        Use the moment form for p = 2 (d×d instead of m×d work per run).
    pad_rows : int
        Round each p-group up to a multiple of this many rows with inert rows.
        BLAS picks kernels by matrix shape, so a run's bits can depend on the
        batch size; with the default 4 (a common row tile of BLAS kernels;
        ``docs/design-notes.md``) a run gives bit-identical results in any
        batch in which it holds the same row. 1 disables padding.
    chunk : int
        Iterations between divergence checks and records (>= 1).
    progress : callable, optional
        Called as ``progress(iterations_done, num_iters)`` after each chunk.
    command : str, optional
        Recorded in the provenance (default: ``sys.argv``).
    target : float, optional
        A loss level (> 0): the result's ``reached_at`` then holds, for every
        run, the first iteration whose loss is <= ``target``, checked at every
        step whatever ``record`` is ("iterations to reach L < ε" of the toy
        of Chapter 4). Runs go on after reaching it.
    cuda_graph : bool, optional
        Capture a full chunk of iterations once as a CUDA graph and replay it
        (see :class:`_Chunks`): the same arithmetic, without a kernel launch
        from Python per operation. ``None`` (default): on for a CUDA
        ``device``, off otherwise. ``True`` needs a CUDA device. Recorded in
        the provenance.
    fuse : bool
        Compile the iteration with ``torch.compile`` (see :class:`_Steps`):
        the blocks' elementwise operations as a few fused kernels, on any
        device, with or without ``cuda_graph``. The losses then agree with
        the eager engine's to round-off, not bit for bit; the compile time
        (seconds to a minute) is part of ``wall_time``. Recorded in the
        provenance.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        Empty ``runs`` or entries that are not :class:`RunConfig`, bad
        ``num_iters``, ``record``, ``dtype``, ``pad_rows``, ``chunk``,
        ``target``, ``cuda_graph``, ``fuse``, ``progress`` (not ``None`` or a callable), a ``device`` that is not
        ``"cpu"`` or ``"cuda[:k]"`` or a CUDA device when none is available,
        an ``init_direction`` whose length is not d, or a problem that fails
        :func:`overparam.check_problem`; or, after the first chunk, a run's
        loss at step 0 is not finite (as the trainers: no step was taken, so
        the learning rate is not the cause).
    """
    X, y = regression_pair(problem)
    if isinstance(runs, RunConfig):
        raise ValueError(f"runs must be a non-empty sequence of RunConfig, got a single RunConfig ({runs.label}); "
                         "pass [config]")
    if not isinstance(runs, Iterable) or isinstance(runs, (str, Mapping)):
        raise ValueError(f"runs must be a non-empty sequence of RunConfig, got {type(runs).__name__}")
    runs = tuple(runs)
    if not runs:
        raise ValueError("runs must be a non-empty sequence of RunConfig, got an empty one")
    for i, c in enumerate(runs):
        if not isinstance(c, RunConfig):
            raise ValueError(f"runs must be a non-empty sequence of RunConfig, got runs[{i}] of type "
                             f"{type(c).__name__}")
    num_iters = check_int("num_iters", num_iters, 0)
    pad_rows, chunk = check_int("pad_rows", pad_rows, 1), check_int("chunk", chunk, 1)
    check_callable("progress", progress, "None or a callable (done, total)", optional=True)
    for c in runs:
        if c.init_direction is not None and len(c.init_direction) != X.shape[1]:
            raise ValueError(f"init_direction must have length d = {X.shape[1]} (the problem's features), "
                             f"got {len(c.init_direction)} in {c.label}")
    if target is not None:
        target = check_real("target", target, above=0, expected="a finite number > 0 or None")
    if record is None:  # check_record's None means "the trainer's record_every", which a sweep does not have
        raise ValueError("record must be an integer >= 1 (every so many steps) or a sorted sequence of steps, "
                         "got None")
    steps = check_record(record, num_iters)
    dt = _as_dtype(dtype)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but torch.cuda.is_available() is False; use device='cpu'")
    if cuda_graph is None:
        cuda_graph = device.type == "cuda"
    elif not isinstance(cuda_graph, bool):
        raise ValueError(f"cuda_graph must be True, False or None, got {cuda_graph!r}")
    elif cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got device={str(device)!r}; "
                         "pass cuda_graph=None or False")
    for name, flag in (("fuse", fuse), ("gram", gram)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    # everything that changes the arithmetic, and so the last digits of the losses, goes into the file
    provenance = make_provenance(command, problem_shape=list(X.shape), cuda_graph=cuda_graph, fuse=fuse, gram=gram,
                                 pad_rows=pad_rows, chunk=chunk)

    start_time = time.perf_counter()
    with torch.no_grad():
        prog = _Lockstep(X, y, runs, dt, device, gram, pad_rows)
        rows = prog.row_of
        loss = np.full((prog.rows, steps.size), np.nan)
        diverged_at = np.full(prog.rows, NEVER)
        reached_at = np.full(prog.rows, NEVER)
        weights_step = np.full(prog.rows, num_iters, dtype=np.int64)
        active = np.zeros(prog.rows, dtype=bool)
        active[rows] = True
        raw = torch.empty(min(chunk, num_iters + 1), prog.rows, dtype=dt, device=device)
        chunks = _Chunks(_Steps(prog, fuse), raw, chunk, cuda_graph)
        limit = None
        previous = current = None
        t = 0
        while t <= num_iters and active.any():
            n = min(chunk, num_iters + 1 - t)
            previous, current = current, prog.snapshot()
            chunks.run(n, min(n, num_iters - t))
            chunk_loss = raw[:n].double().cpu().numpy() * prog.scale.numpy()
            if limit is None:
                _check_start(chunk_loss[0, rows], runs)
                limit = divergence_limit(chunk_loss[0])
            bad = is_divergent(chunk_loss, limit) & active
            if target is not None:
                # Only steps before a run's divergence count (after it the row is reset and frozen).
                sound = np.arange(n)[:, None] < np.where(bad.any(axis=0), np.argmax(bad, axis=0), n)
                hit = (chunk_loss <= target) & sound & active & (reached_at == NEVER)
                now = np.flatnonzero(hit.any(axis=0))
                reached_at[now] = t + np.argmax(hit[:, now], axis=0)
            new = np.flatnonzero(bad.any(axis=0))
            if new.size:
                first = np.argmax(bad[:, new], axis=0)
                diverged_at[new] = t + first
                active[new] = False
                late = first > 0
                prog.restore_and_freeze(new[late], current)
                weights_step[new[late]] = t
                early, back = new[~late], (previous if previous is not None else current)
                prog.restore_and_freeze(early, back)
                weights_step[early] = max(t - chunk, 0) if previous is not None else t
            lo, hi = np.searchsorted(steps, [t, t + n])
            loss[:, lo:hi] = chunk_loss[steps[lo:hi] - t].T
            t += n
            if progress is not None and t <= num_iters:
                progress(t, num_iters)
        if progress is not None:
            progress(num_iters, num_iters)
        factors = prog.factors()
        w_e = prog.We[:, : prog.d].double().cpu().numpy()
    wall = time.perf_counter() - start_time

    loss, diverged_at, weights_step = loss[rows], diverged_at[rows], weights_step[rows]
    for i in np.flatnonzero(diverged_at != NEVER):
        loss[i, steps >= diverged_at[i]] = np.nan
    return SweepResult(
        configs=runs, steps=steps, loss=loss, diverged_at=diverged_at, w_e=w_e[rows],
        factors=tuple(tuple(factors[r]) for r in rows), weights_step=weights_step, num_iters=int(num_iters),
        wall_time=wall, dtype=str(dt).removeprefix("torch."), device=str(device), provenance=provenance,
        target=None if target is None else float(target), reached_at=None if target is None else reached_at[rows],
    )
