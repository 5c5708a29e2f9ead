"""The end-to-end rule: matrix powers, P_{W_e} (Claim 1), Equation 12, agreement with deep GD and width independence, training."""
import numpy as np
import pytest
import torch

from overparam.balance import balanced_factors, balanced_init, gaussian_init, max_imbalance
from overparam.deep import end_to_end, layer_gradients, train_deep_linear
from overparam.dynamics import (
    end_to_end_direction,
    end_to_end_step,
    layer_preconditioner,
    preconditioner,
    psd_power,
    single_output_direction,
    train_end_to_end,
)
from overparam.linear import DivergenceError, gradient_descent
from overparam.losses import lp_gradient


def _regression(seed=0, m=40, d=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    return X, X @ rng.normal(size=d) / np.sqrt(d) + 0.1 * rng.normal(size=m)


def _vec(A):
    return A.flatten(order="F")


def _psd_with_eigenvalues(lam, seed=0):
    V = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(lam), len(lam))))[0]
    return (V * np.asarray(lam)) @ V.T, V


# --- psd_power ---------------------------------------------------------------


def test_psd_power_inverts_integer_powers():
    A, _ = _psd_with_eigenvalues([3.0, 1.0, 0.2, 0.05, 2.0])
    R = psd_power(A, 0.5)
    np.testing.assert_allclose(R @ R, A, atol=1e-14)
    np.testing.assert_allclose(np.linalg.matrix_power(psd_power(A, 1 / 3), 3), A, atol=1e-14)
    np.testing.assert_allclose(psd_power(A, 1.0), A, atol=1e-14)
    np.testing.assert_array_equal(R, R.T)


def test_psd_power_zero_is_identity_even_for_singular_matrices():
    A, _ = _psd_with_eigenvalues([2.0, 0.0, 0.0])
    np.testing.assert_array_equal(psd_power(A, 0), np.eye(3))
    np.testing.assert_array_equal(psd_power(np.zeros((4, 4)), 0), np.eye(4))
    np.testing.assert_array_equal(psd_power(np.zeros((4, 4)), 0.5), np.zeros((4, 4)))


def test_round_off_eigenvalues_are_clamped_to_zero():
    """A 1e−17 eigenvalue (relative to 2) is noise; to the power 1/5 it would be 4e−4, not 0."""
    A, V = _psd_with_eigenvalues([2.0, 1e-17, 0.5, 0.0], seed=1)
    in_basis = V.T @ psd_power(A, 0.2) @ V
    np.testing.assert_allclose(np.diag(in_basis), [2**0.2, 0.0, 0.5**0.2, 0.0], atol=1e-14)
    kept = psd_power(_psd_with_eigenvalues([2.0, 1e-8], seed=2)[0], 0.2)  # a genuine small eigenvalue stays
    assert np.linalg.eigvalsh(kept)[0] == pytest.approx(1e-8**0.2, rel=1e-6)


@pytest.mark.parametrize(
    "A, alpha, match",
    [
        (np.array([[1.0, 2.0], [0.0, 1.0]]), 0.5, "symmetric"),
        (np.ones((2, 3)), 0.5, "square"),
        (np.ones(3), 0.5, "square"),
        (-np.eye(2), 0.5, "positive semidefinite"),
        (np.eye(2), -0.5, "alpha"),
        (np.full((2, 2), np.nan), 0.5, "finite"),
    ],
)
def test_psd_power_rejects_bad_input(A, alpha, match):
    with pytest.raises(ValueError, match=match):
        psd_power(A, alpha)


# --- the single-output closed form (Equation 12) ------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_matrix_rule_equals_single_output_closed_form(depth):
    rng = np.random.default_rng(depth)
    for scale in (1.0, 1e-3, 50.0):
        w, g = scale * rng.normal(size=7), rng.normal(size=7)
        closed = single_output_direction(w, g, depth)
        matrix = end_to_end_direction(w[None, :], g[None, :], depth)[0]
        assert np.abs(matrix - closed).max() <= 1e-12 * np.abs(closed).max()
    np.testing.assert_array_equal(single_output_direction(w[None, :], g[None, :], depth)[0], closed)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_rules_at_the_origin(depth):
    """W_e = 0 is a critical point for N ≥ 2 (both forms give 0); N = 1 is the gradient."""
    g = np.arange(1.0, 5.0)
    expected = g if depth == 1 else np.zeros(4)
    np.testing.assert_array_equal(single_output_direction(np.zeros(4), g, depth), expected)
    np.testing.assert_array_equal(end_to_end_direction(np.zeros((1, 4)), g[None, :], depth)[0], expected)


def test_the_depth_one_direction_and_a_one_layer_product_are_copies_not_the_caller_s_arrays():
    """Bug: for N = 1 single_output_direction returned grad itself, and end_to_end([W]) returned W: a caller who then
    changed the result in place changed their own gradient or layer."""
    g, W = np.arange(1.0, 5.0), np.ones((1, 4))
    direction, product = single_output_direction(np.ones(4), g, 1), end_to_end([W])
    direction[0], product[0, 0] = 99.0, 99.0
    assert g[0] == 1.0 and W[0, 0] == 1.0


def test_one_step_of_the_rule_for_one_output_is_equation_12():
    w, g, lr, lam, N = np.array([3.0, 4.0]), np.array([1.0, 0.0]), 0.1, 0.2, 3
    # ‖w‖ = 5, Pr_w g = (3/25) w; Eq. 12 by hand:
    expected = (1 - lr * lam * N) * w - lr * 5 ** (2 - 2 / N) * (g + (N - 1) * (3 / 25) * w)
    np.testing.assert_allclose((1 - lr * lam * N) * w - lr * single_output_direction(w, g, N), expected, rtol=1e-15)
    np.testing.assert_allclose(end_to_end_step(w[None], g[None], N, lr, lam)[0], expected, rtol=1e-13)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: end_to_end_direction(np.ones((2, 3)), np.ones((3, 2)), 2), "grad"),
        (lambda: end_to_end_direction(np.ones((2, 3)), np.ones((2, 3)), 0), "depth"),
        (lambda: end_to_end_direction(np.ones(3), np.ones(3), 2), "W_e"),
        (lambda: end_to_end_step(np.ones((2, 3)), np.ones((2, 3)), 2, -1e-3), "lr"),
        (lambda: end_to_end_step(np.ones((2, 3)), np.ones((2, 3)), 2, 0.0), "lr must be a finite number > 0"),
        (lambda: end_to_end_step(np.ones((2, 3)), np.ones((2, 3)), 2, 1e-3, -1.0), "weight_decay"),
        (lambda: single_output_direction(np.ones((2, 3)), np.ones((2, 3)), 2), "w must be a vector"),
        (lambda: single_output_direction(np.ones(3), np.ones(3), 2.5), "depth"),
        (lambda: preconditioner(np.ones((2, 3)), 0), "depth"),
    ],
)
def test_rules_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the preconditioner P_{W_e} (Claim 1) -------------------------------------


def _end_to_end_matrices():
    rng = np.random.default_rng(3)
    U, V = np.linalg.qr(rng.normal(size=(3, 3)))[0], np.linalg.qr(rng.normal(size=(4, 4)))[0]
    return {
        "full rank": rng.normal(size=(3, 4)),
        "rank 1": np.outer(rng.normal(size=3), rng.normal(size=4)),
        "rank 2, spread": U[:, :2] @ np.diag([5.0, 1e-3]) @ V[:, :2].T,
        "zero": np.zeros((3, 4)),
    }


@pytest.mark.parametrize("name", list(_end_to_end_matrices()))
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_preconditioner_eigenstructure(name, depth):
    """Claim 1: P symmetric PSD, P vec(G) = vec(direction), eigenpairs vec(u_r v_r'ᵀ), Σ_j σ_r^{2(j−1)/N} σ_r'^{2(N−j)/N}."""
    W_e = _end_to_end_matrices()[name]
    k, d = W_e.shape
    P = preconditioner(W_e, depth)
    assert P.shape == (k * d, k * d)
    np.testing.assert_array_equal(P, P.T)
    top = max(1.0, np.abs(P).max())
    assert np.linalg.eigvalsh(P)[0] >= -1e-13 * top
    if depth == 1:
        np.testing.assert_array_equal(P, np.eye(k * d))
    G = np.random.default_rng(4).normal(size=(k, d))
    np.testing.assert_allclose(P @ _vec(G), _vec(end_to_end_direction(W_e, G, depth)), rtol=0, atol=1e-12 * top)
    U, s, Vt = np.linalg.svd(W_e)
    # The oracle clamps round-off singular values to 0, as Chapter 4's strict check does: a rank-deficient W_e has
    # singular values of about 1e-16 where it has none, and 1e-16 ** (1/2) = 1e-8 would be a wrong eigenvalue.
    s = np.where(s > 1e-12 * s.max(initial=0.0), s, 0.0)
    sig_u, sig_v = np.r_[s, np.zeros(k - s.size)], np.r_[s, np.zeros(d - s.size)]
    for r in range(k):
        for q in range(d):
            lam = sum(sig_u[r] ** (2 * (j - 1) / depth) * sig_v[q] ** (2 * (depth - j) / depth) for j in range(1, depth + 1))
            e = _vec(np.outer(U[:, r], Vt[q]))
            # rtol=0: the tolerance is the stated one. Measured worst, 2e-11·top ("rank 2, spread", N = 4: its
            # σ = 1e-3 gives the Gram matrix an eigenvalue 1e-6, which eigh resolves to about eps·σ_1²).
            np.testing.assert_allclose(P @ e, lam * e, rtol=0, atol=1e-10 * top)


# --- one step of deep GD vs the rule ------------------------------------------


def _matrix_problem(k, d, seed=5, m=20):
    rng = np.random.default_rng(seed)
    Xs, Ys = torch.tensor(rng.normal(size=(m, d))), torch.tensor(rng.normal(size=(m, k)))

    def grad_e(W):  # ∇ of mean ‖W x − y‖⁴ / 4, by autograd
        Wt = torch.tensor(W, requires_grad=True)
        return torch.autograd.grad(((Xs @ Wt.T - Ys) ** 2).sum(1).pow(2).mean() / 4, Wt)[0].numpy()

    return grad_e, 0.5 * rng.normal(size=(k, d))


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_one_gd_step_on_balanced_layers_follows_the_rule(depth, lam):
    """From a balanced start, ‖Δ(deep GD) − Δ(rule)‖/‖Δ(rule)‖ is O(η): about 10× smaller for η/10."""
    grad_e, W_e = _matrix_problem(3, 5)
    fs = balanced_factors(W_e, depth, widths=[7] * (depth - 1), seed=0)
    G = layer_gradients(fs, grad_e(W_e))
    errors = []
    for lr in (1e-3, 1e-4):
        deep = end_to_end([(1 - lr * lam) * W - lr * g for W, g in zip(fs, G)]) - W_e
        rule = end_to_end_step(W_e, grad_e(W_e), depth, lr, lam) - W_e
        errors.append(np.linalg.norm(deep - rule) / np.linalg.norm(rule))
    assert errors[0] < 0.05
    assert 9.0 < errors[0] / errors[1] < 11.0


# --- training: the rule vs the network ---------------------------------------


def test_depth_one_rule_is_gradient_descent():
    X, y = _regression(6)
    w0 = 0.1 * np.random.default_rng(0).normal(size=X.shape[1])
    h = train_end_to_end(X, y, 4, w0, 1, 0.02, 300)
    ref = gradient_descent(X, y, 4, 0.02, 300, w0=w0)
    np.testing.assert_allclose(h.loss, ref.loss, rtol=1e-12)
    np.testing.assert_allclose(h.w, ref.w, rtol=1e-12)
    assert h.factors == () and h.W_e.shape == (301, 1, X.shape[1])


def test_training_iterates_the_matrix_rule():
    """The torch closed form reproduces numpy iterations of end_to_end_step (eigendecompositions)."""
    X, y = _regression(7)
    lr, lam, N, T = 0.05, 0.05, 3, 40
    W = end_to_end(balanced_init(X.shape[1], 1, N, 0.7, seed=1))
    h = train_end_to_end(X, y, 4, W, N, lr, T, weight_decay=lam)
    trail = [W]
    for _ in range(T):
        trail.append(end_to_end_step(trail[-1], lp_gradient(trail[-1], X, y, 4), N, lr, lam))
    np.testing.assert_allclose(h.W_e, np.stack(trail), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("depth", [2, 3])
def test_network_and_rule_agree_for_small_lr(depth):
    """Figure 2 in miniature (ℓ4): GD on balanced layers vs Eq. 12; the gap is O(η)."""
    X, y = _regression(8)
    fs = balanced_init(X.shape[1], 1, depth, 0.5, seed=2)
    gaps = []
    for lr, T in ((0.02, 300), (0.005, 1200)):  # the same time η·T
        net = train_deep_linear(X, y, 4, fs, lr, T, record_every=10)
        rule = train_end_to_end(X, y, 4, end_to_end(fs), depth, lr, T, record_every=10)
        assert net.loss[-1] < 0.2 * net.loss[0]  # the run did learn
        gaps.append(np.max(np.abs(net.loss - rule.loss) / rule.loss))
    assert gaps[1] < 0.05
    assert 3.0 < gaps[0] / gaps[1] < 5.5


def test_width_does_not_change_the_trajectory():
    """Width independence, balanced start: widths (1, 1) and (16, 16) with mixed hidden bases, same W_e(0): same W_e(t)."""
    X, y = _regression(9)
    W0 = end_to_end(balanced_init(X.shape[1], 1, 3, 0.5, seed=3))
    narrow = train_deep_linear(X, y, 4, balanced_factors(W0, 3), 0.02, 300)
    wide_fs = balanced_factors(W0, 3, widths=(16, 16), seed=4)
    assert np.count_nonzero(np.abs(wide_fs[1]) > 1e-6) > 100  # not merely zero-padded
    wide = train_deep_linear(X, y, 4, wide_fs, 0.02, 300)
    scale = np.abs(narrow.W_e).max()
    assert np.abs(wide.W_e - narrow.W_e).max() <= 1e-13 * scale  # measured 7.5e-16
    assert narrow.loss[-1] < 0.2 * narrow.loss[0]


def test_gaussian_init_follows_the_rule_once_the_weights_have_grown():
    """Width independence, Gaussian start: after the escape from the origin, a wide net (δ ∝ std²) tracks
    the rule restarted from its own W_e; the gap shrinks with std."""
    X, y = _regression(10)
    lr, T = 0.01, 500
    gaps = []
    for std, t0 in ((0.03, 600), (0.01, 1200)):
        fs = gaussian_init([X.shape[1], 16, 16, 1], std, seed=1)
        grown = train_deep_linear(X, y, 4, fs, lr, t0, record_every=t0).factors
        assert np.linalg.norm(grown[0], 2) ** 2 > 5 * max_imbalance(grown)  # relatively balanced by now
        net = train_deep_linear(X, y, 4, grown, lr, T, record_every=10)
        rule = train_end_to_end(X, y, 4, end_to_end(grown), 3, lr, T, record_every=10)
        gaps.append(np.abs(net.W_e - rule.W_e).max() / np.abs(net.W_e[-1]).max())
    assert gaps[1] < 1e-3
    assert gaps[1] < gaps[0] / 4


def test_rule_float32_and_divergence():
    X, y = _regression(11)
    w0 = end_to_end(balanced_init(X.shape[1], 1, 2, 0.5, seed=5))
    h64 = train_end_to_end(X, y, 4, w0, 2, 0.02, 200)
    h32 = train_end_to_end(X, y, 4, w0[0], 2, 0.02, 200, dtype=torch.float32)
    np.testing.assert_allclose(h32.loss, h64.loss, rtol=1e-5)  # measured 2e-6 at the most
    with pytest.raises(DivergenceError) as err:
        train_end_to_end(X, y, 4, w0, 2, 5.0, 500)
    h = train_end_to_end(X, y, 4, w0, 2, 5.0, 500, on_divergence="stop")
    assert h.diverged_at == err.value.step > 0 and h.steps[-1] == h.diverged_at - 1
    assert np.isfinite(h.w).all() and np.isfinite(h.loss).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"W_e0": np.ones(5)}, "W_e0 must have shape"), ({"depth": 0}, "depth"), ({"lr": -1.0}, "lr"), ({"p": 3}, "p must")],
)
def test_bad_rule_training_input_raises(kwargs, match):
    X, y = _regression()
    args = {"p": 4, "W_e0": np.ones(6), "depth": 2, "lr": 0.01, "num_iters": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        train_end_to_end(X, y, **args)


# --- layer_preconditioner ------------------------------------------------------


def _jacobian_of_product(Ws):
    """Oracle: J = d vec(W_e) / d (all layers' entries), by torch.autograd in float64."""
    shapes = [W.shape for W in Ws]
    sizes = [W.size for W in Ws]

    def vec_product(theta):
        parts = torch.split(theta, sizes)
        W_e = parts[0].reshape(shapes[0])
        for part, shape in zip(parts[1:], shapes[1:]):
            W_e = part.reshape(shape) @ W_e
        return W_e.T.reshape(-1)  # column-stacked

    theta = torch.tensor(np.concatenate([W.ravel() for W in Ws]), dtype=torch.float64)
    return torch.autograd.functional.jacobian(vec_product, theta).numpy()


@pytest.mark.parametrize("dims", [[5, 1], [5, 1, 1, 1], [4, 3, 6, 2], [3, 4, 4, 4, 1]])
def test_layer_preconditioner_is_the_jacobian_gram_matrix_for_any_layers(dims):
    Ws = gaussian_init(dims, 0.8, seed=len(dims))  # unbalanced
    J = _jacobian_of_product(Ws)
    np.testing.assert_allclose(layer_preconditioner(Ws), J @ J.T, rtol=1e-12, atol=1e-13)


def test_layer_preconditioner_moves_W_e_like_one_gradient_step_on_the_layers():
    Ws = gaussian_init([4, 3, 3, 2], 0.7, seed=3)
    G = np.random.default_rng(5).normal(size=(2, 4))
    lr = 1e-6
    stepped = [W - lr * g for W, g in zip(Ws, layer_gradients(Ws, G))]
    moved = (end_to_end(stepped) - end_to_end(Ws)) / lr
    expected = -layer_preconditioner(Ws) @ _vec(G)
    # the step's O(η) remainder, relative to the largest entry
    np.testing.assert_allclose(_vec(moved), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_layer_preconditioner_of_balanced_layers_is_claim_1s(depth):
    W_e = np.random.default_rng(depth).normal(size=(3, 5))
    Ws = balanced_factors(W_e, depth, widths=[4] * (depth - 1), seed=depth)
    np.testing.assert_allclose(layer_preconditioner(Ws), preconditioner(W_e, depth), rtol=1e-10, atol=1e-12)


def test_layer_preconditioner_of_scalar_layers_has_its_closed_form():
    w1, omegas = np.array([0.3, -1.2, 0.5]), [0.7, 1.9]
    Ws = [w1[None, :]] + [np.array([[o]]) for o in omegas]
    prod = np.prod(np.square(omegas))
    rank_one = sum(prod / o**2 for o in omegas) * np.outer(w1, w1)
    np.testing.assert_allclose(layer_preconditioner(Ws), prod * np.eye(3) + rank_one, rtol=1e-13)


def test_layer_preconditioner_rejects_a_broken_chain():
    with pytest.raises(ValueError, match=r"factors\[1\]"):
        layer_preconditioner([np.ones((3, 4)), np.ones((2, 2))])
