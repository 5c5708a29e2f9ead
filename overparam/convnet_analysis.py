"""Reading convnet training runs: smoothing, crossings, the penalty's clock and speed-up, figures (Chapter 6).

The per-step values of :class:`~overparam.convnet.ConvNetHistory` are measured
on one batch of 64 with dropout, so they are noisy; everything here that
compares runs does so on running medians. The penalty analysis follows the
chapter's section "Why: weight decay, preconditioned": with momentum ``m``
and a schedule ``lr_s``, a slowly varying gradient moves the weights by the
*accumulated step* :func:`accumulated_step`, so plain weight decay shrinks
the penalty like ``exp(-2 λ S_t)``; a penalty on a product of factors decays
``κ`` times faster, ``κ`` from :func:`penalty_speedup`.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .convnet import ConvNetHistory, TutorialConvNet
from .plotting import DEPTH_COLORS
from .validation import check_int, check_real, check_sequence, finite_array

__all__ = [
    "PAPER_CURVE_RUNS",
    "PAPER_READOFFS",
    "TEST_MARKERS",
    "VARIANT_COLORS",
    "VARIANT_LABELS",
    "LOSS_PARTS",
    "accumulated_step",
    "error_standard_error",
    "levels_table",
    "readoff_comparison",
    "steps_to_levels",
    "crossing_step",
    "first_step_below",
    "penalty_speedup",
    "plot_loss_parts",
    "product_penalty_gradients",
    "running_median",
    "summary_table",
    "plot_paper_figure",
    "plot_validation_error",
]

#: One colour per variant, used by every figure of Chapter 6.
VARIANT_COLORS: dict[str, str] = {"baseline": "k", "product": DEPTH_COLORS[2], "factors": DEPTH_COLORS[1],
                                  "original": DEPTH_COLORS[3]}
#: Marker of each variant's test error in :func:`plot_validation_error`, in the order of the histories.
TEST_MARKERS: tuple[str, ...] = ("o", "s", "D", "^")
#: Legend labels: where the L2 penalty sits.
VARIANT_LABELS: dict[str, str] = {
    "baseline": "baseline (tutorial net)",
    "product": "penalty on W₂W₁",
    "factors": "penalty on W₁ and W₂",
    "original": "penalty on W₁ only",
}
#: Batch loss read by eye off the MNIST figure as the authors' blog post shows it (the paper's figure; its number in
#: arXiv:1802.06509 not checked), step -> value, for the paper's two curves: the tutorial's net and its
#: overparameterized version. Approximate: for comparison only.
PAPER_READOFFS: Mapping[str, Mapping[int, float]] = MappingProxyType({  # read-only: a default argument below
    "tutorial": MappingProxyType({0: 4.5, 500: 3.0, 3000: 2.5, 5000: 2.2, 8593: 1.6}),
    "overparameterized": MappingProxyType({0: 14.0, 2000: 0.5, 3500: 0.25, 5000: 0.1, 8593: 0.05}),
})
#: Which of our runs each of the paper's curves is compared with. We could not establish where the paper's
#: overparameterized net's L2 penalty sits; comparing it with the penalty on the product W₂W₁ (the placement
#: that leaves the tutorial's objective unchanged) is the book's reading, which Chapter 6 (``ch-mnist``) tests.
PAPER_CURVE_RUNS: Mapping[str, str] = MappingProxyType({"tutorial": "baseline", "overparameterized": "product"})
#: The logged parts of the batch loss: attribute of :class:`ConvNetHistory` -> axis title.
LOSS_PARTS: dict[str, str] = {"batch_loss": "batch loss", "cross_entropy": "cross-entropy", "penalty": "λ · penalty"}


def _runs(histories: Mapping[str, ConvNetHistory], needed: Sequence[str] = ()) -> Mapping[str, ConvNetHistory]:
    """``histories`` checked as a non-empty mapping of run names to histories, holding the runs ``needed``."""
    if not isinstance(histories, Mapping):
        raise ValueError("histories must be a mapping of variant names to ConvNetHistory, e.g. {'baseline': h}, "
                         f"got {type(histories).__name__}")
    if not histories:
        raise ValueError("histories must hold at least one run, e.g. {'baseline': h}, got an empty mapping")
    missing = [v for v in needed if v not in histories]
    if missing:
        raise ValueError(f"histories must hold the runs {list(needed)}, got {list(histories)} (missing {missing})")
    return histories


def running_median(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred running median of a per-step series (Chapter 6, ``ch-mnist``).

    Parameters
    ----------
    values : ndarray, shape (T,)
    window : int
        Odd number of steps, at most ``T``.

    Returns
    -------
    steps, medians : ndarray, shape (T - window + 1,)
        ``medians[i]`` is the median of ``values[i : i + window]``, placed at
        its centre ``steps[i] = i + window // 2``.

    Raises
    ------
    ValueError
        ``values`` is not a 1-D series of finite numbers (a NaN would make its
        windows' medians NaN), or ``window`` is not odd, positive and at most ``T``.
    """
    return _running_median("values", values, window)


def _running_median(name: str, values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`running_median`, its messages naming the series ``name``."""
    values = finite_array(name, values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    window = check_int("window", window, 1, expected="an odd positive integer")
    if window % 2 == 0:
        raise ValueError(f"window must be an odd positive integer, got {window}")
    if window > values.size:
        raise ValueError(f"window={window} is longer than the series {name} ({values.size} steps)")
    medians = np.median(np.lib.stride_tricks.sliding_window_view(values, window), axis=1)
    return np.arange(window // 2, window // 2 + medians.size), medians


def first_step_below(values: np.ndarray, level: float, window: int) -> int | None:
    """First step at which the running median of ``values`` is below ``level``; ``None`` if never (Chapter 6)."""
    level = check_real("level", level)
    steps, medians = running_median(values, window)
    below = np.flatnonzero(medians < level)
    return int(steps[below[0]]) if below.size else None


def crossing_step(lower: np.ndarray, upper: np.ndarray, window: int) -> int | None:
    """First step from which the running median of ``lower`` stays below that of ``upper`` to the end.

    Returns ``None`` when it is not below at the last step (Chapter 6, ``ch-mnist``).

    Raises
    ------
    ValueError
        ``lower`` and ``upper`` differ in shape, or ``window`` does not suit them (:func:`running_median`).
    """
    lower, upper = finite_array("lower", lower), finite_array("upper", upper)
    if lower.shape != upper.shape:
        raise ValueError(f"lower and upper must have the same shape (one value per step), "
                         f"got {lower.shape} and {upper.shape}")
    steps, a = _running_median("lower", lower, window)
    _, b = _running_median("upper", upper, window)
    above = np.flatnonzero(a >= b)
    if above.size == 0:
        return int(steps[0])
    if above[-1] == a.size - 1:
        return None
    return int(steps[above[-1] + 1])


def steps_to_levels(
    histories: Mapping[str, ConvNetHistory], levels: Sequence[float], window: int, part: str = "cross_entropy"
) -> dict[str, list[int | None]]:
    """For each run, the first step at which the running median of ``part`` is below each level (Chapter 6).

    ``None`` where a run never gets there. ``part`` is an attribute of
    :class:`~overparam.convnet.ConvNetHistory`: ``"cross_entropy"``,
    ``"penalty"`` or ``"batch_loss"``.

    Raises
    ------
    ValueError
        ``histories`` is not a non-empty mapping of runs, ``levels`` is not a non-empty tuple,
        or ``part`` is not a part of the loss.
    """
    if part not in LOSS_PARTS:
        raise ValueError(f"part must be one of {sorted(LOSS_PARTS)}, got {part!r}")
    check_sequence("levels", levels, "loss levels")
    return {v: [first_step_below(getattr(h, part), level, window) for level in levels]
            for v, h in _runs(histories).items()}


def readoff_comparison(histories: Mapping[str, ConvNetHistory], window: int,
                       readoffs: Mapping[str, Mapping[int, float]] = PAPER_READOFFS,
                       runs: Mapping[str, str] = PAPER_CURVE_RUNS) -> tuple[float, str]:
    """Our batch loss at each step the paper's figure was read off at, and the worst disagreement (Chapter 6).

    At step 0 the first batch's loss, after it the running median over
    ``window`` steps, interpolated to the step. Each curve of ``readoffs`` is
    compared with our run ``runs[curve]`` (by default :data:`PAPER_CURVE_RUNS`).

    Returns
    -------
    (float, str)
        The largest factor between ours and the paper's after step 0 (>= 1),
        and a Markdown table: the paper's curve, our run, step, blog post's figure, ours, ours / blog.
    """
    rows, worst = [], 1.0
    histories = _runs(histories)
    for curve, points in readoffs.items():
        if curve not in runs:
            raise ValueError(f"runs names no run of ours for the paper's curve {curve!r}, got {dict(runs)}")
        v = runs[curve]
        if v not in histories:
            raise ValueError(f"histories has no run {v!r} to compare with the paper's read-offs")
        steps_m, medians = _running_median(f"histories[{v!r}].batch_loss", histories[v].batch_loss, window)
        for step, paper_value in points.items():
            ours = float(histories[v].batch_loss[0]) if step == 0 else float(np.interp(step, steps_m, medians))
            rows.append(f"| {curve} | {v} | {step:,} | {paper_value:g} | {ours:.3g} | {ours / paper_value:.2f} |")
            if step > 0:
                worst = max(worst, ours / paper_value, paper_value / ours)
    table = ("| paper's curve | our run | step | blog post's figure (read off) | ours | ours / blog |\n"
             "|---|---|---|---|---|---|\n" + "\n".join(rows))
    return worst, table


def levels_table(histories: Mapping[str, ConvNetHistory], levels: Sequence[float], window: int,
                 baseline: str = "baseline") -> tuple[dict[str, list[float]], str]:
    """Steps to each cross-entropy level (:func:`steps_to_levels`) and the speed-up over ``baseline`` (Chapter 6).

    Returns
    -------
    (dict, str)
        Per run the speed-ups (baseline's steps / the run's steps) and a
        Markdown table of "step N (speed-up×)" per level.

    Raises
    ------
    ValueError
        If ``histories`` or ``levels`` fail :func:`steps_to_levels`, ``baseline`` is not a run, or some run
        never reaches a level (the table would have no speed-up to show; lower the level).
    """
    reach = steps_to_levels(histories, levels, window)
    if baseline not in reach:
        raise ValueError(f"baseline must name one of the runs {list(reach)}, got {baseline!r}")
    missing = [(v, level) for v, r in reach.items() for level, step in zip(levels, r) if step is None]
    if missing:
        raise ValueError(f"levels: these runs never reach these levels: {missing}")
    speedup = {v: [b / r for b, r in zip(reach[baseline], reach[v])] for v in reach}
    head = "| variant | " + " | ".join(f"CE < {level}" for level in levels) + " |\n|---|" + "---|" * len(levels)
    lines = [f"| {v} | " + " | ".join(f"step {r:,} ({s:.2f}×)" for r, s in zip(reach[v], speedup[v])) + " |"
             for v in reach]
    return speedup, head + "\n" + "\n".join(lines)


def error_standard_error(error: float, n: int) -> float:
    """Standard error ``sqrt(e (1 - e) / n)`` of an error rate ``e`` measured on ``n`` independent images (Chapter 6).

    Two classifiers' error rates on the same ``n`` images differ by chance by
    about ``sqrt(2)`` times this (a conservative yardstick: shared images
    correlate their mistakes, which makes the true difference's spread smaller).
    """
    error = check_real("error", error, at_least=0, expected="a rate in [0, 1]")
    if error > 1:
        raise ValueError(f"error must be a rate in [0, 1], got {error}")
    n = check_int("n", n, 1, expected="a positive integer")
    return float(np.sqrt(error * (1 - error) / n))


def accumulated_step(lr: np.ndarray, momentum: float) -> np.ndarray:
    """The accumulated momentum step ``S_t = sum_{s<t} lr_s (1 - β^{s+1}) / (1 - β)`` for t = 0..T (Chapter 6).

    With heavy-ball momentum (``b <- β b + g`` with β = ``momentum``, ``θ <- θ - lr_s b``, ``b``
    starting at 0), a constant gradient ``g`` has moved the weights by
    ``S_t g`` after ``t`` steps; plain weight decay with factor ``λ``
    therefore shrinks a squared norm by about ``exp(-2 λ S_t)``.

    Returns
    -------
    ndarray, shape (T + 1,)
        ``S_0 = 0``.
    """
    lr = np.asarray(lr, dtype=np.float64)
    if lr.ndim != 1 or not np.all(np.isfinite(lr) & (lr > 0)):
        raise ValueError(f"lr must be a one-dimensional array of finite positive learning rates, got shape {lr.shape}"
                         + (f" with values from {lr.min():g} to {lr.max():g}" if lr.ndim == 1 and lr.size else ""))
    momentum = check_real("momentum", momentum, at_least=0, below=1)
    gain = (1 - momentum ** np.arange(1, lr.size + 1)) / (1 - momentum)
    return np.r_[0.0, np.cumsum(lr * gain)]


def product_penalty_gradients(W_a: np.ndarray, W_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``½‖W_a W_b‖²`` with respect to ``W_a`` and ``W_b`` (Chapter 6, exercise ``ex-mnist-grad``).

    The library's dense layers compute ``x @ W_a @ W_b`` (row vectors), so the
    end-to-end matrix is ``E = W_a W_b`` (the chapter's ``W_1^T``, ``W_2^T`` and
    ``W_e^T``) and, by the layer-gradient formula of
    Chapter 2 (the chain rule behind Theorem 1 of arXiv:1802.06509), for two layers

    .. math::

        \\nabla_{W_a} = E\\,W_b^\\top, \\qquad \\nabla_{W_b} = W_a^\\top E .
    """
    W_a, W_b = finite_array("W_a", W_a), finite_array("W_b", W_b)
    if W_a.ndim != 2 or W_b.ndim != 2 or W_a.shape[1] != W_b.shape[0]:
        raise ValueError(f"W_a and W_b must be matrices with W_a.shape[1] == W_b.shape[0], got {W_a.shape}, {W_b.shape}")
    E = W_a @ W_b
    return E @ W_b.T, W_a.T @ E


def penalty_speedup(net: TutorialConvNet, weight_decay: float = 5e-4) -> float:
    """How much faster a gradient step shrinks the net's penalty than plain weight decay would (Chapter 6).

    .. math::

        \\kappa = \\frac{\\|\\nabla_\\theta \\Pi\\|^2}{2\\lambda \\Pi}, \\qquad \\Pi = \\lambda\\cdot\\text{penalty}(\\theta),

    which is exactly 1 for a penalty that is a plain sum of squares of
    parameters (baseline, factors, original) and depends on the weights for
    the penalty on the product. Computed with autograd.

    Raises
    ------
    ValueError
        ``net`` is not a :class:`TutorialConvNet`, ``weight_decay`` is not
        positive, or the net's penalty is 0 (all penalized weights zero), where
        the ratio is undefined.
    """
    if not isinstance(net, TutorialConvNet):
        raise ValueError(f"net must be a TutorialConvNet, got {type(net).__name__}")
    weight_decay = check_real("weight_decay", weight_decay, above=0)
    penalty = weight_decay * net.penalty()
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    squared = sum(float(g.detach().square().sum()) for g in grads if g is not None)
    if float(penalty.detach()) == 0.0:
        raise ValueError("net's penalty is 0 (all its penalized weights are zero): the speed-up is undefined")
    return squared / (2 * weight_decay * float(penalty.detach()))


def plot_loss_parts(
    histories: Mapping[str, ConvNetHistory] | Sequence[ConvNetHistory],
    window: int,
    *,
    axes: Sequence | None = None,
    faint_alpha: float = 0.15,
    part_alpha: Mapping[str, float] | None = None,
    bottom: Mapping[str, float] | None = None,
) -> Any:
    """The batch loss and its two parts per step (faint) with their running medians (solid), one panel each.

    Chapter 6 (``ch-mnist``). ``faint_alpha`` is the opacity of the per-step
    lines; ``part_alpha`` overrides it per part (keys of :data:`LOSS_PARTS`),
    e.g. a fainter cross-entropy panel, where the noisy per-step traces of
    four runs would otherwise merge into one band. ``bottom`` sets the lowest
    value shown per part (the per-step values below it are cut off), so that
    a few single batches with a tiny loss do not stretch the axis the medians
    are read on. Returns the figure; the legend goes above the panels.

    Raises
    ------
    ValueError
        ``histories`` is not a non-empty mapping or tuple of :class:`~overparam.convnet.ConvNetHistory`,
        or a ``part_alpha`` or ``bottom`` entry is bad (the message names it).
    """
    import matplotlib.pyplot as plt

    from .plotting import loss_axes

    if isinstance(histories, Mapping):
        runs = list(_runs(histories).values())
    else:
        runs = list(check_sequence("histories", histories, "ConvNetHistory (or a mapping of names to them)"))
    for i, h in enumerate(runs):
        if not isinstance(h, ConvNetHistory):
            raise ValueError(f"histories must hold ConvNetHistory runs, got {type(h).__name__} at entry {i}")
    for name, given in (("part_alpha", part_alpha), ("bottom", bottom)):
        unknown = sorted(set(given or {}) - set(LOSS_PARTS))
        if unknown:
            raise ValueError(f"{name} keys must be parts of the loss {list(LOSS_PARTS)}, got {unknown}")
    alphas = {part: check_real(f"part_alpha[{part!r}]", a, above=0) for part, a in (part_alpha or {}).items()}
    if any(a > 1 for a in alphas.values()):
        raise ValueError(f"part_alpha values must be opacities in (0, 1], got {part_alpha}")
    bottoms = {part: check_real(f"bottom[{part!r}]", b, above=0) for part, b in (bottom or {}).items()}
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
    else:
        fig = axes[0].figure
    for ax, (part, title) in zip(axes, LOSS_PARTS.items()):
        loss_axes(ax, title=title, ylabel=title)
        for h in runs:
            values = getattr(h, part)
            color = VARIANT_COLORS.get(h.variant)
            ax.plot(values, color=color, alpha=alphas.get(part, faint_alpha), lw=0.5)
            steps, medians = _running_median(f"{h.variant}.{part}", values, window)
            ax.plot(steps, medians, color=color, label=VARIANT_LABELS.get(h.variant, h.variant))
        if part in bottoms:
            ax.set_ylim(bottom=bottoms[part])
    fig.tight_layout()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, bbox_to_anchor=(0.5, 1.0))
    return fig


def summary_table(histories: Mapping[str, ConvNetHistory], tail: int = 500) -> tuple[list[dict[str, float]], str]:
    """Per variant: medians of the last ``tail`` steps and the final errors, as rows and as a Markdown table.

    Columns: batch loss, cross-entropy and weighted penalty (medians over the
    last ``tail`` steps), the last validation error and the test error (in %),
    and ms per training step. Errors missing from a run are NaN.
    """
    tail = check_int("tail", tail, 1)
    histories = _runs(histories)
    rows, lines = [], []
    header = ("variant", "batch loss", "cross-entropy", "λ · penalty", "validation error %", "test error %", "ms/step")
    for v, h in histories.items():
        last = slice(-min(tail, h.num_steps), None)
        row = {
            "batch loss": float(np.median(h.batch_loss[last])),
            "cross-entropy": float(np.median(h.cross_entropy[last])),
            "λ · penalty": float(np.median(h.penalty[last])),
            "validation error %": 100 * h.error("validation") if "validation" in h.accuracy else float("nan"),
            "test error %": 100 * h.error("test") if "test" in h.final_accuracy else float("nan"),
            "ms/step": h.ms_per_step,
        }
        rows.append(row)
        cells = [f"{row[k]:.3g}" for k in header[1:4]] + [f"{row[k]:.2f}" for k in header[4:6]] + [f"{row['ms/step']:.0f}"]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    table = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n" + "\n".join(lines)
    return rows, table


def plot_paper_figure(histories: Mapping[str, ConvNetHistory], window: int, *, ax: Any = None) -> Any:
    """The paper's MNIST figure redrawn: batch loss per step of the tutorial's net and of the product variant.

    Faint per-step values, solid running medians, and crosses at :data:`PAPER_READOFFS`. Log scale from 1e-2 to 1e2, as in the paper.
    """
    import matplotlib.pyplot as plt

    from .plotting import loss_axes

    histories = _runs(histories, ("baseline", "product"))
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    loss_axes(ax, title="batch loss: tutorial net vs overparameterized", ylabel="batch loss")
    for v in ("baseline", "product"):
        h = histories[v]
        ax.plot(h.batch_loss, color=VARIANT_COLORS[v], alpha=0.2, lw=0.5)
        steps, medians = _running_median(f"{v}.batch_loss", h.batch_loss, window)
        ax.plot(steps, medians, color=VARIANT_COLORS[v], label=VARIANT_LABELS[v])
        curve = next(c for c, run in PAPER_CURVE_RUNS.items() if run == v)
        pts = PAPER_READOFFS[curve]
        ax.plot(list(pts), list(pts.values()), "x", color=VARIANT_COLORS[v], ms=8, mew=2,
                label=f"blog post's figure, read by eye ({curve})")
    ax.set_ylim(1e-2, 1e2)
    ax.legend(loc="upper right")
    return ax.figure


def plot_validation_error(histories: Mapping[str, ConvNetHistory], *, ax: Any = None) -> Any:
    """Validation error (%) at every evaluation step, one line per variant, with the test error marked at the end.

    Chapter 6 (``ch-mnist``). The test errors are drawn to the right of the
    runs' end, one column per variant in the order of ``histories``, each
    with its own marker (:data:`TEST_MARKERS`), so that equal or close
    errors do not hide one another and colours close in hue are told apart
    by shape; a dotted line marks the end of training.

    Raises
    ------
    ValueError
        Some run holds no ``"validation"`` accuracies: train it with
        ``train_convnet(..., eval_data={"validation": data})``.
    """
    import matplotlib.pyplot as plt

    from .plotting import plain_log_ticks

    missing = [v for v, h in _runs(histories).items() if "validation" not in h.accuracy]
    if missing:
        raise ValueError(f"histories hold no validation evaluations for the runs {missing}; train them with "
                         "train_convnet(..., eval_data={'validation': data}) to measure the validation accuracy")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    end = max(h.num_steps for h in histories.values())
    gap = 0.035 * end
    tested = False
    for k, (v, h) in enumerate(histories.items()):
        color = VARIANT_COLORS.get(v)
        marker = TEST_MARKERS[k % len(TEST_MARKERS)]
        ax.plot(h.eval_steps[1:], 100 * (1 - np.asarray(h.accuracy["validation"])[1:]), color=color,
                label=VARIANT_LABELS.get(v, v))
        if "test" in h.final_accuracy:
            tested = True
            ax.plot([end + gap * (k + 1)], [100 * h.error("test")], marker, color=color, ms=6, mec="white", mew=0.6,
                    label="_nolegend_")
    if tested:
        ax.axvline(end, color="0.6", lw=0.8, ls=":")
        ax.annotate("test", (end + gap * (len(histories) + 1) / 2, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8, color="0.3")
    ax.set_yscale("log")
    plain_log_ticks(ax)
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.set_title("validation error (lines) and test error at the end (markers, right)")
    ax.legend()
    return ax.figure
