"""Failed runs are failures (Chapters 2 and 4): a collapse onto the saddle is reported, never selected."""
from __future__ import annotations

import numpy as np
import torch
import pytest

import overparam as op


def _result(losses: list[list[float]], lrs: list[float], diverged_at: list[int] | None = None) -> op.SweepResult:
    loss = np.array(losses, dtype=float)
    B, S = loss.shape
    configs = tuple(op.RunConfig("gd", lr, depth=8, p=4) for lr in lrs)
    div = np.array(diverged_at if diverged_at is not None else [-1] * B)
    return op.SweepResult(configs=configs, steps=np.arange(S) * 10, loss=loss, diverged_at=div,
                          w_e=np.zeros((B, 3)), factors=tuple(() for _ in range(B)), weights_step=np.full(B, S),
                          num_iters=10 * (S - 1), wall_time=0.0, dtype="float64", device="cpu")


def test_a_run_thrown_back_onto_the_saddle_is_a_failure_with_its_step():
    # start 1.41 (just above L(0) = 1.39), best 0.09 at step 30, back at the saddle's 1.39 from step 50 on
    collapsed = [1.41, 0.5, 0.2, 0.09, 0.1, 1.39, 1.39]
    healthy = [1.41, 0.9, 0.6, 0.4, 0.3, 0.25, 0.2]
    res = _result([collapsed, healthy], [3.16e-4, 1e-4])
    np.testing.assert_array_equal(res.failed_at, [50, op.training.NEVER])
    np.testing.assert_array_equal(res.trained, [False, True])
    assert res.outcome(0).startswith("collapsed from step 50") and res.outcome(1) == "trained"
    # the old rule (ends below its start) would have picked the larger η; no rule may pick it now
    for rule in (op.LARGEST_STABLE, op.BEST_FINAL):
        assert op.select_runs(res, rule) == {next(iter(op.select_runs(res, rule))): 1}


def test_ending_at_or_above_the_start_or_far_above_the_best_fails():
    back_to_start = [1.0, 0.8, 0.9, 1.0]          # ends at its start
    far_above_best = [1.0, 0.1, 0.15, 0.25]        # 2.5x its best
    noisy_but_fine = [1.0, 0.1, 0.15, 0.19]        # 1.9x its best: within the factor
    res = _result([back_to_start, far_above_best, noisy_but_fine], [1e-3, 2e-3, 3e-3])
    np.testing.assert_array_equal(res.failed_at, [30, 30, op.training.NEVER])
    assert op.COLLAPSE_FACTOR == 2.0


def test_a_group_where_nothing_trained_is_left_out_and_diverged_runs_keep_their_step():
    res = _result([[1.0, 0.5, np.nan], [1.0, 0.2, 1.5]], [1e-3, 2e-3], diverged_at=[15, -1])
    np.testing.assert_array_equal(res.failed_at, [15, 20])
    assert res.outcome(0) == "diverged at step 15"
    assert op.select_runs(res, op.BEST_FINAL) == {}


def test_spikes_are_found_against_the_best_so_far_and_a_spiking_run_still_trains():
    # L* = 0.5: gaps 1.0, 0.4, 0.2, 0.7 (3.5x the best 0.2), 0.18, 0.3 (1.7x the best 0.18), 0.15
    spiking = [1.5, 0.9, 0.7, 1.2, 0.68, 0.8, 0.65]
    res = _result([spiking, [1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6]], [1e-3, 1e-4])
    steps, ratios = res.spikes(0, 0.5)
    np.testing.assert_array_equal(steps, [30])
    np.testing.assert_allclose(ratios, [3.5])
    steps, ratios = res.spikes(0, 0.5, factor=1.5)  # the second, smaller jump too
    np.testing.assert_array_equal(steps, [30, 50])
    np.testing.assert_allclose(ratios, [3.5, 0.3 / 0.18])
    assert res.spikes(1, 0.5)[0].size == 0
    assert res.trained[0] and res.outcome(0) == "trained"  # it recovered: not a failure


def test_a_gradual_rise_is_a_spike_against_the_best_so_far():
    """Gaps 1.0, 0.2, 0.3, 0.5 (L* = 0.5): no step is twice the one before it, but the last is 2.5x the best."""
    res = _result([[1.5, 0.7, 0.8, 1.0]], [1e-3])
    steps, ratios = res.spikes(0, 0.5)
    np.testing.assert_array_equal(steps, [30])
    np.testing.assert_allclose(ratios, [2.5])


def test_spikes_of_a_diverged_run_stop_at_its_divergence_and_bad_arguments_are_named():
    res = _result([[1.5, 0.7, 0.6, np.inf]], [1e-2], diverged_at=[25])
    assert res.spikes(0, 0.5)[0].size == 0  # the frozen inf after step 25 is not a spike
    for kwargs, message in (({"optimum": 0.65}, "^optimum must lie below"),
                            ({"optimum": 0.5, "factor": 1.0}, "^factor "), ({"optimum": 0.5, "i": 3}, "^i must be")):
        kwargs.setdefault("i", 0)
        with pytest.raises(ValueError, match=message):
            res.spikes(**kwargs)


def test_spikes_accept_a_run_at_the_optimum_to_round_off_and_see_no_spike_in_its_jitter():
    """L* = 0.5; the run ends at L* and 1e-7 below it, then jitters 3e-7 above: all within round-off (5e-6)."""
    res = _result([[1.5, 0.7, 0.5, 0.5 - 1e-7, 0.5 + 3e-7]], [1e-3])
    assert res.spikes(0, 0.5)[0].size == 0
    # a real rise from there is still a spike, against the round-off margin
    res = _result([[1.5, 0.7, 0.5, 0.5 + 1e-4]], [1e-3])
    steps, ratios = res.spikes(0, 0.5)
    np.testing.assert_array_equal(steps, [30])
    np.testing.assert_allclose(ratios, [1e-4 / (1e-5 * 0.5 + 1e-12)])


def test_outcome_checks_its_index_like_history_and_spikes():
    """outcome(5) used to raise an IndexError and outcome(-1) to answer for the last run."""
    res = _result([[1.0, 0.5, 0.2]], [1e-3])
    for bad in (5, -1, 0.0, "0"):
        with pytest.raises(ValueError, match=r"^i must be a run index in 0\.\.0"):
            res.outcome(bad)
    assert res.outcome(np.int64(0)) == "trained"


def test_a_run_that_never_moved_never_improved_rather_than_collapsed():
    """A start at the saddle 0 stays there: it used to read "collapsed from step 0 (ends at 5.527, 1.0× its best)"."""
    stuck = op.run_sweep((np.eye(3), np.ones(3)), [op.RunConfig("gd", 0.01, depth=2, init_scale=0.0)], 20, record=5)
    assert not stuck.trained[0] and stuck.failed_at[0] == 0
    assert stuck.outcome(0) == f"never improved on its initial loss (ends at {stuck.loss[0, -1]:.4g})"
    res = _result([[1.0, 1.2, 1.1]], [1e-3])  # rose from its start at once: its best is its start too
    assert res.outcome(0) == "never improved on its initial loss (ends at 1.1)"


def _unstable_grid() -> tuple[np.ndarray, np.ndarray, list[float]]:
    """An ℓ2 problem and η = 0.5, 0.9 and 1.001 × 2/λ_max: the last grows without crossing the divergence factor."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * np.array([3.0, 1.0, 0.3])
    y = rng.normal(size=50)
    limit = op.quadratic_lr_limit(X)
    return X, y, [f * limit for f in (0.5, 0.9, 1.001)]


def test_the_trainers_and_the_sweep_share_one_failure_rule():
    """Bug: largest_stable tested only `diverged`, so it chose η = 1.001 × the limit, a run that ends 125× above its
    start (0.46 -> 58), where the sweep's LARGEST_STABLE chose 0.9×."""
    X, y, lrs = _unstable_grid()
    runs = [op.gradient_descent(X, y, 2, lr, 2000, record=100, on_divergence="stop") for lr in lrs]
    above = runs[-1]
    assert not above.diverged and above.loss[-1] > 100 * above.loss[0]  # measured 125×
    assert above.failed_at == 0 and not above.trained  # its best recorded loss is its start
    assert above.outcome().startswith("never improved on its initial loss")
    assert [h.trained for h in runs] == [True, True, False] and [h.outcome() for h in runs[:2]] == ["trained"] * 2
    assert op.largest_stable(runs) is runs[1]
    tried = []

    def train(lr):
        tried.append(lr)
        return op.gradient_descent(X, y, 2, lr, 2000, record=100, on_divergence="stop")

    assert op.largest_stable_run(train, lrs).lr == lrs[1] and tried == lrs[::-1][:2]

    res = op.run_sweep((X, y), [op.RunConfig("gd", lr, depth=1, p=2) for lr in lrs], 2000, record=100)
    (chosen,) = op.select_runs(res, op.LARGEST_STABLE).values()
    histories = [res.history(i) for i in range(len(res))]
    assert op.largest_stable(histories).lr == res.configs[chosen].lr == lrs[1]
    for i, h in enumerate(histories):
        assert h.outcome() == res.outcome(i) and h.failed_at == op.training.step_or_none(res.failed_at[i])
    assert res.outcome(2).startswith("collapsed from step 200")  # this start (0.1 along a direction) improves first


def test_collapse_step_reads_round_off_in_the_run_s_own_dtype():
    steps = np.arange(5) * 10
    # converged to ~0, then a jitter of 2e-15 of the start: round-off in float32 and float64 alike
    jitter = np.array([1.0, 1e-3, 1e-16, 1e-17, 2e-15])
    assert op.training.collapse_step(steps, jitter, "float64") is None
    # 2e-10 of the start is round-off in float32 (100 eps = 1.2e-5) but a collapse in float64 (100 eps = 2.2e-14)
    rise = np.array([1.0, 1e-3, 1e-12, 1e-12, 2e-10])
    assert op.training.collapse_step(steps, rise, "float32") is None
    assert op.training.collapse_step(steps, rise, "float64") == 40
    assert op.training.collapse_step(steps, np.array([1.0, 0.4, 0.2, 0.5, 0.45]), "float64") == 30  # ends 2.25× best
    assert op.training.collapse_step(steps, np.array([1.0, 0.4, 0.2, 0.5, 0.3])) is None, "a spike it recovered from"
    assert op.training.collapse_step(steps[:1], np.array([1.0])) == 0, "a run that never moved never improved"
    with pytest.raises(ValueError, match="^steps and loss must be 1-D of the same length"):
        op.training.collapse_step(steps, np.ones(4))
    h = op.History(steps=steps, loss=rise, dtype="float32")
    assert h.trained and h.failed_at is None and h.outcome() == "trained"
    assert not op.History(steps=steps, loss=rise).trained


def test_every_trainer_records_the_dtype_it_computed_in():
    X, y, lrs = _unstable_grid()
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        assert op.gradient_descent(X, y, 4, lrs[0], 3, dtype=dtype).dtype == name
        assert op.train_deep_linear(X, y, 2, op.balanced_init(3, 1, 2, scale=0.1, seed=0), lrs[0], 3,
                                    dtype=dtype).dtype == name
        assert op.penalized_gradient_descent(X, y, 2, op.NormPowerPenalty(0.01, 2.0), lrs[0], 3,
                                             dtype=dtype).dtype == name
        assert op.train_end_to_end(X, y, 2, np.full((1, 3), 0.01), 3, lrs[0], 3, dtype=dtype).dtype == name
    problem = op.factorization.completion_problem(6, 2, 20, seed=0)
    run = op.factorization.train_deep_factorization(problem, op.factorization.small_balanced_start(6, 6, 2, 1e-2, seed=0), 0.1, 3)
    assert run.dtype == "float64"
    # a loss type numpy lacks (bfloat16) reads as numpy's coarsest float, so the failure rule still works
    halving = op.train_loop(lambda w: (torch.tensor(w, dtype=torch.bfloat16), w / 2),
                            lambda w: torch.tensor(w, dtype=torch.bfloat16), 1.0, 5)
    assert halving.dtype == "float16" and halving.trained


def test_a_penalized_run_is_judged_by_the_objective_it_minimized():
    """A strong reward (μ < 0) trades the data loss for the penalty: L rises 350× above its best while L + R falls to
    -176; that is the run doing its job, not a collapse (Chapter 5 picks step sizes by this rule)."""
    X, y, _ = _unstable_grid()
    limit = 2 / np.linalg.eigvalsh(op.lp_hessian(np.zeros(3), X, y, 4))[-1]
    penalty = op.NormPowerPenalty(-3.0, 2.0)
    h = op.penalized_gradient_descent(X, y, 4, penalty, 0.02 * limit, 3000, record=100, on_divergence="stop")
    assert not h.diverged and h.loss[-1] > 300 * h.loss.min()  # measured 182.3 / 0.521 = 350
    assert op.training.collapse_step(h.steps, h.loss) == 900, "by the data loss alone it would have collapsed"
    np.testing.assert_allclose(h.objective, h.loss + [penalty.value(w) for w in _iterates(X, y, penalty, 0.02 * limit,
                                                                                              h.steps)], rtol=1e-12)
    assert h.objective[-1] == h.objective.min() < -170 and h.trained and h.outcome() == "trained"
    assert op.largest_stable([h]) is h
    plain = op.gradient_descent(X, y, 4, 0.02 * limit, 30, record=10)
    assert plain.objective is None and plain.trained


def _iterates(X, y, penalty, lr, steps):
    """The penalized iterates at ``steps``, by a plain numpy loop (an oracle for the recorded objective)."""
    w, out = np.zeros(X.shape[1]), []
    for t in range(int(steps[-1]) + 1):
        if t in steps:
            out.append(w.copy())
        w = w - lr * (op.lp_gradient(w, X, y, 4) + penalty.gradient(w))
    return out


def test_collapse_step_compares_rises_not_sums_so_a_negative_best_keeps_its_round_off():
    """Bug: best + 100 eps |L0| rounded back to best at |best| = 176 and L0 = 0.6, so a run ending at its best counted as
    collapsed."""
    steps = np.arange(3)
    assert op.training.collapse_step(steps, np.array([0.6, -176.45, -176.45515437852697])) is None
    assert op.training.collapse_step(steps, np.array([0.6, -176.5, -170.0])) == 2
    # below zero no factor applies: any rise beyond round-off is a collapse, while a positive best may double
    assert op.training.collapse_step(steps, np.array([1.0, -1.0, -0.9999])) == 2
    assert op.training.collapse_step(steps, np.array([1.0, 0.5, 0.9])) is None
    assert "its best -176.5" in op.training.outcome_phrase(np.array([0.6, -176.5, -170.0]), None, 2)
