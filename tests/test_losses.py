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


# --- check_problem: the validation every ℓp function goes through -------------


def test_check_problem_returns_float64_arrays_of_the_inputs():
    """Lists and integer arrays come back as float64 arrays with the same values; float arrays are not copied."""
    X_list, y_list, w_list = [[1, 2], [3, 4], [5, 6]], [1, 0, -1], [2, -3]
    X, y, w = op.check_problem(X_list, y_list, 4, w_list)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in (X, y, w))
    assert (X.shape, y.shape, w.shape) == ((3, 2), (3,), (2,))
    np.testing.assert_array_equal(X, np.array(X_list, dtype=float))
    np.testing.assert_array_equal(y, np.array(y_list, dtype=float))
    np.testing.assert_array_equal(w, np.array(w_list, dtype=float))
    Xi = np.arange(6, dtype=np.int32).reshape(3, 2)
    assert op.check_problem(Xi, np.zeros(3, dtype=bool), 2)[0].dtype == np.float64
    # float inputs pass through unchanged (float32 stays float32: the trainers choose their own dtype)
    Xf, yf = np.ones((3, 2), dtype=np.float32), np.ones(3)
    Xo, yo, wo = op.check_problem(Xf, yf, 2)
    assert Xo is Xf and yo is yf and wo is None
    # w as the (1, d) end-to-end matrix of a single-output network is accepted in that layout
    assert op.check_problem(Xf, yf, 2, np.ones((1, 2)))[2].shape == (1, 2)


def test_check_problem_keeps_torch_tensors():
    """The training loops pass tensors; they must stay tensors (an integer tensor becomes float64)."""
    X, y, w = op.check_problem(torch.ones(4, 3, dtype=torch.float32), torch.arange(4), 2, torch.zeros(3))
    assert isinstance(X, torch.Tensor) and X.dtype == torch.float32
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    assert isinstance(w, torch.Tensor) and w.shape == (3,)


@pytest.mark.parametrize(
    "X, y, w, match",
    [
        (np.zeros((4, 3)), np.zeros(5), None, r"y must have shape \(4,\) to match X's 4 rows, got \(5,\)"),
        (np.zeros((4, 3)), np.zeros((4, 1)), None, r"y must have shape \(4,\) to match X's 4 rows, got \(4, 1\)"),
        (np.zeros((0, 3)), np.zeros(0), None, r"X must have at least one row and one column, got shape \(0, 3\)"),
        (np.zeros((4, 0)), np.zeros(4), None, r"X must have at least one row and one column, got shape \(4, 0\)"),
        (np.zeros((2, 2, 2)), np.zeros(2), None, r"X must be 2-D \(examples, features\), got shape \(2, 2, 2\)"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), np.zeros(2), None, "X must contain only finite values"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), np.zeros(2), None, "X must contain only finite values"),
        (np.zeros((2, 2)), np.array([1.0, -np.inf]), None, "y must contain only finite values"),
        (np.zeros((2, 2)), np.zeros(2), np.array([np.nan, 0.0]), "w must contain only finite values"),
        (np.zeros((2, 3)), np.zeros(2), np.zeros(2), r"w must have shape \(3,\) or \(1, 3\) to match X's 3 columns"),
        (np.zeros((2, 3)), np.zeros(2), np.zeros((3, 1)), r"w must have shape \(3,\) or \(1, 3\).*got \(3, 1\)"),
        (np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3)), r"w must have shape \(3,\) or \(1, 3\).*got \(2, 3\)"),
    ],
)
def test_check_problem_names_what_is_wrong(X, y, w, match):
    with pytest.raises(ValueError, match=match):
        op.check_problem(X, y, 2, w)


def test_check_problem_uses_the_callers_name_for_w():
    """A trainer's initial point is ``w0`` or ``W_e0`` in its signature; the message must say so."""
    X, y = np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(ValueError, match=r"^W_e0 must have shape \(3,\) or \(1, 3\)"):
        op.check_problem(X, y, 2, np.zeros(4), w_name="W_e0")
    with pytest.raises(ValueError, match=r"^w0 must contain only finite values"):
        op.check_problem(X, y, 2, np.array([0.0, np.inf, 0.0]), w_name="w0")


@pytest.mark.parametrize("p", [3, 1, 0, -2, 2.0, "4", True])
def test_check_problem_refuses_p_that_is_not_an_even_integer(p):
    with pytest.raises(ValueError, match="p must be an even integer >= 2"):
        op.check_problem(np.zeros((2, 2)), np.zeros(2), p)


_X, _Y, _W = np.ones((8, 3)), np.ones(8), np.ones(3)


@pytest.mark.parametrize("fn", [op.lp_loss, op.lp_gradient, op.lp_hessian])
@pytest.mark.parametrize("w, X, y, match", [
    # bugs: numpy's "ufunc 'isfinite' not supported" for strings and for an object array holding None
    (_W, _X.astype(str), _Y, r"^X must be an array of real numbers, got dtype <U32"),
    (_W, np.array([[None, 1, 2]] * 8, dtype=object), _Y, r"^X must be an array of real numbers, got dtype object"),
    (_W, _X, ["a"] * 8, r"^y must be an array of real numbers, got dtype <U1"),
    # bug: numpy's "inhomogeneous shape" for a ragged list
    (_W, [[1.0, 2.0, 3.0], [1.0, 2.0]], _Y[:2], r"^X must be an array of real numbers, got a ragged nested sequence"),
    # bug: complex X was accepted, its imaginary part silently dropped
    (_W, _X + 1j, _Y, r"^X must be an array of real numbers, got dtype complex128"),
    (torch.ones(3, dtype=torch.complex64), torch.ones(8, 3), torch.ones(8), r"^w must be an array of real numbers"),
    # bug: AttributeError 'NoneType' object has no attribute 'reshape'
    (None, _X, _Y, r"^w must be an array of shape \(d,\) or \(1, d\), got None"),
    # bug: torch's "addmv input tensors must have the same dtype"
    (torch.ones(3, dtype=torch.float64), torch.ones(8, 3), torch.ones(8, dtype=torch.float64),
     r"^w, X, y must share a dtype .* got w torch.float64, X torch.float32, y torch.float64"),
    (torch.ones(3), torch.ones(8, 3), np.ones(8), r"^w, X, y must be all numpy arrays or all torch tensors"),
])
def test_the_losses_refuse_arrays_that_are_not_real_numbers(fn, w, X, y, match):
    with pytest.raises(ValueError, match=match):
        fn(w, X, y, 4)


def test_the_losses_still_take_what_they_took():
    """Mixed float precisions in numpy promote; tensors of one dtype; object arrays of numbers; lists."""
    expected = op.lp_loss(_W, _X, 2 * _Y, 4)
    assert op.lp_loss(_W.astype(np.float32), _X, 2 * _Y, 4) == pytest.approx(expected)
    assert op.lp_loss(torch.ones(3), torch.ones(8, 3), 2 * torch.ones(8), 4) == pytest.approx(expected)
    assert op.lp_loss(np.array([1, 1, 1], dtype=object), _X.tolist(), [2] * 8, 4) == pytest.approx(expected)
    X, y, _ = op.check_problem(torch.ones(4, 3), torch.arange(4), 2)  # check_problem itself converts, keeps dtypes
    assert X.dtype == torch.float32 and y.dtype == torch.float64


def test_regression_pair_takes_a_pair_or_an_object_and_names_the_argument():
    from types import SimpleNamespace

    from overparam.losses import regression_pair

    X = np.arange(6.0).reshape(3, 2)
    y = [1, 2, 3]  # integers become float64
    for data in ((X, y), [X, y], SimpleNamespace(X=X, y=y)):
        Xc, yc = regression_pair(data)
        assert Xc.dtype == yc.dtype == np.float64
        np.testing.assert_array_equal(Xc, X)
        np.testing.assert_array_equal(yc, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^data must be a pair \(X, y\) or an object .* got ndarray of shape \(3, 2\)"):
        regression_pair(X, "data")
    with pytest.raises(ValueError, match=r"^problem must be a pair .* got tuple"):
        regression_pair((X, y, y))
    with pytest.raises(ValueError, match=r"^y must have shape \(3,\)"):
        regression_pair((X, y[:2]))
