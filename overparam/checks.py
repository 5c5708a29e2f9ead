"""Self-checks for the exercises: ``op.checks.<name>(my_function)``.

Each check runs a student's function on several seeded cases, compares it with
the library's reference implementation, prints a one-line verdict (which case
differed, and by how much, when it fails) and returns a :class:`CheckResult`
that is truthy only on a pass. The reference implementations are the ones the
chapters introduce; the cases are small and random but reproducible.

Example
-------
>>> import overparam as op
>>> def my_gradient(w, X, y, p):
...     r = X @ w - y
...     return X.T @ r ** (p - 1) / len(y)
>>> op.checks.lp_gradient(my_gradient)            # doctest: +SKIP
lp_gradient: passed 6 of 6 cases
"""
from __future__ import annotations

import copy

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import balance, convnet_analysis, deep, dynamics, factorization, losses

__all__ = [
    "CheckResult",
    "run_check",
    "lp_loss",
    "lp_gradient",
    "end_to_end",
    "layer_gradients",
    "imbalance",
    "end_to_end_direction",
    "end_to_end_step",
    "single_output_direction",
    "product_penalty_gradients",
    "effective_rank",
]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a self-check: ``passed`` cases out of ``total``, and the first failure's description."""

    name: str
    passed: int
    total: int
    failure: str | None = None
    #: Whether the verdict was printed when the check ran (:func:`run_check`'s ``verbose``).
    printed: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.failure is None

    def _ipython_display_(self) -> None:
        """In a notebook, a check called as a cell's last line shows its verdict once: nothing more where it was
        printed already, the verdict where it was not (``verbose=False``)."""
        if not self.printed:
            print(self)

    def __str__(self) -> str:
        if self.failure is None:
            return f"{self.name}: passed {self.passed} of {self.total} cases"
        return f"{self.name}: FAILED — {self.failure} ({self.passed} of {self.total} cases passed before it)"


Case = tuple[str, tuple[Any, ...]]

#: The largest error, relative to the largest expected entry, that single-precision arithmetic explains
#: (float32's eps is 1.2e-7; a sum of a few hundred terms can lose a few hundred of them).
_SINGLE_PRECISION_ERROR = 1e-4


def _as_list(value: Any) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        return [np.asarray(v, dtype=np.float64) for v in value]
    return [np.asarray(value, dtype=np.float64)]


def _is_low_precision(value: Any) -> bool:
    """Whether ``value`` (an array, a tensor, or a list of them) holds float32 or float16 numbers."""
    if isinstance(value, (list, tuple)):
        return any(_is_low_precision(v) for v in value)
    return str(getattr(value, "dtype", "")).removeprefix("torch.") in {"float32", "float16", "bfloat16"}


def _compare(got: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise what differs."""
    if got is None:
        return "returned None (is a return statement missing?)"
    hint = ("; your result is in single precision and the check allows double-precision round-off only: "
            "compute in float64 (numpy's default)" if _is_low_precision(got) else "")
    if (isinstance(expected, (list, tuple)) and len(expected) > 1 and not isinstance(got, (list, tuple))
            and len(getattr(got, "shape", ()))):
        return (f"returned one array of shape {tuple(got.shape)}, expected {len(expected)} separate arrays "
                f"(return them as a tuple or a list)")
    try:
        # A list is a list of results only where the reference returns several arrays; where it returns one,
        # a list (a gradient built entry by entry) is that one array.
        got_l = _as_list(got) if isinstance(expected, (list, tuple)) else [np.asarray(got, dtype=np.float64)]
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: a torch tensor that requires grad
        return f"returned something that is not an array ({exc})"
    exp_l = _as_list(expected)
    if len(got_l) != len(exp_l):
        return f"returned {len(got_l)} array{'s' if len(got_l) != 1 else ''}, expected {len(exp_l)}"
    for i, (g, e) in enumerate(zip(got_l, exp_l)):
        where = f"item {i}: " if len(exp_l) > 1 else ""
        if g.shape != e.shape:
            same_size = f" (the right number of entries: reshape it to {e.shape})" if g.size == e.size else ""
            return f"{where}shape {g.shape}, expected {e.shape}{same_size}"
        if not np.all(np.isfinite(g)):
            return f"{where}contains nan or inf"
        err = np.abs(g - e)
        bound = atol + rtol * np.abs(e)
        if np.any(err > bound):
            k = int(np.argmax(err - bound))
            idx = np.unravel_index(k, e.shape) if e.ndim else ()
            # the precision hint only where single precision can explain the error: round-off of a few 1e-7
            # relative, not a wrong formula that happens to be computed in float32
            near = err.max() <= _SINGLE_PRECISION_ERROR * max(float(np.abs(e).max()), atol)
            return (f"{where}largest error {err.max():.3g} (at index {tuple(int(i) for i in idx)}: "
                    f"got {g.flat[k]:.10g}, expected {e.flat[k]:.10g}){hint if near else ''}")
    return None


def run_check(
    name: str,
    student: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Case],
    *,
    rtol: float = 1e-7,
    atol: float = 1e-10,
    verbose: bool = True,
) -> CheckResult:
    """Run ``student`` and ``reference`` on every case and compare (the engine behind every check).

    Parameters
    ----------
    name : str
        Shown in the verdict.
    student, reference : callable
        Called with the same positional arguments.
    cases : iterable of (description, args)
    rtol, atol : float
        Tolerances of the element-wise comparison.
    verbose : bool
        Print the verdict.
    """
    if not callable(student):
        raise ValueError(f"{name}: expected your function, got {type(student).__name__}")
    cases = list(cases)
    passed, failure = 0, None
    for description, args in cases:
        expected = reference(*copy.deepcopy(args))
        try:
            got = student(*copy.deepcopy(args))
        except Exception as exc:  # noqa: BLE001 - any error in student code is a failed case
            failure = f"case '{description}': your function raised {type(exc).__name__}: {exc}"
            break
        problem = _compare(got, expected, rtol, atol)
        if problem is not None:
            failure = f"case '{description}': {problem}"
            break
        passed += 1
    result = CheckResult(name, passed, len(cases), failure, printed=verbose)
    if verbose:
        print(result)
    return result


# ---------------------------------------------------------------------------
# Seeded cases
# ---------------------------------------------------------------------------
def _regression_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for p in (2, 4, 6):
        for m, d in ((7, 3), (20, 5)):
            X, y, w = rng.normal(size=(m, d)), rng.normal(size=m), 0.5 * rng.normal(size=d)
            cases.append((f"p={p}, m={m}, d={d}", (w, X, y, p)))
    return cases


def _factor_cases(seed: int, depths: Sequence[int] = (1, 2, 3, 4)) -> list[tuple[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    out = []
    for depth in depths:
        dims = [4] + [int(n) for n in rng.integers(1, 5, size=depth - 1)] + [2]  # ints: "dims [4, 3, 2]" in messages
        out.append((f"depth {depth}, dims {dims}", [rng.normal(size=(dims[j + 1], dims[j])) for j in range(depth)]))
    return out


def _rule_cases(seed: int, depths: Sequence[int] = (1, 2, 3, 5), rank_one_depth: int = 3) -> list[Case]:
    """(W_e, G, N) for every depth and the shapes 1x4, 2x3, 3x3, then a rank-1 2x4 W_e at ``rank_one_depth``."""
    rng = np.random.default_rng(seed)
    cases = []
    for depth in depths:
        for k, d in ((1, 4), (2, 3), (3, 3)):
            cases.append((f"N={depth}, W_e {k}x{d}", (rng.normal(size=(k, d)), rng.normal(size=(k, d)), depth)))
    low_rank = np.outer(rng.normal(size=2), rng.normal(size=4))
    cases.append((f"N={rank_one_depth}, rank-1 W_e 2x4", (low_rank, rng.normal(size=(2, 4)), rank_one_depth)))
    return cases


def _step_cases() -> list[Case]:
    """(W_e, G, N, lr, weight_decay) for :func:`end_to_end_step`: step size 1, depths 1, 2, 5 and 8, then the 2x3
    cases of depths 2 and 5 again at step size 0.5 and λ = 0.2, where η shows (at η = 1, a step that forgets η or
    squares it is right)."""
    rule = _rule_cases(7, depths=(1, 2, 5, 8), rank_one_depth=5)
    again = [(f"{desc}, lr=0.5, λ=0.2", args + (0.5, 0.2)) for desc, args in rule
             if desc in ("N=2, W_e 2x3", "N=5, W_e 2x3")]
    return [(f"{desc}, lr=1, λ=0.1", args + (1.0, 0.1)) for desc, args in rule] + again


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------
def lp_loss(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(w, X, y, p)`` against :func:`overparam.lp_loss` (Chapter 1, ``ch-lp-regression``)."""
    return run_check("lp_loss", fn, losses.lp_loss, _regression_cases(1), verbose=verbose)


def lp_gradient(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(w, X, y, p)`` against :func:`overparam.lp_gradient` (Chapter 1, ``ch-lp-regression``)."""
    return run_check("lp_gradient", fn, losses.lp_gradient, _regression_cases(2), verbose=verbose)


def end_to_end(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(factors)`` against :func:`overparam.end_to_end` (Chapter 2, ``ch-deep-linear``)."""
    cases = [(desc, (fs,)) for desc, fs in _factor_cases(3)]
    return run_check("end_to_end", fn, deep.end_to_end, cases, verbose=verbose)


def layer_gradients(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(factors, grad_e)`` against :func:`overparam.layer_gradients` (Chapter 2, ``ch-deep-linear``)."""
    rng = np.random.default_rng(4)
    cases = [(desc, (fs, rng.normal(size=deep.end_to_end(fs).shape))) for desc, fs in _factor_cases(4)]
    return run_check("layer_gradients", fn, deep.layer_gradients, cases, verbose=verbose)


def imbalance(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(factors)`` against :func:`overparam.imbalance` (Chapter 3, ``ch-balancedness``)."""
    cases = [(desc, (fs,)) for desc, fs in _factor_cases(5, depths=(2, 3, 4))]
    return run_check("imbalance", fn, balance.imbalance, cases, verbose=verbose)


def end_to_end_direction(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(W_e, grad, depth)`` against :func:`overparam.end_to_end_direction` (Chapter 4)."""
    return run_check("end_to_end_direction", fn, dynamics.end_to_end_direction, _rule_cases(6, (1, 2, 5, 8), 5),
                     rtol=1e-6, atol=1e-8, verbose=verbose)


def end_to_end_step(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    r"""Check ``fn(W_e, grad, depth, lr, weight_decay)`` against :func:`overparam.end_to_end_step` (Chapter 4).

    The cases take the step size η = 1 (with λ = 0.1), so that the step
    :math:`\eta \sum_j [W_eW_e^\top]^{(j-1)/N} G [W_e^\top W_e]^{(N-j)/N}` is as large as
    :math:`(1 - \eta\lambda N) W_e` in the compared iterate: with a small η the iterate is mostly
    :math:`W_e`, and an error in the direction would be shrunk by η before it meets the tolerance.
    The depths are 1, 2, 5 and 8. Where a Gram matrix is singular (every case with fewer rows than
    columns), a power computed without clamping the round-off eigenvalues (about 1e−16 of the largest)
    is off by that eigenvalue to the power 1/N: about 6e−4 at depth 5 and 1e−2 at depth 8, far above
    the tolerance, while at depth 3 it would be about 5e−6, too close to it for a clear verdict.
    Two last cases repeat depths 2 and 5 at η = 0.5 and λ = 0.2, so that a step that leaves η out
    of the decay or of the direction, or squares it, fails.
    """
    return run_check("end_to_end_step", fn, dynamics.end_to_end_step, _step_cases(), rtol=1e-6, atol=1e-8,
                     verbose=verbose)


def single_output_direction(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(w, grad, depth)`` against :func:`overparam.single_output_direction` (Chapter 4)."""
    rng = np.random.default_rng(8)
    cases = [(f"N={n}, d={d}", (rng.normal(size=d), rng.normal(size=d), n)) for n in (1, 2, 3, 6) for d in (2, 5)]
    return run_check("single_output_direction", fn, dynamics.single_output_direction, cases,
                     rtol=1e-7, atol=1e-10, verbose=verbose)


def product_penalty_gradients(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(W_a, W_b)`` against :func:`overparam.product_penalty_gradients` (Chapter 6, ``ch-mnist``)."""
    rng = np.random.default_rng(9)
    shapes = ((3, 3, 3), (6, 4, 2), (2, 5, 5), (9, 3, 1))
    cases = [(f"W_a {m}x{k}, W_b {k}x{n}", (rng.normal(size=(m, k)), rng.normal(size=(k, n)))) for m, k, n in shapes]
    return run_check("product_penalty_gradients", fn, convnet_analysis.product_penalty_gradients, cases,
                     verbose=verbose)


def effective_rank(fn: Callable[..., Any], *, verbose: bool = True) -> CheckResult:
    """Check ``fn(W)`` against :func:`overparam.factorization.effective_rank` (Chapter 7, ``ch-beyond-speed``).

    Cases: full-rank, rank-deficient (exact zero singular values) and rectangular matrices, a multiple of the
    identity (effective rank n), and a small tail of genuine singular values down to 1e-4 of the largest (the
    nearly low-rank matrices of Chapter 7), which an answer that drops the small ones by a threshold gets wrong.
    """
    rng = np.random.default_rng(10)
    low = rng.normal(size=(6, 2)) @ rng.normal(size=(2, 6))
    diag = np.diag([3.0, 1.0, 0.0, 0.0])
    tail = np.diag([1.0, 0.5, 1e-2, 1e-3, 1e-4])
    cases = [("5x5 Gaussian", (rng.normal(size=(5, 5)),)), ("4x7 Gaussian", (rng.normal(size=(4, 7)),)),
             ("2 x identity(6)", (2 * np.eye(6),)), ("rank 2, 6x6", (low,)), ("diag(3, 1, 0, 0)", (diag,)),
             ("diag(1, 0.5, 1e-2, 1e-3, 1e-4)", (tail,))]
    return run_check("effective_rank", fn, factorization.effective_rank, cases, rtol=1e-6, atol=1e-8,
                     verbose=verbose)
