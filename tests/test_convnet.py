"""Tests of the tutorial convnet, its variants, its trainer and its command line (overparam.convnet, overparam.cli.mnist)."""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import overparam as op

from overparam.cli.mnist import _parse_steps, _parse_variants
from overparam.cli.progress import Progress
from overparam.convnet import (
    full_float32,
    VARIANTS,
    ConvNetConfig,
    ConvNetHistory,
    CPUSetup,
    TutorialConvNet,
    accuracy,
    cpu_setup,
    flatten_nhwc,
    load_histories,
    resolve_device,
    save_histories,
    train_convnet,
)
from overparam.files import InvalidResultsFile
from overparam.mnist import MNISTData, final_evaluation_sets, load_mnist

SHARED = Path(os.environ.get("OVERPARAM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(
    not (SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(), reason=f"offline MNIST copy not found in {SHARED}"
)
WD = 5e-4


@pytest.fixture(scope="module")
def small():
    """The first 512 test images: a tiny training set."""
    data = load_mnist("test", SHARED, download=False)
    return MNISTData(data.images[:512], data.labels[:512], "test", data.source)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64)


# ---------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------
def test_parameter_counts_match_the_paper():
    base = TutorialConvNet("baseline", seed=0).num_params
    assert base == 1_663_370
    for variant in ("product", "factors", "original"):
        extra = TutorialConvNet(variant, seed=0).num_params - base
        assert extra == 262_244
    assert round(100 * 262_244 / base, 2) == 15.77


@pytest.mark.parametrize("variant", ["baseline", "product"])
def test_every_layer_shape(variant):
    out = TutorialConvNet(variant, seed=0).trace(torch.zeros(3, 1, 28, 28), torch.Generator().manual_seed(0))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "conv1": (3, 32, 28, 28), "pool1": (3, 32, 14, 14), "conv2": (3, 64, 14, 14), "pool2": (3, 64, 7, 7),
        "flat": (3, 3136), "fc1": (3, 512), "logits": (3, 10),
    }
    with pytest.raises(ValueError, match=r"\(n, 1, 28, 28\)"):
        TutorialConvNet(variant, seed=0)(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="generator: in training mode dropout draws a random mask"):
        TutorialConvNet(variant, seed=0)(torch.zeros(3, 1, 28, 28))  # unseeded dropout
    assert TutorialConvNet(variant, seed=0).eval()(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_flatten_uses_tensorflow_nhwc_order():
    n, c, h, w = 2, 64, 7, 7
    x = torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)
    flat = flatten_nhwc(x)
    for (b, ch, i, j) in [(0, 0, 0, 1), (1, 5, 3, 2), (0, 63, 6, 6)]:
        assert flat[b, (i * w + j) * c + ch] == x[b, ch, i, j]


def test_initialization_like_tensorflow():
    nets = {v: TutorialConvNet(v, seed=3) for v in VARIANTS}
    base = nets["baseline"]
    w = _np(base.fc1_w)
    assert np.abs(w).max() <= 0.2  # truncated at 2 std
    # std of N(0, 0.1^2) truncated at +-2 std: 0.1 * sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.08796
    assert abs(w.std() - 0.08796) < 5e-4 and abs(w.mean()) < 5e-4
    assert torch.all(base.conv1_b == 0) and torch.all(base.conv2_b == 0.1)
    assert torch.all(base.fc1_b == 0.1) and torch.all(base.fc2_b == 0.1)
    for v in ("product", "factors", "original"):  # the same seed gives every variant the same original weights
        for name in ("conv1_w", "conv2_w", "fc1_w", "fc2_w"):
            assert torch.equal(getattr(nets[v], name), getattr(base, name))
        assert nets[v].fc1_w2.shape == (512, 512) and nets[v].fc2_w2.shape == (10, 10)
        assert np.abs(_np(nets[v].fc1_w2)).max() <= 0.2
    assert not torch.equal(TutorialConvNet("baseline", seed=4).fc1_w, base.fc1_w)


def test_factorized_net_computes_the_end_to_end_net():
    """No non-linearity between the factors: the factored net is the plain net with W = W_a W_b."""
    over = TutorialConvNet("product", seed=1).double().eval()
    plain = TutorialConvNet("baseline", seed=1).double().eval()
    with torch.no_grad():
        for name, matrix in over.end_to_end().items():
            getattr(plain, f"{name}_w").copy_(matrix)
        x = torch.randn(5, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(over(x), plain(x), rtol=1e-12, atol=1e-12)


# An independent forward pass, written from the tutorial's description with torch.nn.functional primitives only
# (none of the module's helpers), used by the forward, training-replay and accuracy tests below.
def _oracle_logits(p: dict[str, torch.Tensor], x: torch.Tensor, mask: torch.Tensor | None = None,
                   keep_prob: float = 0.5) -> torch.Tensor:
    """Logits of the tutorial convnet with parameters ``p`` (name -> tensor) on NCHW images ``x``.

    conv 5x5 'SAME' + bias + ReLU, max-pool 2x2 stride 2, twice; TF's NHWC flatten; fc1 + ReLU; dropout
    with the boolean ``mask`` if given (kept units scaled by 1 / keep_prob); fc2. Factored dense layers
    use the end-to-end matrix W_a W_b, formed first (the module applies the factors one after the other).
    """
    h = F.relu(F.conv2d(x, p["conv1_w"], p["conv1_b"], stride=1, padding="same"))
    h = F.max_pool2d(h, kernel_size=2, stride=2)
    h = F.relu(F.conv2d(h, p["conv2_w"], p["conv2_b"], stride=1, padding="same"))
    h = F.max_pool2d(h, kernel_size=2, stride=2)
    assert h.shape[1:] == (64, 7, 7)
    # NHWC flatten: the 64 channels of pixel (0, 0), then those of pixel (0, 1), ..., row by row
    flat = torch.cat([h[:, :, i, j] for i in range(7) for j in range(7)], dim=1)
    w1 = p["fc1_w"] @ p["fc1_w2"] if "fc1_w2" in p else p["fc1_w"]
    w2 = p["fc2_w"] @ p["fc2_w2"] if "fc2_w2" in p else p["fc2_w"]
    hidden = F.relu(flat @ w1 + p["fc1_b"])
    if mask is not None:
        hidden = torch.where(mask, hidden / keep_prob, torch.zeros_like(hidden))
    return hidden @ w2 + p["fc2_b"]


def _perturbed_net(variant: str, seed: int) -> TutorialConvNet:
    """A net whose every parameter (biases included: conv1's is 0 at init) got independent noise of std 0.05."""
    net = TutorialConvNet(variant, seed=seed)
    gen = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return net


def _float64_params(net: TutorialConvNet) -> dict[str, torch.Tensor]:
    return {name: param.detach().double().clone() for name, param in net.named_parameters()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_matches_a_hand_built_float64_network(variant):
    """Eval-mode logits against :func:`_oracle_logits` on random images in the pixel range [-0.5, 0.5].

    Measured: |float32 model - float64 oracle| <= 4.4e-6 on logits of size <= 7 (float32 round-off), and
    a float64 copy of the model agrees to 2.8e-14; the tolerances are 3e-5 and 2e-13.
    """
    net = _perturbed_net(variant, seed=3).eval()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(4)) - 0.5
    expected = _oracle_logits(_float64_params(net), x.double())
    assert expected.std(dim=0).min() > 0.1  # the logits depend on the image (measured >= 0.6): nothing collapsed
    with torch.no_grad():
        torch.testing.assert_close(net(x).double(), expected, rtol=0, atol=3e-5)
        torch.testing.assert_close(net.double()(x.double()), expected, rtol=0, atol=2e-13)


def test_dropout_zeroes_or_doubles_in_training_only():
    net = TutorialConvNet("baseline", seed=0).double()
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    net.eval()
    kept = net.trace(x)["fc1"]
    assert torch.equal(net.trace(x)["fc1"], kept)
    net.train()
    dropped = net.trace(x, torch.Generator().manual_seed(0))["fc1"]
    is_zero, is_double = dropped == 0, torch.isclose(dropped, 2 * kept)
    assert torch.all(is_zero | is_double)
    assert 0.3 < float((is_zero & (kept > 0)).sum()) / float((kept > 0).sum()) < 0.7


# ---------------------------------------------------------------------------
# The l2 penalty and its placements (independent float64 numpy oracles)
# ---------------------------------------------------------------------------
def _half(*arrays: np.ndarray) -> float:
    return sum(0.5 * float(np.sum(a**2)) for a in arrays)


def test_penalty_placements_against_numpy():
    for variant in VARIANTS:
        net = TutorialConvNet(variant, seed=2).double()
        b1, b2 = _np(net.fc1_b), _np(net.fc2_b)
        w1a, w2a = _np(net.fc1_w), _np(net.fc2_w)
        if variant == "baseline":
            expected = _half(w1a, b1, w2a, b2)
        else:
            w1b, w2b = _np(net.fc1_w2), _np(net.fc2_w2)
            expected = {
                "product": _half(w1a @ w1b, b1, w2a @ w2b, b2),
                "factors": _half(w1a, w1b, b1, w2a, w2b, b2),
                "original": _half(w1a, b1, w2a, b2),
            }[variant]
        np.testing.assert_allclose(float(net.penalty().detach()), expected, rtol=1e-12)


def test_initial_penalty_sizes():
    """At init the weighted penalty is ~3.1 for the tutorial's net and ~12 with the penalty on the product.

    Arithmetic of Chapter 6: 5e-4 x ½ x 1.6M weights x 0.0077 (the variance of a
    truncated-normal std 0.1) ≈ 3.1; the product of two std-0.1 factors has
    entries of variance ≈ 512 x 0.0077², which lifts fc1's share to ≈ 12.
    """
    assert abs(WD * float(TutorialConvNet("baseline", seed=0).penalty().detach()) - 3.1) < 0.1
    assert 11 < WD * float(TutorialConvNet("product", seed=0).penalty().detach()) < 13.5


@needs_data
@pytest.mark.parametrize("variant", ["product", "factors"])
def test_logged_step_zero_equals_independent_computation(small, variant):
    """Step 0 of the trainer logs CE on batch 0 (with the seeded dropout mask) and 5e-4 * penalty."""
    h = train_convnet(ConvNetConfig(variant=variant), small, num_steps=1, device="cpu", seed=5)
    net = TutorialConvNet(variant, seed=5).train()
    logits = net(torch.as_tensor(small.images[:64]), torch.Generator().manual_seed(6))
    ce = F.cross_entropy(logits, torch.as_tensor(small.labels[:64]))
    np.testing.assert_allclose(h.cross_entropy[0], float(ce.detach()), rtol=1e-6)
    w1 = [_np(net.fc1_w), _np(net.fc1_w2)]
    w2 = [_np(net.fc2_w), _np(net.fc2_w2)]
    weights = [w1[0] @ w1[1], w2[0] @ w2[1]] if variant == "product" else w1 + w2
    np.testing.assert_allclose(h.penalty[0], WD * _half(*weights, _np(net.fc1_b), _np(net.fc2_b)), rtol=1e-6)
    np.testing.assert_allclose(h.batch_loss, h.cross_entropy + h.penalty)


def _replay_training(config: ConvNetConfig, data: MNISTData, num_steps: int, seed: int) -> dict[str, np.ndarray]:
    """``num_steps`` of the tutorial's training written out by hand in float64, logging what the trainer logs.

    Same start as the trainer (``TutorialConvNet(variant, seed)``) and the same dropout masks (a generator
    seeded ``seed + 1`` drawing one uniform (B, 512) array per step, unit kept where it is < keep_prob);
    everything else is independent: batches ``offset = s B mod (n - B)``, the loss as mean cross-entropy
    (log-sum-exp by hand) + weight_decay x TF l2_loss of the variant's penalised tensors, gradients by
    autograd, TF momentum ``v <- m v + g; theta <- theta - lr v`` and the staircase lr
    ``lr * lr_decay ** floor(s B / epoch_size)``.
    """
    params = {k: t.requires_grad_(True) for k, t in _float64_params(TutorialConvNet(config.variant, seed=seed)).items()}
    velocity = {k: torch.zeros_like(t) for k, t in params.items()}
    masks = torch.Generator().manual_seed(seed + 1)
    X, y = torch.as_tensor(data.images).double(), torch.as_tensor(data.labels).long()
    n, B = len(y), config.batch_size
    logs: dict[str, list[float]] = {"cross_entropy": [], "penalty": [], "batch_error": [], "lr": []}
    for s in range(num_steps):
        xb, yb = X[(s * B) % (n - B):][:B], y[(s * B) % (n - B):][:B]
        mask = torch.rand((B, 512), generator=masks) < config.keep_prob
        logits = _oracle_logits(params, xb, mask, config.keep_prob)
        ce = (torch.logsumexp(logits, dim=1) - logits[torch.arange(B), yb]).mean()
        p = params
        if config.variant in ("baseline", "original"):  # the original-shaped weights only
            penalised = [p["fc1_w"], p["fc2_w"]]
        elif config.variant == "product":  # the end-to-end matrices
            penalised = [p["fc1_w"] @ p["fc1_w2"], p["fc2_w"] @ p["fc2_w2"]]
        else:  # "factors": every factor
            penalised = [p["fc1_w"], p["fc1_w2"], p["fc2_w"], p["fc2_w2"]]
        penalised += [p["fc1_b"], p["fc2_b"]]
        pen = config.weight_decay * sum(0.5 * (t**2).sum() for t in penalised)
        grads = dict(zip(params, torch.autograd.grad(ce + pen, list(params.values()))))
        lr = config.lr * config.lr_decay ** ((s * B) // config.epoch_size)
        with torch.no_grad():
            for k, theta in params.items():
                velocity[k] = config.momentum * velocity[k] + grads[k]
                theta -= lr * velocity[k]
        logs["cross_entropy"].append(ce.item())
        logs["penalty"].append(pen.item())
        logs["batch_error"].append((logits.argmax(dim=1) != yb).double().mean().item())
        logs["lr"].append(lr)
    return {k: np.array(v) for k, v in logs.items()}


@needs_data
@pytest.mark.parametrize("variant", VARIANTS)
def test_trainer_steps_match_a_hand_written_replay(small, variant):
    """Four steps of train_convnet against :func:`_replay_training`: the logged losses after 0-3 updates.

    The set of 40 images with batch 16 gives offsets 0, 16, 8, 0; epoch_size=32 with lr_decay=0.5
    halves the lr every 2 steps (0.05, 0.05, 0.025, 0.025), so the schedule is exercised
    within the run; lr=0.05 and weight_decay=0.01 (not 5e-4) make momentum, the schedule and the penalty
    placement move the logged values well above round-off. Measured (float32 trainer vs float64 replay):
    relative differences <= 5.6e-7 in the cross-entropy, <= 8.3e-8 in the penalty; tolerances 3e-6 and 5e-7.
    """
    config = ConvNetConfig(variant=variant, batch_size=16, epoch_size=32, lr=0.05, lr_decay=0.5,
                           weight_decay=0.01, eval_every=1000)
    data = MNISTData(small.images[:40], small.labels[:40], "test", small.source)
    h = train_convnet(config, data, 4, device="cpu", seed=2)
    ref = _replay_training(config, data, 4, seed=2)
    np.testing.assert_allclose(h.cross_entropy, ref["cross_entropy"], rtol=3e-6)
    np.testing.assert_allclose(h.penalty, ref["penalty"], rtol=5e-7)
    np.testing.assert_array_equal(h.lr, ref["lr"])
    np.testing.assert_array_equal(h.batch_error, ref["batch_error"])
    assert ref["lr"].tolist() == [0.05, 0.05, 0.025, 0.025]


# ---------------------------------------------------------------------------
# Optimizer and schedule
# ---------------------------------------------------------------------------
def test_torch_sgd_momentum_is_tensorflow_momentum():
    """TF MomentumOptimizer: accum = m * accum + grad; var -= lr * accum (accum starts at 0), with changing lr."""
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    target = torch.randn(6, dtype=torch.float64, generator=gen)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    var, accum = np.zeros(4), np.zeros(4)
    An, tn = A.numpy(), target.numpy()
    for lr in (0.1, 0.1, 0.05, 0.05, 0.025):
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        (0.5 * ((A @ w - target) ** 2).sum()).backward()
        opt.step()
        grad = An.T @ (An @ var - tn)
        accum = 0.9 * accum + grad
        var = var - lr * accum
        np.testing.assert_allclose(w.detach().numpy(), var, rtol=1e-13, atol=1e-15)


def test_tutorial_schedule_and_budget():
    c = ConvNetConfig()
    assert c.full_steps == 8593
    assert c.lr_at(0) == 0.01 and c.lr_at(859) == 0.01
    assert c.lr_at(860) == pytest.approx(0.0095) and c.lr_at(1718) == pytest.approx(0.0095)
    assert c.lr_at(1719) == pytest.approx(0.01 * 0.95**2) and c.lr_at(8592) == pytest.approx(0.01 * 0.95**9)


def test_lr_schedule_is_the_tutorials_staircase_at_every_step():
    """``tf.train.exponential_decay(0.01, step * 64, 55000, 0.95, staircase=True)`` at every step of the run.

    Independent of the floor formula: the k-th decay happens at the first step with step * 64 >= k * 55000,
    i.e. at ceil(k * 55000 / 64) = 860, 1719, 2579, ..., 7735 (the 10th would be 8594, past the run).
    """
    c = ConvNetConfig()
    boundaries = [-(-k * 55_000 // 64) for k in range(1, 11)]
    assert boundaries[:3] == [860, 1719, 2579] and boundaries[-1] == 8594 > c.full_steps - 1
    for step in range(c.full_steps):
        decays = sum(step >= b for b in boundaries)
        assert c.lr_at(step) == pytest.approx(0.01 * 0.95**decays, rel=1e-14), step
    # another batch / epoch size: decays every 2 steps, 7 images per step and 14 per epoch
    other = ConvNetConfig(batch_size=7, epoch_size=14, lr=0.5, lr_decay=0.5)
    assert [other.lr_at(s) for s in range(6)] == [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]


@needs_data
def test_config_and_trainer_reject_bad_input(small):
    with pytest.raises(ValueError, match="variant"):
        ConvNetConfig(variant="deep")
    with pytest.raises(ValueError, match="batch_size"):
        ConvNetConfig(batch_size=0)
    with pytest.raises(ValueError, match="keep_prob"):
        ConvNetConfig(keep_prob=0.0)
    # Bug: a budget smaller than one batch was accepted, and full_steps was 0 (a run without a step)
    with pytest.raises(ValueError, match=r"num_epochs \* epoch_size must be at least batch_size.*1 \* 63 < 64"):
        ConvNetConfig(num_epochs=1, epoch_size=63)
    assert ConvNetConfig(num_epochs=1, epoch_size=64).full_steps == 1
    tiny = MNISTData(small.images[:64], small.labels[:64], "test", "")
    with pytest.raises(ValueError, match="more than batch_size"):
        train_convnet(ConvNetConfig(), tiny, 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match="num_steps"):
        train_convnet(ConvNetConfig(), small, -1, device="cpu", seed=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


def test_net_rejects_bad_init_std_keep_prob_and_seed():
    with pytest.raises(ValueError, match="init_std must be a finite number > 0"):
        TutorialConvNet("baseline", init_std=-1, seed=0)
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\]"):
        TutorialConvNet("baseline", keep_prob="0.5", seed=0)
    for bad in (1.5, "a", -1):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            TutorialConvNet("baseline", seed=bad)
    assert TutorialConvNet("baseline", seed=np.int64(3)).keep_prob == 0.5


@needs_data
def test_accuracy_rejects_bad_batch_size_and_inputs(small):
    net = TutorialConvNet("baseline", seed=0)
    images, labels = torch.as_tensor(small.images[:20]), torch.as_tensor(small.labels[:20])
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            accuracy(net, images, labels, bad)
    with pytest.raises(ValueError, match="images must hold at least one image"):
        accuracy(net, images[:0], labels[:0])
    with pytest.raises(ValueError, match="images and labels must hold the same number"):
        accuracy(net, images, labels[:15])
    assert accuracy(net, images, labels, 7) == accuracy(net, small.images[:20], small.labels[:20])


@pytest.mark.parametrize("training", [True, False])
def test_accuracy_is_the_eval_mode_argmax_and_restores_the_mode(training):
    """accuracy() against a hand argmax of the float64 oracle's (dropout-free) logits, on 23 images in batches of 5.

    The labels are built from the oracle's predictions: right on the 8 images with index = 0 mod 3 and on the
    last one (both 21 and 22 sit in the short last batch of 3), wrong (prediction + 1 mod 10) elsewhere, so
    the answer is exactly 9/23; a dropped last batch, dropout left on or a per-batch mean would miss it.
    The model's training flag must come back as it was. Measured: the top-two gap of the oracle's logits
    is >= 1.5e-3 on these images, 300 times the float32 round-off of the logits (measured 5.0e-6 here),
    so the model's float32 argmax cannot differ from the oracle's.
    """
    net = _perturbed_net("product", seed=5).train(training)
    images = torch.rand(23, 1, 28, 28, generator=torch.Generator().manual_seed(6)) - 0.5
    logits = _oracle_logits(_float64_params(net), images.double())
    top2 = logits.topk(2, dim=1).values
    assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-3
    predicted = logits.argmax(dim=1)
    right = (torch.arange(23) % 3 == 0) | (torch.arange(23) == 22)
    labels = torch.where(right, predicted, (predicted + 1) % 10)
    assert int(right.sum()) == 9 and len(set(predicted.tolist())) > 1
    assert accuracy(net, images, labels, batch_size=5) == 9 / 23
    assert net.training is training
    assert accuracy(net, images.numpy(), labels.numpy(), batch_size=23) == 9 / 23
    assert net.training is training


@needs_data
def test_trainer_names_the_bad_argument(small):
    config = ConvNetConfig(batch_size=8, eval_every=2)
    data = MNISTData(small.images[:40], small.labels[:40], "test", "")
    for bad in (2.7, "3", -1):
        with pytest.raises(ValueError, match="num_steps must be an integer >= 0"):
            train_convnet(config, data, bad, device="cpu", seed=0)
    for bad in (1.5, "a", -1):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            train_convnet(config, data, 1, device="cpu", seed=bad)
    with pytest.raises(ValueError, match="config must be a ConvNetConfig, got dict"):
        train_convnet({"lr": 0.01}, data, 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"data must be an MNISTData, got tuple \(to train on an \(images, labels\)"):
        train_convnet(config, (data.images, data.labels), 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match="data.images and data.labels must hold the same number.*40 images.*30"):
        train_convnet(config, MNISTData(data.images, data.labels[:30], "test", ""), 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"data.images must have shape \(n, 1, 28, 28\)"):
        train_convnet(config, MNISTData(data.images[:, :, :14], data.labels, "test", ""), 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"data.labels must be integers in 0\.\.9, got values from 0 to 12"):
        train_convnet(config, MNISTData(data.images, np.r_[data.labels[:39], 12], "test", ""), 1, device="cpu", seed=0)
    nan_images = data.images.copy()
    nan_images[3, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="data.images must contain only finite values, got 1 NaN"):
        train_convnet(config, MNISTData(nan_images, data.labels, "test", ""), 1, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"eval_data must be a mapping of names to MNISTData.*got list"):
        train_convnet(config, data, 1, device="cpu", seed=0, eval_data=[data])
    with pytest.raises(ValueError, match=r"final_eval_data\['test'\].labels must be integers in 0\.\.9"):
        train_convnet(config, data, 1, device="cpu", seed=0,
                      final_eval_data={"test": MNISTData(data.images, data.labels + 10, "test", "")})
    h = train_convnet(config, data, np.int64(2), device="cpu", seed=np.int64(1))
    assert h.num_steps == 2 and h.seed == 1 and type(h.seed) is int


@needs_data
def test_a_cpu_run_records_the_capability_of_its_kernels(small):
    """Bug: a CPU run's device string was "cpu (x86_64, 2 threads)", the same on CPUs whose kernels (AVX512, AVX2)
    round float32 sums differently, so Chapter 6 took another CPU for the setup that wrote its results file."""
    data = MNISTData(small.images[:40], small.labels[:40], "test", "")
    h = train_convnet(ConvNetConfig(batch_size=8), data, 1, device="cpu", seed=0)
    setup = cpu_setup(h.device)
    assert setup == (setup.machine, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())
    assert h.device == f"cpu ({setup.machine}, {setup.capability}, {setup.threads} threads)" and setup.machine


def test_cpu_setup_reads_device_strings_old_and_new():
    assert cpu_setup("cpu (x86_64, AVX512, 2 threads)") == CPUSetup("x86_64", "AVX512", 2)
    assert cpu_setup("cpu (arm, DEFAULT, 8 threads)") == CPUSetup("arm", "DEFAULT", 8)
    # written before the capability was recorded (results/mnist_full.json)
    assert cpu_setup("cpu (x86_64, 2 threads)") == CPUSetup("x86_64", None, 2)
    # Windows: platform.processor() holds a comma
    assert cpu_setup("cpu (Intel64 Family 6 Model 158, GenuineIntel, AVX2, 4 threads)") == CPUSetup(
        "Intel64 Family 6 Model 158, GenuineIntel", "AVX2", 4)
    assert cpu_setup("cpu (Intel64 Family 6 Model 158, GenuineIntel, 4 threads)").capability is None
    for other in ("cuda (NVIDIA H100 80GB HBM3)", "cpu", "cpu (x86_64, AVX2, two threads)", "", None):
        assert cpu_setup(other) is None


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("variant", ["baseline", "product"])
def test_twenty_steps_decrease_the_loss(small, variant):
    config = ConvNetConfig(variant=variant, eval_every=10)
    h = train_convnet(config, small, num_steps=21, eval_data={"train": small}, device="cpu", seed=0)
    # offsets cycle through 7 batches (512 - 64 = 448 = 7 * 64): steps 0-6 and 14-20 see the same batches
    first, last = h.cross_entropy[:7].mean(), h.cross_entropy[14:].mean()
    assert last < 0.7 * first, (first, last)
    assert h.eval_steps.tolist() == [0, 10, 20, 21]
    assert h.accuracy["train"][-1] > h.accuracy["train"][0] + 0.2
    assert np.all(np.diff(h.penalty) < 0)  # weight decay shrinks the penalised weights while CE is still large
    assert h.lr.tolist() == [0.01] * 21 and h.num_params == TutorialConvNet(variant, seed=0).num_params


@needs_data
def test_fixed_seed_is_deterministic(small):
    config = ConvNetConfig(variant="original")
    a, b = (train_convnet(config, small, 3, device="cpu", seed=7) for _ in range(2))
    np.testing.assert_array_equal(a.cross_entropy, b.cross_entropy)
    np.testing.assert_array_equal(a.penalty, b.penalty)
    c = train_convnet(config, small, 3, device="cpu", seed=8)
    assert not np.array_equal(a.cross_entropy, c.cross_entropy)


@needs_data
def test_results_file_round_trip_without_pickle(small, tmp_path):
    runs = [train_convnet(ConvNetConfig(variant=v, eval_every=1), small, 2, eval_data={"train": small},
                          device="cpu", seed=1) for v in ("baseline", "factors")]
    path = save_histories(tmp_path / "r.npz", runs, {"data_source": small.source, "note": "test"})
    loaded, meta = load_histories(path)  # np.load(..., allow_pickle=False) inside
    assert meta == {"data_source": small.source, "note": "test"}
    for before, after in zip(runs, loaded):
        assert after.config == before.config and after.num_params == before.num_params
        assert (after.seconds, after.eval_seconds) == (before.seconds, before.eval_seconds) and after.eval_seconds > 0
        np.testing.assert_array_equal(after.batch_loss, before.batch_loss)
        np.testing.assert_array_equal(after.accuracy["train"], before.accuracy["train"])
        np.testing.assert_array_equal(after.eval_steps, before.eval_steps)
    assert json.loads(path.with_suffix(".json").read_text())["runs"][1]["config"]["variant"] == "factors"
    with pytest.raises(ValueError, match="distinct variants"):
        save_histories(tmp_path / "s.npz", [runs[0], runs[0]])


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def test_cli_argument_parsing():
    assert _parse_steps("full") is None and _parse_steps("250") == 250
    assert _parse_variants("baseline, product") == ["baseline", "product"]
    for bad in ("0", "-3", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="--steps"):
            _parse_steps(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="--variants"):
        _parse_variants("baseline,deep")


def test_progress_bar_writes_the_count_the_losses_and_the_whole_run_eta():
    stream = io.StringIO()
    bar = Progress("product", unit="step", stream=stream, runs_after=2)
    for done in range(1, 101):
        bar(done, 100, {"cross_entropy": 1.0, "penalty": 2.0, "lr": 0.01})
    text = stream.getvalue()
    assert "product" in text and "100/100" in text and "cross_entropy 1" in text and "penalty 2" in text
    assert "all runs" in text and "s left" in text
    quiet = io.StringIO()
    sweep_bar = Progress("ethanol", unit="it", stream=quiet)
    for done in (10, 20):
        sweep_bar(done, 20)  # the sweep engine's callback has no stats
    assert "20/20" in quiet.getvalue() and "all runs" not in quiet.getvalue()


def _run_cli(args: list[str]) -> int:
    from overparam.__main__ import main

    return main(["mnist", "--steps", "2", "--device", "cpu", "--no-download", *args])


@needs_data
@pytest.mark.slow
def test_cli_end_to_end_on_the_tutorial_split(tmp_path, monkeypatch, capsys):
    """Validation error every N steps, test error at the end, provenance naming the 55,000 training images."""
    if not (SHARED / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST training images not in the offline copy")
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "mnist_2.npz"
    assert _run_cli(["--variants", "baseline,original", "--data-dir", str(SHARED), "--out", str(out),
                     "--eval-every", "1"]) == 0
    runs, meta = load_histories(out)
    assert [h.variant for h in runs] == ["baseline", "original"] and runs[0].num_steps == 2
    assert meta["train_images"] == 55_000 and "deviation" not in meta and meta["torch"] == torch.__version__
    assert "SHA-256 verified" in meta["data_source"] and meta["command"].endswith("--eval-every 1")
    for h in runs:
        assert list(h.accuracy) == ["validation"] and h.eval_steps.tolist() == [0, 1, 2]
        assert list(h.final_accuracy) == ["test"] and 0 < h.error("test") < 1
        assert h.batch_error.shape == (2,) and set(np.round(h.batch_error * 64, 6)) <= set(range(65))
    err = capsys.readouterr().err
    assert "validation error" in err and "test error" in err and "2/2" in err and "all runs" in err and "s left" in err


@needs_data
@pytest.mark.slow
def test_cli_stand_in_when_training_images_are_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (data / name).symlink_to((SHARED / "mnist" / name).resolve())
    out = tmp_path / "stand_in.npz"
    with pytest.warns(UserWarning, match="instead of the 55,000"):
        assert _run_cli(["--variants", "baseline", "--data-dir", str(data.parent), "--out", str(out)]) == 0
    runs, meta = load_histories(out)
    # the one stand-in rule of the library (training_and_validation), not a second one in the command line
    assert meta["deviation"].startswith("trained on 9,000 of the 10,000 MNIST test images (the other 1,000 held out")
    assert "= 859.375 steps" in meta["deviation"] and "mod (9000-64)" in meta["deviation"]
    assert meta["train_images"] == 9_000 and meta["eval_sets"] == ["validation"] and meta["final_eval_sets"] == []
    assert list(runs[0].accuracy) == ["validation"] and runs[0].final_accuracy == {}


def test_cli_never_overwrites_an_existing_default_file(tmp_path, monkeypatch):
    """Bug: the default output replaced the committed results file. Now a fresh name is chosen."""
    from overparam.files import OutputPathError, choose_output

    monkeypatch.chdir(tmp_path)
    default = tmp_path / "results" / "mnist_full.npz"
    path, why = choose_output(None, default)
    assert path == default and why == "the default"
    default.parent.mkdir()
    default.write_bytes(b"committed")
    path, why = choose_output(None, default)
    assert path != default and path.parent == default.parent and path.name.startswith("mnist_full-")
    assert "is kept" in why and default.read_bytes() == b"committed"
    with pytest.raises(OutputPathError, match="--force does not replace the committed results file"):
        choose_output(None, default, force=True)  # mnist_full.npz is a committed file: only --out replaces it
    other = default.with_name("mnist_1000.npz")
    other.write_bytes(b"an earlier run")
    assert choose_output(None, other, force=True)[0] == other
    assert choose_output(str(default), "elsewhere.npz")[0] == default  # naming it is asking for it
    assert choose_output("run.out", default)[0] == Path("run.out.npz")  # the file written is the file reported


def test_cli_checks_the_output_before_training(tmp_path, capsys):
    """Bug: an impossible --out failed only after the whole run. Now it fails before any data is read."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        _run_cli(["--data-dir", str(tmp_path / "nowhere"), "--out", str(blocker / "sub" / "r.npz")])
    err = capsys.readouterr().err
    assert "--out" in err and "cannot write" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        _run_cli(["--out", str(tmp_path)])
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--eval-every", "0"], ["--threads", "-1"], ["--device", "tpu"]])
def test_cli_rejects_bad_options_with_one_line(bad, capsys):
    with pytest.raises(SystemExit) as info:
        _run_cli(bad)
    assert info.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    """Bug: saves wrote in place. Now a failure during the write leaves the previous file intact."""
    from overparam.files import atomic_write

    target = tmp_path / "r.npz"
    target.write_bytes(b"good old results")

    def broken(fh):
        fh.write(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_bytes() == b"good old results" and list(tmp_path.iterdir()) == [target]


@needs_data
def test_diverging_convnet_stops_and_names_the_step(small):
    from overparam.linear import DivergenceError

    with pytest.raises(DivergenceError, match="convnet training diverged at step") as info:
        train_convnet(ConvNetConfig(lr=50.0, eval_every=1000), small, 40, device="cpu", seed=0)
    assert 0 < info.value.step < 40
    assert str(info.value).endswith("use a smaller learning rate (ConvNetConfig.lr)")


@needs_data
def test_a_diverging_weight_decay_is_named(small):
    """Bug: a weight decay large enough to make the l2 penalty alone unstable (lr * weight_decay >= 2 (1 + momentum))
    diverged with the advice to lower the learning rate only."""
    from overparam.linear import DivergenceError

    with pytest.raises(DivergenceError, match=r"lr \* weight_decay = 10 is at least 2 \(1 \+ momentum\) = 3.8, so the "
                                              r"l2 penalty alone is unstable: use a smaller weight decay") as info:
        train_convnet(ConvNetConfig(weight_decay=1000.0, eval_every=1000), small, 40, device="cpu", seed=0)
    assert 0 < info.value.step < 40


def test_committed_paper_scale_file_is_the_tutorials_full_run():
    """results/mnist_full.* (Chapter 6): four variants, 8,593 steps on the 55,000 training images, evaluated."""
    root = Path(__file__).resolve().parents[1] / "results"
    runs, meta = load_histories(root / "mnist_full.npz")
    assert [h.variant for h in runs] == list(VARIANTS)
    assert meta["train_images"] == 55_000 and "55,000" in meta["data"] and "train" in meta["data"]
    assert all(k in meta for k in ("command", "device", "torch", "date_utc"))
    for h in runs:
        assert h.num_steps == ConvNetConfig().full_steps == 8_593
        assert np.isfinite(h.batch_loss).all()
        assert h.eval_steps[0] == 0 and h.eval_steps[-1] == 8_593 and len(h.eval_steps) > 40
        assert 0 < h.error("validation") < 0.02 and 0 < h.error("test") < 0.02
    sidecar = json.loads((root / "mnist_full.json").read_text())
    assert sidecar["metadata"] == meta
    assert [r["final_accuracy"]["test"] for r in sidecar["runs"]] == [h.final_accuracy["test"] for h in runs]


def _history(variant: str, steps: int = 4) -> ConvNetHistory:
    """A hand-made run (no training): enough for the results-file checks."""
    return ConvNetHistory(config=ConvNetConfig(variant=variant), cross_entropy=np.linspace(2, 1, steps),
                          penalty=np.ones(steps), lr=np.full(steps, 0.01), eval_steps=np.array([0, steps]),
                          accuracy={"validation": np.array([0.1, 0.5])}, num_params=10, seconds=1.0, seed=0,
                          device="cpu")


@pytest.mark.parametrize("damage", ["truncated", "missing member", "mismatched lengths", "no metadata"])
def test_damaged_convnet_file_is_not_a_valid_results_file(tmp_path, damage):
    """Bug: a truncated or incomplete histories file raised KeyError/BadZipFile or loaded silently."""
    path = save_histories(tmp_path / "r.npz", [_history("baseline"), _history("factors")], {"note": "test"})
    assert [h.variant for h in load_histories(path)[0]] == ["baseline", "factors"]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-200])
    else:
        with np.load(path) as f:
            members = {k: f[k] for k in f.files}
        if damage == "missing member":
            del members["factors/penalty"]
        elif damage == "mismatched lengths":
            members["factors/lr"] = members["factors/lr"][:-1]
        else:
            meta = json.loads(str(members["metadata_json"]))
            del meta["metadata"]
            members["metadata_json"] = np.array(json.dumps(meta))
        np.savez(path, **members)
    with pytest.raises(InvalidResultsFile, match="r.npz: not a valid results file"):
        load_histories(path)


def test_accuracy_names_images_that_are_not_float32_batches():
    """Bug: float64 images gave torch's "Input type (double) and bias type (float) should be the same"; the check
    is the one train_convnet applies to its data ("images must be float32")."""
    net = TutorialConvNet("baseline", seed=0)
    labels = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"^images must be float32 \(scaled as load_mnist's\), got dtype torch.float64"):
        accuracy(net, torch.rand(3, 1, 28, 28, dtype=torch.float64), labels)
    with pytest.raises(ValueError, match=r"^images must be float32 .* got dtype torch.float64"):
        accuracy(net, np.random.default_rng(0).random((3, 1, 28, 28)), labels.numpy())
    with pytest.raises(ValueError, match=r"^images must have shape \(n, 1, 28, 28\), got \(3, 784\)"):
        accuracy(net, torch.rand(3, 784), labels)
    assert 0.0 <= accuracy(net, torch.rand(3, 1, 28, 28), labels) <= 1.0


def test_lr_at_refuses_a_step_that_is_not_an_integer_at_least_zero():
    """Bug: ConvNetConfig().lr_at(-1) returned 0.0105, above the base rate."""
    config = ConvNetConfig()
    for bad in (-1, 2.5, "3", None):
        with pytest.raises(ValueError, match=r"^step must be an integer >= 0, got"):
            config.lr_at(bad)
    assert config.lr_at(np.int64(0)) == config.lr


def test_save_histories_names_metadata_that_json_cannot_hold(tmp_path):
    """Bug: an unstorable metadata entry raised json's bare 'Object of type object is not JSON serializable'."""
    with pytest.raises(TypeError, match=r"metadata\['x'\]"):
        save_histories(tmp_path / "r.npz", [_history("baseline")], {"x": object()})
    assert not (tmp_path / "r.npz").exists()


def test_full_float32_switches_tf32_off_on_cuda_only_and_restores_it():
    """Bug: only the command line switched TF32 off, so a chapter's train_convnet on a GPU ran cuDNN in TF32."""
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    before = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = True
        with full_float32(torch.device("cuda")):  # setting the flags needs no GPU
            assert [f.allow_tf32 for f in flags] == [False, False]
        assert [f.allow_tf32 for f in flags] == [True, True], "restored"
        with pytest.raises(RuntimeError, match="inside"):
            with full_float32(torch.device("cuda:0")):
                raise RuntimeError("inside")
        assert [f.allow_tf32 for f in flags] == [True, True], "restored after an error too"
        with full_float32(torch.device("cpu")):
            assert [f.allow_tf32 for f in flags] == [True, True], "a CPU run changes nothing"
    finally:
        for f, b in zip(flags, before):
            f.allow_tf32 = b


def test_final_evaluation_sets_leave_out_test_images_that_were_trained_on(tmp_path):
    tiny = MNISTData(np.zeros((3, 1, 28, 28), np.float32), np.zeros(3, np.int64), "test", "here", stands_in_for="train")
    assert final_evaluation_sets(tiny, tmp_path, download=False) == {}
    with pytest.raises(ValueError, match="^train must be an MNISTData"):
        final_evaluation_sets(None)


def test_the_seed_is_an_argument_every_caller_gives():
    """The project's rule: a random draw is seeded by an explicit argument, not by a default hidden in a signature."""
    for make in (lambda: TutorialConvNet("baseline"), lambda: train_convnet(ConvNetConfig(), None, 1),
                 lambda: op.rule_demo(2, 0.01, X=np.ones((3, 2)), y=np.ones(3))):
        with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'seed'"):
            make()


def test_save_histories_refuses_a_json_path_that_would_overwrite_its_own_arrays(tmp_path):
    """Bug: save_histories("runs.json", ...) wrote the arrays, then replaced them with the readable copy (the same
    path), so that load_histories failed with numpy's pickle message."""
    with pytest.raises(ValueError, match=r"^path must not end in \.json .*runs\.npz, got '.*runs\.json'"):
        save_histories(tmp_path / "runs.json", [_history("baseline")])
    assert list(tmp_path.iterdir()) == []


def test_save_histories_names_histories_and_metadata_of_the_wrong_kind(tmp_path):
    """Bugs: a single history gave "'ConvNetHistory' object is not iterable", a list of dicts "'dict' object has no
    attribute 'variant'", and metadata=[1, 2] "cannot convert dictionary update sequence element"."""
    with pytest.raises(ValueError, match=r"^histories must be a non-empty tuple of ConvNetHistory runs"):
        save_histories(tmp_path / "r.npz", _history("baseline"))
    with pytest.raises(ValueError, match=r"^histories must be a non-empty tuple"):
        save_histories(tmp_path / "r.npz", [])
    with pytest.raises(ValueError, match=r"^histories must hold ConvNetHistory runs, got dict at entry 0"):
        save_histories(tmp_path / "r.npz", [{}])
    with pytest.raises(ValueError, match=r"^metadata must be None or a mapping .* got list"):
        save_histories(tmp_path / "r.npz", [_history("baseline")], metadata=[1, 2])
    assert list(tmp_path.iterdir()) == []


def test_load_histories_says_a_file_that_is_not_an_npz_archive_is_not_one(tmp_path):
    """Bug: an HTML page saved as r.npz gave numpy's "contains pickled (object) data ... allow_pickle" advice."""
    path = tmp_path / "r.npz"
    path.write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(InvalidResultsFile, match=r"r\.npz: not a valid results file \(it is not an \.npz archive") as info:
        load_histories(path)
    assert "pickle" not in str(info.value)


def test_accuracy_names_a_model_labels_and_images_it_cannot_use():
    """Bugs: model=None gave "'NoneType' object has no attribute 'training'"; another torch module a shape error
    from inside torch; labels out of 0..9, float labels or NaN images gave an accuracy of 0.0 silently."""
    net = TutorialConvNet("baseline", seed=0)
    images, labels = torch.rand(3, 1, 28, 28), torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"^model must be a TutorialConvNet, got NoneType"):
        accuracy(None, images, labels)
    with pytest.raises(ValueError, match=r"^model must be a TutorialConvNet, got Linear"):
        accuracy(torch.nn.Linear(2, 2), images, labels)
    with pytest.raises(ValueError, match=r"^labels must be integers in 0\.\.9, got values from 20 to 20"):
        accuracy(net, images, labels + 20)
    with pytest.raises(ValueError, match=r"^labels must be integers in 0\.\.9, got dtype torch.float32"):
        accuracy(net, images, labels.float())
    images[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"^images must contain only finite values, got 1 NaN or infinite"):
        accuracy(net, images, labels)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_net_names_an_input_of_another_dtype_than_its_parameters(mode):
    """Bug: float64 input gave torch's "Input type (double) and bias type (float)" (eval) or a message about the
    generator (train)."""
    net = TutorialConvNet("baseline", seed=0)
    getattr(net, mode)()
    with pytest.raises(ValueError, match=r"^x must be float32 like the model's parameters .* got dtype torch.float64"):
        net(torch.zeros(2, 1, 28, 28, dtype=torch.float64))


def test_train_convnet_checks_progress_before_any_work():
    """Bug: progress="yes" raised "'str' object is not callable" after the first chunk of training."""
    with pytest.raises(ValueError, match=r"^progress must be None or a callable \(done, total, stats\), got 'yes'"):
        train_convnet(ConvNetConfig(), None, 2, seed=0, progress="yes")
