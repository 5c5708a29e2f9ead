"""One training loop for every full-batch trainer of the book (Chapters 1, 2, 4 and 5).

Gradient descent on the linear model (Chapter 1, ch-lp-regression), on a deep
linear network (Chapter 2, ch-deep-linear), the end-to-end update rule of
arXiv:1802.06509, Theorem 1 and Equation 12 (Chapter 4, ``ch-preconditioner``), and gradient descent
with a penalty (Chapter 5, ``ch-non-regularizer``) differ only in the step they take. Each supplies a
*step function* and a *loss function* to :func:`train_loop`, which owns what
they share:

* the divergence rule: a step diverges when its loss is not finite or exceeds
  :data:`DIVERGENCE_FACTOR` times the initial loss (:func:`divergence_limit`,
  :func:`is_divergent`); the run then raises :class:`DivergenceError` naming
  the step, or stops and keeps its history up to the step before;
* the recording rule: the loss is kept every ``record_every`` steps and at the
  last step of the run (:func:`is_recorded`);
* one sentinel for "never" (not diverged, never reached, never crossed): a
  single iteration number that may not exist is ``int | None``, ``None``
  meaning never; an *array* of them, one per run (the batched sweep engine's
  ``diverged_at`` and ``reached_at``, the Ethanol precision tables), is a float
  array in which :data:`NEVER` (``inf``) means never, so that "never" sorts
  after every step and a ratio of steps stays defined. :func:`step_or_none`
  and :func:`as_step_array` convert between the two;
* the failure rule: a run *failed* when it diverged or, without diverging,
  *collapsed*: ended back at its initial loss or at :data:`COLLAPSE_FACTOR`
  times its best (:func:`collapse_step`, :attr:`History.failed_at`);
* the result types, one family: :class:`History` (steps, loss, diverged_at),
  :class:`GDHistory` (a weight vector's run) and :class:`DeepHistory` (a deep
  network's run), and :func:`largest_stable`, the learning-rate rule of
  Chapters 1, 2 and 5: the largest η whose run did not fail.

The batched sweep engine (:mod:`overparam.sweep`) is the fast path for grids
of runs and keeps its own vectorized loop; it applies the same divergence and
failure rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Literal, Sequence, TypeVar

import numpy as np
import torch

from .validation import check_callable, check_int, check_real, check_sequence, is_sequence

__all__ = [
    "COLLAPSE_FACTOR",
    "DIVERGENCE_FACTOR",
    "NEVER",
    "DeepHistory",
    "DivergenceError",
    "GDHistory",
    "History",
    "Trace",
    "check_record",
    "check_run",
    "collapse_step",
    "divergence_limit",
    "format_iterations",
    "is_divergent",
    "is_recorded",
    "largest_stable",
    "largest_stable_run",
    "measure_at",
    "outcome_phrase",
    "to_numpy",
    "as_step_array",
    "step_or_none",
    "train_loop",
]

#: A run counts as diverged when its loss is not finite or exceeds this multiple of its initial loss.
DIVERGENCE_FACTOR = 1e6

#: "Never" in an array of iteration numbers (not diverged, never reached): after every step.
NEVER = math.inf

#: A run that ends at this many times its own best loss or above has collapsed (:func:`collapse_step`).
COLLAPSE_FACTOR = 2.0
#: Rises of the loss smaller than this many units of round-off (``eps`` of the run's dtype times the initial
#: loss) are not a collapse: a run that has converged to round-off jitters there (:func:`collapse_step`).
ROUND_OFF_UNITS = 100.0


def step_or_none(value: float) -> int | None:
    """One entry of an array of iteration numbers as a scalar: an ``int``, or ``None`` for :data:`NEVER`."""
    return None if value == NEVER else int(value)


def as_step_array(values: np.ndarray) -> np.ndarray:
    """An array of iteration numbers in the one format: float, :data:`NEVER` for never.

    Also reads the format of results files written before it was shared, in
    which integer arrays marked "never" with −1.
    """
    out = np.asarray(values, dtype=float).copy()
    out[out < 0] = NEVER
    return out

#: What a trainer iterates: a weight vector, or the list of a network's layers.
State = TypeVar("State")
#: The loss at a state, a scalar tensor or number.
LossFunction = Callable[[State], torch.Tensor | float]
#: One step from a state: (the loss at that state, the next state).
StepFunction = Callable[[State], tuple[torch.Tensor | float, State]]
#: A quantity kept at every recorded step (e.g. the end-to-end matrix), as a tensor.
Observer = Callable[[State], torch.Tensor]


class DivergenceError(RuntimeError):
    """A training run diverged.

    Parameters
    ----------
    step : int
        The first step whose loss broke the divergence rule.
    loss : float or None
        Its loss; ``None`` for a method that does not compute one (the message then leaves it out).
    what : str
        The method, for the message (e.g. "gradient descent").
    hint : str, optional
        What to do about it; by default, a smaller learning rate or
        ``on_divergence="stop"``.
    """

    def __init__(self, step: int, loss: float | None, what: str = "gradient descent", hint: str | None = None):
        self.step, self.loss = step, loss
        hint = hint or ("use a smaller learning rate, or pass on_divergence='stop' to keep the history up to that step")
        at = f" (loss {loss:.3g})" if loss is not None else ""
        super().__init__(f"{what} diverged at step {step}{at}; {hint}")


def collapse_step(steps: np.ndarray, loss: np.ndarray, dtype: str = "float64") -> int | None:
    """The step at which a run that did not diverge collapsed; ``None`` if it did not (Chapters 1, 2, 4, 5).

    A run collapses when it *ends* at or above its initial loss, or at or
    above :data:`COLLAPSE_FACTOR` times the best loss it had reached: a deep
    network thrown back onto the saddle at the origin by a too-large step does
    this without ever crossing the divergence threshold, and so can plain
    gradient descent on ℓ4 above its stability limit. The step returned is the
    first recorded one after the run's best at which its loss was back above
    either bound (resolution: ``steps``).

    A rise above the best within round-off, at most :data:`ROUND_OFF_UNITS`
    times ``eps`` of ``dtype`` times the initial loss, is not a collapse (unless
    it is back at the initial loss): a run that converges to a loss of zero
    jitters around it (the ℓ2 loss in the moment form,
    :math:`\tfrac12 w^\top H w - b^\top w + c`, can even come out slightly
    negative in float32), and twice its best is then still round-off.

    Where the best is negative (a penalized objective with a reward,
    :class:`~overparam.regularizer.NormPowerPenalty` with μ < 0), "a factor
    times the best" means nothing, and the rule is stricter: a run that ends
    above its best by more than round-off counts as collapsed, however small
    the rise. A run that keeps descending, as gradient descent on a convex
    objective at a stable step does, is never affected.

    The rule reads the loss itself, not :math:`L - L^*` (it knows no
    optimum): where :math:`L^*` is far above 0, a run near it must climb by
    about :math:`L^*` before it counts as collapsed, however many times its
    best :math:`L - L^*` that is. Where the optimum is known, compare the
    final and the best :math:`L - L^*` as well (Chapter 2 does, for the runs it
    chooses).

    Parameters
    ----------
    steps : ndarray of int, shape (n,)
        The recorded steps, from 0.
    loss : ndarray, shape (n,)
        The loss at those steps (a run up to its divergence, if it diverged).
    dtype : str
        The floating-point type the run computed in, e.g. ``"float32"``.

    Returns
    -------
    int or None
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 1 or loss.size == 0 or np.shape(steps) != loss.shape:
        raise ValueError(f"steps and loss must be 1-D of the same length >= 1, got shapes {np.shape(steps)} "
                         f"and {loss.shape}")
    eps = float(np.finfo(np.dtype(dtype)).eps)
    k = int(np.argmin(loss))
    # the rise above the best, against (factor - 1) x the best (a loss >= 0) or round-off, whichever is larger; a
    # difference, not a sum, so that at a large |best| (a penalized objective can be negative) round-off is not lost
    rise_allowed = max((COLLAPSE_FACTOR - 1) * loss[k], ROUND_OFF_UNITS * eps * abs(loss[0]))
    back = (loss[k:] >= loss[0]) | (loss[k:] - loss[k] >= rise_allowed)
    return int(steps[k + int(np.argmax(back))]) if back[-1] else None


def outcome_phrase(loss: np.ndarray, diverged_at: int | None, failed_at: int | None) -> str:
    """How a run ended, in one phrase (:meth:`History.outcome`, :meth:`~overparam.sweep.SweepResult.outcome`).

    ``"trained"``, ``"diverged at step N"``, ``"collapsed from step N (ends at L, R× its best)"`` (``"…, its best
    B)"`` when the best B is not positive, as a penalized objective's can be), or, for a failed run whose best
    recorded loss is its initial one (e.g. a start at the saddle point 0, which gradient descent never leaves),
    ``"never improved on its initial loss (ends at L)"``.
    """
    if diverged_at is not None:
        return f"diverged at step {int(diverged_at):,}"
    if failed_at is None:
        return "trained"
    if np.min(loss) >= loss[0]:
        return f"never improved on its initial loss (ends at {loss[-1]:.4g})"
    best = float(np.min(loss))
    than_best = f"{loss[-1] / best:.1f}× its best" if best > 0 else f"its best {best:.4g}"
    return f"collapsed from step {int(failed_at):,} (ends at {loss[-1]:.4g}, {than_best})"


# ---------------------------------------------------------------------------
# The result types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """The loss of one training run at its recorded steps.

    Attributes
    ----------
    steps : ndarray of int
        Iterations at which the loss was recorded (0 is the initial point).
    loss : ndarray
        Training loss at those iterations.
    diverged_at : int or None
        First step whose loss was non-finite or above ``DIVERGENCE_FACTOR``
        times the initial loss; ``None`` for a stable run.
    dtype : str
        The floating-point type the run computed in (the losses are kept in
        float64); its round-off sets what counts as a collapse (:attr:`failed_at`).
    objective : ndarray or None
        The objective the run minimized, at ``steps``, where it is not
        ``loss``: gradient descent with a penalty (Chapter 5) records the data
        loss L in ``loss`` and L + R here, and a run that trades L for R is not
        a collapse. The failure rule reads it (:attr:`failed_at`); ``None``
        means the objective is ``loss``.
    """

    steps: np.ndarray
    loss: np.ndarray
    diverged_at: int | None = field(default=None, kw_only=True)
    dtype: str = field(default="float64", kw_only=True)
    objective: np.ndarray | None = field(default=None, kw_only=True)

    @property
    def diverged(self) -> bool:
        """Whether the run diverged."""
        return self.diverged_at is not None

    @property
    def failed_at(self) -> int | None:
        """The step at which the run failed, by diverging or by collapsing (:func:`collapse_step`); ``None`` if it trained."""
        return self.diverged_at if self.diverged else collapse_step(self.steps, self._minimized, self.dtype)

    @property
    def trained(self) -> bool:
        """Whether the run neither diverged nor collapsed (:attr:`failed_at`)."""
        return self.failed_at is None

    def outcome(self) -> str:
        """How the run ended, in one phrase (:func:`outcome_phrase`; the losses it names are the ``objective``'s)."""
        return outcome_phrase(self._minimized, self.diverged_at, self.failed_at)

    @property
    def _minimized(self) -> np.ndarray:
        """What the run minimized, at ``steps``: ``objective``, or ``loss`` without one."""
        return self.loss if self.objective is None else self.objective

    @property
    def final_loss(self) -> float:
        """The last recorded loss (``inf`` for a diverged run)."""
        return float("inf") if self.diverged else float(self.loss[-1])

    def iterations_to(self, target: float) -> int | None:
        """First recorded iteration whose loss is at most ``target`` (``None`` if never)."""
        hit = np.flatnonzero(self.loss <= check_real("target", target))
        return int(self.steps[hit[0]]) if hit.size else None


@dataclass(frozen=True)
class GDHistory(History):
    """A run of a first-order method on a weight vector (Chapters 1 and 5).

    Everything of :class:`History`, plus:

    Attributes
    ----------
    w : ndarray, shape (d,)
        Final weights; for a diverged run, the last iterate before the
        divergence.
    lr : float
        Learning rate.
    p : int
        Loss exponent.
    """

    w: np.ndarray
    lr: float
    p: int


@dataclass(frozen=True, kw_only=True)
class DeepHistory(GDHistory):
    """A run of GD on a deep linear network, or of the end-to-end rule (Chapters 2 and 4).

    Everything of :class:`GDHistory` (``w`` is the final end-to-end vector of
    shape (d,)), so :func:`largest_stable` accepts it, plus:

    Attributes
    ----------
    W_e : ndarray, shape (len(steps), 1, d)
        End-to-end matrix at each recorded step.
    depth : int
        N.
    factors : tuple of ndarray
        Final layers ``(W_1, …, W_N)`` of a network run (the last iterate
        before the divergence for a diverged one); empty for a run of the
        end-to-end rule.
    weight_decay : float
        λ.
    """

    W_e: np.ndarray
    depth: int
    factors: tuple[np.ndarray, ...] = ()
    weight_decay: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Trace(History, Generic[State]):
    """What :func:`train_loop` returns: the recorded losses and the state a trainer builds its history from.

    Everything of :class:`History`, plus:

    Attributes
    ----------
    final : State
        The last state whose loss was admissible: the state after the last
        step of a stable run, the one before the diverging step of a diverged
        run (the initial state if that step is 0).
    observed : ndarray or None
        ``observe(state)`` at each recorded step, stacked, in float64, shape
        ``(len(steps), *shape)``; ``None`` when the loop had no ``observe``.
    """

    final: State
    observed: np.ndarray | None = None


def largest_stable(histories: Sequence[GDHistory]) -> GDHistory:
    """The run with the largest learning rate that trained: neither diverged nor collapsed.

    The learning-rate rule of Chapter 1 (and, through
    :data:`~overparam.sweep.LARGEST_STABLE`, of the depth experiments of
    Chapter 2): on a grid, keep the largest η stable for the *whole* run, a run
    that ends far above its own best (:attr:`History.failed_at`) counting as
    unstable.

    Parameters
    ----------
    histories : sequence of GDHistory
        One run per learning rate (any :class:`GDHistory`, e.g. a
        :class:`DeepHistory`).

    Returns
    -------
    GDHistory

    Raises
    ------
    ValueError
        If ``histories`` is empty or every run failed.
    """
    histories = list(histories)
    if not histories:
        raise ValueError("histories must hold at least one run, got an empty sequence")
    for i, h in enumerate(histories):
        if not isinstance(h, GDHistory):
            raise ValueError(f"histories[{i}] must be a GDHistory (a training run), got {type(h).__name__}")
    stable = [h for h in histories if h.trained]
    if not stable:
        raise ValueError("histories: every run diverged or collapsed; extend the learning-rate grid downwards")
    return max(stable, key=lambda h: h.lr)


def measure_at(advance: Callable[[State, int], State], start: State, checkpoints: Sequence[int],
               measure: Callable[[State], float]) -> np.ndarray:
    """Train in chunks and measure the state at step 0 and at every checkpoint.

    For quantities too costly to compute at every step (a Hessian's top
    eigenvalue in Chapter 1, the imbalance of the layers in Chapter 3):
    ``advance(state, n)`` runs ``n`` more steps of any trainer and returns the
    new state; the chunks end exactly at ``checkpoints``.

    Parameters
    ----------
    advance : callable
        ``advance(state, n) -> state``, e.g.
        ``lambda w, n: op.gradient_descent(X, y, 4, lr, n, w0=w).w``.
    start : state
    checkpoints : sequence of int
        Strictly increasing steps >= 1.
    measure : callable
        ``measure(state) -> float``.

    Returns
    -------
    ndarray, shape (1 + len(checkpoints),)
        ``measure`` at step 0, then at each checkpoint.

    Raises
    ------
    ValueError
        ``advance`` or ``measure`` is not callable, or ``checkpoints`` is not a non-empty
        sequence of strictly increasing integers >= 1 (checked before any step).
    """
    check_callable("advance", advance, "a callable (state, n) -> state")
    check_callable("measure", measure, "a callable state -> float")
    marks = [check_int("checkpoints", t, 1) for t in check_sequence("checkpoints", checkpoints, "steps >= 1")]
    if any(b <= a for a, b in zip(marks, marks[1:])):
        raise ValueError(f"checkpoints must be strictly increasing, got {list(checkpoints)}")
    state, done, values = start, 0, [float(measure(start))]
    for t in marks:
        state = advance(state, t - done)
        done = t
        values.append(float(measure(state)))
    return np.array(values)


H = TypeVar("H", bound=History)


def largest_stable_run(train: Callable[[float], H], lrs: Sequence[float]) -> H:
    """Train with each learning rate from the largest down; return the first run that trained.

    The rule of :func:`largest_stable` (neither diverged nor collapsed) without
    training the runs it would discard: ``train(lr)`` must stop a diverging run
    rather than raise (e.g. ``on_divergence="stop"``). Chapter 5 picks every
    step size this way.

    Raises
    ------
    ValueError
        If ``train`` is not callable, ``lrs`` is not a sequence (a scalar, a 2-D array) or is empty, an
        entry of ``lrs`` is not a number > 0 (named ``lrs[i]``), or every run failed (the message lists the grid).
    """
    if not callable(train):
        raise ValueError(f"train must be a callable lr -> history, got {type(train).__name__}")
    if not is_sequence(lrs):
        raise ValueError(f"lrs must be a sequence of learning rates, got {lrs!r}")
    grid = sorted((check_real(f"lrs[{i}]", lr, above=0) for i, lr in enumerate(lrs)), reverse=True)
    if not grid:
        raise ValueError("lrs must list at least one learning rate")
    for lr in grid:
        run = train(lr)
        if run.trained:
            return run
    raise ValueError(f"lrs: every run diverged or collapsed (η = {', '.join(f'{lr:g}' for lr in grid)}); "
                     "extend the learning-rate grid downwards")


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------


def format_iterations(count: float) -> str:
    """An iteration count as the chapters' tables print it: ``"12,345"``, or ``"not reached"`` for never.

    Parameters
    ----------
    count : float
        Iterations to a target (Chapters 2 and 7); not finite (:data:`NEVER`) where no run got there.

    Returns
    -------
    str
        The count rounded to an integer with thousands separators, or ``"not reached"`` where it is not
        finite: words, which a screen reader reads out, where a dash would be skipped or read as "em dash".
    """
    count = float(count)
    return f"{count:,.0f}" if math.isfinite(count) else "not reached"


def divergence_limit(initial_loss: Any) -> Any:
    """The largest admissible loss of a run: ``DIVERGENCE_FACTOR`` × the initial loss.

    The one divergence rule of the book, with :func:`is_divergent`: the
    training loop, the sweep engine (many runs at once, hence arrays) and the
    convnet trainer all apply it.

    Parameters
    ----------
    initial_loss : float or array_like
        The loss at step 0 (one per run for an array).

    Returns
    -------
    float or ndarray
        ``DIVERGENCE_FACTOR * initial_loss``, or ``DIVERGENCE_FACTOR`` itself
        when the initial loss is not positive (0 for a start at an exact fit,
        which may still move). A non-finite initial loss is divergent by
        :func:`is_divergent` whatever the limit. A float for a scalar input.
    """
    loss = np.asarray(initial_loss, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        limit = np.where(loss > 0, loss * DIVERGENCE_FACTOR, DIVERGENCE_FACTOR)
    return float(limit) if limit.ndim == 0 else limit


def is_divergent(loss: Any, limit: Any) -> Any:
    """Whether a loss breaks the divergence rule: not finite, or above ``limit``.

    Parameters
    ----------
    loss : float or array_like
        Losses (for arrays, broadcast against ``limit``: e.g. steps × runs).
    limit : float or array_like
        From :func:`divergence_limit`; a NaN limit makes every loss divergent.

    Returns
    -------
    bool or ndarray of bool
        A bool for scalar inputs.
    """
    loss = np.asarray(loss, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(loss) & (loss <= np.asarray(limit, dtype=np.float64)))
    return bool(bad) if bad.ndim == 0 else bad


def is_recorded(t: int, num_iters: int, record_every: int) -> bool:
    """Whether step ``t`` of a stable ``num_iters``-step run is recorded: every ``record_every`` steps and the last.

    A diverged run also records its last admissible step (see :func:`train_loop`).
    """
    return t % record_every == 0 or t == num_iters


def check_record(record: int | Sequence[int] | np.ndarray | None, num_iters: int,
                 record_every: int = 1) -> np.ndarray | None:
    """The steps at which a run records, given its ``record=`` (Chapters 1, 2, 4, 5 and 7).

    One rule for :func:`train_loop` (so every trainer) and :func:`overparam.run_sweep`:
    an integer k means every k steps; a sequence means those steps. A log-spaced
    grid merged with a linear one (``op.log_steps(num_iters, 20, every=...)``)
    shows the start of a run on a log x-axis and its end on a linear one.

    Parameters
    ----------
    record : int, array_like of int, or None
        An integer >= 1: every ``record`` steps. Or steps in ``[0, num_iters]``,
        sorted, without repeats (``np.union1d`` gives that). Either way 0 and
        ``num_iters`` are added. ``None``: the trainer records every
        ``record_every`` steps instead.
    num_iters : int
        The run's length (already checked).
    record_every : int
        The trainers' older recording argument: with ``record`` it must be
        left at 1.

    Returns
    -------
    ndarray of int64 or None
        The steps, 0 and ``num_iters`` included; ``None`` when ``record`` is.

    Raises
    ------
    ValueError
        Naming ``record``: neither an integer >= 1 nor a non-empty 1-D
        sequence of integers, a step outside ``[0, num_iters]``, unsorted or
        repeated steps, or ``record_every`` given as well.
    """
    if record is None:
        return None
    if record_every != 1:
        raise ValueError(f"give record or record_every, not both (got record_every={record_every})")
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        every = check_int("record", record, 1, expected="an integer >= 1 (every so many steps) or a sorted "
                                                        "sequence of steps")
        return np.union1d(np.arange(0, num_iters + 1, every), [num_iters]).astype(np.int64)
    try:
        steps = np.asarray(record if isinstance(record, np.ndarray) else list(record))
    except (TypeError, ValueError):  # not iterable (record=2.0), or ragged
        steps = np.empty((0, 0))
    if steps.ndim != 1 or steps.size == 0 or steps.dtype.kind not in "iu" or isinstance(record, str):
        raise ValueError("record must be an integer >= 1 (every so many steps) or a non-empty 1-D sequence of "
                         f"integer steps, e.g. op.log_steps(num_iters, 20, every=50); got {record!r:.80}")
    if steps.min() < 0 or steps.max() > num_iters:
        raise ValueError(f"record must hold steps in [0, num_iters={num_iters}], got {steps.min()} to {steps.max()}")
    if np.any(np.diff(steps) <= 0):
        raise ValueError("record must be sorted and without repeated steps (np.union1d or np.unique gives that)")
    return np.union1d(steps, [0, num_iters]).astype(np.int64)


def check_run(lr: float, num_iters: int, record_every: int, on_divergence: str) -> tuple[float, int, int]:
    """The arguments every trainer shares, checked, as Python numbers.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    num_iters : int
        Number of steps, >= 0.
    record_every : int
        >= 1.
    on_divergence : {"raise", "stop"}

    Returns
    -------
    tuple
        ``(lr, num_iters, record_every)``.

    Raises
    ------
    ValueError
        Naming the first bad argument.
    """
    _check_on_divergence(on_divergence)
    return check_real("lr", lr, above=0), check_int("num_iters", num_iters, 0), check_int("record_every", record_every, 1)


def _check_on_divergence(on_divergence: str) -> None:
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")


def to_numpy(T: torch.Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array, detached from any autograd graph (always a copy)."""
    return T.detach().numpy().astype(np.float64)


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


def train_loop(
    step: StepFunction,
    loss: LossFunction,
    state: State,
    num_iters: int,
    *,
    record_every: int = 1,
    record: int | Sequence[int] | np.ndarray | None = None,
    on_divergence: Literal["raise", "stop"] = "raise",
    observe: Observer | None = None,
    what: str = "gradient descent",
    start: str = "the initial state",
    data: str = "the data",
) -> Trace:
    """Iterate ``step`` from ``state``, record the loss, stop at the first diverging step.

    Step t = 0, …, ``num_iters`` evaluates the loss :math:`L_t` of the current
    state (``step`` returns it with the next state; the last state, which is
    not stepped from, is evaluated by ``loss``). Then:

    * if :math:`L_t` is not finite or exceeds ``DIVERGENCE_FACTOR`` ×
      :math:`L_0` (:func:`is_divergent`), the run diverged at t: raise
      :class:`DivergenceError` (``on_divergence="raise"``) or stop
      (``"stop"``), recording step t − 1 if it was not, so that a diverged
      history ends at ``diverged_at - 1``;
    * otherwise t is recorded when it is in ``record`` or, without it, when
      :func:`is_recorded` says so.

    Parameters
    ----------
    step : callable
        ``step(state) -> (loss at state, next state)``; must not modify
        ``state`` in place.
    loss : callable
        ``loss(state) -> loss at state``.
    state : State
        The initial state (a tensor, a list of tensors, anything ``step``
        takes).
    num_iters : int
        Number of steps, >= 0 (``num_iters + 1`` losses are evaluated).
    record_every : int
        >= 1.
    record : int or array_like of int, optional
        Every ``record`` steps, or the steps to record, e.g. ``log_steps(num_iters, 20, every=50)``
        for a log x-axis (checked by :func:`check_record`; 0 and ``num_iters`` are added).
    on_divergence : {"raise", "stop"}
    observe : callable, optional
        ``observe(state) -> tensor``, kept at every recorded step (e.g. the
        end-to-end matrix of Chapter 2).
    what : str
        The method, for the :class:`DivergenceError` message.
    start, data : str
        What the caller calls the initial state (``"w0"``, ``"factors0"``, ...) and
        its data (``"X and y"``), for the message when the loss at step 0 is not finite.

    Returns
    -------
    Trace

    Raises
    ------
    DivergenceError
        With ``on_divergence="raise"``, at the first diverging step t >= 1.
    ValueError
        For a bad argument, naming it; whatever ``on_divergence``, when the loss
        at the initial state is not finite: no step was taken, so the learning
        rate is not the cause, the start or the scale of the data is.
    TypeError
        When ``step`` does not return a pair ``(loss, next state)``, or its loss (or ``loss``'s) is not a
        real scalar (a vector, a string).
    """
    for name, fn in (("step", step), ("loss", loss)):
        if not callable(fn):
            raise ValueError(f"{name} must be a callable taking a state, got {type(fn).__name__}")
    if observe is not None and not callable(observe):
        raise ValueError(f"observe must be None or a callable taking a state, got {type(observe).__name__}")
    num_iters = check_int("num_iters", num_iters, 0)
    record_every = check_int("record_every", record_every, 1)
    steps_wanted = check_record(record, num_iters, record_every)
    wanted = None if steps_wanted is None else frozenset(steps_wanted.tolist())
    _check_on_divergence(on_divergence)

    steps: list[int] = []
    losses: list[float] = []
    observed: list[torch.Tensor] = []
    first = state
    limit = math.nan
    last_good: tuple[int, float, State] | None = None
    diverged_at = None
    dtype = "float64"
    for t in range(num_iters + 1):
        if t < num_iters:
            out = step(state)
            if t == 0 and not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"step must return a pair (loss, next state), got {type(out).__name__}"
                                f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}")
            value, nxt = out
        else:
            value, nxt = loss(state), state
        dtype = _dtype_name(value) if t == 0 else dtype
        if isinstance(value, (str, bytes)):  # float("1.5") would pass
            raise _not_a_scalar_loss(value, t < num_iters)
        try:
            value = float(value)
        except (TypeError, ValueError, RuntimeError):  # a vector, or a value float() cannot take
            raise _not_a_scalar_loss(value, t < num_iters) from None
        if t == 0:
            if not math.isfinite(value):
                raise ValueError(f"{what}: the loss at the start is {value} before any step was taken, so the "
                                 f"learning rate is not the cause; check {start} and the scale of {data}")
            limit = divergence_limit(value)
        if is_divergent(value, limit):
            diverged_at = t
            break
        if (t in wanted) if wanted is not None else is_recorded(t, num_iters, record_every):
            steps.append(t)
            losses.append(value)
            if observe is not None:
                observed.append(observe(state))
        last_good = (t, value, state)
        state = nxt

    final = state
    if diverged_at is not None:
        if on_divergence == "raise":
            raise DivergenceError(diverged_at, value, what)
        final = first if last_good is None else last_good[2]
        if last_good is not None and steps[-1] != last_good[0]:
            steps.append(last_good[0])
            losses.append(last_good[1])
            if observe is not None:
                observed.append(observe(final))
    if observe is None:
        stacked = None
    elif observed:
        stacked = to_numpy(torch.stack(observed))
    else:
        stacked = np.empty((0,) + tuple(observe(first).shape))
    return Trace(
        steps=np.asarray(steps, dtype=np.int64),
        loss=np.asarray(losses, dtype=np.float64),
        diverged_at=diverged_at,
        dtype=dtype,
        final=final,
        observed=stacked,
    )


def _not_a_scalar_loss(value: Any, from_step: bool) -> TypeError:
    """The ``TypeError`` for a loss that is not a real scalar, returned by ``step`` (else by ``loss``)."""
    shape = getattr(value, "shape", None)
    got = (f"the loss has shape {tuple(shape)}" if shape is not None
           else f"the loss is {value!r:.60} ({type(value).__name__})")
    if from_step:
        return TypeError(f"step must return (scalar loss, next state); {got}")
    return TypeError(f"loss must return a scalar loss; {got}")


def _dtype_name(value: Any) -> str:
    """The numpy name of a loss value's floating-point type (a tensor, a numpy scalar or a Python float).

    ``"float16"``, ``"float32"`` or ``"float64"``; a Python float or a non-float value is ``"float64"``, and a torch
    type numpy lacks (``bfloat16``) is ``"float16"``, the coarsest numpy float, so that its round-off is not
    underestimated.
    """
    if isinstance(value, torch.Tensor):
        name = str(value.dtype).removeprefix("torch.")
        return name if name in ("float16", "float32", "float64") else ("float16" if value.is_floating_point()
                                                                       else "float64")
    kind = getattr(value, "dtype", None)
    return np.dtype(kind).name if kind is not None and np.dtype(kind).kind == "f" else "float64"
