"""Gradient descent on the linear model: against a plain numpy loop, divergence, determinism."""
import numpy as np
import pytest
import torch

import overparam as op


def _problem(seed=0, m=60, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)


@pytest.mark.parametrize("p", [2, 4])
def test_matches_a_plain_numpy_loop(p):
    X, y = _problem(p)
    lr, T = 0.05, 300
    w = np.zeros(X.shape[1])
    expected = []
    for _ in range(T):
        expected.append(op.lp_loss(w, X, y, p))
        w = w - lr * op.lp_gradient(w, X, y, p)
    expected.append(op.lp_loss(w, X, y, p))
    h = op.gradient_descent(X, y, p, lr, T)
    np.testing.assert_allclose(h.loss, expected, rtol=1e-12)
    np.testing.assert_allclose(h.w, w, rtol=1e-12)
    assert list(h.steps) == list(range(T + 1)) and not h.diverged


def test_record_every_keeps_the_last_step():
    X, y = _problem()
    h = op.gradient_descent(X, y, 2, 0.05, 250, record_every=100)
    assert list(h.steps) == [0, 100, 200, 250]
    full = op.gradient_descent(X, y, 2, 0.05, 250)
    np.testing.assert_allclose(h.loss, full.loss[[0, 100, 200, 250]])


def test_record_keeps_exactly_the_every_step_values_at_the_given_steps():
    """A log-plus-linear grid (record=) gives the every-step run's losses at those steps, with 0 and the end added."""
    X, y = _problem()
    grid = np.union1d(op.log_steps(250, 10), np.arange(0, 251, 100))[1:-1]  # 0 and 250 left for the trainer to add
    h = op.gradient_descent(X, y, 4, 0.005, 250, record=grid)
    full = op.gradient_descent(X, y, 4, 0.005, 250)
    assert list(h.steps) == [0, *grid, 250] and h.steps.dtype == np.int64
    np.testing.assert_array_equal(h.loss, full.loss[h.steps])  # identical, not merely close
    np.testing.assert_array_equal(h.w, full.w)
    assert op.gradient_descent(X, y, 4, 0.005, 250, record=[3, 7]).steps.tolist() == [0, 3, 7, 250]
    assert full.loss[-1] < 0.5 * full.loss[0]  # a run that moves


def test_record_keeps_the_last_step_of_a_diverged_run():
    X, y = _problem()
    lr = 1.5 * op.quadratic_lr_limit(X)
    full = op.gradient_descent(X, y, 2, lr, 5000, on_divergence="stop")
    h = op.gradient_descent(X, y, 2, lr, 5000, record=op.log_steps(5000, 5), on_divergence="stop")
    assert h.diverged_at == full.diverged_at and h.steps[-1] == full.diverged_at - 1
    assert h.steps[-2] < h.steps[-1] and h.steps[-1] not in op.log_steps(5000, 5)  # kept although not asked for
    np.testing.assert_array_equal(h.loss, full.loss[h.steps])


@pytest.mark.parametrize(
    "record, match",
    [([5, 3], "sorted"), ([3, 3], "sorted"), ([-1, 4], r"in \[0, num_iters=10\]"), ([4, 11], "num_iters=10"),
     ([0.5, 2.0], "integer steps"), ([], "non-empty"), ([[1, 2]], "1-D"), ([True, False], "integer")],
)
def test_bad_record_is_named(record, match):
    X, y = _problem()
    with pytest.raises(ValueError, match="record") as err:
        op.gradient_descent(X, y, 2, 0.01, 10, record=record)
    assert err.match(match)


def test_record_and_record_every_together_are_refused():
    X, y = _problem()
    with pytest.raises(ValueError, match="record or record_every"):
        op.gradient_descent(X, y, 2, 0.01, 10, record=[2, 4], record_every=2)


def test_an_integer_record_means_every_so_many_steps_as_in_run_sweep():
    """One rule for record= in the trainers and in run_sweep: an integer k is every k steps (it used to be an
    error in the trainers and the sweep's meaning)."""
    X, y = _problem()
    every = op.gradient_descent(X, y, 4, 0.005, 250, record_every=100)
    h = op.gradient_descent(X, y, 4, 0.005, 250, record=100)
    assert h.steps.tolist() == every.steps.tolist() == [0, 100, 200, 250]
    np.testing.assert_array_equal(h.loss, every.loss)
    sweep = op.run_sweep((X, y), [op.RunConfig("gd", 0.005, p=4)], 250, record=100)
    assert sweep.steps.tolist() == h.steps.tolist()
    for bad in (0, -3, np.int64(0)):
        with pytest.raises(ValueError, match=r"^record must be an integer >= 1 \(every so many steps\) or a sorted"):
            op.gradient_descent(X, y, 2, 0.01, 10, record=bad)
    for bad in (True, 2.0, "10"):
        with pytest.raises(ValueError, match=r"^record must be an integer >= 1 \(every so many steps\) or a non-empty"):
            op.gradient_descent(X, y, 2, 0.01, 10, record=bad)
    with pytest.raises(ValueError, match="record or record_every"):
        op.gradient_descent(X, y, 2, 0.01, 10, record=5, record_every=5)


def test_ls_converges_to_least_squares_solution():
    X, y = _problem(1)
    lr = 0.9 * op.quadratic_lr_limit(X)
    h = op.gradient_descent(X, y, 2, lr, 3000)
    np.testing.assert_allclose(h.w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)


def test_divergence_is_reported_with_its_step():
    X, y = _problem()
    lr = 1.5 * op.quadratic_lr_limit(X)  # beyond the stability limit: must blow up
    with pytest.raises(op.DivergenceError, match="diverged at step") as err:
        op.gradient_descent(X, y, 2, lr, 5000)
    h = op.gradient_descent(X, y, 2, lr, 5000, on_divergence="stop")
    assert h.diverged and h.diverged_at == err.value.step
    assert np.isfinite(h.loss).all() and np.isfinite(h.w).all()
    assert h.steps[-1] == h.diverged_at - 1
    assert h.loss[-1] <= op.linear.DIVERGENCE_FACTOR * h.loss[0]
    assert h.final_loss == float("inf")


def test_quadratic_lr_limit_is_two_over_the_top_eigenvalue_of_the_hessian():
    """2/λ_max of the ℓ2 loss's Hessian, against two oracles that do not use the code under test.

    The library's loss is L(w) = (1/p) mean_i (x_iᵀw − y_i)^p (overparam.losses), so for p = 2 the Hessian is
    XᵀX/m: (i) autograd's float64 Hessian of (1/(2m))‖Xw − y‖², (ii) the closed form λ_max = σ_max(X)²/m, i.e. the
    limit 2m/‖X‖₂² (‖X‖₂ from the SVD). A scale of X by c moves the limit by 1/c².
    """
    X, y = _problem(3, m=40, d=6)
    m = X.shape[0]
    Xt, yt = torch.tensor(X), torch.tensor(y)
    hessian = torch.autograd.functional.hessian(lambda w: ((Xt @ w - yt) ** 2).sum() / (2 * m),
                                                torch.zeros(X.shape[1], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(hessian, X.T @ X / m, rtol=1e-13)
    limit = op.quadratic_lr_limit(X)
    assert limit == pytest.approx(2 / np.linalg.eigvalsh(hessian)[-1], rel=1e-12)
    assert limit == pytest.approx(2 * m / np.linalg.norm(X, 2) ** 2, rel=1e-12)
    assert op.quadratic_lr_limit(3 * X) == pytest.approx(limit / 9, rel=1e-12)


def test_gd_diverges_just_above_the_limit_and_converges_just_below():
    """Along the Hessian's top eigenvector v the error e = w − w* evolves as e ← (1 − ηλ_max) e: at η = 1.01 × 2/λ_max
    its size grows by 1.01 a step (the loss by 1.0201), past 10⁶ × the initial loss within ln(10⁶)/ln(1.0201) ≈ 700
    steps; at 0.99× it shrinks by 0.98 a step. The start w* + v has a unit component along v.
    """
    X, y = _problem(4)
    m = X.shape[0]
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    v = np.linalg.eigh(X.T @ X / m)[1][:, -1]
    limit = op.quadratic_lr_limit(X)
    above = op.gradient_descent(X, y, 2, 1.01 * limit, 3000, w0=w_star + v, on_divergence="stop")
    assert above.diverged and above.diverged_at < 3000
    below = op.gradient_descent(X, y, 2, 0.99 * limit, 3000, w0=w_star + v, on_divergence="stop")
    assert not below.diverged
    np.testing.assert_allclose(below.w, w_star, rtol=1e-8)


def test_stable_just_below_the_limit():
    X, y = _problem()
    h = op.gradient_descent(X, y, 2, 0.99 * op.quadratic_lr_limit(X), 5000, on_divergence="stop")
    assert not h.diverged


def test_largest_stable_picks_the_largest_non_diverged():
    X, y = _problem()
    limit = op.quadratic_lr_limit(X)
    runs = [op.gradient_descent(X, y, 2, f * limit, 2000, on_divergence="stop") for f in (0.2, 0.6, 0.95, 1.3)]
    assert op.largest_stable(runs).lr == pytest.approx(0.95 * limit)
    with pytest.raises(ValueError, match="every run diverged"):
        op.largest_stable(runs[-1:])


def test_deterministic():
    X, y = _problem()
    a = op.gradient_descent(X, y, 4, 0.01, 500)
    b = op.gradient_descent(X, y, 4, 0.01, 500)
    np.testing.assert_array_equal(a.loss, b.loss)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(lr=0.0), "lr must be a finite number > 0"), (dict(lr=-1.0), "lr must be a finite number > 0"), (dict(num_iters=-1), "num_iters"),
     (dict(record_every=0), "record_every"), (dict(p=3), "p must be"), (dict(on_divergence="x"), "on_divergence")],
)
def test_bad_arguments(kwargs, match):
    X, y = _problem()
    args = dict(p=2, lr=0.01, num_iters=10) | kwargs
    with pytest.raises(ValueError, match=match):
        op.gradient_descent(X, y, **args)
