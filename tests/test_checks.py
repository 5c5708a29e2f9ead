"""Each exercise self-check passes on the reference solution and fails on a plausible wrong answer."""
import numpy as np
import pytest

import overparam as op

checks = op.checks


def _wrong_loss(w, X, y, p):  # forgets the 1/p
    return float(((X @ w - y) ** p).mean())


def _wrong_gradient(w, X, y, p):  # sums instead of averaging
    return X.T @ (X @ w - y) ** (p - 1)


def _wrong_end_to_end(factors):  # an off-by-one: stops before the last layer
    return op.end_to_end(factors[:-1]) if len(factors) > 1 else factors[0]


def _wrong_layer_gradients(factors, grad_e):  # forgets the transposes
    grads = op.layer_gradients(factors, grad_e)
    return [g * 1.01 for g in grads]


def _wrong_imbalance(factors):  # W_j^T W_j instead of W_j W_j^T
    return [factors[j + 1].T @ factors[j + 1] - factors[j].T @ factors[j] if factors[j].shape[0] == factors[j].shape[1]
            else factors[j + 1].T @ factors[j + 1] for j in range(len(factors) - 1)]


def _wrong_direction(W_e, grad, depth):  # swaps the exponents of the two Gram matrices
    return op.end_to_end_direction(W_e.T, grad.T, depth).T if W_e.shape[0] != W_e.shape[1] else depth * grad


def _wrong_step(W_e, grad, depth, lr, weight_decay):  # forgets the factor N in the decay term
    return (1 - lr * weight_decay) * W_e - lr * op.end_to_end_direction(W_e, grad, depth)


def _wrong_single_output(w, grad, depth):  # uses ||w||^(2 - 1/N)
    n = np.linalg.norm(w)
    proj = (grad @ w) / n**2 * w
    return n ** (2 - 1 / depth) * (grad + (depth - 1) * proj)


def _wrong_product_penalty(W_a, W_b):  # differentiates ||W_a W_b||^2 without the 1/2
    ga, gb = op.product_penalty_gradients(W_a, W_b)
    return 2 * ga, 2 * gb


def _wrong_effective_rank(W):  # exponentiates the entropy of the squared singular values
    s = np.linalg.svd(W, compute_uv=False) ** 2
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


CASES = [
    ("lp_loss", op.lp_loss, _wrong_loss),
    ("lp_gradient", op.lp_gradient, _wrong_gradient),
    ("end_to_end", op.end_to_end, _wrong_end_to_end),
    ("layer_gradients", op.layer_gradients, _wrong_layer_gradients),
    ("imbalance", op.imbalance, _wrong_imbalance),
    ("end_to_end_direction", op.end_to_end_direction, _wrong_direction),
    ("end_to_end_step", op.end_to_end_step, _wrong_step),
    ("single_output_direction", op.single_output_direction, _wrong_single_output),
    ("product_penalty_gradients", op.product_penalty_gradients, _wrong_product_penalty),
    ("effective_rank", op.factorization.effective_rank, _wrong_effective_rank),
]


@pytest.mark.parametrize("name, reference, wrong", CASES, ids=[c[0] for c in CASES])
def test_check_passes_reference_and_fails_wrong_answer(name, reference, wrong, capsys):
    check = getattr(checks, name)
    ok = check(reference)
    assert ok and ok.passed == ok.total > 0
    assert "passed" in capsys.readouterr().out
    bad = check(wrong)
    assert not bad
    out = capsys.readouterr().out
    assert "FAILED" in out and "case '" in out


def test_failure_names_the_case_and_the_error(capsys):
    result = checks.lp_gradient(_wrong_gradient, verbose=False)
    assert result.failure.startswith("case 'p=2, m=7, d=3'") and "largest error" in result.failure
    assert capsys.readouterr().out == ""


def test_an_exception_in_student_code_is_reported():
    def broken(w, X, y, p):
        raise ZeroDivisionError("oops")

    result = checks.lp_loss(broken, verbose=False)
    assert not result and "raised ZeroDivisionError: oops" in result.failure


def test_wrong_shape_is_reported():
    result = checks.lp_gradient(lambda w, X, y, p: op.lp_gradient(w, X, y, p)[None, :], verbose=False)
    assert not result and "shape" in result.failure


def test_student_cannot_corrupt_the_reference_inputs():
    def mutating(w, X, y, p):
        g = op.lp_gradient(w, X, y, p)
        X *= 0
        return g

    assert checks.lp_gradient(mutating, verbose=False)


def test_not_a_function():
    with pytest.raises(ValueError, match="expected your function"):
        checks.lp_loss(3)
