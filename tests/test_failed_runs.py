"""Failed runs are failures (Chapters 2 and 4): a collapse onto the saddle is reported, never selected."""
from __future__ import annotations

import numpy as np
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


def test_spikes_of_a_diverged_run_stop_at_its_divergence_and_bad_arguments_are_named():
    res = _result([[1.5, 0.7, 0.6, np.inf]], [1e-2], diverged_at=[25])
    assert res.spikes(0, 0.5)[0].size == 0  # the frozen inf after step 25 is not a spike
    for kwargs, message in (({"optimum": 0.65}, "^optimum must lie below"),
                            ({"optimum": 0.5, "factor": 1.0}, "^factor "), ({"optimum": 0.5, "i": 3}, "^i must be")):
        kwargs.setdefault("i", 0)
        with pytest.raises(ValueError, match=message):
            res.spikes(**kwargs)


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
