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
    np.testing.assert_allclose(w.detach().numpy(), opt.w, rtol=1e-5, atol=1e-7)
    assert opt.iterations > 0 and opt.decrement**2 / 2 <= 1e-16 * opt.loss


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
