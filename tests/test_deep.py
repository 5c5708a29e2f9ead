"""Deep linear networks: products, layer gradients (vs torch.autograd), the warm-up, training."""
import numpy as np
import pytest
import torch

import overparam as op
from overparam.balance import balanced_init
from overparam.deep import DeepHistory, end_to_end, layer_gradients, train_deep_linear, warmup_step
from overparam.linear import DivergenceError, gradient_descent, largest_stable
from overparam.losses import lp_gradient, lp_loss


def _regression(seed=0, m=40, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    return X, X @ rng.normal(size=d) / np.sqrt(d) + 0.1 * rng.normal(size=m)


def _random_factors(dims, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n_out, n_in)) / np.sqrt(n_in) for n_in, n_out in zip(dims[:-1], dims[1:])]


def test_end_to_end_multiplies_last_layer_on_the_left():
    fs = _random_factors([5, 4, 2, 3], seed=1)
    expected = torch.linalg.multi_dot([torch.tensor(W) for W in reversed(fs)]).numpy()
    np.testing.assert_allclose(end_to_end(fs), expected, rtol=1e-13)
    assert end_to_end(fs).shape == (3, 5)


@pytest.mark.parametrize("dims", [[5, 3], [5, 4, 3], [6, 1, 1, 1], [4, 7, 2, 5, 3], [3, 8, 8, 1], [2, 6, 6, 6, 6, 2]])
def test_layer_gradients_match_autograd(dims):
    """Layer gradients: (W_N⋯W_{j+1})ᵀ ∇L¹(W_e) (W_{j−1}⋯W_1)ᵀ equals autodiff of L¹(W_N⋯W_1)."""
    rng = np.random.default_rng(len(dims))
    Xs, Ys = torch.tensor(rng.normal(size=(20, dims[0]))), torch.tensor(rng.normal(size=(20, dims[-1])))

    def loss(W):  # a non-quadratic multi-output loss: mean of ‖W x − y‖⁴ / 4
        return ((Xs @ W.T - Ys) ** 2).sum(1).pow(2).mean() / 4

    Ws = [torch.tensor(W, requires_grad=True) for W in _random_factors(dims, seed=3)]
    W_e = torch.linalg.multi_dot(Ws[::-1]) if len(Ws) > 1 else Ws[0]
    expected = torch.autograd.grad(loss(W_e), Ws)
    W_e_leaf = W_e.detach().requires_grad_()
    grad_e = torch.autograd.grad(loss(W_e_leaf), W_e_leaf)[0].numpy()
    got = layer_gradients([W.detach().numpy() for W in Ws], grad_e)
    assert len(got) == len(Ws)
    for G, E in zip(got, expected):
        np.testing.assert_allclose(G, E.numpy(), rtol=1e-10, atol=1e-13 * np.abs(E.numpy()).max())


@pytest.mark.parametrize(
    "factors, match",
    [
        ([], "non-empty"),
        ([np.ones(3)], r"factors\[0\]"),
        ([np.ones((2, 3)), np.ones((4, 3))], r"factors\[1\]"),
        ([np.ones((2, 3)), np.ones((4, 2)), np.ones((1, 5))], r"factors\[2\]"),
    ],
)
def test_bad_factor_lists_raise(factors, match):
    with pytest.raises(ValueError, match=match):
        end_to_end(factors)


def test_layer_gradients_check_grad_shape():
    with pytest.raises(ValueError, match="grad_e"):
        layer_gradients([np.ones((2, 3)), np.ones((1, 2))], np.ones((3, 1)))


def _warmup_problem():
    X, y = _regression(seed=4, m=30, d=5)
    rng = np.random.default_rng(5)
    return X, y, rng.normal(size=5) * 0.3, 0.7


def test_warmup_step_is_gradient_descent_on_the_pair():
    """The returned (w_1, ω_2) equal one autograd GD step on L(w_1 ω_2)."""
    X, y, w1, omega2 = _warmup_problem()
    lr = 0.01
    t_w1, t_om = torch.tensor(w1, requires_grad=True), torch.tensor(omega2, dtype=torch.float64, requires_grad=True)
    loss = ((torch.tensor(X) @ (t_w1 * t_om) - torch.tensor(y)) ** 4).mean() / 4
    g_w1, g_om = torch.autograd.grad(loss, (t_w1, t_om))
    step = warmup_step(w1, omega2, lp_gradient(w1 * omega2, X, y, 4), lr)
    np.testing.assert_allclose(step.w1, w1 - lr * g_w1.numpy(), rtol=1e-13)
    np.testing.assert_allclose(step.omega2, omega2 - lr * float(g_om), rtol=1e-13)


def test_warmup_identity_is_exact():
    """The paper's warm-up (one extra scalar): w⁺ = (1 − γ)(w − ρ∇L(w)) to round-off, with ρ = ηω₂², γ = η⟨∇L, w₁⟩/ω₂."""
    X, y, w1, omega2 = _warmup_problem()
    lr = 0.05
    w, g = w1 * omega2, lp_gradient(w1 * omega2, X, y, 4)
    step = warmup_step(w1, omega2, g, lr)
    assert step.rho == pytest.approx(lr * omega2**2, rel=1e-15)
    assert step.gamma == pytest.approx(lr * (g @ w1) / omega2, rel=1e-15)
    predicted = (1 - step.gamma) * (w - step.rho * g)
    assert np.abs(step.w - predicted).max() <= 2e-15 * np.abs(step.w).max()


def _autograd_pair_step(X, y, w1, omega2, lr):
    """Oracle: one GD step on L(w_1 ω_2) by float64 torch.autograd, with ∇L(w) taken at a leaf w.

    Returns (∇L(w), ∂L/∂w_1, ∂L/∂ω_2, w_1⁺, ω_2⁺), the loss being mean((Xw - y)⁴)/4.
    """
    Xt, yt = torch.tensor(X), torch.tensor(y)
    t_w1, t_om = torch.tensor(w1, requires_grad=True), torch.tensor(omega2, dtype=torch.float64, requires_grad=True)
    g_w1, g_om = torch.autograd.grad(((Xt @ (t_w1 * t_om) - yt) ** 4).mean() / 4, (t_w1, t_om))
    t_w = torch.tensor(w1 * omega2, requires_grad=True)
    (g_w,) = torch.autograd.grad(((Xt @ t_w - yt) ** 4).mean() / 4, (t_w,))
    return g_w.numpy(), g_w1.numpy(), float(g_om), w1 - lr * g_w1.numpy(), omega2 - lr * float(g_om)


@pytest.mark.parametrize("lr", [0.05, 0.3])
def test_warmup_rho_gamma_and_step_match_autograd(lr):
    """ρ and γ read off an autograd GD step on the pair, with no use of the library's formulas.

    GD scales ω_2 by ω_2⁺/ω_2, so γ = 1 − ω_2⁺/ω_2 (= η ∂L/∂ω_2 / ω_2); and w_1⁺ = w_1 − η ∂L/∂w_1 with
    ∂L/∂w_1 = ω_2 ∇L(w), so ρ∇L(w) = η ω_2 ∂L/∂w_1, ρ being its component along ∇L(w). Then
    w_1⁺ω_2⁺ = (1 − γ)(w − ρ∇L(w)) holds for the oracle's own numbers (measured gap 2e-17 relative at
    η = 0.05, 2e-16 at 0.3).
    """
    X, y, w1, omega2 = _warmup_problem()
    g_w, g_w1, g_om, w1_next, om_next = _autograd_pair_step(X, y, w1, omega2, lr)
    gamma = 1 - om_next / omega2
    rho = lr * omega2 * (g_w1 @ g_w) / (g_w @ g_w)
    w_next = w1_next * om_next
    assert np.abs(w_next - (1 - gamma) * (w1 * omega2 - rho * g_w)).max() <= 1e-15 * np.abs(w_next).max()
    step = warmup_step(w1, omega2, g_w, lr)  # fed autograd's ∇L(w), not lp_gradient
    # measured: γ and ρ agree to 1-2 ulp, w⁺ to 4e-16 relative
    assert step.gamma == pytest.approx(gamma, rel=1e-13) and step.rho == pytest.approx(rho, rel=1e-13)
    assert abs(step.gamma) > 0.01  # not a vacuous check: γ is 0.051 at η = 0.05
    np.testing.assert_allclose(step.w1, w1_next, rtol=1e-14)
    assert step.omega2 == pytest.approx(om_next, rel=1e-14)
    np.testing.assert_allclose(step.w, w_next, rtol=1e-13)


def test_warmup_first_order_form_is_off_by_order_eta_squared():
    """Dropping γρ∇L costs O(η²) per step: the gap shrinks 100× when η shrinks 10×."""
    X, y, w1, omega2 = _warmup_problem()
    w, g = w1 * omega2, lp_gradient(w1 * omega2, X, y, 4)
    gaps = []
    for lr in (1e-2, 1e-3):
        s = warmup_step(w1, omega2, g, lr)
        gaps.append(np.linalg.norm(s.w - ((1 - s.gamma) * w - s.rho * g)))
    assert gaps[0] / gaps[1] == pytest.approx(100, rel=1e-6)


def test_warmup_rejects_zero_omega_and_bad_shapes():
    with pytest.raises(ValueError, match="omega2"):
        warmup_step(np.ones(3), 0.0, np.ones(3), 0.1)
    with pytest.raises(ValueError, match=r"^grad must have the shape of w1 \(3,\), got \(4,\)"):
        warmup_step(np.ones(3), 1.0, np.ones(4), 0.1)
    with pytest.raises(ValueError, match="lr"):
        warmup_step(np.ones(3), 1.0, np.ones(3), -0.1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        warmup_step(np.ones(3), 1.0, np.ones(3), 0.0)


@pytest.mark.parametrize("p", [2, 4])
def test_depth_one_network_is_plain_gradient_descent(p):
    X, y = _regression(p)
    w0 = np.random.default_rng(6).normal(size=X.shape[1]) * 0.1
    h = train_deep_linear(X, y, p, [w0[None, :]], 0.02, 200)
    ref = gradient_descent(X, y, p, 0.02, 200, w0=w0)
    np.testing.assert_allclose(h.loss, ref.loss, rtol=1e-12)
    np.testing.assert_allclose(h.w, ref.w, rtol=1e-12)
    assert isinstance(h, DeepHistory) and h.depth == 1 and not h.diverged


def test_training_matches_a_numpy_loop_with_weight_decay():
    """W_j ← (1 − ηλ)W_j − η G_j with G_j from layer_gradients; records every 7 steps and the last."""
    X, y = _regression(7)
    fs = _random_factors([X.shape[1], 4, 2, 1], seed=8)
    lr, lam, T = 0.01, 0.3, 50
    h = train_deep_linear(X, y, 4, fs, lr, T, weight_decay=lam, record_every=7)
    assert list(h.steps) == [0, 7, 14, 21, 28, 35, 42, 49, 50]
    Ws, trail = [W.copy() for W in fs], [end_to_end(fs)]
    for _ in range(T):
        grads = layer_gradients(Ws, lp_gradient(end_to_end(Ws), X, y, 4))
        Ws = [(1 - lr * lam) * W - lr * G for W, G in zip(Ws, grads)]
        trail.append(end_to_end(Ws))
    np.testing.assert_allclose(h.W_e, np.stack(trail)[h.steps], rtol=1e-11)
    np.testing.assert_allclose(h.loss, [lp_loss(W, X, y, 4) for W in h.W_e], rtol=1e-12)
    for got, W in zip(h.factors, Ws, strict=True):
        np.testing.assert_allclose(got, W, rtol=1e-11)
    np.testing.assert_allclose(h.w, trail[-1][0], rtol=1e-11)
    assert h.weight_decay == lam and h.lr == lr and h.p == 4


def test_record_keeps_the_every_step_values_and_end_to_end_matrices():
    X, y = _regression(7)
    fs = _random_factors([X.shape[1], 4, 2, 1], seed=8)
    grid = np.union1d(op.log_steps(60, 10), [25, 50])
    h = train_deep_linear(X, y, 4, fs, 0.01, 60, weight_decay=0.1, record=grid)
    full = train_deep_linear(X, y, 4, fs, 0.01, 60, weight_decay=0.1)
    assert list(h.steps) == list(np.union1d(grid, [0, 60])) and len(h.W_e) == len(h.steps)
    np.testing.assert_array_equal(h.loss, full.loss[h.steps])
    np.testing.assert_array_equal(h.W_e, full.W_e[h.steps])
    for a, b in zip(h.factors, full.factors, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="record must hold steps"):
        train_deep_linear(X, y, 4, fs, 0.01, 60, record=[0, 61])
    by_int = train_deep_linear(X, y, 4, fs, 0.01, 60, weight_decay=0.1, record=25)  # every 25 steps
    assert by_int.steps.tolist() == [0, 25, 50, 60]
    np.testing.assert_array_equal(by_int.W_e, full.W_e[[0, 25, 50, 60]])


def test_float32_runs_close_to_float64():
    X, y = _regression(9)
    fs = balanced_init(X.shape[1], 1, 3, 0.6, seed=1)
    h64 = train_deep_linear(X, y, 4, fs, 0.02, 300)
    h32 = train_deep_linear(X, y, 4, fs, 0.02, 300, dtype=torch.float32)
    assert h32.loss.dtype == np.float64 and h32.factors[0].dtype == np.float64
    np.testing.assert_allclose(h32.loss, h64.loss, rtol=1e-5)  # measured 2e-6 at the most


def test_divergence_is_reported_with_its_step():
    X, y = _regression(10)
    fs = balanced_init(X.shape[1], 1, 2, 1.0, seed=2)
    with pytest.raises(DivergenceError, match="diverged at step") as err:
        train_deep_linear(X, y, 4, fs, 5.0, 500)
    h = train_deep_linear(X, y, 4, fs, 5.0, 500, on_divergence="stop", record_every=100)
    assert h.diverged and h.diverged_at == err.value.step > 0
    assert h.steps[-1] == h.diverged_at - 1 and len(h.W_e) == len(h.steps)
    assert all(np.isfinite(W).all() for W in h.factors)
    np.testing.assert_allclose(end_to_end(h.factors), h.W_e[-1], rtol=1e-12)
    stable = train_deep_linear(X, y, 4, fs, 0.01, 50)
    assert largest_stable([h, stable]) is stable


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -0.1}, "lr"),
        ({"factors0": [np.ones((2, 4)), np.ones((1, 2))]}, "factors0"),
        ({"factors0": [np.ones((2, 5)), np.ones((3, 2))]}, "factors0"),
        ({"factors0": [np.ones((2, 5)), np.ones((1, 3))]}, r"factors0\[1\]"),
        ({"num_iters": -1}, "num_iters"),
        ({"record_every": 0}, "record_every"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"on_divergence": "ignore"}, "on_divergence"),
    ],
)
def test_bad_training_input_raises(kwargs, match):
    X, y = _regression()
    args = {"factors0": [np.ones((2, 5)), np.ones((1, 2))], "lr": 0.01, "num_iters": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        train_deep_linear(X, y, 4, **args)


def test_warmup_trajectory_network_is_autograd_gd_on_the_pair_and_the_recursion_its_own():
    """The network column equals GD on (w_1, ω_2) by autograd; the recursion follows its own rule with ρ(t), γ(t)."""
    X, y, w1, omega2 = _warmup_problem()
    lr, T = 0.01, 25
    grad = lambda w: lp_gradient(w, X, y, 4)  # noqa: E731
    traj = op.warmup_trajectory(w1, omega2, grad, lr, T)
    assert traj.network.shape == traj.recursion.shape == (T + 1, 5) and traj.rho.shape == (T,)
    t_w1, t_om = torch.tensor(w1, requires_grad=True), torch.tensor(omega2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([t_w1, t_om], lr=lr)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for t in range(T):
        np.testing.assert_allclose(traj.network[t], (t_w1 * t_om).detach().numpy(), rtol=1e-12)
        assert traj.rho[t] == pytest.approx(lr * t_om.item() ** 2, rel=1e-12)
        opt.zero_grad()
        (((Xt @ (t_w1 * t_om) - yt) ** 4).mean() / 4).backward()
        # γ(t) = η ∂L/∂ω_2 / ω_2 by autograd, i.e. 1 − ω_2(t+1)/ω_2(t) (measured agreement ~1e-16)
        assert traj.gamma[t] == pytest.approx(lr * t_om.grad.item() / t_om.item(), rel=1e-12)
        opt.step()
    np.testing.assert_allclose(traj.network[T], (t_w1 * t_om).detach().numpy(), rtol=1e-12)
    rec = traj.recursion
    for t in range(T):
        np.testing.assert_allclose(rec[t + 1], (1 - traj.gamma[t]) * rec[t] - traj.rho[t] * grad(rec[t]), rtol=1e-14)
    gaps = np.linalg.norm(rec[1:] - traj.network[1:], axis=1) / np.linalg.norm(traj.network[1:], axis=1)
    np.testing.assert_allclose(traj.relative_gap, gaps, rtol=1e-14)
    # After one step the recursion differs from the network by exactly the dropped term γρ∇L(w(0)).
    g0 = grad(traj.network[0])
    first_gap = np.linalg.norm(traj.gamma[0] * traj.rho[0] * g0) / np.linalg.norm(traj.network[1])
    # measured 3.5334e-4, agreeing to 1.1e-13 (a difference of nearly equal vectors: round-off times ~3e3)
    assert traj.relative_gap[0] == pytest.approx(first_gap, rel=1e-11)
    # The gap then accumulates over the 25 steps: measured maximum 1.4763e-3, at step 12 (index 11).
    assert traj.relative_gap.max() == pytest.approx(1.4763e-3, rel=1e-3)
    assert int(np.argmax(traj.relative_gap)) == 11
    with pytest.raises(ValueError, match="num_steps"):
        op.warmup_trajectory(w1, omega2, grad, lr, 0)


def test_warmup_recursion_trajectory_gap_is_order_eta():
    """Over the same flow time η·T, the first-order recursion's gap to the network shrinks like η (not η²).

    Each step drops γρ∇L = O(η²); over T = τ/η steps these add up to O(η), so dividing η by 10 divides the
    largest relative gap by about 10 (measured 10.4 with η = 5e-3 and 5e-4 over η·T = 0.25). It can fail: a
    recursion that also drops the memory term γ (w ← w − ρ∇L) is off by O(η) per step, O(1) in all, and its gap
    hardly changes with η (ratio about 1).
    """
    X, y, w1, omega2 = _warmup_problem()
    grad = lambda w: lp_gradient(w, X, y, 4)  # noqa: E731
    flow_time, gaps, no_memory = 0.25, [], []
    for lr in (5e-3, 5e-4):
        traj = op.warmup_trajectory(w1, omega2, grad, lr, round(flow_time / lr))
        gaps.append(traj.relative_gap.max())
        w = traj.network[0].copy()
        for rho in traj.rho:  # the wrong recursion, for the contrast
            w = w - rho * grad(w)
        no_memory.append(np.linalg.norm(w - traj.network[-1]) / np.linalg.norm(traj.network[-1]))
    assert 8 < gaps[0] / gaps[1] < 12, gaps
    assert gaps[0] < 1e-2  # small: the first-order reading tracks the network
    assert not 8 < no_memory[0] / no_memory[1] < 12 and no_memory[0] > 5 * gaps[0], no_memory


def test_unrolled_warmup_reproduces_the_recursion_at_every_step():
    X, y, w1, omega2 = _warmup_problem()
    traj = op.warmup_trajectory(w1, omega2, lambda w: lp_gradient(w, X, y, 4), 0.02, 30)
    for t in (0, 1, 7, 29):
        unrolled, start = op.unrolled_warmup(traj, t)
        np.testing.assert_allclose(unrolled, traj.recursion[t + 1], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(start, -traj.gamma[t] * np.prod(1 - traj.gamma[:t]) * traj.recursion[0])
    with pytest.raises(ValueError, match="t must be below"):
        op.unrolled_warmup(traj, 30)
    with pytest.raises(ValueError, match="^trajectory must be a WarmupTrajectory"):  # was an AttributeError
        op.unrolled_warmup(None, 0)


def test_warmup_trajectory_names_a_gradient_of_the_wrong_shape():
    """Bug: a gradient callable returning shape (4,) for w1 of shape (3,) said "grad must have the shape of w1",
    naming an argument the caller never passed."""
    with pytest.raises(ValueError, match=r"^gradient\(w\) returned shape \(4,\), expected \(3,\)"):
        op.warmup_trajectory(np.ones(3), 0.5, lambda w: np.ones(4), 0.1, 3)
    with pytest.raises(ValueError, match=r"^gradient\(w\) returned shape \(1, 3\), expected \(3,\)"):
        op.warmup_trajectory(np.ones(3), 0.5, lambda w: w[None, :], 0.1, 3)
    with pytest.raises(ValueError, match="^gradient must be a callable"):
        op.warmup_trajectory(np.ones(3), 0.5, np.ones(3), 0.1, 3)
    with pytest.raises(ValueError, match=r"^w1 must be a vector of shape \(d,\)"):
        op.warmup_trajectory(np.ones((1, 3)), 0.5, lambda w: w, 0.1, 3)
    # Bug: a complex gradient lost its imaginary part with only numpy's ComplexWarning, and a string one
    # raised numpy's "could not convert string to float", naming no argument
    for bad, dtype in ((lambda w: w + 1j, "complex128"), (lambda w: np.array(["1.0"] * 3), "<U3")):
        with pytest.raises(ValueError, match=rf"^the value of gradient\(w\) must be an array of real numbers, "
                                             rf"got dtype {dtype}"):
            op.warmup_trajectory(np.ones(3), 0.5, bad, 0.1, 3)
    with pytest.raises(ValueError, match=r"^the value of gradient\(w\) must be an array of real numbers, got None"):
        op.warmup_trajectory(np.ones(3), 0.5, lambda w: None, 0.1, 3)


def test_warmup_trajectory_matches_warmup_step_bit_for_bit():
    """The trajectory checks once at entry and steps without warmup_step's checks: the numbers must not change."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    grad = lambda w: op.lp_gradient(w, X, y, 4)  # noqa: E731
    w1, omega2 = rng.normal(size=4) * 0.1, 0.3
    trajectory = op.warmup_trajectory(w1, omega2, grad, 1e-2, 25)
    w_rec = w1 * omega2
    for t in range(25):
        step = op.warmup_step(w1, omega2, grad(w1 * omega2), 1e-2)
        w_rec = (1 - step.gamma) * w_rec - step.rho * grad(w_rec)
        w1, omega2 = step.w1, step.omega2
        assert (trajectory.rho[t], trajectory.gamma[t]) == (step.rho, step.gamma)
        np.testing.assert_array_equal(trajectory.network[t + 1], step.w)
        np.testing.assert_array_equal(trajectory.recursion[t + 1], w_rec)


def test_warmup_trajectory_checks_lr_and_a_vanishing_omega2():
    with pytest.raises(ValueError, match="^lr must be"):
        op.warmup_trajectory(np.ones(2), 0.5, lambda w: w, -1.0, 3)
    # grad = w1 / (lr * |w1|^2) sends omega2 to exactly 0 after one step (0.5 - 0.5 * 1.0). Bug: that raised
    # 'omega2 must be a finite non-zero number, got 0.0', blaming the valid argument 0.5; it names the step now.
    with pytest.raises(op.DivergenceError, match=r"^the warm-up diverged at step 2; the scalar layer ω₂ reached 0"):
        op.warmup_trajectory(np.array([1.0, 0.0]), 0.5, lambda w: np.array([1.0, 0.0]), 0.5, 3)
    with pytest.raises(ValueError, match="^omega2 must be a finite non-zero number"):
        op.warmup_trajectory(np.array([1.0, 0.0]), 0.0, lambda w: np.array([1.0, 0.0]), 0.5, 3)  # the argument
