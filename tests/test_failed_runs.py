"""Failed runs are failures (Chapters 2 and 4): a collapse onto the saddle is reported, never selected."""
from __future__ import annotations

import numpy as np

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
