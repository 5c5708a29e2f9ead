"""ℓp loss, gradient and Hessian against torch.autograd in float64."""
import numpy as np
import pytest
import torch

import overparam as op


def _problem(seed=0, m=40, d=6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=m), rng.normal(size=d)


def _torch_loss(w, X, y, p):
    return ((X @ w - y) ** p).mean() / p


@pytest.mark.parametrize("p", [2, 4, 6])
def test_gradient_and_hessian_match_autograd(p):
    X, y, w = _problem(p)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    wt = torch.tensor(w, requires_grad=True)
    loss = _torch_loss(wt, Xt, yt, p)
    (grad,) = torch.autograd.grad(loss, wt)
    hess = torch.autograd.functional.hessian(lambda v: _torch_loss(v, Xt, yt, p), torch.tensor(w))
    np.testing.assert_allclose(op.lp_loss(w, X, y, p), loss.item(), rtol=1e-13)
    np.testing.assert_allclose(op.lp_gradient(w, X, y, p), grad.numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(op.lp_hessian(w, X, y, p), hess.numpy(), rtol=1e-11, atol=1e-12)


def test_row_matrix_layout_is_kept():
    X, y, w = _problem()
    g_vec = op.lp_gradient(w, X, y, 4)
    g_row = op.lp_gradient(w[None, :], X, y, 4)
    assert g_row.shape == (1, X.shape[1])
    np.testing.assert_array_equal(g_row[0], g_vec)
    assert op.lp_loss(w[None, :], X, y, 4) == op.lp_loss(w, X, y, 4)


def test_l2_hessian_is_constant_and_l4_hessian_vanishes_at_optimum():
    X, _, w = _problem(3)
    y = X @ w  # exact fit: residuals are zero at w
    np.testing.assert_allclose(op.lp_hessian(w, X, y, 2), op.lp_hessian(np.zeros_like(w), X, y, 2))
    np.testing.assert_allclose(op.lp_hessian(w, X, y, 4), 0.0, atol=1e-14)
    assert np.linalg.eigvalsh(op.lp_hessian(np.zeros_like(w), X, y, 4))[-1] > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=3), "p must be an even integer"),
        (dict(p=1), "p must be an even integer"),
        (dict(p=0), "p must be an even integer"),
        (dict(p=2.0), "p must be an even integer"),
        (dict(w=np.zeros(5)), "w must have shape"),
        (dict(y=np.zeros(7)), "y must have shape"),
        (dict(X=np.zeros(40)), "X must be 2-D"),
        (dict(y=np.r_[np.nan, np.zeros(39)]), "y must contain only finite"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    X, y, w = _problem()
    args = dict(w=w, X=X, y=y, p=2) | kwargs
    with pytest.raises(ValueError, match=match):
        op.lp_gradient(**args)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_integer_inputs_give_the_float64_answer(dtype):
    # int64: (X w - y)^4 overflows and wraps negative; uint8: every product wraps modulo 256.
    X = np.array([[200, 3], [7, 250]], dtype=dtype)
    y = np.array([1, 2], dtype=dtype)
    w = np.array([255, 100], dtype=dtype)
    if dtype is np.int64:
        X, w = X * 1000, w * 1000
    Xf, yf, wf = X.astype(np.float64), y.astype(np.float64), w.astype(np.float64)
    assert op.lp_loss(w, X, y, 4) == op.lp_loss(wf, Xf, yf, 4) > 0
    np.testing.assert_array_equal(op.lp_gradient(w, X, y, 4), op.lp_gradient(wf, Xf, yf, 4))
    np.testing.assert_array_equal(op.lp_hessian(w, X, y, 4), op.lp_hessian(wf, Xf, yf, 4))
    assert op.lp_gradient(w, X, y, 2).dtype == np.float64


def test_numpy_integer_p_is_accepted():
    X, y, w = _problem()
    assert op.lp_loss(w, X, y, np.int64(4)) == op.lp_loss(w, X, y, 4)
