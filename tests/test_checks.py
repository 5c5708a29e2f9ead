"""The exercise self-checks (op.checks) accept right answers and reject the mistakes students really make.

Three groups of tests:

* right answers written differently from the library (autograd in float64, SVD instead of eigh, multi_dot,
  another logarithm base, ...) and harmless variations of their output (float32-rounded, torch tensors, lists)
  must pass: a checker that fails a correct student is worse than none;
* realistic mistakes (a forgotten transpose, the product W_N ⋯ W_1 taken in the wrong order, the 1/p or the
  p of the ℓp gradient, an off-by-one in the sum over j of the end-to-end rule, ...) must fail, with a message
  that names the case and says what differs;
* the seeded cases themselves are non-square, non-symmetric and include rank-deficient matrices, so that the
  mistakes above are visible at all.

Every wrong answer here is written out by hand; none is a rescaled call of the reference.
"""
from __future__ import annotations

import re
from functools import reduce

import numpy as np
import pytest
import torch

import overparam as op

checks = op.checks


# ---------------------------------------------------------------------------
# Right answers, written independently of the library
# ---------------------------------------------------------------------------
def _loss_abs_and_flipped(w, X, y, p):
    """|y − Xw|^p instead of (Xw − y)^p: the same for even p."""
    return np.mean(np.abs(y - X @ w) ** p) / p


def _gradient_row_times_matrix(w, X, y, p):
    """r^(p−1) @ X is X^T r^(p−1) without the transpose."""
    r = X @ w - y
    return r ** (p - 1) @ X / len(y)


def _gradient_entry_by_entry(w, X, y, p):
    """A beginner's loop returning a plain Python list of floats."""
    r = X @ w - y
    return [float(np.mean(X[:, j] * r ** (p - 1))) for j in range(X.shape[1])]


def _gradient_torch_autograd(w, X, y, p):
    """torch.autograd in float64, returned as a torch tensor."""
    wt = torch.tensor(w, requires_grad=True)
    loss = ((torch.tensor(X) @ wt - torch.tensor(y)) ** p).mean() / p
    (g,) = torch.autograd.grad(loss, wt)
    return g


def _end_to_end_multi_dot(factors):
    """W_N ⋯ W_1 with numpy's optimal bracketing (a different order of the multiplications)."""
    return factors[0] if len(factors) == 1 else np.linalg.multi_dot(factors[::-1])


def _layer_gradients_autograd(factors, grad_e):
    """The gradient of <grad_e, W_N ⋯ W_1> with respect to each W_j is the layer gradient: torch.autograd."""
    Ws = [torch.tensor(W, requires_grad=True) for W in factors]
    W_e = reduce(lambda below, W: W @ below, Ws[1:], Ws[0])
    (W_e * torch.tensor(grad_e)).sum().backward()
    return [W.grad for W in Ws]  # tensors, not numpy arrays


def _imbalance_einsum(factors):
    return [np.einsum("ki,kj->ij", Wn, Wn) - np.einsum("ik,jk->ij", W, W) for W, Wn in zip(factors, factors[1:])]


def _gram_power_svd(U, s, alpha):
    """[U diag(s²) Uᵀ]^alpha from a reduced SVD; round-off singular values are 0, and the power 0 is I."""
    if alpha == 0:
        return np.eye(U.shape[0])
    s = np.where(s > 1e-12 * s.max(), s, 0.0)
    return (U * s ** (2 * alpha)) @ U.T


def _direction_svd(W_e, grad, depth):
    """The end-to-end direction from the SVD of W_e (the library uses eigh of the two Gram matrices)."""
    U, s, Vt = np.linalg.svd(W_e, full_matrices=False)
    return sum(_gram_power_svd(U, s, (j - 1) / depth) @ grad @ _gram_power_svd(Vt.T, s, (depth - j) / depth)
               for j in range(1, depth + 1))


def _step_svd(W_e, grad, depth, lr, weight_decay):
    return (1 - lr * weight_decay * depth) * W_e - lr * _direction_svd(W_e, grad, depth)


def _single_output_from_matrix_rule(w, grad, depth):
    """The closed form must equal the general rule with k = 1 (the sum of Gram powers, not the closed form)."""
    return _direction_svd(w[None, :], grad[None, :], depth)[0]


def _product_penalty_autograd(W_a, W_b):
    A, B = torch.tensor(W_a, requires_grad=True), torch.tensor(W_b, requires_grad=True)
    (0.5 * (A @ B).square().sum()).backward()
    return A.grad.numpy(), B.grad.numpy()


def _effective_rank_base_2(W):
    """Singular values from the eigenvalues of the smaller Gram matrix, entropy in bits and 2**H."""
    gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
    lam = np.linalg.eigvalsh(gram)
    s = np.sqrt(lam[lam > 1e-12 * lam.max()])
    q = s / s.sum()
    return 2.0 ** -(q * np.log2(q)).sum()


RIGHT = [
    ("lp_loss", _loss_abs_and_flipped),
    ("lp_gradient", _gradient_row_times_matrix),
    ("lp_gradient", _gradient_entry_by_entry),
    ("lp_gradient", _gradient_torch_autograd),
    ("end_to_end", _end_to_end_multi_dot),
    ("layer_gradients", _layer_gradients_autograd),
    ("layer_gradients", lambda fs, g: _layer_gradients_by_formula(fs, g, _right_above, _right_below)),
    ("imbalance", _imbalance_einsum),
    ("end_to_end_direction", _direction_svd),
    ("end_to_end_direction", lambda W, G, N: _direction(W, G, N)),  # eigh with the clamp, the chapter's way
    ("end_to_end_step", _step_svd),
    ("single_output_direction", _single_output_from_matrix_rule),
    ("product_penalty_gradients", _product_penalty_autograd),
    ("effective_rank", _effective_rank_base_2),
]
RIGHT_IDS = [f"{n}-{i}-{f.__name__.strip('_<>')}" for i, (n, f) in enumerate(RIGHT)]


@pytest.mark.parametrize("name, right", RIGHT, ids=RIGHT_IDS)
def test_an_independent_right_answer_passes(name, right, capsys):
    result = getattr(checks, name)(right)
    assert result, result.failure
    assert result.passed == result.total > 0 and result.failure is None
    assert capsys.readouterr().out.strip() == f"{name}: passed {result.total} of {result.total} cases"


def _rounded_to_float32(fn):
    """The right answer stored in float32: relative error <= 6e-8, inside every checker's rtol (>= 1e-7)."""
    def rounded(*args):
        out = fn(*args)
        if isinstance(out, (list, tuple)):
            return type(out)(np.asarray(o, dtype=np.float32) for o in out)
        return np.float32(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float32)
    return rounded


@pytest.mark.parametrize("name, right", RIGHT, ids=RIGHT_IDS)
def test_a_right_answer_in_float32_passes(name, right):
    assert getattr(checks, name)(_rounded_to_float32(right), verbose=False)


def test_other_harmless_output_types_pass():
    """A 0-d array for a scalar, a tuple for a list of layers, a list for a pair of gradients."""
    assert checks.lp_loss(lambda *a: np.asarray(_loss_abs_and_flipped(*a)), verbose=False)
    assert checks.layer_gradients(lambda fs, g: tuple(_layer_gradients_autograd(fs, g)), verbose=False)
    assert checks.product_penalty_gradients(lambda a, b: list(_product_penalty_autograd(a, b)), verbose=False)
    assert checks.end_to_end(lambda fs: _end_to_end_multi_dot(fs).tolist(), verbose=False)  # nested lists


def test_the_library_references_pass_every_check():
    """The chapters' solutions call the library; each check must accept its own reference."""
    references = {"lp_loss": op.lp_loss, "lp_gradient": op.lp_gradient, "end_to_end": op.end_to_end,
                  "layer_gradients": op.layer_gradients, "imbalance": op.imbalance,
                  "end_to_end_direction": op.end_to_end_direction, "end_to_end_step": op.end_to_end_step,
                  "single_output_direction": op.single_output_direction,
                  "product_penalty_gradients": op.product_penalty_gradients,
                  "effective_rank": op.factorization.effective_rank}
    assert sorted(references) == sorted(n for n in checks.__all__ if n not in ("CheckResult", "run_check"))
    for name, reference in references.items():
        result = getattr(checks, name)(reference, verbose=False)
        assert result and result.passed == result.total > 0, name


# ---------------------------------------------------------------------------
# Realistic mistakes
# ---------------------------------------------------------------------------
def _power_clamp_negatives_only(A, alpha):
    """eigh with negative round-off set to 0, but tiny positive round-off (1e-16) kept: 1e-16^(1/3) = 5e-6."""
    lam, V = np.linalg.eigh(A)
    return np.eye(len(A)) if alpha == 0 else (V * np.maximum(lam, 0.0) ** alpha) @ V.T


def _power_abs_eigenvalues(A, alpha):
    """eigh with |λ| instead of a clamp: a negative round-off eigenvalue −1e−16 becomes +1e−16 and survives."""
    lam, V = np.linalg.eigh(A)
    return np.eye(len(A)) if alpha == 0 else (V * np.abs(lam) ** alpha) @ V.T


def _power_unclamped(A, alpha):
    """eigh and the eigenvalues as they come, round-off of either sign included."""
    lam, V = np.linalg.eigh(A)
    return np.eye(len(A)) if alpha == 0 else (V * lam ** alpha) @ V.T


def _power_range_projector_for_0(A, alpha):
    """Clamps correctly but takes 0^alpha = 0 also for alpha = 0: [A]^0 becomes the projector on A's range."""
    lam, V = np.linalg.eigh(A)
    lam = np.where(lam > 1e-12 * lam.max(), lam, 0.0)
    return (V * np.where(lam > 0, lam ** alpha, 0.0)) @ V.T


def _power(A, alpha):
    """A correct fractional power, for the mistakes that lie elsewhere."""
    lam, V = np.linalg.eigh(A)
    lam = np.where(lam > 1e-12 * lam.max(), lam, 0.0)
    return np.eye(len(A)) if alpha == 0 else (V * lam ** alpha) @ V.T


def _direction(W_e, grad, depth, js=None, left=None, right=None, power=_power):
    """Σ_j [left]^{(j−1)/N} G [right]^{(N−j)/N} over js, with each ingredient replaceable by a mistake."""
    left = W_e @ W_e.T if left is None else left
    right = W_e.T @ W_e if right is None else right
    js = range(1, depth + 1) if js is None else js
    return sum(power(left, (j - 1) / depth) @ grad @ power(right, (depth - j) / depth) for j in js)


def _layer_gradients_by_formula(factors, grad_e, above_of, below_of):
    """G_j = above_of(j) grad_e below_of(j), the two products supplied by the (possibly wrong) student."""
    return [above_of(factors, j) @ grad_e @ below_of(factors, j) for j in range(len(factors))]


def _prod(Ws, n):
    """W_last ⋯ W_first for the given list (identity of size n when empty): the right order."""
    return reduce(lambda below, W: W @ below, Ws, np.eye(n))


def _right_above(fs, j):  # (W_N ⋯ W_{j+1})ᵀ
    return _prod(fs[j + 1:], fs[j].shape[0]).T


def _right_below(fs, j):  # (W_{j−1} ⋯ W_1)ᵀ
    return _prod(fs[:j], fs[0].shape[1]).T


def _single(w, grad, depth, exponent, coefficient, normalize=True):
    n = np.linalg.norm(w)
    projection = (grad @ w) * w / (n**2 if normalize else 1.0)
    return n**exponent * (grad + coefficient * projection)


def _effective_rank_thresholded(W, threshold, relative=True):
    """exp of the entropy of the singular values above a threshold: 0 log 0 avoided by dropping small ones too."""
    s = np.linalg.svd(W, compute_uv=False)
    s = s[s > threshold * (s.max() if relative else 1.0)]
    q = s / s.sum()
    return float(np.exp(-np.sum(q * np.log(q))))


def _effective_rank_with_nan(W):
    """Keeps the zero singular values: 0 · log 0 is nan in floating point."""
    s = np.linalg.svd(W, compute_uv=False)
    q = s / s.sum()
    return np.exp(-np.sum(q * np.log(q)))


def _svd_entropy(W, weights):
    s = np.linalg.svd(W, compute_uv=False)
    q = weights(s)
    q = q[q > 0]
    return -(q * np.log(q)).sum()


# (check, mistake, regex the failure must match). The regexes pin what makes the message useful: the
# case that exposed the mistake and what went wrong in it. Pinned cases were read off a run: e.g. the
# mistakes that are invisible for p = 2 or N = 1 must be caught by the p = 4 or N = 2 cases.
VALUE = r"largest error \S+ \(at index \([\d, ]*\): got \S+, expected \S+\)"
MISTAKES = [
    # Chapter 1: the ℓp loss and its gradient
    ("lp_loss", "forgets the 1/p", lambda w, X, y, p: np.mean((X @ w - y) ** p),
     rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_loss", "sums instead of averaging", lambda w, X, y, p: np.sum((X @ w - y) ** p) / p,
     rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_loss", "returns the ℓp norm of the residual", lambda w, X, y, p: np.mean((X @ w - y) ** p) ** (1 / p),
     rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_loss", "forgets the return statement", lambda w, X, y, p: None,
     r"^case 'p=2, m=7, d=3': returned None \(is a return statement missing\?\)$"),
    ("lp_gradient", "keeps the factor p of d/dr r^p (drops the loss's 1/p)",
     lambda w, X, y, p: p * X.T @ (X @ w - y) ** (p - 1) / len(y), rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_gradient", "multiplies by p − 1 (the Hessian's factor): right for p = 2 only",
     lambda w, X, y, p: (p - 1) * X.T @ (X @ w - y) ** (p - 1) / len(y), rf"^case 'p=4, m=7, d=3': {VALUE}"),
    ("lp_gradient", "residual y − Xw: its odd power flips the sign",
     lambda w, X, y, p: X.T @ (y - X @ w) ** (p - 1) / len(y), rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_gradient", "sums instead of averaging", lambda w, X, y, p: X.T @ (X @ w - y) ** (p - 1),
     rf"^case 'p=2, m=7, d=3': {VALUE}"),
    ("lp_gradient", "forgets the transpose of X (m != d)", lambda w, X, y, p: X @ (X @ w - y) ** (p - 1) / len(y),
     r"^case 'p=2, m=7, d=3': your function raised ValueError: matmul"),
    # Chapter 2: the end-to-end matrix and the layer gradients
    ("end_to_end", "multiplies W_1 W_2 ⋯ W_N (reduce(np.matmul, factors))", lambda fs: reduce(np.matmul, fs),
     r"^case 'depth 2, dims \[4, 3, 2\]': your function raised ValueError"),
    ("end_to_end", "stops before the last layer", lambda fs: _prod(fs[:-1], fs[0].shape[1]),
     r"^case 'depth 1, dims \[4, 2\]': shape \(4, 4\), expected \(2, 4\)$"),  # range(N − 1) from I
    ("end_to_end", "starts at the second layer", lambda fs: _prod(fs[1:], fs[1].shape[1]) if len(fs) > 1 else fs[0],
     r"^case 'depth 2, dims \[4, 3, 2\]': shape \(2, 3\), expected \(2, 4\)$"),
    ("layer_gradients", "forgets both transposes",
     lambda fs, g: _layer_gradients_by_formula(fs, g, lambda fs, j: _right_above(fs, j).T,
                                               lambda fs, j: _right_below(fs, j).T),
     r"^case 'depth 2, dims \[4, 3, 2\]': your function raised ValueError"),
    ("layer_gradients", "transposes each factor but keeps the order: W_Nᵀ ⋯ W_{j+1}ᵀ",
     lambda fs, g: _layer_gradients_by_formula(
         fs, g, lambda fs, j: reduce(lambda acc, W: W.T @ acc, fs[j + 1:], np.eye(fs[-1].shape[0])),
         lambda fs, j: reduce(lambda acc, W: W.T @ acc, fs[:j], np.eye(fs[0].shape[1]))),
     r"^case 'depth 2, dims \[4, 3, 2\]': your function raised ValueError"),
    ("layer_gradients", "off by one: (W_j ⋯ W_1)ᵀ on the right",
     lambda fs, g: _layer_gradients_by_formula(fs, g, _right_above,
                                               lambda fs, j: _prod(fs[:j + 1], fs[0].shape[1]).T),
     r"^case 'depth 1, dims \[4, 2\]': shape \(2, 2\), expected \(2, 4\)$"),
    ("layer_gradients", "gradients returned in reverse order (G_N first)",
     lambda fs, g: _layer_gradients_by_formula(fs, g, _right_above, _right_below)[::-1],
     r"^case 'depth 2, dims \[4, 3, 2\]': item 0: shape \(2, 3\), expected \(3, 4\)$"),
    # Chapter 3: imbalance
    ("imbalance", "opposite sign: W_j W_jᵀ − W_{j+1}ᵀ W_{j+1}",
     lambda fs: [W @ W.T - Wn.T @ Wn for W, Wn in zip(fs, fs[1:])], rf"^case 'depth 2, dims \[4, 3, 2\]': {VALUE}"),
    ("imbalance", "transposes on the wrong side: W_{j+1} W_{j+1}ᵀ − W_jᵀ W_j",
     lambda fs: [Wn @ Wn.T - W.T @ W for W, Wn in zip(fs, fs[1:])],
     r"^case 'depth 2, dims \[4, 3, 2\]': your function raised ValueError: operands could not be broadcast"),
    # Chapter 4: the end-to-end rule
    ("end_to_end_direction", "the two Gram matrices swapped", lambda W, G, N: _direction(W, G, N, left=W.T @ W,
                                                                                          right=W @ W.T),
     r"^case 'N=1, W_e 1x4': your function raised ValueError"),
    ("end_to_end_direction", "off by one: j = 0, …, N − 1", lambda W, G, N: _direction(W, G, N, js=range(0, N)),
     rf"^case 'N=1, W_e 1x4': {VALUE}"),
    ("end_to_end_direction", "off by one: j = 1, …, N − 1 (last term lost)",
     lambda W, G, N: _direction(W, G, N, js=range(1, N)), r"^case 'N=1, W_e 1x4': shape \(\), expected \(1, 4\)$"),
    ("end_to_end_direction", "integer division (j − 1) // N: every power 0, N·G; right for N = 1 only",
     lambda W, G, N: sum(_power(W @ W.T, (j - 1) // N) @ G @ _power(W.T @ W, (N - j) // N) for j in range(1, N + 1)),
     rf"^case 'N=2, W_e 1x4': {VALUE}"),
    ("end_to_end_direction", "element-wise ** instead of a matrix power",
     lambda W, G, N: sum((W @ W.T) ** ((j - 1) / N) @ G @ (W.T @ W) ** ((N - j) / N) for j in range(1, N + 1)),
     r"^case 'N=1, W_e 1x4': (largest error|contains nan)"),
    ("end_to_end_direction", "no clamp of round-off eigenvalues (rank-deficient Gram matrix)",
     lambda W, G, N: _direction(W, G, N, power=_power_clamp_negatives_only), rf"^case 'N=5, W_e 1x4': {VALUE}"),
    ("end_to_end_step", "forgets the factor N of the weight decay",
     lambda W, G, N, lr, wd: (1 - lr * wd) * W - lr * _direction(W, G, N),
     rf"^case 'N=2, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "decays after the step: (1 − ηλN)(W − η·direction)",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * (W - lr * _direction(W, G, N)),
     rf"^case 'N=1, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "plain gradient step, no preconditioner: right for N = 1 only",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * G, rf"^case 'N=2, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "|λ| of the round-off eigenvalues instead of a clamp",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * _direction(W, G, N, power=_power_abs_eigenvalues),
     rf"^case 'N=5, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "no clamp of positive round-off eigenvalues (max(λ, 0))",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * _direction(W, G, N, power=_power_clamp_negatives_only),
     rf"^case 'N=5, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "no clamp at all: a negative round-off eigenvalue to a fractional power is nan",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * sum(
         _power_unclamped(W @ W.T, (j - 1) / N) @ G @ _power_unclamped(W.T @ W, (N - j) / N) for j in range(1, N + 1)),
     r"^case 'N=2, W_e 1x4, lr=1, λ=0.1': contains nan or inf$"),
    ("end_to_end_step", "[A]^0 taken as the projector on A's range instead of I (rank-deficient W_eᵀW_e)",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * _direction(W, G, N, power=_power_range_projector_for_0),
     rf"^case 'N=1, W_e 1x4, lr=1, λ=0.1': {VALUE}"),
    ("end_to_end_step", "forgets η in the decay: (1 − λN) W_e",
     lambda W, G, N, lr, wd: (1 - wd * N) * W - lr * _direction(W, G, N),
     rf"^case 'N=2, W_e 2x3, lr=0.5, λ=0.2': {VALUE}"),
    ("end_to_end_step", "forgets η on the direction",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - _direction(W, G, N),
     rf"^case 'N=2, W_e 2x3, lr=0.5, λ=0.2': {VALUE}"),
    ("end_to_end_step", "η squared on the direction",
     lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr**2 * _direction(W, G, N),
     rf"^case 'N=2, W_e 2x3, lr=0.5, λ=0.2': {VALUE}"),
    ("single_output_direction", "exponent 2 − 1/N instead of 2 − 2/N",
     lambda w, g, N: _single(w, g, N, 2 - 1 / N, N - 1), rf"^case 'N=1, d=2': {VALUE}"),
    ("single_output_direction", "‖w‖^(1 − 1/N): the norm, not its square, to the power 1 − 1/N",
     lambda w, g, N: _single(w, g, N, 1 - 1 / N, N - 1), rf"^case 'N=2, d=2': {VALUE}"),
    ("single_output_direction", "N instead of N − 1 in front of the projection",
     lambda w, g, N: _single(w, g, N, 2 - 2 / N, N), rf"^case 'N=1, d=2': {VALUE}"),
    ("single_output_direction", "projection <g, w> w without dividing by ‖w‖²",
     lambda w, g, N: _single(w, g, N, 2 - 2 / N, N - 1, normalize=False), rf"^case 'N=2, d=2': {VALUE}"),
    # Chapter 6: the penalty on the product
    ("product_penalty_gradients", "forgets the transposes (caught on the square case)",
     lambda A, B: ((A @ B) @ B, A @ (A @ B)), rf"^case 'W_a 3x3, W_b 3x3': item 0: {VALUE}"),
    ("product_penalty_gradients", "returns the two gradients swapped",
     lambda A, B: (A.T @ (A @ B), (A @ B) @ B.T), rf"^case 'W_a 3x3, W_b 3x3': item 0: {VALUE}"),
    ("product_penalty_gradients", "differentiates ‖W_a W_b‖² without the ½",
     lambda A, B: (2 * (A @ B) @ B.T, 2 * A.T @ (A @ B)), rf"^case 'W_a 3x3, W_b 3x3': item 0: {VALUE}"),
    # Chapter 7: effective rank
    ("effective_rank", "entropy of the squared singular values",
     lambda W: np.exp(_svd_entropy(W, lambda s: s**2 / (s**2).sum())), rf"^case '5x5 Gaussian': {VALUE}"),
    ("effective_rank", "returns the entropy, forgets the exp", lambda W: _svd_entropy(W, lambda s: s / s.sum()),
     rf"^case '5x5 Gaussian': {VALUE}"),
    ("effective_rank", "2**H with H in nats", lambda W: 2.0 ** _svd_entropy(W, lambda s: s / s.sum()),
     rf"^case '5x5 Gaussian': {VALUE}"),
    ("effective_rank", "the numerical rank", lambda W: float(np.linalg.matrix_rank(W)),
     rf"^case '5x5 Gaussian': {VALUE}"),
    ("effective_rank", "0 log 0 left as nan (exact zero singular values)", lambda W: _effective_rank_with_nan(W),
     r"^case 'diag\(3, 1, 0, 0\)': contains nan or inf$"),
    ("effective_rank", "drops singular values below 1e-3 of the largest instead of handling 0 log 0",
     lambda W: _effective_rank_thresholded(W, 1e-3), rf"^case 'diag\(1, 0.5, 1e-2, 1e-3, 1e-4\)': {VALUE}"),
    ("effective_rank", "drops singular values below 0.1 (an absolute threshold)",
     lambda W: _effective_rank_thresholded(W, 0.1, relative=False), rf"^case 'diag\(1, 0.5, 1e-2, 1e-3, 1e-4\)': {VALUE}"),
]


@pytest.mark.parametrize("name, mistake, wrong, expected", MISTAKES, ids=[f"{m[0]}-{m[1]}" for m in MISTAKES])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # nan from log(0) or powers of negative round-off
def test_a_realistic_mistake_fails_with_a_useful_message(name, mistake, wrong, expected, capsys):
    result = getattr(checks, name)(wrong)
    assert not result, f"the check accepted a wrong answer ({mistake})"
    assert result.passed < result.total
    assert result.failure is not None
    assert re.search(expected, result.failure), result.failure
    printed = capsys.readouterr().out.strip()
    assert printed == str(result)
    assert printed.startswith(f"{name}: FAILED — case '")
    assert printed.endswith(f"({result.passed} of {result.total} cases passed before it)")


def test_a_round_off_mistake_in_the_step_fails_far_beyond_the_tolerance():
    """The step check compares iterates at step size 1, at depths where a round-off eigenvalue matters.

    With the former cases (η = 0.01, depths 1, 2, 3, 5) the iterate was mostly W_e, the direction's error
    was shrunk a hundredfold before it met the tolerance, and |λ| instead of a clamp failed first at depth 3
    by 1.5 times the tolerance (measured): a verdict at the mercy of round-off. Now the first failing case
    exceeds the tolerance by far more than that (measured: 714 times).
    """
    wrong = lambda W, G, N, lr, wd: (1 - lr * wd * N) * W - lr * _direction(W, G, N, power=_power_abs_eigenvalues)  # noqa: E731
    result = checks.end_to_end_step(wrong, verbose=False)
    assert not result
    failed = re.match(r"case '([^']*)'", result.failure)[1]
    args = dict(checks._step_cases())[failed]
    expected, got = op.end_to_end_step(*args), wrong(*args)
    margin = np.max(np.abs(got - expected) / (1e-8 + 1e-6 * np.abs(expected)))  # the check's atol and rtol
    assert margin > 100, f"{failed}: only {margin:.1f} times the tolerance"
    steps = [args[3] for _, args in checks._step_cases()]
    assert args[3] == 1.0 and steps[:-2] == [1.0] * (len(steps) - 2), "the step is as large as the iterate"
    assert steps[-2:] == [0.5, 0.5], "the last two cases are where η shows"


def test_the_square_cases_alone_expose_the_transpose_mistakes():
    """A forgotten transpose raises on non-square inputs; on square ones only a non-symmetric matrix shows it.

    The checks' square cases (3x3 W_e, W_a = W_b = 3x3) must catch the swapped Gram matrices and the missing
    transposes by their values, not by luck of a shape error.
    """
    square = [case for case in checks._rule_cases(6) if case[1][0].shape == (3, 3) and case[1][2] > 1]
    assert square
    swapped = lambda W, G, N: _direction(W, G, N, left=W.T @ W, right=W @ W.T)  # noqa: E731
    result = checks.run_check("square", swapped, op.end_to_end_direction, square, rtol=1e-6, atol=1e-8,
                              verbose=False)
    assert not result and "largest error" in result.failure
    rng = np.random.default_rng(0)
    pair = [("3x3", (rng.normal(size=(3, 3)), rng.normal(size=(3, 3))))]
    result = checks.run_check("square", lambda A, B: ((A @ B) @ B, A @ (A @ B)), op.product_penalty_gradients,
                              pair, verbose=False)
    assert not result and "largest error" in result.failure


def test_the_cases_are_non_square_non_symmetric_and_rank_deficient():
    """What makes the mistakes visible: pinned so that a future edit of the cases cannot quietly weaken them."""
    rules = [args[0] for _, args in checks._rule_cases(6)]
    assert any(W.shape[0] != W.shape[1] for W in rules)  # transposes and swapped Gram matrices raise
    assert any(W.shape[0] == W.shape[1] and np.abs(W - W.T).max() > 0.1 for W in rules)  # ... or show in values
    assert any(np.linalg.matrix_rank(W) < min(W.shape) for W in rules if W.shape[0] > 1)  # a rank-deficient W_e
    assert {args[2] for _, args in checks._rule_cases(6)} >= {1, 2, 3}  # N = 1 alone would hide off-by-ones
    for _, factors in checks._factor_cases(4):
        assert factors[0].shape[1] != factors[-1].shape[0]  # d = 4 inputs, k = 2 outputs: W_e is never square
    assert {p for _, (_, _, _, p) in checks._regression_cases(2)} == {2, 4, 6}
    assert all(X.shape[0] != X.shape[1] for _, (_, X, _, _) in checks._regression_cases(2))


# ---------------------------------------------------------------------------
# The engine's reports
# ---------------------------------------------------------------------------
def test_a_value_failure_names_the_case_the_index_and_both_values(capsys):
    result = checks.lp_gradient(lambda w, X, y, p: X.T @ (X @ w - y) ** (p - 1), verbose=False)
    assert result.failure.startswith("case 'p=2, m=7, d=3': largest error ")
    assert "at index (" in result.failure and "got " in result.failure and "expected " in result.failure
    assert capsys.readouterr().out == ""  # verbose=False prints nothing
    assert (result.passed, result.total) == (0, 6) and not bool(result)


def test_case_descriptions_show_plain_integers():
    """Widths drawn by numpy printed as "np.int64(3)" in the messages under numpy 2."""
    for description, _ in checks._factor_cases(3):
        assert "np." not in description and description.startswith("depth ")


def test_an_exception_in_student_code_is_reported():
    def broken(w, X, y, p):
        raise ZeroDivisionError("oops")

    result = checks.lp_loss(broken, verbose=False)
    assert not result and result.failure == "case 'p=2, m=7, d=3': your function raised ZeroDivisionError: oops"


def test_wrong_shape_and_wrong_count_are_reported():
    result = checks.lp_gradient(lambda w, X, y, p: op.lp_gradient(w, X, y, p)[None, :], verbose=False)
    assert not result and result.failure == ("case 'p=2, m=7, d=3': shape (1, 3), expected (3,) "
                                             "(the right number of entries: reshape it to (3,))")
    result = checks.layer_gradients(lambda fs, g: op.layer_gradients(fs, g) + [np.zeros(1)], verbose=False)
    assert not result and result.failure == "case 'depth 1, dims [4, 2]': returned 2 arrays, expected 1"
    result = checks.product_penalty_gradients(lambda a, b: op.product_penalty_gradients(a, b)[:1], verbose=False)
    assert not result and result.failure.endswith("returned 1 array, expected 2")


def test_non_numeric_output_is_reported():
    result = checks.lp_loss(lambda *a: {"loss": 0.5}, verbose=False)
    assert not result and "returned something that is not an array" in result.failure


def test_a_tensor_that_requires_grad_is_a_failed_case_not_a_crash():
    """A loss computed with torch and returned without .detach(): the check reports torch's own hint."""
    def torch_loss(w, X, y, p):
        wt = torch.tensor(w, requires_grad=True)
        return ((torch.tensor(X) @ wt - torch.tensor(y)) ** p).mean() / p

    result = checks.lp_loss(torch_loss, verbose=False)
    assert not result and result.failure.startswith("case 'p=2, m=7, d=3': returned something that is not an array")
    assert "detach" in result.failure
    assert checks.lp_loss(lambda *a: torch_loss(*a).detach(), verbose=False)


def test_student_cannot_corrupt_the_reference_inputs():
    def mutating(w, X, y, p):
        g = op.lp_gradient(w, X, y, p)
        X *= 0
        y[:] = 0
        return g

    assert checks.lp_gradient(mutating, verbose=False)


def test_a_right_answer_that_reorders_a_list_of_factors_in_place_passes():
    """The factors come as a list: reversing it in place is legitimate and must not change the reference's case."""
    def reversing(factors):
        factors.reverse()
        out = factors[0]
        for W in factors[1:]:
            out = out @ W
        return out

    assert checks.end_to_end(reversing, verbose=False)


def test_not_a_function():
    with pytest.raises(ValueError, match="lp_loss: expected your function, got int"):
        checks.lp_loss(3)


def _gradient_in_float32(w, X, y, p):
    """The right formula evaluated in single precision (torch's default dtype, or an explicit astype)."""
    X32, y32, w32 = (a.astype(np.float32) for a in (X, y, w))
    return X32.T @ (X32 @ w32 - y32) ** (p - 1) / len(y)


def test_a_single_precision_answer_is_told_to_compute_in_float64():
    """Float32 arithmetic misses the 1e-7 tolerance (measured error 6.2e-8 on an entry of size 0.3, over the
    bound 3e-8); the message then says why, and prints enough digits to see the two values differ."""
    result = checks.lp_gradient(_gradient_in_float32, verbose=False)
    assert not result
    assert re.search(r"got -?\d\.\d{9}", result.failure)  # ten significant digits, not six
    assert "single precision" in result.failure and "float64" in result.failure
    torch32 = checks.lp_gradient(lambda w, X, y, p: torch.tensor(_gradient_in_float32(w, X, y, p)), verbose=False)
    assert not torch32 and "single precision" in torch32.failure
    wrong64 = checks.lp_gradient(lambda w, X, y, p: 1.01 * op.lp_gradient(w, X, y, p), verbose=False)
    assert not wrong64 and "precision" not in wrong64.failure  # a double-precision mistake gets no such hint
    # bug: a wrong formula computed in float32 (the sum for the mean: off by 7x) was told only to use float64
    summed32 = checks.lp_gradient(lambda w, X, y, p: len(y) * _gradient_in_float32(w, X, y, p), verbose=False)
    assert not summed32 and "largest error" in summed32.failure and "precision" not in summed32.failure


def test_the_tolerance_is_double_precision_round_off():
    """An answer off by 5e-7 relative fails (rtol 1e-7); one off by 2e-8 passes."""
    off = checks.lp_gradient(lambda w, X, y, p: (1 + 5e-7) * op.lp_gradient(w, X, y, p), verbose=False)
    assert not off and "largest error" in off.failure
    assert checks.lp_gradient(lambda w, X, y, p: (1 + 2e-8) * op.lp_gradient(w, X, y, p), verbose=False)


def test_a_result_of_the_right_size_but_the_wrong_shape_or_packing_is_told_so():
    column = checks.lp_gradient(lambda w, X, y, p: op.lp_gradient(w, X, y, p)[:, None], verbose=False)
    assert not column
    assert column.failure.endswith("shape (3, 1), expected (3,) (the right number of entries: reshape it to (3,))")
    short = checks.lp_gradient(lambda w, X, y, p: op.lp_gradient(w, X, y, p)[:-1], verbose=False)
    assert short.failure.endswith("shape (2,), expected (3,)")  # not the same size: no reshape advice
    stacked = checks.product_penalty_gradients(lambda A, B: np.array(op.product_penalty_gradients(A, B)),
                                               verbose=False)
    assert stacked.failure == ("case 'W_a 3x3, W_b 3x3': returned one array of shape (2, 3, 3), expected 2 separate "
                               "arrays (return them as a tuple or a list)")
    # a single array where the reference returns a list of one (depth 2: one D_1) still passes
    assert checks.run_check("one", lambda fs: op.imbalance(fs)[0], op.imbalance,
                            [("depth 2", ([np.eye(2), np.eye(2)],))], verbose=False)


def test_a_check_as_a_cells_last_line_shows_its_verdict_once():
    """Bug: ending a cell with ``op.checks.x(f)`` printed the verdict, then the notebook showed the CheckResult's repr."""
    import nbclient
    import nbformat

    cells = ["import overparam as op\nop.checks.lp_gradient(op.lp_gradient)",
             "op.checks.lp_gradient(op.lp_gradient, verbose=False)"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells:
        shown = "".join(o.get("text", "") or "".join(o.get("data", {}).values()) for o in cell.outputs)
        assert shown == "lp_gradient: passed 6 of 6 cases\n", (cell.source, cell.outputs)
