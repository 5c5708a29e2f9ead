"""Balancedness: the exact imbalance identity under GD, Procedure 1 (balanced factors of a given W_e), the initializations."""
import numpy as np
import pytest
import torch

import overparam as op
from overparam.balance import (
    balanced_factors,
    balanced_init,
    gaussian_init,
    imbalance,
    max_imbalance,
    random_orthogonal,
    rotate_hidden,
)
from overparam.deep import end_to_end, train_deep_linear


def _autograd_layer_gradients(factors, seed=0, m=25):
    """∂L^N/∂W_j by torch autograd, for L¹(W) = mean ‖W x − y‖⁴ / 4 on random data."""
    rng = np.random.default_rng(seed)
    Xs = torch.tensor(rng.normal(size=(m, factors[0].shape[1])))
    Ys = torch.tensor(rng.normal(size=(m, factors[-1].shape[0])))
    Ws = [torch.tensor(W, requires_grad=True) for W in factors]
    W_e = torch.linalg.multi_dot(Ws[::-1])
    return [G.numpy() for G in torch.autograd.grad(((Xs @ W_e.T - Ys) ** 2).sum(1).pow(2).mean() / 4, Ws)]


def test_imbalance_on_a_hand_example():
    W1, W2 = np.array([[1.0, 2.0]]), np.array([[3.0]])  # W2ᵀW2 − W1W1ᵀ = 9 − 5
    (D,) = imbalance([W1, W2])
    np.testing.assert_array_equal(D, [[4.0]])
    assert max_imbalance([W1, W2]) == 4.0
    assert imbalance([W1]) == [] and max_imbalance([W1]) == 0.0


def test_max_imbalance_is_the_largest_frobenius_norm():
    """δ = max_j ‖D_j‖_F (Frobenius, Definition 1 of arXiv:1810.02281), not the spectral norm, not only j = 1.

    By hand, W1 = I, W2 = diag(2, 3): D_1 = W2ᵀW2 − W1W1ᵀ = diag(4, 9) − I = diag(3, 8), ‖D_1‖_F = √(9 + 64) = √73
    (spectral norm 8; the other order W1ᵀW1 − W2W2ᵀ = −diag(3, 8) has the same norm, so the next case fixes it).
    A third layer W3 = [1 1] gives a non-diagonal D_2 = W3ᵀW3 − W2W2ᵀ = [[1, 1], [1, 1]] − diag(4, 9)
    = [[−3, 1], [1, −8]], ‖D_2‖_F = √(9 + 1 + 1 + 64) = √75 = 5√3 ≈ 8.660 > √73 ≈ 8.544; its spectral norm is
    5.5 + √7.25 ≈ 8.193.
    """
    W1, W2, W3 = np.eye(2), np.diag([2.0, 3.0]), np.array([[1.0, 1.0]])
    assert max_imbalance([W1, W2]) == pytest.approx(np.sqrt(73.0), rel=1e-15)
    D1, D2 = imbalance([W1, W2, W3])
    np.testing.assert_array_equal(D1, np.diag([3.0, 8.0]))
    np.testing.assert_array_equal(D2, [[-3.0, 1.0], [1.0, -8.0]])
    assert max_imbalance([W1, W2, W3]) == pytest.approx(5 * np.sqrt(3.0), rel=1e-15)
    # Rectangular and not symmetric in its layers: W1 (2×1), W2 (1×2), so D_1 = W2ᵀW2 − W1W1ᵀ is 2×2:
    # W2ᵀW2 = [[1, 2], [2, 4]], W1W1ᵀ = [[0, 0], [0, 1]] -> D_1 = [[1, 2], [2, 3]], ‖D_1‖_F = √(1 + 4 + 4 + 9) = √18.
    # The transposed convention W1ᵀW1 − W2W2ᵀ = 1 − 5 = −4 would be 1×1, of norm 4 ≠ √18 ≈ 4.243.
    A, B = np.array([[0.0], [1.0]]), np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(imbalance([A, B])[0], [[1.0, 2.0], [2.0, 3.0]])
    assert max_imbalance([A, B]) == pytest.approx(np.sqrt(18.0), rel=1e-15)


def test_imbalance_shapes_are_hidden_widths():
    fs = gaussian_init([5, 3, 7, 2], 1.0, seed=0)
    assert [D.shape for D in imbalance(fs)] == [(3, 3), (7, 7)]


def test_discrete_imbalance_identity_with_weight_decay():
    """One GD step changes the imbalance by D_j(t+1) = (1 − ηλ)² D_j(t) + η²(G_{j+1}ᵀG_{j+1} − G_jG_jᵀ), exactly."""
    fs = gaussian_init([5, 4, 3, 2], 0.8, seed=1)
    lr, lam = 0.05, 0.1
    G = _autograd_layer_gradients(fs)
    nxt = [(1 - lr * lam) * W - lr * g for W, g in zip(fs, G)]
    D0, D1 = imbalance(fs), imbalance(nxt)
    for j in range(len(D0)):
        predicted = (1 - lr * lam) ** 2 * D0[j] + lr**2 * (G[j + 1].T @ G[j + 1] - G[j] @ G[j].T)
        assert np.abs(D1[j] - predicted).max() <= 1e-14 * np.abs(D1[j]).max()


def test_gd_breaks_balance_only_at_second_order():
    """From exact balance, one GD step creates an imbalance ∝ η²: 100× smaller for η/10."""
    fs = balanced_factors(np.random.default_rng(2).normal(size=(2, 5)), 3, widths=(4, 4), seed=3)
    G = _autograd_layer_gradients(fs)
    after = [max_imbalance([W - lr * g for W, g in zip(fs, G)]) for lr in (1e-2, 1e-3)]
    assert after[0] / after[1] == pytest.approx(100, rel=1e-3)


def test_weight_decay_contracts_imbalance():
    """With λ > 0 an initial imbalance decays like (1 − ηλ)^{2t} ≈ e^{−2ηλt} along GD."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    fs = gaussian_init([4, 3, 3, 1], 0.5, seed=2)
    lr, lam, T = 1e-3, 0.5, 2000
    h = train_deep_linear(X, y, 2, fs, lr, T, weight_decay=lam, record_every=T)
    for D_T, D_0 in zip(imbalance(h.factors), imbalance(fs)):
        ratio = np.linalg.norm(D_T) / np.linalg.norm(D_0)
        assert ratio == pytest.approx((1 - lr * lam) ** (2 * T), rel=1e-5)  # measured 1.4e-6 at the most
        # e^{−2ηλT} differs from (1 − ηλ)^{2T} by a factor 1 + T(ηλ)² + ... = 1 + 5.0e-4 here
        assert ratio / np.exp(-2 * lr * lam * T) - 1 == pytest.approx(-T * (lr * lam) ** 2, rel=0.1)


@pytest.mark.parametrize(
    "k, d, depth, widths",
    [
        (3, 5, 2, None),
        (3, 5, 3, (3, 3)),
        (3, 5, 4, (7, 4, 9)),
        (5, 3, 3, (3, 6)),
        (1, 6, 3, (1, 1)),
        (1, 6, 3, (16, 16)),
        (4, 4, 1, None),
        (6, 1, 5, (1, 2, 3, 4)),
    ],
)
def test_procedure_one_is_exactly_balanced_with_the_right_product(k, d, depth, widths):
    """Procedure 1: product == W_e, D_j ≈ 0, shapes padded to the widths, layer singular values σ^{1/N}."""
    W_e = np.random.default_rng(k * d + depth).normal(size=(k, d)) * 3.0
    sigma = np.linalg.svd(W_e, compute_uv=False)
    for seed in (None, 7):
        fs = balanced_factors(W_e, depth, widths, seed=seed)
        dims = [d] + list(widths or [min(k, d)] * (depth - 1)) + [k]
        assert [W.shape for W in fs] == [(b, a) for a, b in zip(dims[:-1], dims[1:])]
        assert np.abs(end_to_end(fs) - W_e).max() <= 1e-13 * sigma[0]
        assert max_imbalance(fs) <= 1e-14 * sigma[0] ** (2 / depth) * max(dims)
        for W in fs:
            s = np.linalg.svd(W, compute_uv=False)[: sigma.size]
            np.testing.assert_allclose(s, sigma ** (1 / depth), rtol=1e-12)


def test_mixing_fills_the_padding():
    W_e = np.random.default_rng(8).normal(size=(1, 6))
    padded, mixed = balanced_factors(W_e, 3, (16, 16)), balanced_factors(W_e, 3, (16, 16), seed=1)
    assert np.count_nonzero(padded[1]) == 1 and np.count_nonzero(np.abs(mixed[1]) > 1e-3) > 100


def test_rank_deficient_end_to_end_matrix():
    rng = np.random.default_rng(9)
    W_e = np.outer(rng.normal(size=3), rng.normal(size=5))  # rank 1
    fs = balanced_factors(W_e, 3, (4, 4), seed=2)
    np.testing.assert_allclose(end_to_end(fs), W_e, atol=1e-13 * np.abs(W_e).max())
    assert max_imbalance(fs) <= 1e-13


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones((2, 3)), 0), "depth"),
        ((np.ones((2, 3)), 3, (2,)), "widths"),
        ((np.ones((2, 3)), 3, (2, 1)), r"widths\[1\]"),
        ((np.ones((2, 3)), 1, (2,)), "widths"),
        ((np.ones(3), 2), "W_e"),
    ],
)
def test_procedure_one_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        balanced_factors(*args)


def test_rotation_keeps_product_and_imbalance_norms():
    fs = gaussian_init([5, 4, 6, 3], 0.7, seed=3)
    rot = rotate_hidden(fs, seed=4)
    np.testing.assert_allclose(end_to_end(rot), end_to_end(fs), atol=1e-13)
    for D_rot, D in zip(imbalance(rot), imbalance(fs)):
        np.testing.assert_allclose(np.linalg.eigvalsh(D_rot), np.linalg.eigvalsh(D), atol=1e-13)
    for a, b in zip(rotate_hidden(fs, seed=4), rot):
        np.testing.assert_array_equal(a, b)
    Q = random_orthogonal(6, seed=5)
    np.testing.assert_allclose(Q.T @ Q, np.eye(6), atol=1e-14)


def test_rotations_follow_the_seed_and_are_haar():
    """Mutation testing: ignoring the seed, or dropping the sign fix (Q[0, 0] < 0 always), passed every test."""
    fs = gaussian_init([5, 4, 4, 5], 0.7, seed=3)
    one, two = rotate_hidden(fs, seed=1), rotate_hidden(fs, seed=2)
    for j in (0, 1, 2):
        assert not np.allclose(one[j], two[j]), f"layer {j + 1} is rotated the same way for seeds 1 and 2"
    # the two hidden layers (both of width 4) get different rotations: W_1 -> Q_1 W_1 and W_3 -> W_3 Q_2ᵀ, and
    # W_1 (4 x 5) has full row rank, W_3 (5 x 4) full column rank, so both Q's can be read back
    Q1 = one[0] @ np.linalg.pinv(fs[0])
    Q2 = (np.linalg.pinv(fs[2]) @ one[2]).T
    np.testing.assert_allclose(Q1 @ Q1.T, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(Q2 @ Q2.T, np.eye(4), atol=1e-12)
    assert not np.allclose(Q1, Q2)
    corners = np.array([random_orthogonal(3, seed)[0, 0] for seed in range(500)])
    assert abs(corners.mean()) < 0.1 and 0.4 < np.mean(corners > 0) < 0.6  # Haar: symmetric; measured 0.036, 0.54


@pytest.mark.parametrize("k, widths", [(1, None), (1, (8, 8)), (3, (4, 5))])
def test_balanced_init_gives_every_layer_the_stated_norm(k, widths):
    scale, depth = 0.1, 3
    fs = balanced_init(7, k, depth, scale, seed=6, widths=widths)
    for W in fs:
        assert np.linalg.norm(W, 2) == pytest.approx(scale, rel=1e-12)
        if k == 1:
            assert np.linalg.norm(W) == pytest.approx(scale, rel=1e-12)
    assert np.linalg.norm(end_to_end(fs), 2) == pytest.approx(scale**depth, rel=1e-12)
    assert max_imbalance(fs) <= 1e-15
    np.testing.assert_array_equal(end_to_end(balanced_init(7, k, depth, scale, seed=6, widths=widths)), end_to_end(fs))
    assert not np.allclose(end_to_end(balanced_init(7, k, depth, scale, seed=7, widths=widths)), end_to_end(fs))


def test_balanced_init_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        balanced_init(4, 1, 2, 0.0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        balanced_init(4, 1, 2, 0.1, seed=None)


def test_gaussian_init_shapes_std_and_imbalance_scaling():
    dims = [128, 64, 64, 1]
    base, small = gaussian_init(dims, 1.0, seed=8), gaussian_init(dims, 0.01, seed=8)
    assert [W.shape for W in small] == [(64, 128), (64, 64), (1, 64)]
    for W, B in zip(small, base):
        np.testing.assert_allclose(W, 0.01 * B, rtol=1e-15)
    assert np.std(small[0]) == pytest.approx(0.01, rel=0.05)
    assert max_imbalance(small) == pytest.approx(1e-4 * max_imbalance(base), rel=1e-12)  # δ ∝ std²
    with pytest.raises(ValueError, match="dims"):
        gaussian_init([5], 0.1, seed=0)
    with pytest.raises(ValueError, match="std"):
        gaussian_init([5, 1], -0.1, seed=0)


@pytest.mark.parametrize("dims", [[30, 4, 4, 1], [12, 1], [20, 16, 3]])
def test_gaussian_std_for_size_gives_that_root_mean_square_end_to_end_norm(dims):
    std = op.gaussian_std_for_size(dims, 0.01)
    norms = np.array([np.linalg.norm(op.end_to_end(op.gaussian_init(dims, std, seed))) for seed in range(3000)])
    assert np.sqrt(np.mean(norms**2)) == pytest.approx(0.01, rel=0.06)  # Monte Carlo, 3,000 draws


def test_gaussian_std_for_size_bad_input():
    with pytest.raises(ValueError, match="size"):
        op.gaussian_std_for_size([3, 1], 0.0)
    with pytest.raises(ValueError, match="dims"):
        op.gaussian_std_for_size([3], 1.0)


def test_widths_and_dims_that_are_not_sequences_are_named():
    """Bug: balanced_init(3, 1, 3, 0.1, 0, widths=4) and gaussian_init(3, 0.1, 0) raised
    "'int' object is not iterable"."""
    with pytest.raises(ValueError, match=r"^widths must be a sequence of depth - 1 = 2 hidden widths, got 4"):
        op.balanced_init(3, 1, 3, 0.1, 0, widths=4)
    with pytest.raises(ValueError, match=r"^widths must be a sequence"):
        op.balanced_factors(np.ones((1, 3)), 2, widths="4")
    with pytest.raises(ValueError, match=r"^dims must be a non-empty tuple of layer sizes \(d, \.\.\., k\), got 3"):
        op.gaussian_init(3, 0.1, 0)
    with pytest.raises(ValueError, match=r"^dims must be a non-empty tuple"):
        op.gaussian_std_for_size(None, 1.0)
    assert [W.shape for W in op.balanced_init(3, 1, 3, 0.1, 0, widths=np.array([2, 2]))] == [(2, 3), (2, 2), (1, 2)]


def test_scalar_layers_start_is_balanced_with_end_to_end_s_to_the_n_times_u():
    from overparam.balance import scalar_layers_start

    u = np.array([3.0, 0.0, 4.0]) / 5
    for depth, s in ((1, 0.7), (3, 0.7), (5, 1.3), (4, 0.0)):
        layers = scalar_layers_start(u, depth, s)
        assert [W.shape for W in layers] == [(1, 3)] + [(1, 1)] * (depth - 1)
        np.testing.assert_allclose(end_to_end(layers), s**depth * u[None, :], rtol=1e-15, atol=0)
        assert max_imbalance(layers) <= 1e-15  # exactly balanced: ‖W_1‖² = ω_j² = s²
    with pytest.raises(ValueError, match=r"^direction must be a unit vector, got shape \(3,\) and norm 5"):
        scalar_layers_start(5 * u, 2, 0.5)
    with pytest.raises(ValueError, match="^scale"):
        scalar_layers_start(u, 2, -0.1)
