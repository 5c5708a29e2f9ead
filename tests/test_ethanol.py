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


def test_precision_markdown_marks_never_in_words():
    res = _sweep(CURVES, diverged={3: 20})
    eps = (1.0, 0.1, 0.02, 0.002)
    table = ethanol.precision_markdown(ethanol.precision_table(res, L_STAR, 4, epsilons=eps), eps).splitlines()
    assert table[0] == "| method | depth | η | final L − L* | ε = 1 | ε = 0.1 | ε = 0.02 | ε = 0.002 |"
    assert table[1] == "|" + "---|" * 8
    assert table[2] == "| gd | 1 | 0.01 | 0.0200 | 0 | 30 | 50 | not reached |"
    assert table[3] == "| gd | 2 | 0.001 | 0.0010 | 0 | 30 | 40 | 50 |"
    with pytest.raises(ValueError, match="one iteration count per ε"):
        ethanol.precision_markdown(ethanol.precision_table(res, L_STAR, 4, epsilons=eps), (1.0,))


@pytest.mark.parametrize("p, match", [
    (3, r"p must be the exponent of an ℓp loss the results hold, one of \[4\], got 3"),
    (2, r"p must be the exponent of an ℓp loss the results hold, one of \[4\], got 2"),
    (4.0, "p must be an even integer >= 2"),
    ("4", "p must be an even integer >= 2"),
])
def test_precision_table_and_failed_groups_name_a_p_the_results_do_not_hold(p, match):
    """Bug: an odd p, or one not in the sweep, silently gave no rows."""
    res = _sweep(CURVES, diverged={3: 20})
    with pytest.raises(ValueError, match=match):
        ethanol.precision_table(res, L_STAR, p)
    with pytest.raises(ValueError, match=match):
        ethanol.failed_groups(res, p)
    with pytest.raises(ValueError, match=match):
        ethanol.plot_depth_sweep(res, p)


@pytest.mark.parametrize("optimum", ["a", float("nan"), None, np.array([0.1, 0.2])])
def test_precision_table_and_summary_name_a_bad_optimum(optimum):
    """Bug: optimum="a" gave a ufunc TypeError."""
    res = _sweep(CURVES, diverged={3: 20})
    with pytest.raises(ValueError, match="^optimum must be a finite loss"):
        ethanol.precision_table(res, optimum, 4)
    with pytest.raises(ValueError, match=r"^optima\[4\] must be a finite loss"):
        ethanol.summary(res, {4: optimum})


def test_plot_speedup_vs_precision_checks_num_iters():
    rows = ethanol.precision_table(_sweep(CURVES, diverged={3: 20}), L_STAR, 4, epsilons=(0.5, 0.02))
    with pytest.raises(ValueError, match="^num_iters"):
        ethanol.plot_speedup_vs_precision(rows, 0, epsilons=(0.5, 0.02))


def test_teaser_colours_gd_by_depth_and_no_baseline_with_a_depth_colour():
    """Depth 2 has its depth colour in every figure of the book, the teaser included; a baseline never takes a depth's
    colour."""
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    matplotlib.use("Agg")
    curves = dict(CURVES)
    del curves["gd", 3, 1e-3]
    curves.update({(m, 1, 1e-2): [1.05, 0.4, 0.2, 0.1, 0.09, 0.08] for m in ("adagrad", "adadelta", "momentum", "adam")})
    ax = ethanol.plot_teaser(_sweep(curves), optimum=L_STAR)
    colour = {line.get_label().rsplit(" (η", 1)[0]: to_hex(line.get_color()) for line in ax.get_lines()}
    plt.close(ax.figure)
    assert colour["GD, depth 1"] == op.DEPTH_COLORS[1] and colour["GD, depth 2 (one extra scalar)"] == op.DEPTH_COLORS[2]
    baselines = [colour[name] for name in ethanol.TEASER_NAMES.values()]
    assert len(baselines) == 4 and len(set(baselines)) == 4
    assert not set(baselines) & {c.lower() for c in op.DEPTH_COLORS[1:]}


def test_speedup_plot_ticks_are_the_precision_ladder():
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    eps = (0.5, 0.02)
    rows = ethanol.precision_table(_sweep(CURVES, diverged={3: 20}), L_STAR, 4, epsilons=eps)
    ax = ethanol.plot_speedup_vs_precision(rows, 50, epsilons=eps)
    ticks = sorted(float(t) for t in ax.get_xticks())
    labels = sorted(t.get_text() for t in ax.get_xticklabels())
    plt.close(ax.figure)
    assert ticks == sorted(eps) and labels == ["0.02", "0.5"]


@pytest.mark.parametrize("field, value, match", [
    ("depths", (1, 9), r"depths\[1\] must be a depth of L4_GRID_TOP"),
    ("depths", (), "depths must be a non-empty tuple"),
    ("depths", 2, "depths must be a non-empty tuple"),
    ("l4_points", {1: 2}, r"l4_points must have an entry for every depth of depths, missing \[2\]"),
    ("l4_points", {1: 2, 2: 0}, r"l4_points\[2\] must be an integer >= 1"),
    ("l4_points", 0, "l4_points must be an integer >= 1 or a dict"),
    ("num_iters", -1, "num_iters must be an integer >= 1"),
    ("l2_grid", (), "l2_grid must be a non-empty tuple"),
    ("l2_grid", (0.01, -1.0), r"l2_grid\[1\] must be a finite number > 0"),
    ("baselines", [], "baselines must be a dict"),
    ("name", 3, "name must be a string"),
])
def test_ethanol_preset_checks_its_fields(field, value, match):
    """Bug: EthanolPreset("x", 10, (9,), 2, (0.01,), {}).runs() gave KeyError: 9; a depth missing in l4_points,
    KeyError: 2."""
    good = dict(name="x", num_iters=10, depths=(1, 2), l4_points=2, l2_grid=(0.01,), baselines={})
    assert len(ethanol.EthanolPreset(**good).runs()) == 2 + 4
    with pytest.raises(ValueError, match=match):
        ethanol.EthanolPreset(**{**good, field: value})


def test_ethanol_presets_are_valid_and_take_numpy_integers():
    for preset in ethanol.PRESETS.values():
        assert len(preset.runs()) > 0
    plain = ethanol.EthanolPreset("x", 10, (1, 2), 2, (0.01,), {})
    numpy = ethanol.EthanolPreset("x", np.int64(10), (1, 2), np.int64(2), (0.01,), {})
    assert numpy.runs() == plain.runs()


def test_summary_marks_a_largest_stable_step_at_the_top_of_the_grid_as_a_lower_bound():
    curves = {("gd", 1, 1e-3): [1.05, 0.5, 0.2, 0.1, 0.08, 0.07],
              ("gd", 1, 1e-2): [1.05, 0.35, 0.16, 0.1, 0.08, 0.07],   # top of depth 1's grid: trained
              ("gd", 2, 1e-3): [1.05, 0.9, 0.2, 0.08, 0.054, 0.051],
              ("gd", 2, 1e-2): [1.05, 1.0, np.nan, np.nan, np.nan, np.nan]}  # top of depth 2's grid: diverged
    lines = ethanol.summary(_sweep(curves, diverged={3: 20})).splitlines()
    depth1 = next(line for line in lines if line.split()[:2] == ["gd", "1"])
    depth2 = next(line for line in lines if line.split()[:2] == ["gd", "2"])
    assert "≥ 0.01" in depth1 and "≥" not in depth2 and " 0.001 " in depth2
    assert "≥: the top of the grid trained" in "\n".join(lines)
    no_mark = ethanol.summary(_sweep({k: v for k, v in curves.items() if k != ("gd", 1, 1e-2)}, diverged={2: 20}))
    assert "≥ 0.001" in no_mark  # depth 1's only run is the top of its grid


def _hand_result(rows) -> op.SweepResult:
    """A SweepResult from (config, losses at steps 0..3, diverged_at) rows, any mix of p (as tests/test_sweep.py)."""
    loss = np.array([lo for _, lo, _ in rows], dtype=float)
    B = len(rows)
    return op.SweepResult(configs=tuple(c for c, _, _ in rows), steps=np.arange(4), loss=loss,
                          diverged_at=np.array([d for _, _, d in rows], dtype=float), w_e=np.zeros((B, 1)),
                          factors=tuple((np.zeros((1, 1)),) for _ in rows), weights_step=np.full(B, 3), num_iters=3,
                          wall_time=0.0, dtype="float64", device="cpu")


def test_teaser_runs_picks_the_best_final_l4_run_of_gd_at_depths_1_and_2_and_of_each_baseline():
    """By hand: per (method, depth) the ℓ4 run that trained with the lowest final loss (ties: the larger η), which
    for GD at depth 1 is not the run with the largest stable η.

    The ℓ2 runs end lower than every ℓ4 run of their group, so a pick that ignored p would take them; depth 3, the
    e2e rule and a depth-2 baseline are not in the teaser; momentum's only ℓ4 run never left its initial loss and
    AdaDelta has no depth-1 run, so neither is listed.
    """
    never = op.training.NEVER
    R = op.RunConfig
    rows = [
        (R("gd", 0.1, p=2), [1, 0.5, 0.2, 0.01], never),            # 0: ℓ2, lowest of gd N=1
        (R("gd", 0.4, p=4), [1, 0.5, 0.3, 0.2], never),             # 1: the largest stable η, not the best final
        (R("gd", 0.2, p=4), [1, 0.4, 0.2, 0.1], never),             # 2: GD, depth 1
        (R("gd", 0.1, depth=2, p=2), [1, 0.3, 0.1, 0.001], never),  # 3: ℓ2
        (R("gd", 0.1, depth=2, p=4), [1, 0.3, 0.1, 0.05], never),   # 4: GD, depth 2
        (R("gd", 0.3, depth=2, p=4), [1, 5, np.nan, np.nan], 2),    # 5: diverged
        (R("gd", 0.1, depth=3, p=4), [1, 0.1, 0.01, 0.001], never),  # 6: depth 3: not in the teaser
        (R("adagrad", 0.1, p=4), [1, 0.6, 0.5, 0.4], never),        # 7: AdaGrad
        (R("adagrad", 0.1, p=2), [1, 0.1, 0.01, 0.001], never),     # 8: ℓ2
        (R("adam", 0.01, p=4), [1, 0.5, 0.3, 0.3], never),          # 9: ties run 10 on the final loss, smaller η
        (R("adam", 0.1, p=4), [1, 0.5, 0.3, 0.3], never),           # 10: Adam
        (R("momentum", 0.1, p=2), [1, 0.5, 0.1, 0.05], never),      # 11: ℓ2 only ...
        (R("momentum", 0.1, p=4), [1, 1, 1, 1], never),             # 12: ... and an ℓ4 run that failed
        (R("adadelta", 0.1, depth=2, p=4), [1, 0.5, 0.2, 0.1], never),  # 13: a baseline at depth 2
        (R("e2e", 0.1, depth=2, p=4), [1, 0.1, 0.01, 0.001], never),  # 14: the e2e rule
    ]
    res = _hand_result(rows)
    picks = ethanol.teaser_runs(res)
    assert picks == {"GD, depth 1": 2, "GD, depth 2 (one extra scalar)": 4, "AdaGrad": 7, "Adam": 10}
    assert list(picks) == ["GD, depth 1", "GD, depth 2 (one extra scalar)", "AdaGrad", "Adam"]  # the legend order
    assert all(res.configs[i].p == 4 for i in picks.values())
    # Without its ℓ4 runs a sweep has no teaser at all.
    assert ethanol.teaser_runs(_hand_result([r for r in rows if r[0].p == 2])) == {}



def test_gap_ratio_range_is_the_ratio_of_suboptimalities_after_the_start_and_refuses_what_it_cannot_compare():
    """By hand, L* = 0.05: GD's gaps 1, 0.3, 0.1, 0.05; AdaGrad's 1, 0.33, 0.11, 0.04: ratios 1.1, 1.1, 0.8."""
    never = op.training.NEVER
    R = op.RunConfig
    rows = [
        (R("gd", 0.1, p=4), [1.05, 0.35, 0.15, 0.1], never),
        (R("adagrad", 0.1, p=4), [1.05, 0.38, 0.16, 0.09], never),
        (R("gd", 0.1, p=2), [1.05, 0.35, 0.15, 0.1], never),
        (R("gd", 0.9, p=4), [1.05, 9.0, np.nan, np.nan], 2),
        (R("gd", 0.2, p=4), [1.05, 0.3, 0.05, 0.05], never),
    ]
    res = _hand_result(rows)
    low, high = ethanol.gap_ratio_range(res, 1, 0, 0.05)
    assert (low, high) == (pytest.approx(0.8), pytest.approx(1.1))
    assert ethanol.gap_ratio_range(res, 0, 1, 0.05) == (pytest.approx(1 / 1.1), pytest.approx(1 / 0.8))
    with pytest.raises(ValueError, match="run and reference.*p = 4 and 2"):
        ethanol.gap_ratio_range(res, 0, 2, 0.05)
    with pytest.raises(ValueError, match="run: run 3 diverged at step 2"):
        ethanol.gap_ratio_range(res, 3, 0, 0.05)
    with pytest.raises(ValueError, match="reference: run 4 is at L. to round-off at step 2"):
        ethanol.gap_ratio_range(res, 0, 4, 0.05)
    with pytest.raises(ValueError, match="reference"):
        ethanol.gap_ratio_range(res, 0, 7, 0.05)

def test_speedup_is_one_where_both_depths_start_below_epsilon_and_the_figure_checks_its_ladder():
    """0 / 0 used to give NaN, which the docstring reserves for "did not reach"; a short ladder an IndexError."""
    rows = [ethanol.PrecisionRow("gd", 1, 0, 1e-3, 0.0, (0.0, 40.0, np.inf)),
            ethanol.PrecisionRow("gd", 2, 1, 1e-3, 0.0, (0.0, 10.0, 20.0))]
    ratio = ethanol.speedup_vs_precision(rows)[2]
    np.testing.assert_array_equal(ratio, [1.0, 4.0, np.inf])
    assert np.isnan(ethanol.speedup_vs_precision([rows[0], ethanol.PrecisionRow("gd", 2, 1, 1e-3, 0.0,
                                                                                 (0.0, np.inf, np.inf))])[2][1])
    with pytest.raises(ValueError, match=r"^rows must have one iteration count per ε \(2\)"):
        ethanol.plot_speedup_vs_precision(rows, 100, epsilons=(1.0, 0.1))


def test_grid_position_places_each_axis_of_a_run_in_its_methods_grid():
    """By hand: per axis, the run's value among the values swept for its method, depth and p (other p ignored)."""
    never = op.training.NEVER
    R = op.RunConfig
    curve = [1, 0.5, 0.2, 0.1]
    rows = [(R("adadelta", lr, p=4, rho=rho), curve, never) for lr in (0.01, 0.0316, 0.1) for rho in (0.9, 0.95)]
    rows += [(R("adadelta", 1.0, p=2, rho=0.5), curve, never),  # another loss: not in the ℓ4 grid
             (R("adagrad", 0.01, p=4), curve, never),
             (R("gd", 0.1, depth=2, p=4), curve, never), (R("gd", 0.3, depth=2, p=4), curve, never)]
    res = _hand_result(rows)
    assert ethanol.grid_position(res, 0) == {"lr": (0.01, "lowest", 3), "rho": (0.9, "lowest", 2),
                                             "eps": (1e-6, "only", 1)}
    assert ethanol.grid_position(res, 3) == {"lr": (0.0316, "inside", 3), "rho": (0.95, "highest", 2),
                                             "eps": (1e-6, "only", 1)}
    assert ethanol.grid_position(res, 6) == {"lr": (1.0, "only", 1), "rho": (0.5, "only", 1), "eps": (1e-6, "only", 1)}
    assert ethanol.grid_position(res, 7)["lr"] == (0.01, "only", 1)
    assert ethanol.grid_position(res, 9) == {"lr": (0.3, "highest", 2)}  # depth 1's runs are another grid
    with pytest.raises(ValueError, match=r"^i must be an integer >= 0 and <= 9, got 10"):
        ethanol.grid_position(res, 10)


# ---------------------------------------------------------------------------------------------------------------
# Found by mutation testing: a table or figure of ℓ4 that took the ℓ2 runs or the baselines, curves drawn as the
# raw loss under an "L − L*" axis, and a summary column of final losses headed L − L*
# ---------------------------------------------------------------------------------------------------------------
L2_STAR, L4_STAR = 0.01, 0.05
MIXED = [  # (config, losses at steps 0..3, diverged_at)
    (op.RunConfig("gd", 1e-2, depth=1, p=4), [1.05, 0.4, 0.2, 0.1], -1),
    (op.RunConfig("gd", 1e-3, depth=2, p=4), [1.05, 0.9, 0.15, 0.07], -1),
    (op.RunConfig("gd", 1e-2, depth=1, p=2), [0.8, 0.1, 0.05, 0.02], -1),
    (op.RunConfig("gd", 1e-2, depth=2, p=2), [0.8, 0.2, 0.04, 0.015], -1),
    (op.RunConfig("adagrad", 1e-2, depth=1, p=4), [1.05, 0.3, 0.25, 0.2], -1),
    (op.RunConfig("adam", 1e-3, depth=1, p=4), [1.05, 0.5, 0.3, 0.12], -1),
]


def _mixed() -> op.SweepResult:
    return _hand_result(MIXED)


def test_precision_table_of_one_loss_holds_only_that_losss_runs():
    res = _mixed()
    for p in (2, 4):
        rows = ethanol.precision_table(res, {2: L2_STAR, 4: L4_STAR}[p], p, epsilons=(0.5, 0.1))
        assert rows and all(res.configs[r.index].p == p for r in rows), p
    assert 1 not in ethanol.speedup_vs_precision(ethanol.precision_table(res, L4_STAR, 4, epsilons=(0.5, 0.1)))
    with pytest.raises(ValueError, match="epsilons"):
        ethanol.precision_table(res, L4_STAR, 4, epsilons=(0.0,))


def test_depth_sweep_and_teaser_draw_the_suboptimality_of_the_right_runs():
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    res = _mixed()
    after0 = res.steps > 0
    ax = ethanol.plot_depth_sweep(res, 4, optimum=L4_STAR)
    lines = ax.get_lines()
    # one line per GD depth of ℓ4: no ℓ2 run, no baseline
    assert [line.get_label() for line in lines] == ["N=1, η=0.01", "N=2, η=0.001"]
    for line, i in zip(lines, (0, 1)):
        np.testing.assert_allclose(line.get_ydata(), res.loss[i][after0] - L4_STAR)
    plt.close(ax.figure)
    ax = ethanol.plot_teaser(res, optimum=L4_STAR)
    drawn = {line.get_label().split(" (η")[0]: line.get_ydata() for line in ax.get_lines()}
    labels = [line.get_label() for line in ax.get_lines()]
    plt.close(ax.figure)
    # each baseline ran at its defaults here (one value of every hyper-parameter): the label names only η
    assert f"{ethanol.TEASER_NAMES['adagrad']} (η=0.01)" in labels and not any("eps=" in label for label in labels)
    np.testing.assert_allclose(drawn["GD, depth 1"], res.loss[0][after0] - L4_STAR)
    np.testing.assert_allclose(drawn[ethanol.TEASER_NAMES["adagrad"]], res.loss[4][after0] - L4_STAR)


def test_summary_gives_the_final_suboptimality_beside_the_final_loss():
    res = _mixed()
    text = ethanol.summary(res, {2: L2_STAR, 4: L4_STAR})
    l2_row, l4_row = [line.split() for line in text.splitlines() if line.split()[:2] == ["gd", "2"]]
    # ..., final loss, L − L*, iterations to the target (one number here)
    assert [float(v) for v in l2_row[-3:-1]] == pytest.approx([0.015, 0.015 - L2_STAR])
    assert [float(v) for v in l4_row[-3:-1]] == pytest.approx([0.07, 0.07 - L4_STAR])


def test_depths_above_four_are_dashed_or_dotted_in_the_depth_sweep_and_the_speed_up_plot():
    """At the paper scale eight depths share these axes: 1 to 4 solid, 5 and 6 dashed, 7 and 8 dotted
    (op.depth_linestyle)."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    curves = {("gd", n, 1e-3): [1.05, 0.9 - 0.01 * n, 0.2, 0.08, 0.06, 0.055] for n in (1, 4, 5, 8)}
    ax = ethanol.plot_depth_sweep(_sweep(curves), 4, optimum=L_STAR)
    style = {line.get_label().split(",")[0]: line.get_linestyle() for line in ax.get_lines()}
    plt.close(ax.figure)
    assert style == {"N=1": "-", "N=4": "-", "N=5": "--", "N=8": ":"}
    rows = ethanol.precision_table(_sweep(curves), L_STAR, 4, epsilons=(1.0, 0.1, 0.02))
    ax = ethanol.plot_speedup_vs_precision(rows, 50, epsilons=(1.0, 0.1, 0.02))
    style = {line.get_label(): line.get_linestyle() for line in ax.get_lines() if line.get_label().startswith("depth")}
    plt.close(ax.figure)
    assert style == {"depth 4": "-", "depth 5": "--", "depth 8": ":"}


def test_summary_markdown_is_the_summary_as_tables_with_header_cells():
    """The chapter's table (a screen reader reads each number with its column): the same groups and numbers as the
    plain-text summary, a failed group's outcomes in its row, and the notes below."""
    res = _sweep(CURVES, diverged={3: 20})
    text = ethanol.summary_markdown(res, {4: L_STAR})
    assert text.startswith("**ℓ4 loss**\n\n| method | depth | largest stable η | best-final η | final loss | L − L* | "
                           "iterations to loss 0.1 |\n|---|---|---|---|---|---|---|\n")
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| gd")]
    assert rows[0] == ["gd", "1", "≥ 0.01", "0.01", "0.07", "0.02", "30"]  # loss 0.1 at step 30
    assert rows[1][:2] == ["gd", "2"] and rows[1][3] == "0.001" and float(rows[1][5]) == pytest.approx(0.001)
    assert [line for line in text.splitlines() if line.startswith("| gd | 3 ")] == [
        "| gd | 3 | no run trained |  |  |  | η=0.001: diverged at step 20 |"]
    plain = ethanol.summary(res, {4: L_STAR})
    assert "no run trained at this budget: η=0.001: diverged at step 20" in plain  # the same outcome, as text
    assert text.endswith("- ≥: the top of the grid trained, so the largest stable η is at least that\n"
                         "- 2 of 4 runs failed (1 diverged, 1 collapsed); wall time 0 s")
    assert "L − L*" not in ethanol.summary_markdown(res).splitlines()[2]  # no optimum, no gap column


def test_precision_table_refuses_an_optimum_above_the_runs_losses():
    """Bug: precision_table(result, 10.0, 4) gave a final gap of -9.8 and 0 iterations to every precision."""
    res = _sweep(CURVES, diverged={3: 20})
    with pytest.raises(ValueError, match=r"^optimum must lie below every loss .* got L\* = 10\.0 and a loss of 0\.051"):
        ethanol.precision_table(res, 10.0, 4)
    assert len(ethanol.precision_table(res, 0.051 * (1 + 1e-7), 4)) == 2  # a hair above the best loss: round-off
