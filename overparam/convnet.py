"""The TensorFlow-tutorial convnet on MNIST, plain and overparameterized (Chapter 6, ``ch-mnist``).

The paper's MNIST convnet experiment (arXiv:1802.06509) uses TensorFlow's
``tutorials/image/mnist/convolutional.py`` (a LeNet-5-like net; *not* "Deep
MNIST for Experts"; the authors' blog post links that tutorial), with each
dense layer's weight matrix replaced by a product of two matrices. This module rebuilds that net in PyTorch:

* conv 5x5x32 (SAME) + bias + ReLU + 2x2 max-pool, conv 5x5x64 (SAME) + bias
  + ReLU + 2x2 max-pool, flatten to 7*7*64 = 3136, fc 3136->512 + ReLU,
  dropout (keep 0.5, training only), fc 512->10 logits;
* weights truncated-normal with std 0.1, cut at 2 std as ``tf.truncated_normal``
  (torch draws it by inverse CDF where TF redraws; the distribution is the
  same), conv1 bias 0, the other biases 0.1;
* loss = mean softmax cross-entropy + 5e-4 x (l2 of fc1 W, fc1 b, fc2 W,
  fc2 b), with TF's ``l2_loss(v) = ||v||^2 / 2``;
* SGD with momentum 0.9, lr = 0.01 * 0.95^epoch (staircase, epoch = step *
  64 // 55,000), batch 64, 10 epochs = 8,593 steps, batches in the
  tutorial's fixed order ``offset = step * 64 mod (n - 64)`` (no shuffling).

Flatten order: TF is NHWC and flattens each 7x7x64 map in (row, column,
channel) order; :func:`flatten_nhwc` does the same on PyTorch's NCHW tensors,
so the dense weights have TF's layout (for a freshly initialized dense layer
the order would not matter).

Momentum: TF's ``MomentumOptimizer`` does ``accum = m * accum + grad; var -=
lr * accum`` with ``accum`` starting at 0. ``torch.optim.SGD`` with
``dampening=0, nesterov=False`` keeps ``buf = m * buf + grad`` (``buf = grad``
at the first step, the same as 0 * m + grad) and does ``p -= lr * buf``, with
the current lr: the two are the same update (checked in ``tests/test_convnet.py``).

Variants (the overparameterized ones use fc1 = (3136x512)(512x512) and
fc2 = (512x10)(10x10) with no non-linearity between the factors: square new
factors, the smallest that keep what the dense maps can express, are our
choice, since we could not establish the factor shapes the paper used (the
authors' blog post says only that the factors add roughly 15% to the
parameter count); the new factors are truncated-normal std 0.1 as well, also
our choice, since we could not establish the paper's initialization of them):

``"baseline"``  the tutorial's net, penalty on ``W1, b1, W2, b2``;
``"product"``   penalty on each dense layer's end-to-end matrix ``W_a W_b`` and the biases;
``"factors"``   penalty on every factor and the biases;
``"original"``  penalty only on the original-shaped factor ``W_a`` (none on the new ``W_b``) and the biases.

Cost: ``"product"`` forms the 3136x512 end-to-end matrix of fc1 for its
penalty at every step, so its steps do the most work; the other three do about
the same. ``python -m overparam mnist --steps full`` writes the full
8,593-step runs (Chapter 6 reads the committed file); the chapter itself
trains a few hundred steps (timings: ``docs/design-notes.md``).
"""
from __future__ import annotations

import json
import platform
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .files import atomic_write, invalid_results, json_text, provenance, read_provenance, read_results
from .training import DivergenceError, divergence_limit, is_divergent
from .mnist import MNISTData
from .validation import check_callable, check_int, check_real, check_sequence, torch_seed

__all__ = [
    "ConvNetConfig",
    "ConvNetHistory",
    "CPUSetup",
    "TutorialConvNet",
    "VARIANTS",
    "TUTORIAL_TRAIN_SIZE",
    "accuracy",
    "cpu_setup",
    "flatten_nhwc",
    "full_float32",
    "load_histories",
    "resolve_device",
    "save_histories",
    "stand_in_note",
    "train_convnet",
]

Variant = Literal["baseline", "product", "factors", "original"]
#: The network variants: the tutorial's net and three penalty placements on the overparameterized net.
VARIANTS: tuple[str, ...] = ("baseline", "product", "factors", "original")
#: Training-set size of the tutorial (60,000 minus 5,000 held out): it defines an "epoch" of the schedule.
TUTORIAL_TRAIN_SIZE = 55_000

_FLAT = 7 * 7 * 64  # 3136
_HIDDEN = 512
_CLASSES = 10


@dataclass(frozen=True)
class ConvNetConfig:
    """Hyper-parameters of one training run; defaults are ``convolutional.py``'s (Chapter 6, ``ch-mnist``).

    Attributes
    ----------
    variant : {"baseline", "product", "factors", "original"}
    batch_size : int
    num_epochs : int
    epoch_size : int
        Examples per epoch of the step budget and of the lr schedule: the
        tutorial's 55,000 even when training on another set (steps and decays
        then stay those of the tutorial).
    lr, lr_decay : float
        ``lr_at(step) = lr * lr_decay ** (step * batch_size // epoch_size)``.
    momentum : float
    weight_decay : float
        Factor of the l2 penalty (5e-4).
    keep_prob : float
        Dropout keep probability on the fc1 output during training.
    init_std : float
        Std of the truncated-normal weights (cut at 2 std).
    eval_every : int
        Accuracy is measured every ``eval_every`` steps (and at 0 and the end).
    """

    variant: str = "baseline"
    batch_size: int = 64
    num_epochs: int = 10
    epoch_size: int = TUTORIAL_TRAIN_SIZE
    lr: float = 0.01
    lr_decay: float = 0.95
    momentum: float = 0.9
    weight_decay: float = 5e-4
    keep_prob: float = 0.5
    init_std: float = 0.1
    eval_every: int = 100

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        checked = {name: check_int(name, getattr(self, name), 1, expected="a positive integer")
                   for name in ("batch_size", "num_epochs", "epoch_size", "eval_every")}
        checked |= {"lr": check_real("lr", self.lr, above=0),
                    "lr_decay": check_real("lr_decay", self.lr_decay, above=0, expected="in (0, 1]"),
                    "momentum": check_real("momentum", self.momentum, at_least=0, below=1),
                    "weight_decay": check_real("weight_decay", self.weight_decay, at_least=0),
                    "keep_prob": check_real("keep_prob", self.keep_prob, above=0, expected="in (0, 1]"),
                    "init_std": check_real("init_std", self.init_std, above=0)}
        for name in ("lr_decay", "keep_prob"):
            if checked[name] > 1:
                raise ValueError(f"{name} must be in (0, 1], got {checked[name]}")
        if checked["num_epochs"] * checked["epoch_size"] < checked["batch_size"]:
            raise ValueError(
                f"num_epochs * epoch_size must be at least batch_size (one training step), got "
                f"{checked['num_epochs']} * {checked['epoch_size']} < {checked['batch_size']}")
        for name, value in checked.items():  # Python numbers, so that the configuration is saved as JSON
            object.__setattr__(self, name, value)

    @property
    def full_steps(self) -> int:
        """The tutorial's step budget ``num_epochs * epoch_size // batch_size`` (8,593)."""
        return self.num_epochs * self.epoch_size // self.batch_size

    def lr_at(self, step: int) -> float:
        """Staircase decay: ``lr * lr_decay ** (step * batch_size // epoch_size)`` (decays at steps 860, 1719, ...).

        ``step`` is an integer >= 0 (``ValueError`` otherwise).
        """
        step = check_int("step", step, 0)
        return self.lr * self.lr_decay ** (step * self.batch_size // self.epoch_size)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
def flatten_nhwc(h: torch.Tensor) -> torch.Tensor:
    """Flatten NCHW feature maps in TensorFlow's NHWC order: index ``(i * W + j) * C + c``."""
    return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)


def _truncated_normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> nn.Parameter:
    t = torch.empty(shape)
    nn.init.trunc_normal_(t, mean=0.0, std=std, a=-2 * std, b=2 * std, generator=gen)
    return nn.Parameter(t)


def _half_sq(*tensors: torch.Tensor) -> torch.Tensor:
    """TF's ``l2_loss`` summed: ``sum_k ||t_k||^2 / 2``."""
    return sum(0.5 * t.square().sum() for t in tensors)  # type: ignore[return-value]


class TutorialConvNet(nn.Module):
    """``convolutional.py``'s convnet, optionally with factorized dense layers (Chapter 6, ``ch-mnist``).

    Parameters
    ----------
    variant : {"baseline", "product", "factors", "original"}
        ``"baseline"`` has single dense matrices ``fc1_w`` (3136x512) and
        ``fc2_w`` (512x10); the others add ``fc1_w2`` (512x512) and ``fc2_w2``
        (10x10) so that the dense maps are ``x @ fc1_w @ fc1_w2`` and
        ``h @ fc2_w @ fc2_w2``; they differ in :meth:`penalty`.
    init_std : float
        Std of every weight's truncated normal (cut at 2 std).
    keep_prob : float
        Dropout keep probability in training mode.
    seed : int
        Seeds the initialization (an integer >= 0). The original parameters
        are drawn first and in the same order for every variant, so one seed
        gives all variants the same conv and original-shaped dense weights.

    Raises
    ------
    ValueError
        ``variant`` is not one of :data:`VARIANTS`, ``init_std`` is not > 0,
        ``keep_prob`` is not in (0, 1], or ``seed`` is not an integer >= 0.

    Notes
    -----
    Parameters: 1,663,370 for ``"baseline"``, 262,244 more (+15.77 %) for the
    others, which fits the "roughly 15 %" extra parameters of the paper's
    MNIST experiment (as the authors' blog post states it).
    """

    def __init__(self, variant: Variant = "baseline", *, init_std: float = 0.1, keep_prob: float = 0.5, seed: int):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        init_std = check_real("init_std", init_std, above=0)
        keep_prob = check_real("keep_prob", keep_prob, above=0, expected="in (0, 1]")
        if keep_prob > 1:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
        self.variant = variant
        self.keep_prob = keep_prob
        gen = torch.Generator().manual_seed(torch_seed(seed))
        self.conv1_w = _truncated_normal((32, 1, 5, 5), init_std, gen)
        self.conv1_b = nn.Parameter(torch.zeros(32))
        self.conv2_w = _truncated_normal((64, 32, 5, 5), init_std, gen)
        self.conv2_b = nn.Parameter(torch.full((64,), 0.1))
        self.fc1_w = _truncated_normal((_FLAT, _HIDDEN), init_std, gen)
        self.fc1_b = nn.Parameter(torch.full((_HIDDEN,), 0.1))
        self.fc2_w = _truncated_normal((_HIDDEN, _CLASSES), init_std, gen)
        self.fc2_b = nn.Parameter(torch.full((_CLASSES,), 0.1))
        if self.overparameterized:
            self.fc1_w2 = _truncated_normal((_HIDDEN, _HIDDEN), init_std, gen)
            self.fc2_w2 = _truncated_normal((_CLASSES, _CLASSES), init_std, gen)

    @property
    def overparameterized(self) -> bool:
        """Whether the dense matrices are products of two factors."""
        return self.variant != "baseline"

    @property
    def num_params(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    def dense_factors(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each dense layer's weight factors, applied left to right (``x @ W_a @ W_b``)."""
        if not self.overparameterized:
            return {"fc1": (self.fc1_w,), "fc2": (self.fc2_w,)}
        return {"fc1": (self.fc1_w, self.fc1_w2), "fc2": (self.fc2_w, self.fc2_w2)}

    def end_to_end(self) -> dict[str, torch.Tensor]:
        """The end-to-end matrix of each dense layer: ``W_a W_b`` (or ``W``), shapes 3136x512 and 512x10."""
        out = {}
        for name, factors in self.dense_factors().items():
            out[name] = factors[0] if len(factors) == 1 else factors[0] @ factors[1]
        return out

    def penalty(self) -> torch.Tensor:
        """The l2 term before its 5e-4 factor, placed as the variant says.

        Dense layer ``k`` (fc1 or fc2) has the matrix ``W_k`` in the baseline and
        the factors ``W_{k,a}``, ``W_{k,b}`` (``x @ W_{k,a} @ W_{k,b}``) otherwise;
        Chapter 6 writes fc1's as ``W_1^T`` and ``W_2^T``, with ``W_e = W_2 W_1``.

        .. math::

            \\text{baseline: } \\tfrac12\\textstyle\\sum_k (\\|W_k\\|^2 + \\|b_k\\|^2), \\quad
            \\text{product: } W_k \\to W_{k,a} W_{k,b}, \\quad
            \\text{factors: } \\|W_k\\|^2 \\to \\|W_{k,a}\\|^2 + \\|W_{k,b}\\|^2, \\quad
            \\text{original: } W_k \\to W_{k,a} .
        """
        if self.variant in ("baseline", "original"):
            weights = [f[0] for f in self.dense_factors().values()]
        elif self.variant == "product":
            weights = list(self.end_to_end().values())
        else:
            weights = [w for f in self.dense_factors().values() for w in f]
        return _half_sq(*weights, self.fc1_b, self.fc2_b)

    def _dense(self, h: torch.Tensor, layer: str) -> torch.Tensor:
        for w in self.dense_factors()[layer]:
            h = h @ w
        return h

    def trace(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every stage's output for a batch ``x`` of shape (n, 1, 28, 28).

        Keys, in order: ``conv1`` (n, 32, 28, 28), ``pool1`` (n, 32, 14, 14),
        ``conv2`` (n, 64, 14, 14), ``pool2`` (n, 64, 7, 7), ``flat`` (n, 3136),
        ``fc1`` (n, 512; after ReLU and, in training mode, dropout),
        ``logits`` (n, 10). ``generator`` draws the dropout mask (on ``x``'s device); it is required in
        training mode with dropout (``keep_prob < 1``), so that every mask is seeded.

        Raises
        ------
        ValueError
            ``x`` has another shape, or another dtype than the parameters (float32 unless the model was
            converted), or ``generator`` is missing in training mode with dropout.
        """
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x must have shape (n, 1, 28, 28), got {tuple(x.shape)}")
        if x.dtype != self.conv1_w.dtype:
            raise ValueError(f"x must be {str(self.conv1_w.dtype).removeprefix('torch.')} like the model's parameters "
                             f"(scaled as load_mnist's), got dtype {x.dtype}")
        if self.training and self.keep_prob < 1 and generator is None:
            raise ValueError("generator: in training mode dropout draws a random mask; pass a seeded torch.Generator "
                             "on x's device (as train_convnet does), or call .eval() for no dropout")
        out: dict[str, torch.Tensor] = {}
        out["conv1"] = F.relu(F.conv2d(x, self.conv1_w, self.conv1_b, padding=2))
        out["pool1"] = F.max_pool2d(out["conv1"], 2)
        out["conv2"] = F.relu(F.conv2d(out["pool1"], self.conv2_w, self.conv2_b, padding=2))
        out["pool2"] = F.max_pool2d(out["conv2"], 2)
        out["flat"] = flatten_nhwc(out["pool2"])
        hidden = F.relu(self._dense(out["flat"], "fc1") + self.fc1_b)
        if self.training and self.keep_prob < 1:
            keep = torch.rand(hidden.shape, generator=generator, device=hidden.device) < self.keep_prob
            hidden = hidden * keep / self.keep_prob
        out["fc1"] = hidden
        out["logits"] = self._dense(hidden, "fc2") + self.fc2_b
        return out

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits, shape (n, 10)."""
        return self.trace(x, generator)["logits"]


@torch.no_grad()
def accuracy(model: TutorialConvNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 250) -> float:
    """Fraction of ``images`` classified correctly, in evaluation mode (no dropout).

    Parameters
    ----------
    model : TutorialConvNet
    images : tensor, shape (n, 1, 28, 28)
        On the model's device; a numpy array is converted with ``torch.as_tensor``.
    labels : tensor of int, shape (n,)
    batch_size : int
        Images per forward pass. 250 rather than 1,000: on the CPU a forward
        pass of 1,000 images took about 200 MB more memory at its peak (the
        second convolution's unfolded input), which put Chapter 6 near
        Binder's 1 GB, and it was no faster.

    Raises
    ------
    ValueError
        ``model`` is not a :class:`TutorialConvNet`, ``batch_size`` is not a positive integer, ``images`` are
        not finite float32 of shape (n, 1, 28, 28), ``labels`` are not integers in 0..9, or ``images`` and
        ``labels`` do not hold the same number (at least one) of examples.
    """
    if not isinstance(model, TutorialConvNet):
        raise ValueError(f"model must be a TutorialConvNet, got {type(model).__name__}")
    batch_size = check_int("batch_size", batch_size, 1, expected="a positive integer")
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    _check_images("images", images)
    if labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError("images and labels must hold the same number n of examples (labels of shape (n,)), "
                         f"got images of shape {tuple(images.shape)} and labels of shape {tuple(labels.shape)}")
    if labels.shape[0] == 0:
        raise ValueError("images must hold at least one image, got 0")
    _check_labels("labels", labels)
    _check_finite_images("images", images)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = model(images[start : start + batch_size])
            correct += (logits.argmax(dim=1) == labels[start : start + batch_size]).sum()
    model.train(was_training)
    return float(correct) / len(labels)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvNetHistory:
    """One training run of :func:`train_convnet` (Chapter 6, ``ch-mnist``).

    Attributes
    ----------
    config : ConvNetConfig
    cross_entropy, penalty, lr : ndarray, shape (num_steps,)
        At every step, on that step's batch and before its update: the mean
        softmax cross-entropy, the *weighted* penalty ``weight_decay *
        model.penalty()``, and the learning rate used.
    batch_error : ndarray, shape (num_steps,)
        Fraction of that step's batch misclassified (with dropout, as the
        tutorial's "Minibatch error"); empty for files written before it was logged.
    eval_steps : ndarray of int
        Numbers of updates done when accuracy was measured (0 = at init).
    accuracy : dict of str to ndarray
        Accuracy on each periodically evaluated set (the tutorial's
        validation images) at ``eval_steps``.
    final_accuracy : dict of str to float
        Accuracy on each set measured once, after the last step (the
        tutorial's test images).
    num_params : int
    seconds : float
        Wall time of the training loop, evaluations included.
    eval_seconds : float
        The part of ``seconds`` spent measuring accuracy.
    seed : int
    device : str
        Where it ran, e.g. ``"cuda (NVIDIA H100 80GB HBM3)"`` or ``"cpu (x86_64, AVX512, 2 threads)"`` (the
        architecture, torch's CPU capability and the thread count; :func:`cpu_setup` reads it).
    data : str
        Description of the training data (:attr:`MNISTData.description`).
    """

    config: ConvNetConfig
    cross_entropy: np.ndarray
    penalty: np.ndarray
    lr: np.ndarray
    eval_steps: np.ndarray
    accuracy: Mapping[str, np.ndarray]
    num_params: int
    seconds: float
    seed: int
    device: str
    data: str = ""
    eval_seconds: float = 0.0
    final_accuracy: Mapping[str, float] = field(default_factory=dict)
    batch_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        """The config's variant."""
        return self.config.variant

    @property
    def num_steps(self) -> int:
        """Number of updates done."""
        return int(self.cross_entropy.shape[0])

    @property
    def batch_loss(self) -> np.ndarray:
        """The tutorial's logged loss: cross-entropy + weighted penalty, per step."""
        return self.cross_entropy + self.penalty

    def error(self, name: str) -> float:
        """Final error rate (1 - accuracy) on evaluation set ``name``, the tutorial's reported number."""
        if name in self.final_accuracy:
            return 1.0 - float(self.final_accuracy[name])
        if name in self.accuracy:
            return 1.0 - float(np.asarray(self.accuracy[name])[-1])
        raise KeyError(f"no evaluation set {name!r}; this run has {sorted({*self.accuracy, *self.final_accuracy})}")

    @property
    def ms_per_step(self) -> float:
        """Mean wall time per training step in milliseconds, evaluations excluded."""
        return 1e3 * (self.seconds - self.eval_seconds) / max(self.num_steps, 1)


def _divergence_hint(config: ConvNetConfig) -> str:
    """What to change when a run of ``config`` diverges: the learning rate, or the weight decay it multiplies.

    On its own the penalty ``weight_decay * ½‖W‖²`` has curvature ``weight_decay``, and SGD with heavy-ball
    momentum ``m`` on a quadratic of curvature λ is stable only for ``lr * λ < 2 (1 + m)``. When the
    configuration breaks that bound (``lr * weight_decay >= 2 (1 + momentum)``), the penalty alone drives the
    baseline's weights away, whatever the data, and the hint names ``weight_decay`` first.
    """
    bound = 2 * (1 + config.momentum)
    if config.lr * config.weight_decay >= bound:
        return (f"lr * weight_decay = {config.lr * config.weight_decay:g} is at least 2 (1 + momentum) = {bound:g}, "
                f"so the l2 penalty alone is unstable: use a smaller weight decay (ConvNetConfig.weight_decay) "
                f"or learning rate (ConvNetConfig.lr)")
    return "use a smaller learning rate (ConvNetConfig.lr)"


def _check_finite(logs: torch.Tensor, since: int, hint: str) -> None:
    """Raise :class:`DivergenceError` at the first step from ``since`` on whose batch loss ran away.

    The book's one divergence rule (:func:`overparam.training.is_divergent`), on the batch loss
    (cross-entropy + penalty) against the first step's. Called at logging intervals only: the copy of the
    losses to the host is the interval's one synchronization. ``hint`` is :func:`_divergence_hint`'s.
    """
    since = max(since, 0)
    batch_loss = (logs[0] + logs[1]).double()
    host = torch.cat([batch_loss[:1], batch_loss[since:]]).cpu().numpy()  # one copy: the first step and the window
    first, window = host[0], host[1:]
    bad = is_divergent(window, divergence_limit(first))
    if bad.any():
        step = since + int(np.argmax(bad))
        raise DivergenceError(step, float(window[step - since]), "convnet training", hint=hint)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; ``"cuda"`` without a GPU raises ``ValueError``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch.cuda.is_available() is False; use 'cpu' or 'auto'")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:k]', got {device!r} ({exc})") from None


def _device_name(dev: torch.device) -> str:
    """Where a run computes, as :attr:`ConvNetHistory.device` records it.

    On a CPU: the architecture, the instruction set torch's kernels use
    (``torch.backends.cpu.get_cpu_capability()``) and the thread count, e.g.
    ``"cpu (x86_64, AVX512, 2 threads)"``. Each of the three can change the order of float32 sums, hence the
    rounding of the losses (Chapter 6, ``ch-mnist``); :func:`cpu_setup` reads them back.
    """
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    machine = platform.processor() or platform.machine()
    return f"cpu ({machine}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads)"


class CPUSetup(NamedTuple):
    """What a CPU device string of :func:`train_convnet` records (:func:`cpu_setup`)."""

    machine: str
    #: torch's CPU capability ("AVX512", "AVX2", "DEFAULT", ...); ``None`` for a string written before it was recorded.
    capability: str | None
    threads: int


_CPU_DEVICE = re.compile(r"cpu \((?P<machine>.+?), (?:(?P<capability>[A-Z][A-Z0-9_]*), )?(?P<threads>\d+) threads\)")


def cpu_setup(device: str) -> CPUSetup | None:
    """Read a run's CPU device string (:attr:`ConvNetHistory.device`) into its parts; ``None`` for any other device.

    ``"cpu (x86_64, AVX512, 2 threads)"`` gives ``CPUSetup("x86_64", "AVX512", 2)``. Strings written before the
    capability was recorded, such as ``"cpu (x86_64, 2 threads)"``, give ``capability=None``.
    """
    found = _CPU_DEVICE.fullmatch(device) if isinstance(device, str) else None
    if found is None:
        return None
    return CPUSetup(found["machine"], found["capability"], int(found["threads"]))


ProgressFn = Callable[[int, int, Mapping[str, float]], None]


def _check_images(name: str, images: np.ndarray | torch.Tensor) -> None:
    """A batch the net takes: shape (n, 1, 28, 28), float32 (numpy or torch); ``ValueError`` naming ``name``."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must have shape (n, 1, 28, 28), got {tuple(images.shape)}")
    if str(images.dtype).removeprefix("torch.") != "float32":
        raise ValueError(f"{name} must be float32 (scaled as load_mnist's), got dtype {images.dtype}")


def _checked_data(name: str, data: Any) -> MNISTData:
    """``data`` checked as an :class:`MNISTData` the net can take: float32 images (n, 1, 28, 28), labels 0-9.

    Raises
    ------
    ValueError
        Naming ``name`` (``"data"``, ``"eval_data['validation']"``, ...) and what was expected.
    """
    if not isinstance(data, MNISTData):
        hint = (" (to train on an (images, labels) pair, wrap it: MNISTData(images, labels, split, source))"
                if isinstance(data, (tuple, list)) and len(data) == 2 else "")
        raise ValueError(f"{name} must be an MNISTData, got {type(data).__name__}{hint}")
    images, labels = np.asarray(data.images), np.asarray(data.labels)
    _check_images(f"{name}.images", images)
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{name}.images and {name}.labels must hold the same number n of examples (labels of "
                         f"shape (n,)), got {images.shape[0]} images and labels of shape {labels.shape}")
    if labels.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got 0")
    _check_labels(f"{name}.labels", labels)
    _check_finite_images(f"{name}.images", images)
    return data


def _check_labels(name: str, labels: np.ndarray | torch.Tensor) -> None:
    """Non-empty labels (numpy or torch) checked as integers in 0..9; ``ValueError`` naming ``name``."""
    if isinstance(labels, torch.Tensor):
        integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    else:
        integer = labels.dtype.kind in "iu"
    if not integer:
        raise ValueError(f"{name} must be integers in 0..{_CLASSES - 1}, got dtype {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= _CLASSES:
        raise ValueError(f"{name} must be integers in 0..{_CLASSES - 1}, got values from {low} to {high}")


def _check_finite_images(name: str, images: np.ndarray | torch.Tensor) -> None:
    """Images (numpy or torch) checked to be finite; ``ValueError`` naming ``name`` and counting the others."""
    finite = images.isfinite() if isinstance(images, torch.Tensor) else np.isfinite(images)
    if not finite.all():
        raise ValueError(f"{name} must contain only finite values, got {int((~finite).sum())} NaN or infinite")


def _checked_sets(name: str, sets: Any) -> dict[str, MNISTData]:
    """``eval_data`` or ``final_eval_data`` checked as a mapping of names to :class:`MNISTData` (``None``: empty)."""
    if sets is None:
        return {}
    if not isinstance(sets, Mapping):
        raise ValueError(f"{name} must be a mapping of names to MNISTData, e.g. {{'validation': data}}, "
                         f"got {type(sets).__name__}")
    return {k: _checked_data(f"{name}[{k!r}]", v) for k, v in sets.items()}


def _tensors(data: MNISTData, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and (int64) labels of ``data`` on ``dev``."""
    return torch.as_tensor(data.images, device=dev), torch.as_tensor(data.labels, dtype=torch.int64, device=dev)


@contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """On a CUDA ``device``, switch TensorFloat-32 off in convolutions and matrix products while the block runs.

    PyTorch lets cuDNN convolutions round their inputs to TF32 (10 mantissa bits) by default on Ampere and newer
    GPUs; the tutorial computed in full float32, and so does :func:`train_convnet`. The previous settings are
    restored afterwards. On a CPU nothing changes.
    """
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def stand_in_note(config: ConvNetConfig, train: MNISTData, validation: MNISTData) -> str:
    """The deviation a run records when test images stood in for the training split (Chapter 6, ``ch-mnist``).

    For ``python -m overparam mnist`` without the 60,000 training images: ``train`` and ``validation`` as
    :func:`~overparam.mnist.training_and_validation` splits the 10,000 test images then; the numbers of the
    schedule come from ``config``.
    """
    n = len(train)
    return (f"trained on {n:,} of the 10,000 MNIST test images (the other {len(validation):,} held out for validation) "
            f"because the 60,000 training images were not available; same number of steps and the same lr schedule "
            f"in steps as the tutorial's {config.epoch_size:,}-image split (one {config.lr_decay:g} decay per "
            f"{config.epoch_size:,} examples = {config.epoch_size / config.batch_size:g} steps); batches cycle through "
            f"the {n:,} images in the tutorial's fixed order (offset = step*{config.batch_size} mod "
            f"({n}-{config.batch_size})); no test error, since the test images were trained on")


def train_convnet(
    config: ConvNetConfig,
    data: MNISTData,
    num_steps: int | None = None,
    *,
    eval_data: Mapping[str, MNISTData] | None = None,
    final_eval_data: Mapping[str, MNISTData] | None = None,
    device: str = "auto",
    seed: int,
    progress: ProgressFn | None = None,
) -> ConvNetHistory:
    """Train the tutorial convnet as ``convolutional.py`` does (Chapter 6, ``ch-mnist``).

    At step ``s`` (0-based) the batch is ``data[o : o + B]`` with ``o = s B
    mod (n - B)``, the loss is

    .. math::

        \\mathcal L_s = \\frac1B \\sum_{i \\in \\text{batch}} \\mathrm{CE}(f(x_i), y_i)
        + \\lambda \\cdot \\text{penalty}(\\theta_s),

    with :math:`\\lambda` = ``config.weight_decay`` (:math:`5\\cdot 10^{-4}` by
    default), and SGD with momentum takes ``accum = m accum + grad``, ``theta -=
    lr_at(s) accum``.

    Parameters
    ----------
    config : ConvNetConfig
    data : MNISTData
        Training images, more than ``batch_size`` of them: float32 of shape
        (n, 1, 28, 28), finite, with labels 0-9 (as :func:`~overparam.mnist.load_mnist` returns them).
    num_steps : int, optional
        Updates to run; ``None`` means ``config.full_steps`` (8,593).
    eval_data : mapping of str to MNISTData, optional
        Sets whose accuracy is measured every ``config.eval_every`` steps
        (``convolutional.py`` does this with its 5,000 validation images),
        e.g. ``{"validation": data}``.
    final_eval_data : mapping of str to MNISTData, optional
        Sets whose accuracy is measured once, after the last step (the
        tutorial's 10,000 test images).
    device : {"auto", "cpu", "cuda"}
        On CUDA the run is in full float32, TF32 off (:func:`full_float32`), as the tutorial computed.
    seed : int
        An integer >= 0; seeds the initialization (:class:`TutorialConvNet`) and, via
        ``seed + 1``, the dropout masks.
    progress : callable, optional
        Called as ``progress(steps_done, num_steps, stats)`` about 200 times
        per run, ``stats`` holding the last step's ``cross_entropy``,
        ``penalty`` and ``lr``.

    Returns
    -------
    ConvNetHistory

    Raises
    ------
    ValueError
        ``config`` is not a :class:`ConvNetConfig`; ``num_steps`` is not an
        integer >= 0 (or ``None``); ``seed`` is not an integer >= 0; ``data``
        (or a set of ``eval_data`` / ``final_eval_data``) is not an
        :class:`MNISTData` with float32 images of shape (n, 1, 28, 28), finite,
        and as many labels, integers in 0..9; ``eval_data`` or
        ``final_eval_data`` is not a mapping; ``data`` holds ``batch_size``
        images or fewer; ``progress`` is not ``None`` or a callable; or ``device`` is not available.
    DivergenceError
        The batch loss became non-finite or grew above ``DIVERGENCE_FACTOR``
        times its first value; checked at every progress interval (about 200
        times a run, so a GPU is not synchronized every step), the error names
        the first such step.
    """
    if not isinstance(config, ConvNetConfig):
        raise ValueError(f"config must be a ConvNetConfig, got {type(config).__name__}")
    steps = config.full_steps if num_steps is None else check_int("num_steps", num_steps, 0,
                                                                   expected="an integer >= 0 or None")
    seed = torch_seed(seed)
    check_callable("progress", progress, "None or a callable (done, total, stats)", optional=True)
    data = _checked_data("data", data)
    eval_sets, final_sets = _checked_sets("eval_data", eval_data), _checked_sets("final_eval_data", final_eval_data)
    n, B = len(data), config.batch_size
    if n <= B:
        raise ValueError(f"data must hold more than batch_size={B} images, got {n}")
    dev = resolve_device(device)
    model = TutorialConvNet(config.variant, init_std=config.init_std, keep_prob=config.keep_prob, seed=seed).to(dev)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    dropout_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    X, y = _tensors(data, dev)
    evals = {k: _tensors(v, dev) for k, v in eval_sets.items()}
    finals = {k: _tensors(v, dev) for k, v in final_sets.items()}
    logs = torch.zeros((3, steps), dtype=torch.float64, device=dev)  # cross-entropy, weighted penalty, batch error
    lrs = np.array([config.lr_at(s) for s in range(steps)])
    eval_steps = sorted({0, steps, *range(0, steps, config.eval_every)})
    acc: dict[str, list[float]] = {k: [] for k in evals}
    report_every = max(1, steps // 200)
    hint = _divergence_hint(config)

    eval_seconds = 0.0

    def evaluate() -> None:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        for k, (xe, ye) in evals.items():
            acc[k].append(accuracy(model, xe, ye))  # float() inside: synchronizes a GPU
        eval_seconds += time.perf_counter() - t0

    with full_float32(dev):  # as the tutorial: no TF32 on a GPU
        start = time.perf_counter()
        evaluate()
        for s in range(steps):
            offset = (s * B) % (n - B)
            for group in optimizer.param_groups:
                group["lr"] = float(lrs[s])
            logits = model(X[offset : offset + B], dropout_gen)
            ce = F.cross_entropy(logits, y[offset : offset + B])
            pen = config.weight_decay * model.penalty()
            optimizer.zero_grad(set_to_none=True)
            (ce + pen).backward()
            optimizer.step()
            logs[0, s], logs[1, s] = ce.detach(), pen.detach()
            logs[2, s] = (logits.detach().argmax(dim=1) != y[offset : offset + B]).sum() / B
            done = s + 1
            if done % report_every == 0 or done == steps:
                _check_finite(logs[:2, :done], done - report_every, hint)
                if progress is not None:
                    progress(done, steps, {"cross_entropy": float(logs[0, s]), "penalty": float(logs[1, s]),
                                           "lr": float(lrs[s])})
            if done % config.eval_every == 0 or done == steps:
                evaluate()
        t0 = time.perf_counter()
        final_acc = {k: accuracy(model, xe, ye) for k, (xe, ye) in finals.items()}
        eval_seconds += time.perf_counter() - t0
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
    logs_np = logs.cpu().numpy()
    return ConvNetHistory(
        config=config,
        cross_entropy=logs_np[0],
        penalty=logs_np[1],
        batch_error=logs_np[2],
        lr=lrs,
        eval_steps=np.asarray(eval_steps, dtype=np.int64),
        accuracy={k: np.asarray(v) for k, v in acc.items()},
        num_params=model.num_params,
        seconds=seconds,
        eval_seconds=eval_seconds,
        final_accuracy=final_acc,
        seed=seed,
        device=_device_name(dev),
        data=data.description,
    )


# ---------------------------------------------------------------------------
# Results files: .npz arrays + JSON metadata (no pickle)
# ---------------------------------------------------------------------------
_ARRAYS = ("cross_entropy", "penalty", "lr", "eval_steps")


def save_histories(path: str | Path, histories: Sequence[ConvNetHistory], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write runs to ``path`` (``.npz``, arrays + a ``metadata_json`` string) and a readable ``.json`` beside it.

    Arrays are stored under ``"<variant>/<name>"``; the JSON holds
    ``metadata`` (e.g. :func:`provenance`) and each run's config, seed,
    device, timing, data description and final (test) accuracies. Nothing is
    pickled. Both files are written atomically (:func:`overparam.files.atomic_write`).

    Raises
    ------
    ValueError
        ``path`` ends in ``.json`` (the name of the readable copy, which would
        replace the arrays), ``histories`` is not a non-empty tuple of
        :class:`ConvNetHistory`, two runs share a variant, or ``metadata`` is
        not a mapping (or ``None``).
    TypeError
        An entry of ``metadata`` cannot be stored as JSON (the message names it).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        raise ValueError(f"path must not end in .json (that name is the readable copy written beside the .npz "
                         f"arrays); give a name such as {path.with_suffix('.npz')}, got {str(path)!r}")
    for i, h in enumerate(check_sequence("histories", histories, "ConvNetHistory runs (pass [history])")):
        if not isinstance(h, ConvNetHistory):
            raise ValueError(f"histories must hold ConvNetHistory runs, got {type(h).__name__} at entry {i}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be None or a mapping (such as provenance() returns), "
                         f"got {type(metadata).__name__}")
    variants = [h.variant for h in histories]
    if len(set(variants)) != len(variants):
        raise ValueError(f"histories must have distinct variants, got {variants}")
    arrays: dict[str, np.ndarray] = {}
    runs = []
    for h in histories:
        for name in (*_ARRAYS, "batch_error"):
            arrays[f"{h.variant}/{name}"] = np.asarray(getattr(h, name))
        for name, values in h.accuracy.items():
            arrays[f"{h.variant}/accuracy/{name}"] = np.asarray(values)
        runs.append({
            "config": asdict(h.config), "num_params": h.num_params, "seconds": h.seconds,
            "eval_seconds": h.eval_seconds, "ms_per_step": h.ms_per_step, "seed": h.seed,
            "device": h.device, "data": h.data, "accuracy_sets": list(h.accuracy),
            "final_accuracy": {k: float(v) for k, v in h.final_accuracy.items()}, "extra": dict(h.extra),
        })
    meta = {"metadata": dict(metadata or {}), "runs": runs}
    json_text(meta["metadata"], "metadata")  # names the reader's own entry that JSON cannot hold
    text = json_text(meta, "the histories' data", indent=2, sort_keys=True)
    atomic_write(path, lambda fh: np.savez_compressed(fh, metadata_json=np.array(text), **arrays))
    atomic_write(path.with_suffix(".json"), lambda fh: fh.write((text + "\n").encode("utf-8")))
    return path


def load_histories(path: str | Path) -> tuple[list[ConvNetHistory], dict[str, Any]]:
    """Read a file written by :func:`save_histories`: the runs and the file's ``metadata``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InvalidResultsFile
        The file is truncated, lacks a member, or its arrays do not match its runs.
    """
    path = Path(path)
    with read_results(path) as npz:
        meta = json.loads(str(npz["metadata_json"]))
        histories = []
        for run in meta["runs"]:
            config = ConvNetConfig(**run["config"])
            v = config.variant
            histories.append(ConvNetHistory(
                config=config,
                **{name: npz[f"{v}/{name}"] for name in _ARRAYS},
                batch_error=npz[f"{v}/batch_error"] if f"{v}/batch_error" in npz.files else np.zeros(0),
                accuracy={k: npz[f"{v}/accuracy/{k}"] for k in run["accuracy_sets"]},
                num_params=int(run["num_params"]), seconds=float(run["seconds"]), seed=int(run["seed"]),
                eval_seconds=float(run.get("eval_seconds", 0.0)),
                final_accuracy={k: float(x) for k, x in run.get("final_accuracy", {}).items()},
                device=run["device"], data=run["data"], extra=run.get("extra", {}),
            ))
        metadata = read_provenance(dict(meta["metadata"]))
    for h in histories:
        steps = h.cross_entropy.shape
        if h.penalty.shape != steps or h.lr.shape != steps or any(
                np.shape(a) != h.eval_steps.shape for a in h.accuracy.values()):
            raise invalid_results(path, f"the arrays of {h.variant!r} have mismatched lengths")
    return histories, metadata
