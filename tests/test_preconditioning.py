"""Network versus end-to-end rule: the gap between runs, the comparison, its plot, relative imbalance."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from overparam.balance import balanced_factors, balanced_init, gaussian_init  # noqa: E402
from overparam.deep import DeepHistory, end_to_end  # noqa: E402
from overparam.dynamics import end_to_end_step  # noqa: E402
from overparam.losses import lp_gradient, lp_hessian, lp_loss  # noqa: E402
from overparam.optimum import lp_optimum  # noqa: E402
from overparam.preconditioning import (  # noqa: E402
    RuleComparison,
    RunGap,
    compare_network_and_rule,
    network_sharpness,
    plot_comparison,
    preconditioned_sharpness,
    relative_imbalance,
    rule_demo,
    run_gap,
)


def _history(steps, loss, W_e, depth=2, diverged_at=None):
    W_e = np.asarray(W_e, dtype=float)
    return DeepHistory(steps=np.asarray(steps), loss=np.asarray(loss, dtype=float), w=W_e[-1].reshape(-1),
                       lr=0.1, p=4, diverged_at=diverged_at, W_e=W_e, depth=depth)


def _regression(seed=0, m=40, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    return X, X @ rng.normal(size=d) / np.sqrt(d) + 0.1 * rng.normal(size=m)


# --- run_gap -----------------------------------------------------------------


def test_run_gap_on_hand_made_runs():
    run = _history([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], [[[1.0, 0.0]], [[3.0, 4.0]], [[0.0, 0.0]], [[1.0, 1.0]]])
    ref = _history([0, 2, 3, 5], [4.0, 1.0, 0.0, 9.0], [[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 2.0]], [[1.0, 1.0]]])
    gap = run_gap(run, ref)
    np.testing.assert_array_equal(gap.steps, [0, 2, 3])
    np.testing.assert_allclose(gap.loss_gap, [0.0, 1.0, np.inf])  # |2-1|/1; 1/0 -> inf
    np.testing.assert_allclose(gap.W_e_gap, [0.0, 0.0, np.sqrt(2) / 2])  # 0/0 -> 0
    assert gap.max_W_e_gap == pytest.approx(np.sqrt(2) / 2)
    assert gap.step_of_max == 3
    assert gap.first_step_above(0.5) == 2
    assert gap.first_step_above(0.5, of="W_e") == 3
    assert gap.first_step_above(np.inf) is None


def test_step_of_max_is_the_step_of_the_largest_loss_gap_not_of_the_W_e_gap():
    gap = RunGap(steps=np.array([0, 5, 9]), loss_gap=np.array([0.1, 0.5, 0.2]),
                 W_e_gap=np.array([0.0, 0.1, 0.9]))
    assert gap.step_of_max == 5 and gap.max_loss_gap == 0.5 and gap.max_W_e_gap == 0.9


def test_run_gap_rejects_bad_input():
    a = _history([0, 1], [1.0, 0.5], np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="same shape|one shape"):
        run_gap(a, _history([0, 1], [1.0, 0.5], np.ones((2, 1, 4))))
    with pytest.raises(ValueError, match="share no recorded step"):
        run_gap(a, _history([5, 6], [1.0, 0.5], np.ones((2, 1, 3))))
    with pytest.raises(ValueError, match="reference must be a DeepHistory"):
        run_gap(a, np.ones(3))
    with pytest.raises(ValueError, match="of must be"):
        run_gap(a, a).first_step_above(0.1, of="w")


# --- compare_network_and_rule ------------------------------------------------


def test_comparison_with_record_keeps_both_runs_at_the_same_steps():
    """record=: the network and the rule are kept at the given steps, with the values of every-step runs."""
    X, y = _regression(1)
    fs = balanced_init(X.shape[1], 1, 2, 0.6, seed=1)
    grid = np.array([1, 2, 5, 10, 30])
    comp = compare_network_and_rule(X, y, 4, fs, 0.01, 40, record=grid)
    full = compare_network_and_rule(X, y, 4, fs, 0.01, 40)
    for got, every in ((comp.network, full.network), (comp.rule, full.rule)):
        assert list(got.steps) == [0, 1, 2, 5, 10, 30, 40] and len(got.W_e) == 7
        np.testing.assert_array_equal(got.loss, every.loss[got.steps])
        np.testing.assert_array_equal(got.W_e, every.W_e[got.steps])
    np.testing.assert_array_equal(comp.gap.loss_gap, full.gap.loss_gap[comp.gap.steps])
    with pytest.raises(ValueError, match="record or record_every"):
        compare_network_and_rule(X, y, 4, fs, 0.01, 40, record=grid, record_every=5)


def test_comparison_matches_direct_training_of_both_models():
    """Oracles: GD on the factors written here with autograd, and the rule iterated step by step."""
    X, y = _regression(1)
    N, lr, T, lam = 3, 0.01, 60, 0.05
    fs = balanced_factors(end_to_end(balanced_init(X.shape[1], 1, N, 0.6, seed=1)), N, widths=[4, 4], seed=2)
    comp = compare_network_and_rule(X, y, 4, fs, lr, T, lam, record_every=20)

    Ws = [torch.tensor(W, requires_grad=True) for W in fs]
    Xt, yt = torch.tensor(X), torch.tensor(y)
    net_loss = []
    for t in range(T + 1):
        w = (Ws[2] @ Ws[1] @ Ws[0])[0]
        loss = ((Xt @ w - yt) ** 4).mean() / 4
        net_loss.append(loss.item())
        grads = torch.autograd.grad(loss, Ws)
        Ws = [((1 - lr * lam) * W - lr * G).detach().requires_grad_() for W, G in zip(Ws, grads)]
    np.testing.assert_allclose(comp.network.loss, net_loss[::20], rtol=1e-12)

    W_e, trail = end_to_end(fs), []
    for t in range(T + 1):
        trail.append(W_e)
        W_e = end_to_end_step(W_e, lp_gradient(W_e, X, y, 4), N, lr, lam)
    np.testing.assert_allclose(comp.rule.W_e, np.stack(trail[::20]), rtol=1e-10, atol=1e-14)

    expected = np.abs(comp.network.loss - comp.rule.loss) / comp.rule.loss
    np.testing.assert_allclose(comp.gap.loss_gap, expected)
    assert comp.depth == N and comp.lr == lr
    assert 0 < comp.gap.max_loss_gap < 0.05  # balanced and small η: the rule describes the network
    assert "largest relative loss gap" in repr(comp)


def test_comparison_of_diverging_runs_covers_the_common_steps():
    X, y = _regression(2)
    comp = compare_network_and_rule(X, y, 4, balanced_init(X.shape[1], 1, 2, 1.5, seed=3), 0.5, 200)
    assert comp.network.diverged and comp.rule.diverged
    last = min(comp.network.steps[-1], comp.rule.steps[-1])
    assert comp.gap.steps[-1] == last
    assert "diverged at step" in repr(comp)


# --- plots -------------------------------------------------------------------


def test_plot_comparison_draws_both_runs():
    X, y = _regression(3)
    comp = compare_network_and_rule(X, y, 2, balanced_init(X.shape[1], 1, 2, 0.5, seed=4), 0.05, 50)
    ax = plot_comparison(comp)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["depth-2 network (GD)", "end-to-end rule, N = 2"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), comp.rule.loss[1:])  # step 0 has no place on log x
    plt.close("all")
    with pytest.raises(ValueError, match="comparison must be a RuleComparison"):
        plot_comparison(comp.network)


def test_plot_comparison_shows_suboptimality_against_the_optimum():
    X, y = _regression(3)
    comp = compare_network_and_rule(X, y, 4, balanced_init(X.shape[1], 1, 2, 0.5, seed=4), 0.01, 50)
    best = lp_optimum(X, y, 4)
    ax = plot_comparison(comp, optimum=best)
    # independent oracle: the loss recomputed from the rule's recorded W_e, minus the Newton optimum
    recomputed = np.array([lp_loss(W[0], X, y, 4) for W in comp.rule.W_e[1:]]) - best.loss  # log x: no step 0
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), recomputed, rtol=1e-9)
    assert ax.get_ylabel() == "L − L*" and np.all(ax.get_lines()[0].get_ydata() > 0)
    ax2 = plot_comparison(comp, optimum=best.loss)
    np.testing.assert_allclose(ax2.get_lines()[1].get_ydata(), recomputed, rtol=1e-9)
    plt.close("all")


def test_rule_demo_plots_one_comparison():
    X, y = _regression(4)
    before = len(plt.get_fignums())
    comp = rule_demo(3, 0.02, X=X, y=y, p=4, num_iters=40, scale=0.5, seed=5)
    assert isinstance(comp, RuleComparison) and comp.depth == 3
    fig = plt.figure(plt.get_fignums()[-1])
    assert len(plt.get_fignums()) == before + 1 and len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), np.maximum(comp.gap.loss_gap[1:], 1e-16))
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_xdata(), comp.gap.steps[1:])  # no step 0 on log x
    plt.close("all")


# --- relative_imbalance ------------------------------------------------------


def test_relative_imbalance_formula_and_scale_invariance():
    W1 = np.array([[1.0, 2.0]])
    W2 = np.array([[3.0]])
    # D_1 = 9 - 5 = 4; largest squared spectral norm = 9
    assert relative_imbalance([W1, W2]) == pytest.approx(4 / 9)
    assert relative_imbalance([W1]) == 0.0
    assert relative_imbalance(balanced_init(7, 1, 3, 0.2, seed=0, widths=[3, 3])) < 1e-12
    small = relative_imbalance(gaussian_init([30, 8, 8, 1], 1e-3, seed=6))
    large = relative_imbalance(gaussian_init([30, 8, 8, 1], 1.0, seed=6))
    assert small == pytest.approx(large, rel=1e-10) and small > 0.5
    with pytest.raises(ValueError, match="must not all be zero"):
        relative_imbalance([np.zeros((2, 3)), np.zeros((1, 2))])


# --- preconditioned_sharpness ------------------------------------------------


def test_preconditioned_sharpness_against_direct_eigenvalues():
    X, y = _regression(7)
    w = np.random.default_rng(7).normal(size=X.shape[1])
    H = lp_hessian(w, X, y, 4)
    assert preconditioned_sharpness(w[None, :], 1, H) == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-12)
    for N in (2, 3, 6):
        # oracle: eigenvalues of the (non-symmetric) product, P written from Equation 12's closed form
        u = w / np.linalg.norm(w)
        P = np.linalg.norm(w) ** (2 - 2 / N) * (np.eye(len(w)) + (N - 1) * np.outer(u, u))
        expected = np.max(np.linalg.eigvals(P @ H).real)
        assert preconditioned_sharpness(w[None, :], N, H) == pytest.approx(expected, rel=1e-10)
    # identity curvature: the along-w rate N |w|^(2 - 2/N)
    assert preconditioned_sharpness(w[None, :], 3, np.eye(len(w))) == pytest.approx(
        3 * np.linalg.norm(w) ** (4 / 3), rel=1e-12)
    with pytest.raises(ValueError, match="hessian must have shape"):
        preconditioned_sharpness(w[None, :], 2, np.eye(3))
    with pytest.raises(ValueError, match="hessian must be symmetric"):
        preconditioned_sharpness(w[None, :], 2, np.triu(np.ones((len(w), len(w)))))


def test_network_sharpness_is_the_top_eigenvalue_of_the_layers_hessian_at_an_optimum():
    """Oracle: the Hessian of L^N over all layers' entries, by torch.autograd in float64, where ∇L^1(W_e) = 0."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 4))
    Ws = gaussian_init([4, 3, 3, 1], 0.9, seed=2)  # unbalanced
    y = X @ end_to_end(Ws)[0]  # W_e fits exactly: its gradient is zero
    shapes, sizes = [W.shape for W in Ws], [W.size for W in Ws]
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def loss(theta):
        parts = torch.split(theta, sizes)
        W_e = parts[0].reshape(shapes[0])
        for part, shape in zip(parts[1:], shapes[1:]):
            W_e = part.reshape(shape) @ W_e
        return torch.mean((Xt @ W_e[0] - yt) ** 2) / 2

    theta = torch.tensor(np.concatenate([W.ravel() for W in Ws]))
    full = torch.autograd.functional.hessian(loss, theta).numpy()
    H = lp_hessian(end_to_end(Ws)[0], X, y, 2)
    assert network_sharpness(Ws, H) == pytest.approx(np.linalg.eigvalsh(full)[-1], rel=1e-10)


def test_network_sharpness_of_balanced_layers_is_the_rules_and_above_it_for_unbalanced_scalar_layers():
    X, y = _regression(3)
    w = np.random.default_rng(3).normal(size=X.shape[1])
    H = lp_hessian(w, X, y, 2)
    Ws = balanced_factors(w[None, :], 3, seed=0)
    assert network_sharpness(Ws, H) == pytest.approx(preconditioned_sharpness(w[None, :], 3, H), rel=1e-10)
    # the same w_e with a long w_1 and short scalar layers: the first layer's rank-one term adds curvature
    unbalanced = [4.0 * w[None, :], np.array([[0.5]]), np.array([[0.5]])]
    prod = 0.25**2
    assert network_sharpness(unbalanced, H) > prod * np.linalg.eigvalsh(H)[-1] * (1 + 1e-3)
    with pytest.raises(ValueError, match="hessian must have shape"):
        network_sharpness(Ws, np.eye(2))


def test_rule_demo_checks_the_problem_before_any_run_and_the_optimum_before_drawing():
    """Bugs: X=None or a 1-D X gave "tuple index out of range"; optimum=10 (above every loss) drew an empty log
    plot, every L - L* clipped to 0."""
    X, y = _regression()
    for bad, message in ((None, "^X must be an array of real numbers, got None"), (X[:, 0], r"^X must be 2-D")):
        with pytest.raises(ValueError, match=message):
            rule_demo(2, 0.01, X=bad, y=y, seed=0)
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=r"^optimum must lie below every loss .* got L\* = 10\.0"):
        rule_demo(2, 0.01, X=X, y=y, num_iters=20, seed=0, optimum=10.0)
    with pytest.raises(ValueError, match=r"^optimum must be an LpOptimum or a finite number \(L\*\), got 'a'"):
        rule_demo(2, 0.01, X=X, y=y, num_iters=20, seed=0, optimum="a")
    assert plt.get_fignums() == before, "no figure drawn"
    rule_demo(2, 0.01, X=X, y=y, num_iters=20, seed=0, optimum=lp_optimum(X, y, 4))
    plt.close("all")
