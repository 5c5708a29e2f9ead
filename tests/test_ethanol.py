"""Tests of overparam.ethanol: precision ladders and speed-ups on a sweep's recorded losses (Chapter 2)."""
from __future__ import annotations

import numpy as np
import pytest

import overparam as op
from overparam import ethanol


def _sweep(curves: dict[tuple[str, int, float], list[float]], diverged: dict[int, int] | None = None) -> op.SweepResult:
    configs = tuple(op.RunConfig(m, lr, depth=n, p=4) for (m, n, lr) in curves)
    loss = np.array(list(curves.values()), dtype=float)
    B, S = loss.shape
    div = np.full(B, -1)
    for i, step in (diverged or {}).items():
        div[i] = step
        loss[i, step // 10:] = np.nan
    return op.SweepResult(configs=configs, steps=np.arange(S) * 10, loss=loss, diverged_at=div,
                          w_e=np.zeros((B, 2)), factors=tuple(() for _ in range(B)), weights_step=np.full(B, S),
                          num_iters=10 * (S - 1), wall_time=0.0, dtype="float64", device="cpu")


L_STAR = 0.05
CURVES = {
    ("gd", 1, 1e-2): [1.05, 0.35, 0.16, 0.1, 0.08, 0.07],      # gaps 1, .3, .11, .05, .03, .02
    ("gd", 2, 1e-3): [1.05, 0.9, 0.2, 0.08, 0.054, 0.051],     # slower early, closer late
    ("gd", 2, 1e-2): [1.05, 0.5, 3.0, 5.0, 7.0, 9.0],          # collapsed: never selected
    ("gd", 3, 1e-3): [1.05, 1.0, np.nan, np.nan, np.nan, np.nan],  # diverged at step 20
}


def test_precision_table_counts_iterations_to_each_precision_for_the_chosen_run():
    res = _sweep(CURVES, diverged={3: 20})
    rows = ethanol.precision_table(res, L_STAR, 4, epsilons=(1.0, 0.1, 0.02, 0.002))
    assert [(r.method, r.depth, r.lr) for r in rows] == [("gd", 1, 1e-2), ("gd", 2, 1e-3)]
    d1, d2 = rows
    assert d1.iterations == (0.0, 30.0, 50.0, np.inf) and d2.iterations == (0.0, 30.0, 40.0, 50.0)
    assert d1.final_gap == pytest.approx(0.02) and d2.final_gap == pytest.approx(0.001)
    with pytest.raises(ValueError, match="epsilons"):
        ethanol.precision_table(res, L_STAR, 4, epsilons=(0.1, -1.0))


def test_speedup_vs_precision_and_lower_bounds():
    res = _sweep(CURVES, diverged={3: 20})
    rows = ethanol.precision_table(res, L_STAR, 4, epsilons=(0.5, 0.02, 0.003))
    # depth 1: steps 10, 50, never; depth 2: 20, 40, 50 -> 0.5, 1.25, inf (depth 1 never got there)
    np.testing.assert_allclose(ethanol.speedup_vs_precision(rows)[2], [0.5, 1.25, np.inf])
    with pytest.raises(ValueError, match="depth-1"):
        ethanol.speedup_vs_precision([r for r in rows if r.depth != 1])


def test_failed_groups_list_every_run_of_a_depth_with_no_trained_run():
    res = _sweep(CURVES, diverged={3: 20})
    failed = ethanol.failed_groups(res, 4)
    assert list(failed) == [("gd", 3)] and failed["gd", 3] == ["η=0.001: diverged at step 20"]
    summary = op.ethanol.summary(res, {4: L_STAR})
    assert "no run trained at this budget: η=0.001: diverged at step 20" in summary
    assert "2 of 4 runs failed (1 diverged, 1 collapsed)" in summary


def test_precision_markdown_marks_never_with_a_dash():
    res = _sweep(CURVES, diverged={3: 20})
    eps = (1.0, 0.1, 0.02, 0.002)
    table = ethanol.precision_markdown(ethanol.precision_table(res, L_STAR, 4, epsilons=eps), eps).splitlines()
    assert table[0] == "| method | depth | η | final L − L* | ε = 1 | ε = 0.1 | ε = 0.02 | ε = 0.002 |"
    assert table[1] == "|" + "---|" * 8
    assert table[2] == "| gd | 1 | 0.01 | 0.0200 | 0 | 30 | 50 | — |"
    assert table[3] == "| gd | 2 | 0.001 | 0.0010 | 0 | 30 | 40 | 50 |"
    with pytest.raises(ValueError, match="one iteration count per ε"):
        ethanol.precision_markdown(ethanol.precision_table(res, L_STAR, 4, epsilons=eps), (1.0,))
