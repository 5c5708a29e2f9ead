"""Tests of overparam.optimum: the ℓp optimum L*, against independent checks (Chapter 1)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import overparam as op


def _problem(m: int = 60, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) * np.array([1.0, 3.0, 0.3, 1.0, 2.0])[:d]
    y = X @ rng.normal(size=d) + rng.standard_t(3, size=m)
    return X, y


@pytest.mark.parametrize("p", [2, 4, 6])
def test_optimum_is_stationary_and_no_perturbation_lowers_it(p):
    X, y = _problem()
    opt = op.lp_optimum(X, y, p)
    g0 = np.linalg.norm(op.lp_gradient(np.zeros(X.shape[1]), X, y, p))
    assert opt.gradient_norm < 1e-9 * g0
    assert opt.loss == pytest.approx(op.lp_loss(opt.w, X, y, p), rel=1e-15)
    rng = np.random.default_rng(1)
    for scale in (1e-1, 1e-3, 1e-5):
        trials = [op.lp_loss(opt.w + scale * rng.normal(size=opt.w.shape), X, y, p) for _ in range(50)]
        assert min(trials) >= opt.loss


def test_p2_is_the_least_squares_solution_of_the_normal_equations():
    X, y = _problem()
    opt = op.lp_optimum(X, y, 2)
    np.testing.assert_allclose(opt.w, np.linalg.solve(X.T @ X, X.T @ y), rtol=1e-10)
    assert opt.iterations == 0


def test_p4_agrees_with_an_independent_solver():
    """torch's L-BFGS in float64, knowing nothing of Newton's method, finds the same minimum."""
    X, y = _problem(m=80, d=4, seed=3)
    opt = op.lp_optimum(X, y, 4)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([w], lr=1, max_iter=2000, tolerance_grad=1e-14, tolerance_change=1e-16,
                               line_search_fn="strong_wolfe")

    def closure():
        solver.zero_grad()
        loss = ((Xt @ w - yt) ** 4).mean() / 4
        loss.backward()
        return loss

    for _ in range(5):
        solver.step(closure)
    assert float(closure().detach()) == pytest.approx(opt.loss, rel=1e-10)
    np.testing.assert_allclose(w.detach().numpy(), opt.w, rtol=0, atol=2e-8)  # measured 1.6e-9 (L-BFGS's own error)
    assert opt.iterations > 0 and opt.decrement**2 / 2 <= 1e-16 * opt.loss



def _torch_lp_loss(w: torch.Tensor, Xt: torch.Tensor, yt: torch.Tensor, p: int) -> torch.Tensor:
    """The ℓp loss written out again in torch: (1/p) · mean (x_i·w − y_i)^p."""
    return ((Xt @ w - yt) ** p).mean() / p


def _independent_lp_minimizer(X: np.ndarray, y: np.ndarray, p: int, seed: int) -> np.ndarray:
    """The ℓp minimizer found without the library: L-BFGS from a random start, then Newton polishing.

    Everything is float64 torch: L-BFGS (strong-Wolfe line search) reaches the basin from a random
    point (not the least-squares start lp_optimum uses); a few undamped Newton steps with the Hessian from
    torch.autograd (not op.lp_hessian) then drive the gradient down to round-off.
    """
    Xt, yt = torch.tensor(X), torch.tensor(y)
    w = torch.tensor(0.5 * np.random.default_rng(seed).normal(size=X.shape[1]), requires_grad=True)
    solver = torch.optim.LBFGS([w], lr=1, max_iter=5000, history_size=20, tolerance_grad=1e-15,
                               tolerance_change=1e-18, line_search_fn="strong_wolfe")

    def closure():
        solver.zero_grad()
        loss = _torch_lp_loss(w, Xt, yt, p)
        loss.backward()
        return loss

    for _ in range(10):
        solver.step(closure)
    v = w.detach().clone()
    for _ in range(3):
        v.requires_grad_(True)
        (g,) = torch.autograd.grad(_torch_lp_loss(v, Xt, yt, p), v)
        v = v.detach()
        H = torch.autograd.functional.hessian(lambda u: _torch_lp_loss(u, Xt, yt, p), v)
        v = v - torch.linalg.solve(H, g)
    return v.numpy()


def test_p6_agrees_with_an_independent_solver_and_is_stationary():
    """ℓ6 (the steepest loss of the book): lp_optimum against L-BFGS + autograd-Newton from a random start.

    Measured on this problem (L* = 122.89, 5 Newton steps): the two minimizers differ by 2.3e-10 in the
    largest entry (|w*| up to 1.55; lp_optimum's tolerance is on the loss, which is quadratic in the error of
    w, so w is only accurate to ~1e-10), the losses by 3.5e-16 relative, and the autograd gradient at
    lp_optimum's w is at most 1.3e-9 of its natural scale mean_i |x_i| |r_i|^5. The bounds below leave ~10x.
    """
    X, y = _problem(m=80, d=5, seed=5)
    opt = op.lp_optimum(X, y, 6)
    ref = _independent_lp_minimizer(X, y, 6, seed=11)
    np.testing.assert_allclose(opt.w, ref, rtol=0, atol=2e-9)
    ref_loss = float(_torch_lp_loss(torch.tensor(ref), torch.tensor(X), torch.tensor(y), 6))
    assert opt.loss == pytest.approx(ref_loss, rel=5e-15)
    assert opt.iterations > 0 and opt.p == 6
    # First-order condition, with a gradient lp_optimum did not compute: ∇L(w*) = X^T r^5 / m ≈ 0,
    # measured component-wise against the size of the terms it sums (a gradient that is small only
    # because the terms are small would not pass a relative test against ‖∇L(0)‖ alone).
    wt = torch.tensor(opt.w, requires_grad=True)
    (grad,) = torch.autograd.grad(_torch_lp_loss(wt, torch.tensor(X), torch.tensor(y), 6), wt)
    r = X @ opt.w - y
    term_scale = np.abs(X).T @ np.abs(r) ** 5 / len(y)
    assert np.all(np.abs(grad.numpy()) <= 1e-8 * term_scale)
    assert opt.gradient_norm == pytest.approx(float(grad.norm()), rel=1e-6)


def test_non_convergence_and_bad_input_are_reported():
    X, y = _problem()
    with pytest.raises(RuntimeError, match="not converged in max_iter=1"):
        op.lp_optimum(X, y, 4, max_iter=1)
    with pytest.raises(ValueError, match="p must be an even integer"):
        op.lp_optimum(X, y, 3)
    with pytest.raises(ValueError, match="tol"):
        op.lp_optimum(X, y, 4, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        op.lp_optimum(X, y, 4, max_iter=0)


def test_suboptimality_clips_round_off_and_keeps_nan():
    opt = op.LpOptimum(np.zeros(2), 0.5, 4, 3, 0.0, 0.0)
    np.testing.assert_array_equal(op.suboptimality(np.array([1.5, 0.5 - 1e-12, np.nan]), opt), [1.0, 0.0, np.nan])
    assert op.suboptimality(0.75, 0.5) == 0.25


def test_ethanol_optimum(ethanol):
    """The standardized Ethanol problem: L* for ℓ2 and ℓ4 and the starting loss L(0) (Chapters 1, 2)."""
    s = op.standardize(ethanol.X, ethanol.y)
    l2, l4 = op.lp_optimum(s.X, s.y, 2), op.lp_optimum(s.X, s.y, 4)
    assert l2.loss == pytest.approx(0.04999, abs=1e-5) and l4.loss == pytest.approx(0.05535, abs=1e-5)
    assert op.lp_loss(np.zeros(s.X.shape[1]), s.X, s.y, 4) == pytest.approx(1.3925, abs=1e-4)


@pytest.mark.parametrize("p", [4, 6])
def test_data_fit_exactly_have_optimum_zero_without_newton_steps(p):
    """Noise-free y = Xw: least squares already fits every point, L* = 0 to round-off, no Newton step is taken.

    (Before this case was handled, the Armijo test compared losses of order 1e-60 and the line search failed.)
    A tiny amount of noise (1e-6) is not mistaken for an exact fit: Newton's method then runs and stops at a
    stationary point. Measured: |w − w_true| 1.6e-15 without noise, 2.5e-7 and 2.9e-7 with it (p = 4, 6).
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    w_true = rng.normal(size=3)
    exact = op.lp_optimum(X, X @ w_true, p)
    assert exact.iterations == 0 and exact.decrement == 0.0
    np.testing.assert_allclose(exact.w, w_true, atol=1e-13)
    assert 0 <= exact.loss < 1e-50
    noisy_y = X @ w_true + 1e-6 * rng.normal(size=30)
    noisy = op.lp_optimum(X, noisy_y, p)
    assert noisy.iterations >= 1
    # the gradient falls from its value at w_true by 3.7e-9 (p = 4) and 1.0e-10 (p = 6)
    assert noisy.gradient_norm < 3e-8 * np.linalg.norm(op.lp_gradient(w_true, X, noisy_y, p))
    assert 1e-8 < np.abs(noisy.w - w_true).max() < 1e-6


@pytest.mark.parametrize("bad", [None, "0.7", [1 + 2j], [[1.0, 2.0], [1.0]]])
def test_suboptimality_names_a_loss_that_is_not_real_numbers(bad):
    """Bug: None gave NaN silently, complex losses lost their imaginary part, strings raised numpy's own error."""
    with pytest.raises(ValueError, match="loss must be an array of real numbers"):
        op.suboptimality(bad, 0.5)


def test_suboptimality_keeps_inf_of_a_diverged_run():
    np.testing.assert_array_equal(op.suboptimality([0.7, np.inf], 0.5), [pytest.approx(0.2), np.inf])


# ---------------------------------------------------------------------------------------------------------------
# Found by mutation testing: an undamped Newton, an off-by-one count and a one-residual "exact fit" all passed
# ---------------------------------------------------------------------------------------------------------------
def _heavy_tailed(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Student-t(2) data (40 x 4), where a full Newton step from least squares raises the ℓ4 loss."""
    rng = np.random.default_rng(seed)
    return rng.standard_t(2, size=(40, 4)), rng.standard_t(2, size=40)


# seed 9: the full step more than triples the loss (1,152 to 3,880); seed 0: it raises it by 0.9% (9.949 to 10.037),
# a rise that a line search with the wrong sign (L + s λ²/4) would accept
@pytest.mark.parametrize("seed, rise", [(9, 3.0), (0, 1.005)])
def test_newton_is_damped_so_every_iterate_lowers_the_loss_and_counts_its_steps(seed, rise, monkeypatch):
    X, y = _heavy_tailed(seed)
    w0 = np.linalg.lstsq(X, y, rcond=None)[0]
    full_step = w0 - np.linalg.solve(op.lp_hessian(w0, X, y, 4), op.lp_gradient(w0, X, y, 4))
    assert op.lp_loss(full_step, X, y, 4) > rise * op.lp_loss(w0, X, y, 4)
    losses, hessians = [], []
    gradient, hessian = op.optimum.lp_gradient, op.optimum.lp_hessian
    monkeypatch.setattr(op.optimum, "lp_gradient",
                        lambda w, *a: (losses.append(op.lp_loss(w, *a)), gradient(w, *a))[1])  # once per iterate
    monkeypatch.setattr(op.optimum, "lp_hessian", lambda w, *a: (hessians.append(w), hessian(w, *a))[1])
    opt = op.lp_optimum(X, y, 4)
    assert np.all(np.diff(losses) <= 1e-14 * np.abs(losses[:-1])), losses  # the Armijo line search at work
    assert losses[-1] < losses[0] / 1.1
    # the last Hessian is taken at the optimum, whose step is not taken
    assert opt.iterations == len(hessians) - 1 == len(losses) - 1 >= 2
    assert opt.loss == losses[-1] and opt.decrement ** 2 / 2 <= 1e-16 * opt.loss


def test_one_residual_fitted_exactly_is_not_an_exact_fit():
    """A column that indicates one example lets least squares fit that row exactly, but not the others."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(40, 4)), np.eye(40)[:, 0]]
    y = X[:, :4] @ rng.normal(size=4) + 0.3 * rng.normal(size=40)
    least_squares = np.linalg.lstsq(X, y, rcond=None)[0]
    opt = op.lp_optimum(X, y, 4)
    assert opt.iterations > 0 and opt.gradient_norm < 1e-10
    assert opt.loss < op.lp_loss(least_squares, X, y, 4) / 1.03  # measured 0.003281 against 0.003431


def test_data_fitted_almost_exactly_converge_at_the_round_off_of_the_gradient():
    """Noise 1e-9: the residuals are a few digits above round-off, so half the squared decrement cannot fall to
    1e-16 L* (it stalls near 3e-14 L*). Newton's method used to step on to max_iter and raise."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    y = X @ rng.normal(size=3) + 1e-9 * rng.normal(size=30)
    opt = op.lp_optimum(X, y, 4)
    assert 0 < opt.iterations < 10 and opt.decrement ** 2 < 1e-12 * opt.loss
    assert opt.loss < op.lp_loss(np.linalg.lstsq(X, y, rcond=None)[0], X, y, 4) / 1.05  # measured 6.54e-37, 7.11e-37
    with pytest.raises(RuntimeError, match="not converged in max_iter=2"):
        op.lp_optimum(X, y, 4, max_iter=2)


def test_suboptimality_refuses_an_optimum_above_a_loss_beyond_round_off():
    """Bug: an L* above the losses (another p's, other data) was clipped to 0 silently: suboptimality([0.1], 0.5)
    gave [0.]. A loss a hair below L* (round-off) is still clipped to 0."""
    with pytest.raises(ValueError, match=r"^optimum must lie below every loss .* got L\* = 0\.5 and a loss of 0\.1"):
        op.suboptimality(np.array([0.1, 1.0]), 0.5)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    opt = op.lp_optimum(X, y, 4)
    with pytest.raises(ValueError, match=r"^optimum must lie below every loss"):
        op.suboptimality(opt.loss * (1 - 1e-3), opt)
    near = opt.loss * (1 - 0.5 * op.optimum.OPTIMUM_RTOL)
    np.testing.assert_array_equal(op.suboptimality([near, np.nan, np.inf], opt), [0.0, np.nan, np.inf])
    assert op.suboptimality(op.lp_loss(opt.w, X, y, 4), opt) == 0.0


def test_suboptimality_accepts_a_zero_loss_below_an_optimum_that_is_round_off():
    """Data fitted exactly: the computed L* is round-off (1e-32 here) and a run's loss may be exactly 0."""
    np.testing.assert_array_equal(op.suboptimality([0.0, 1e-3], 1e-32), [0.0, 1e-3])
    with pytest.raises(ValueError, match=r"^optimum must lie below every loss"):
        op.suboptimality([0.0], 1e-9)  # far above round-off: another problem's optimum
