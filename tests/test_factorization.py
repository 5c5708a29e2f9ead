"""Deep matrix factorization (Chapter 7, Part B): the problem, training against autograd, the singular-value
dynamics against Claim 1 and finite differences, the effective rank, and the nuclear-norm baseline against
closed forms and its optimality (KKT) conditions."""
import numpy as np
import pytest
import torch

from overparam.balance import balanced_factors, max_imbalance
from overparam.deep import end_to_end, layer_gradients
from overparam.dynamics import end_to_end_direction
from overparam.factorization import (
    COMPLETION_PRESETS,
    CompletionPreset,
    CompletionProblem,
    ConvergenceError,
    completion_experiment,
    completion_problem,
    effective_rank,
    low_rank_matrix,
    nuclear_norm_completion,
    singular_value_rate_error,
    singular_value_rates,
    singular_value_threshold,
    small_balanced_start,
    train_deep_factorization,
)
from overparam.training import NEVER, DivergenceError


def _random_mask(shape, fraction, seed):
    return np.random.default_rng(seed).random(shape) < fraction


def _orthonormal(n, k, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n, k)))[0]


# --- the problem -------------------------------------------------------------


def test_low_rank_matrix_has_the_rank_and_unit_frobenius_norm_and_follows_its_seed():
    W = low_rank_matrix(12, 9, 3, seed=4)
    s = np.linalg.svd(W, compute_uv=False)
    assert W.shape == (12, 9)
    assert np.linalg.norm(W) == pytest.approx(1.0, rel=1e-14)
    assert s[2] > 1e-3 and s[3] < 1e-14
    np.testing.assert_array_equal(W, low_rank_matrix(12, 9, 3, seed=4))
    assert not np.allclose(W, low_rank_matrix(12, 9, 3, seed=5))


@pytest.mark.parametrize("args, match", [((4, 3, 4), "rank"), ((4, 3, 0), "rank"), ((0, 3, 1), "n_rows"),
                                         ((4, 3.0, 1), "n_cols")])
def test_low_rank_matrix_checks_its_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        low_rank_matrix(*args, seed=0)


_DRAWS = {
    "low_rank_matrix": lambda seed: low_rank_matrix(4, 3, 1, seed),
    "completion_problem": lambda seed: completion_problem(4, 1, 5, seed).mask,
    "small_balanced_start": lambda seed: small_balanced_start(4, 3, 2, 0.1, seed)[0],
}


@pytest.mark.parametrize("draw", sorted(_DRAWS))
@pytest.mark.parametrize("seed", [-1, 1.5, "a", None, True])
def test_random_draws_check_their_seed(draw, seed):
    """Bug: seed=-1 gave numpy's "expected non-negative integer", seed=1.5 a TypeError from SeedSequence."""
    with pytest.raises(ValueError, match="seed must be an integer >= 0 or a numpy Generator"):
        _DRAWS[draw](seed)


@pytest.mark.parametrize("draw", sorted(_DRAWS))
def test_random_draws_take_an_int_or_a_generator_as_before(draw):
    np.testing.assert_array_equal(_DRAWS[draw](3), _DRAWS[draw](np.random.default_rng(3)))
    np.testing.assert_array_equal(_DRAWS[draw](np.int64(3)), _DRAWS[draw](3))


def test_loss_gradient_and_error_against_a_plain_loop_and_autograd():
    rng = np.random.default_rng(0)
    target, W = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    mask = _random_mask((5, 7), 0.4, seed=1)
    problem = CompletionProblem(target=target, mask=mask)
    expected = 0.0
    for i in range(5):
        for j in range(7):
            if mask[i, j]:
                expected += 0.5 * (W[i, j] - target[i, j]) ** 2
    assert problem.loss(W) == pytest.approx(expected, rel=1e-14)
    assert problem.num_observed == int(mask.sum()) and problem.shape == (5, 7)

    Wt = torch.tensor(W, requires_grad=True)
    value = 0.5 * ((Wt - torch.tensor(target))[torch.tensor(mask)] ** 2).sum()
    np.testing.assert_allclose(problem.gradient(W), torch.autograd.grad(value, Wt)[0].numpy(), rtol=1e-14)

    full = np.sqrt(((W - target) ** 2).sum() / (target**2).sum())
    assert problem.reconstruction_error(W) == pytest.approx(full, rel=1e-13)  # over all entries, not just Ω
    assert problem.reconstruction_error(target) == 0.0


def test_completion_problem_validates_and_keeps_read_only_copies():
    target = np.ones((3, 4))
    with pytest.raises(ValueError, match="mask must be a boolean"):
        CompletionProblem(target=target, mask=np.ones((3, 4)))
    with pytest.raises(ValueError, match="mask must have the shape"):
        CompletionProblem(target=target, mask=np.ones((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="target must be a 2-D"):
        CompletionProblem(target=np.ones(3), mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="target must contain only finite"):
        CompletionProblem(target=np.full((2, 2), np.nan), mask=np.ones((2, 2), dtype=bool))
    mask = np.ones((3, 4), dtype=bool)
    problem = CompletionProblem(target=target, mask=mask)
    mask[0, 0] = False
    target[0, 0] = 5.0
    assert problem.num_observed == 12 and problem.target[0, 0] == 1.0
    with pytest.raises(ValueError, match="W must have the target's shape"):
        problem.loss(np.ones((4, 3)))
    with pytest.raises(ValueError, match="zero matrix"):
        CompletionProblem(target=np.zeros((2, 2)), mask=mask[:2, :2]).reconstruction_error(np.ones((2, 2)))


def test_completion_problem_counts_nests_and_keeps_one_target_per_seed():
    small, large = completion_problem(10, 2, 20, seed=3), completion_problem(10, 2, 60, seed=3)
    assert small.num_observed == 20 and large.num_observed == 60
    np.testing.assert_array_equal(small.target, large.target)
    assert np.all(large.mask[small.mask])  # nested: every entry of the smaller set is in the larger
    assert completion_problem(6, 1, 10, seed=0, n_cols=4).shape == (6, 4)
    with pytest.raises(ValueError, match="num_observed"):
        completion_problem(3, 1, 10, seed=0)


def test_completion_problem_observes_entries_uniformly():
    """Over 400 seeds, every entry of a 3 × 4 matrix is observed about 6/12 of the time (binomial, 5 sigma)."""
    freq = np.mean([completion_problem(3, 1, 6, seed=s, n_cols=4).mask for s in range(400)], axis=0)
    assert np.abs(freq - 0.5).max() < 5 * np.sqrt(0.25 / 400)


# --- the start and training --------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_small_balanced_start_is_balanced_and_has_the_asked_norm(depth):
    factors = small_balanced_start(6, 4, depth, 1e-2, seed=2)
    W_e = end_to_end(factors)
    assert W_e.shape == (6, 4) and len(factors) == depth
    assert np.linalg.norm(W_e) == pytest.approx(1e-2, rel=1e-12)
    assert max_imbalance(factors) < 1e-15
    assert all(W.shape[0] == 4 for W in factors[:-1])  # hidden widths min(6, 4)
    np.testing.assert_array_equal(W_e, end_to_end(small_balanced_start(6, 4, depth, 1e-2, seed=2)))


def _autograd_gd(problem, factors, lr, num_iters):
    """Plain GD with torch.autograd on ½‖P_Ω(W_N⋯W_1 − W*)‖², independent of the library's chain rule."""
    Ws = [torch.tensor(W, requires_grad=True) for W in factors]
    target, mask = torch.tensor(problem.target), torch.tensor(problem.mask)
    losses = []
    for _ in range(num_iters):
        W_e = Ws[0]
        for W in Ws[1:]:
            W_e = W @ W_e
        value = 0.5 * ((W_e - target)[mask] ** 2).sum()
        losses.append(float(value.detach()))
        grads = torch.autograd.grad(value, Ws)
        Ws = [(W - lr * G).detach().requires_grad_() for W, G in zip(Ws, grads)]
    return [W.detach().numpy() for W in Ws], np.array(losses)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_training_matches_autograd_gradient_descent(depth):
    problem = CompletionProblem(target=low_rank_matrix(7, 5, 2, seed=0), mask=_random_mask((7, 5), 0.5, seed=1))
    rng = np.random.default_rng(2)
    dims = [5] + [6] * (depth - 1) + [7]  # any widths, unbalanced start
    start = [0.5 * rng.normal(size=(b, a)) / np.sqrt(a) for a, b in zip(dims[:-1], dims[1:])]
    history = train_deep_factorization(problem, start, 0.3, 25)
    expected, losses = _autograd_gd(problem, start, 0.3, 25)
    for got, want in zip(history.factors, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(history.loss[:-1], losses, rtol=1e-12)
    np.testing.assert_allclose(history.W_e, end_to_end(expected), atol=1e-12)
    assert history.loss[-1] == pytest.approx(problem.loss(history.W_e), rel=1e-14)
    assert history.depth == depth and history.lr == 0.3 and not history.diverged
    assert history.loss[-1] < history.loss[0]


def test_training_matches_the_checked_public_functions_bit_for_bit():
    """The loop validates the layers once and steps with unchecked helpers: the numbers must not change."""
    problem = CompletionProblem(target=low_rank_matrix(7, 5, 2, seed=0), mask=_random_mask((7, 5), 0.5, seed=1))
    Ws = small_balanced_start(7, 5, 3, 0.4, seed=3)
    history = train_deep_factorization(problem, Ws, 0.3, 12, observe=lambda W: W.sum(axis=0))
    for t in range(12):
        W_e = end_to_end(Ws)
        assert history.loss[t] == problem.loss(W_e)
        np.testing.assert_array_equal(history.observed[t], W_e.sum(axis=0))
        Ws = [W - 0.3 * G for W, G in zip(Ws, layer_gradients(Ws, problem.gradient(W_e)))]
    for got, want in zip(history.factors, Ws):
        np.testing.assert_array_equal(got, want)
    assert history.loss[-1] == problem.loss(end_to_end(Ws))


def test_training_records_observes_and_fits_a_fully_observed_matrix():
    """A full-rank target, every entry observed: GD converges linearly (a zero singular value would not)."""
    target = (_orthonormal(6, 6, 0) * np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5])) @ _orthonormal(6, 6, 1).T
    problem = CompletionProblem(target=target, mask=np.ones((6, 6), dtype=bool))
    history = train_deep_factorization(problem, small_balanced_start(6, 6, 3, 0.5, seed=1), 0.3, 400,
                                       record_every=150, observe=lambda W: np.linalg.svd(W, compute_uv=False))
    np.testing.assert_array_equal(history.steps, [0, 150, 300, 400])
    assert history.observed.shape == (4, 6)
    np.testing.assert_allclose(history.observed[-1], np.linalg.svd(history.W_e, compute_uv=False), rtol=1e-12)
    assert history.final_loss < 1e-20
    assert problem.reconstruction_error(history.W_e) < 1e-10


def test_training_records_at_given_steps_and_observes_only_there():
    """``record``: the run is the same; loss and observations are kept at 0, the given steps and the last."""
    problem = CompletionProblem(target=low_rank_matrix(6, 5, 2, seed=0), mask=_random_mask((6, 5), 0.6, seed=1))
    start = small_balanced_start(6, 5, 3, 0.3, seed=2)
    calls = []

    def observe(W):
        calls.append(W.copy())
        return np.linalg.svd(W, compute_uv=False)

    every = train_deep_factorization(problem, start, 0.2, 40, observe=lambda W: np.linalg.svd(W, compute_uv=False))
    chosen = train_deep_factorization(problem, start, 0.2, 40, record=[1, 2, 7, 30], observe=observe)
    np.testing.assert_array_equal(chosen.steps, [0, 1, 2, 7, 30, 40])
    np.testing.assert_array_equal(chosen.loss, every.loss[chosen.steps])
    np.testing.assert_array_equal(chosen.observed, every.observed[chosen.steps])
    np.testing.assert_array_equal(chosen.W_e, every.W_e)
    assert len(calls) == 6  # at the six recorded steps only
    with pytest.raises(ValueError, match=r"record must hold steps in \[0, num_iters=40\], got 5 to 41"):
        train_deep_factorization(problem, start, 0.2, 40, record=[5, 41])
    with pytest.raises(ValueError, match="record"):
        train_deep_factorization(problem, start, 0.2, 40, record=[0.5])


def test_training_with_record_keeps_the_last_step_before_a_divergence():
    problem = CompletionProblem(target=low_rank_matrix(5, 5, 1, seed=0), mask=np.ones((5, 5), dtype=bool))
    start = small_balanced_start(5, 5, 2, 1.0, seed=1)
    svd = lambda W: np.linalg.svd(W, compute_uv=False)  # noqa: E731
    stopped = train_deep_factorization(problem, start, 2.0, 100, record=[50], on_divergence="stop", observe=svd)
    assert stopped.diverged_at == 4  # measured
    np.testing.assert_array_equal(stopped.steps, [0, 3])  # step 50 is never reached; step 3 is the last before 4
    np.testing.assert_allclose(stopped.observed[-1], svd(stopped.W_e), rtol=1e-12)


def test_training_divergence_follows_the_books_rule():
    problem = CompletionProblem(target=low_rank_matrix(5, 5, 1, seed=0), mask=np.ones((5, 5), dtype=bool))
    start = small_balanced_start(5, 5, 2, 1.0, seed=1)
    with pytest.raises(DivergenceError, match="depth-2 matrix factorization"):
        train_deep_factorization(problem, start, 50.0, 100)
    stopped = train_deep_factorization(problem, start, 50.0, 100, on_divergence="stop")
    assert stopped.diverged and stopped.steps[-1] == stopped.diverged_at - 1
    assert np.all(np.isfinite(stopped.W_e))


@pytest.mark.parametrize("kwargs, match", [
    (dict(factors=[np.ones((3, 4))]), "W_1 needs 5 columns"),
    (dict(lr=0.0), "lr"),
    (dict(num_iters=-1), "num_iters"),
    (dict(observe=3), "observe"),
    (dict(problem=np.ones((4, 5))), "problem must be a CompletionProblem"),
    # bug: a non-finite start was reported as a divergence at step 0 ("use a smaller learning rate")
    (dict(factors=[np.full((4, 5), np.nan)]), r"factors\[0\].* must contain only finite values"),
    (dict(factors=[np.ones((4, 5)), np.full((4, 4), np.inf)]), r"factors\[1\].* must contain only finite values"),
])
def test_training_checks_its_arguments(kwargs, match):
    args = dict(problem=CompletionProblem(target=np.ones((4, 5)), mask=np.ones((4, 5), dtype=bool)),
                factors=[np.ones((4, 5))], lr=0.1, num_iters=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_deep_factorization(**args)


def test_singular_value_rate_error_checks_the_problem():
    with pytest.raises(ValueError, match="problem must be a CompletionProblem"):
        singular_value_rate_error(None, small_balanced_start(4, 4, 2, 0.1, seed=0), 0.1)


# --- singular-value dynamics -------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(6, 6), (7, 4), (3, 5)])
def test_singular_value_rates_are_claim_1s_direction_on_u_r_v_r(depth, shape):
    """σ̇_r = −u_rᵀ D v_r with D = Σ_j [W Wᵀ]^{(j−1)/N} ∇ℓ [WᵀW]^{(N−j)/N}, the end-to-end rule's direction."""
    rng = np.random.default_rng(depth + shape[0])
    W_e, grad = rng.normal(size=shape), rng.normal(size=shape)
    U, _, Vt = np.linalg.svd(W_e, full_matrices=False)
    D = end_to_end_direction(W_e, grad, depth)
    expected = -np.einsum("ir,ij,rj->r", U, D, Vt)
    np.testing.assert_allclose(singular_value_rates(W_e, grad, depth), expected, rtol=1e-10,
                               atol=1e-12 * np.abs(expected).max())


def _finite_difference_error(lr, num_steps=3):
    """The worst singular_value_rate_error over the first few GD steps of a balanced depth-3 factorization."""
    problem = CompletionProblem(target=low_rank_matrix(6, 5, 2, seed=0), mask=_random_mask((6, 5), 0.6, seed=1))
    W0 = (_orthonormal(6, 5, 4) * np.array([0.9, 0.7, 0.5, 0.35, 0.2])) @ _orthonormal(5, 5, 5).T
    factors, worst = balanced_factors(W0, 3), 0.0
    for _ in range(num_steps):
        worst = max(worst, singular_value_rate_error(problem, factors, lr))
        factors = list(train_deep_factorization(problem, factors, lr, 1).factors)
    return worst


def test_singular_value_rates_match_finite_differences_of_gradient_descent_to_first_order_in_lr():
    """From a balanced start, GD with step η moves σ_r by η σ̇_r + O(η²): the relative error shrinks like η."""
    coarse, fine = _finite_difference_error(1e-3), _finite_difference_error(1e-4)
    assert coarse < 1e-2
    assert 5 < coarse / fine < 20


def test_singular_value_rate_error_is_the_finite_difference_of_the_top_singular_values():
    problem = CompletionProblem(target=low_rank_matrix(6, 5, 2, seed=0), mask=_random_mask((6, 5), 0.6, seed=1))
    factors = balanced_factors(_orthonormal(6, 5, 4) * np.array([0.9, 0.7, 0.5, 0.35, 0.2]), 2)
    W0, W1 = end_to_end(factors), train_deep_factorization(problem, factors, 1e-3, 1).W_e
    difference = (np.linalg.svd(W1, compute_uv=False) - np.linalg.svd(W0, compute_uv=False)) / 1e-3
    rates = singular_value_rates(W0, problem.gradient(W0), 2)
    for top in (2, 5):
        expected = np.abs(difference[:top] - rates[:top]).max() / np.abs(rates[:top]).max()
        assert singular_value_rate_error(problem, factors, 1e-3, top=top) == pytest.approx(expected, rel=1e-12)
    assert singular_value_rate_error(problem, factors, 1e-3) == singular_value_rate_error(problem, factors, 1e-3, 5)
    with pytest.raises(ValueError, match="lr"):
        singular_value_rate_error(problem, factors, 0.0)
    with pytest.raises(ValueError, match="top"):
        singular_value_rate_error(problem, factors, 1e-3, top=6)
    # at the saddle W_e = 0 every rate N σ^{2-2/N} <...> is 0: no error is relative to that
    with pytest.raises(ValueError, match="rates at factors are all 0"):
        singular_value_rate_error(problem, [np.zeros((4, 5)), np.zeros((6, 4))], 1e-3)


def test_completion_problem_refuses_a_non_finite_matrix_by_name():
    problem = completion_problem(4, 1, 5, seed=0)
    W = np.zeros((4, 4))
    W[1, 2] = np.nan
    for method in (problem.loss, problem.gradient, problem.reconstruction_error):
        with pytest.raises(ValueError, match="W must contain only finite values"):
            method(W)


def test_singular_value_rates_check_shapes_and_depth():
    with pytest.raises(ValueError, match="grad_e must have the shape"):
        singular_value_rates(np.ones((3, 2)), np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="depth"):
        singular_value_rates(np.ones((3, 2)), np.ones((3, 2)), 0)


# --- effective rank ----------------------------------------------------------


def test_effective_rank_closed_forms():
    assert effective_rank(np.eye(7)) == pytest.approx(7.0, rel=1e-13)
    assert effective_rank(np.outer([1.0, 2.0, 3.0], [4.0, -1.0])) == pytest.approx(1.0, abs=1e-12)
    assert effective_rank(np.diag([1.0, 1.0, 0.0])) == pytest.approx(2.0, rel=1e-14)
    p = np.array([3.0, 1.0]) / 4  # σ = (3, 1): exp of the entropy of (3/4, 1/4)
    assert effective_rank(np.diag([3.0, 1.0])) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-14)
    W = np.random.default_rng(0).normal(size=(5, 8))
    assert effective_rank(1e-6 * W) == pytest.approx(effective_rank(W), rel=1e-12)
    assert 1.0 < effective_rank(W) < 5.0


def test_effective_rank_refuses_the_zero_matrix_and_non_matrices():
    with pytest.raises(ValueError, match="non-zero"):
        effective_rank(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        effective_rank(np.ones(3))


# --- the nuclear-norm baseline -----------------------------------------------


def test_singular_value_threshold_against_known_factors():
    U, V = _orthonormal(6, 4, 0), _orthonormal(5, 4, 1)
    W = (U * np.array([3.0, 2.0, 0.5, 0.1])) @ V.T
    np.testing.assert_allclose(singular_value_threshold(W, 1.0), (U * np.array([2.0, 1.0, 0, 0])) @ V.T, atol=1e-14)
    np.testing.assert_allclose(singular_value_threshold(W, 0.0), W, atol=1e-14)
    np.testing.assert_array_equal(singular_value_threshold(W, 3.5), np.zeros((6, 5)))
    with pytest.raises(ValueError, match="tau"):
        singular_value_threshold(W, -1.0)


def test_nuclear_norm_completion_with_every_entry_observed_returns_the_target():
    target = np.random.default_rng(0).normal(size=(6, 5))  # full rank: recovery is by the constraints alone
    result = nuclear_norm_completion(CompletionProblem(target=target, mask=np.ones((6, 5), dtype=bool)))
    np.testing.assert_allclose(result.solution, target, atol=1e-12)


def test_over_relaxation_reaches_the_same_completion_in_fewer_iterations():
    """The default α = 1.6 (design notes: it cut the iterations about 1.5x); ignoring it passed every other test."""
    preset = COMPLETION_PRESETS["fast"]
    problem = completion_problem(preset.n, preset.rank, 4_000, seed=preset.seed)
    plain, relaxed = (nuclear_norm_completion(problem, relaxation=a) for a in (1.0, 1.6))
    assert relaxed.iterations < plain.iterations / 1.4  # measured 59 against 97
    scale = np.linalg.norm(plain.solution)
    assert np.linalg.norm(relaxed.solution - plain.solution) < 1e-5 * scale


def test_nuclear_norm_completion_closed_forms_one_entry_and_one_row():
    """One entry a at (i, j): a e_i e_jᵀ. One full row r: e_i rᵀ (both meet ‖X‖_* >= ‖X‖_2 >= what is observed)."""
    target = np.random.default_rng(1).normal(size=(5, 6))
    entry = np.zeros((5, 6), dtype=bool)
    entry[2, 4] = True
    expected = np.zeros((5, 6))
    expected[2, 4] = target[2, 4]
    got = nuclear_norm_completion(CompletionProblem(target=target, mask=entry)).solution
    np.testing.assert_allclose(got, expected, atol=1e-12)  # measured 0 and 6e-17
    row = np.zeros((5, 6), dtype=bool)
    row[3] = True
    expected = np.zeros((5, 6))
    expected[3] = target[3]
    got = nuclear_norm_completion(CompletionProblem(target=target, mask=row)).solution
    np.testing.assert_allclose(got, expected, atol=1e-12)  # measured 0 and 6e-17


def test_nuclear_norm_completion_meets_the_kkt_conditions():
    """Optimality certificate: Y on Ω, ‖Y‖_2 <= 1, <Y, X> = ‖X‖_* and X feasible prove X a minimizer."""
    problem = completion_problem(30, 2, 360, seed=7)
    result = nuclear_norm_completion(problem)
    X, Y = result.solution, result.dual
    np.testing.assert_array_equal(X[problem.mask], problem.target[problem.mask])
    # measured: 1.1e-8, 2.4e-15 and 1.3e-7 (the solver's tolerance)
    assert np.abs(Y[~problem.mask]).max() < 1e-6 * np.abs(Y).max()
    assert np.linalg.norm(Y, 2) <= 1 + 1e-9
    nuclear = np.linalg.svd(X, compute_uv=False).sum()
    assert np.sum(Y * X) == pytest.approx(nuclear, rel=1e-6)
    assert result.nuclear_norm == pytest.approx(nuclear, rel=1e-14)
    assert nuclear <= np.linalg.svd(problem.target, compute_uv=False).sum() * (1 + 1e-6)  # the target is feasible


def test_nuclear_norm_completion_recovers_a_rank_one_matrix_from_60_percent():
    problem = completion_problem(30, 1, 540, seed=2)
    assert problem.reconstruction_error(nuclear_norm_completion(problem).solution) < 1e-6  # measured 1.15e-7


def test_nuclear_norm_completion_raises_when_it_does_not_converge_and_checks_arguments():
    problem = completion_problem(10, 2, 40, seed=0)
    with pytest.raises(ConvergenceError, match="max_iters=2"):
        nuclear_norm_completion(problem, max_iters=2)
    with pytest.raises(ValueError, match="rho"):
        nuclear_norm_completion(problem, rho=0.0)
    with pytest.raises(ValueError, match="tol"):
        nuclear_norm_completion(problem, tol=-1.0)
    with pytest.raises(ValueError, match="relaxation"):
        nuclear_norm_completion(problem, relaxation=2.0)
    with pytest.raises(ValueError, match="non-zero entry"):
        nuclear_norm_completion(CompletionProblem(target=np.zeros((3, 3)), mask=np.eye(3, dtype=bool)))


# --- the experiment ----------------------------------------------------------


def test_completion_experiment_is_the_direct_calls_in_one_table():
    result = completion_experiment(8, 1, counts=(30, 64), depths=(2, 3), lr=(0.5, 0.8), num_iters=120,
                                   scale=1e-2, seed=4, record_every=50, top=3)
    assert result.errors.shape == (2, 2) and result.singular_values.shape == (2, 2, 4, 3)
    np.testing.assert_array_equal(result.steps, [0, 50, 100, 120])
    problem = completion_problem(8, 1, 30, seed=4)
    direct = train_deep_factorization(problem, small_balanced_start(8, 8, 3, 1e-2, seed=5), 0.8, 120)
    assert result.errors[1, 0] == pytest.approx(problem.reconstruction_error(direct.W_e), rel=1e-12)
    assert result.effective_ranks[1, 0] == pytest.approx(effective_rank(direct.W_e), rel=1e-12)
    assert result.final_loss[1, 0] == pytest.approx(direct.final_loss, rel=1e-12)
    np.testing.assert_allclose(result.singular_values[1, 0, -1], np.linalg.svd(direct.W_e, compute_uv=False)[:3],
                               rtol=1e-12)
    assert result.nuclear_errors[1] < 1e-5  # every entry observed
    assert np.all(result.seconds > 0) and np.all(result.nuclear_seconds > 0)
    with pytest.raises(ValueError, match="lr must be one number or one per depth"):
        completion_experiment(8, 1, (30,), (2, 3), lr=(0.5,), num_iters=5, scale=1e-2, seed=0)


def test_completion_experiment_records_on_a_given_grid_the_values_of_the_direct_run():
    grid = np.union1d([1, 2, 4, 8, 16], np.arange(0, 41, 20))
    result = completion_experiment(8, 1, counts=(30,), depths=(3,), lr=0.8, num_iters=40, scale=1e-2, seed=4,
                                   record=grid, top=3, nuclear=False)
    np.testing.assert_array_equal(result.steps, [0, 1, 2, 4, 8, 16, 20, 40])
    direct = train_deep_factorization(completion_problem(8, 1, 30, seed=4), small_balanced_start(8, 8, 3, 1e-2, seed=5),
                                      0.8, 40, observe=lambda W: np.linalg.svd(W, compute_uv=False)[:3])
    np.testing.assert_allclose(result.singular_values[0, 0], direct.observed[result.steps], rtol=1e-12)


def test_completion_preset_records_on_a_log_grid_and_a_linear_one():
    preset = CompletionPreset("t", 10, 2, (50,), (2,), 1.0, 1_000, 1e-3, record_every=250, log_per_decade=5)
    record = preset.record
    assert record[0] == 0 and record[1] == 1 and record[-1] == 1_000
    assert set(range(0, 1_001, 250)) <= set(record.tolist())
    assert np.all(np.diff(record) > 0) and 13 <= record.size <= 20  # 5 per decade over 3 decades, plus the linear
    with pytest.raises(ValueError, match="^log_per_decade"):
        CompletionPreset("t", 10, 2, (50,), (2,), 1.0, 1_000, 1e-3, log_per_decade=0)


def test_completion_figures_join_only_enough_counts_and_grey_the_extra_singular_values():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from overparam.factorization import plot_errors_vs_count, plot_singular_values
    from overparam.plotting import DEPTH_COLORS

    result = completion_experiment(8, 1, counts=(30, 64), depths=(2, 3), lr=(0.5, 0.8), num_iters=30, scale=1e-2,
                                   seed=4, record=[1, 3, 10], top=3)
    ax = plot_errors_vs_count(result)
    assert all(line.get_linestyle() == "None" for line in ax.get_lines())  # two counts: points, no lines
    plt.close(ax.figure)
    axes = plot_singular_values(result, 0, rank=1)
    for ax, depth in zip(axes, (2, 3)):
        lines = ax.get_lines()
        assert len(lines) == 3
        for line in lines:
            np.testing.assert_array_equal(line.get_xdata(), [1, 3, 10, 30])  # step 0 left out on the log axis
        grey, top = lines[:2], lines[2]
        assert all(matplotlib.colors.same_color(g.get_color(), "0.35") for g in grey)
        assert matplotlib.colors.same_color(top.get_color(), DEPTH_COLORS[depth])
        np.testing.assert_array_equal(top.get_ydata(), result.singular_values[(2, 3).index(depth), 0, 1:, 0])
    plt.close(axes[0].figure)


def test_completion_experiment_records_the_step_a_run_diverged_at():
    """Bug: a diverged run left errors nan and final_loss inf, and no step to report."""
    result = completion_experiment(4, 1, counts=(8, 16), depths=(1, 3), lr=(0.1, 1e3), num_iters=20, scale=1.0,
                                   seed=0, record_every=5, nuclear=False)
    direct = train_deep_factorization(completion_problem(4, 1, 8, seed=0), small_balanced_start(4, 4, 3, 1.0, seed=1),
                                      1e3, 20, record_every=5, on_divergence="stop")
    assert direct.diverged
    assert result.diverged_at[1, 0] == direct.diverged_at and result.diverged[1, 0]
    assert np.isnan(result.errors[1, 0]) and result.final_loss[1, 0] == np.inf  # the documented behaviour, kept
    assert result.diverged_at.shape == (2, 2) and np.all(result.diverged_at[0] == NEVER)
    assert not result.diverged[0].any() and np.isfinite(result.errors[0]).all()


@pytest.mark.parametrize("field, value", [
    ("n", 0), ("rank", 200), ("counts", ()), ("counts", (0,)), ("counts", 2000), ("depths", (0, 2)), ("lr", -1.0),
    ("lr", (1.0,)), ("num_iters", -1), ("scale", 0.0), ("seed", -1), ("record_every", 0), ("name", 3),
])
def test_completion_preset_checks_its_fields(field, value):
    good = dict(name="t", n=100, rank=5, counts=(2000,), depths=(2, 3), lr=2.0, num_iters=10, scale=1e-4)
    CompletionPreset(**good)
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        CompletionPreset(**{**good, field: value})


def test_a_start_whose_loss_is_not_finite_is_named_not_blamed_on_the_step_size():
    """Bug: a non-finite loss before any step read 'diverged at step 0 ... use a smaller learning rate'."""
    problem = completion_problem(4, 1, 8, seed=0)
    huge = [np.full((4, 4), 1e200), np.full((4, 4), 1e200)]
    with pytest.raises(ValueError, match="before any step.*check factors and the scale of problem.target"), \
            np.errstate(over="ignore"):
        train_deep_factorization(problem, huge, 0.1, 5)


def test_an_integer_record_is_every_so_many_steps_as_in_the_other_trainers():
    problem = CompletionProblem(target=low_rank_matrix(6, 5, 2, seed=0), mask=_random_mask((6, 5), 0.6, seed=1))
    start = small_balanced_start(6, 5, 3, 0.3, seed=2)
    every = train_deep_factorization(problem, start, 0.2, 40, record_every=15)
    chosen = train_deep_factorization(problem, start, 0.2, 40, record=15)
    np.testing.assert_array_equal(chosen.steps, [0, 15, 30, 40])
    np.testing.assert_array_equal(chosen.steps, every.steps)
    np.testing.assert_array_equal(chosen.loss, every.loss)
    # bug: record silently overrode record_every here, while every other trainer refuses the pair
    with pytest.raises(ValueError, match=r"^give record or record_every, not both \(got record_every=15\)"):
        train_deep_factorization(problem, start, 0.2, 40, record_every=15, record=10)
    # the experiment's record_every (default 100) yields to record, and its grid is check_record's
    grid = completion_experiment(6, 1, (20,), (2,), 0.2, 40, 0.1, 0, record_every=15, nuclear=False).steps
    np.testing.assert_array_equal(grid, [0, 15, 30, 40])
    np.testing.assert_array_equal(completion_experiment(6, 1, (20,), (2,), 0.2, 40, 0.1, 0, record_every=15, record=[5],
                                                        nuclear=False).steps, [0, 5, 40])


def test_run_completion_is_the_experiment_with_the_presets_settings():
    """run_completion(preset) is completion_experiment with the preset's fields, recorded on preset.record."""
    from overparam.factorization import run_completion

    preset = CompletionPreset("t", 8, 1, (30, 50), (2, 3), 0.8, 60, 1e-2, seed=4, record_every=20, log_per_decade=3)
    got = run_completion(preset)
    want = completion_experiment(8, 1, (30, 50), (2, 3), 0.8, 60, 1e-2, 4, record=preset.record)
    np.testing.assert_array_equal(got.steps, preset.record)
    np.testing.assert_array_equal(got.counts, [30, 50])
    np.testing.assert_array_equal(got.depths, [2, 3])
    for field in ("errors", "final_loss", "effective_ranks", "nuclear_errors", "singular_values", "diverged_at"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    start_loss = [completion_problem(8, 1, count, seed=4).loss(np.zeros((8, 8))) for count in (30, 50)]
    assert np.all(got.final_loss < 0.01 * np.array(start_loss))  # runs that fit (measured: 0.0007 of it at most)


def test_completion_problem_refuses_a_mask_that_observes_nothing():
    """Bug: an all-False mask was accepted, and train_deep_factorization "trained" it at loss 0."""
    with pytest.raises(ValueError, match=r"^mask must observe at least one entry"):
        CompletionProblem(target=np.eye(4), mask=np.zeros((4, 4), dtype=bool))
    assert CompletionProblem(target=np.eye(4), mask=np.eye(4, dtype=bool)).num_observed == 4
