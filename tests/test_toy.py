"""Tests for overparam.toy and its command line (overparam.cli.toy): the two-example ℓ4 toy of Chapter 4."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import overparam as op


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_problem_reproduces_the_sum_loss_and_its_gradient():
    rng = np.random.default_rng(0)
    for y1 in (5.0, -20.0):
        X, y = op.two_example_problem(y1, 0.7)
        for w in rng.standard_normal((5, 2)) * 3:
            e = w - np.array([y1, 0.7])
            assert op.lp_loss(w, X, y, 4) == pytest.approx(0.25 * (e**4).sum(), rel=1e-13)
            np.testing.assert_allclose(op.lp_gradient(w, X, y, 4), e**3, rtol=1e-12)
    X, y = op.two_example_problem(3.0, p=2)
    assert op.lp_loss(np.zeros(2), X, y, 2) == pytest.approx(0.5 * (9 + 1), rel=1e-13)


@pytest.mark.parametrize("kwargs,match", [
    (dict(y1=float("nan")), "y1"), (dict(y1="5"), "y1"), (dict(y1=5.0, y2=float("inf")), "y2"),
    (dict(y1=5.0, p=3), "p"), (dict(y1=5.0, p=0), "p"),
])
def test_problem_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        op.two_example_problem(**kwargs)


def test_depth1_sweep_matches_the_scalar_recursion():
    """Independent oracle: plain GD decouples into e_i <- e_i - lr e_i^3 (float64 numpy loop)."""
    y1, lrs, T = 5.0, [0.01, 0.0562, 0.09], 3000
    res = op.run_toy(y1, T, depths=(1,), lrs=lrs)
    for i, lr in enumerate(lrs):
        e = 0.01 * np.array([1.0, 1.0]) / np.sqrt(2) - np.array([y1, 1.0])
        losses, reached = [], op.training.NEVER
        for t in range(T + 1):
            loss = 0.25 * (e**4).sum()
            if not np.isfinite(loss) or (losses and loss > 1e6 * losses[0]):
                break
            losses.append(loss)
            if reached == op.training.NEVER and loss <= op.TOY_TARGET:
                reached = t
            e = e - lr * e**3
        if lr > op.depth1_stability_limit(y1):
            assert res.diverged[i] and res.diverged_at[i] == len(losses) and reached == op.training.NEVER
        else:
            assert not res.diverged[i]
            np.testing.assert_allclose(res.loss[i], np.array(losses)[res.steps], rtol=1e-10)
        assert res.reached_at[i] == reached
    assert res.reached_at[1] > 0  # the largest stable η of the quarter-decade grid reaches 1e-5 within 3000


def test_initial_factors_are_the_sweeps_and_the_network_agrees():
    for depth in (1, 2, 3):
        layers = op.toy_initial_factors(depth)
        res = op.run_sweep(op.two_example_problem(10.0), op.toy_runs((depth,), [0.01]), 0)
        assert len(layers) == len(res.factors[0]) == depth
        for a, b in zip(layers, res.factors[0]):
            np.testing.assert_allclose(a, b, rtol=1e-15)
        assert op.max_imbalance(layers) < 1e-18
    # GD on the network by autograd reaches the target at the same step as the lockstep engine.
    lr = 10**-1.75
    res = op.run_toy(10.0, 600, depths=(2,), lrs=[lr])
    X, y = op.two_example_problem(10.0)
    hist = op.train_deep_linear(X, y, 4, op.toy_initial_factors(2), lr, 600)
    assert res.reached_at[0] == hist.iterations_to(op.TOY_TARGET) > 0
    with pytest.raises(ValueError, match="depth"):
        op.toy_initial_factors(0)
    with pytest.raises(ValueError, match="init_scale"):
        op.toy_initial_factors(2, 0.0)


def test_stability_limit_separates_convergence_from_divergence():
    limit = op.depth1_stability_limit(8.0)
    assert limit == 2 / 64
    res = op.run_toy(8.0, 200, depths=(1,), lrs=[0.97 * limit, 1.03 * limit])
    assert res.diverged.tolist() == [False, True]
    with pytest.raises(ValueError, match="y1"):
        op.depth1_stability_limit(0.0)


def test_grid_and_table():
    grid = np.array(op.TOY_LR_GRID)
    assert len(grid) == 27 and grid[0] == pytest.approx(1e-6) and grid[-1] == pytest.approx(10**0.5)
    np.testing.assert_allclose(np.diff(np.log10(grid)), 0.25)
    results = {5.0: op.run_toy(5.0, 2500, lrs=op.TOY_LR_GRID[12:22])}
    rows = op.toy_table(results)
    assert [(r.y1, r.depth) for r in rows] == [(5.0, 1), (5.0, 2), (5.0, 3)]
    res = results[5.0]
    for r in rows:
        if r.reached:
            ok = [i for i, c in enumerate(res.configs)
                  if c.depth == r.depth and np.isfinite(res.reached_at[i]) and not res.diverged[i]]
            assert r.iterations == min(res.reached_at[i] for i in ok) and r.lr == res.configs[r.index].lr
    assert rows[0].reached and rows[1].reached
    short = op.toy_table({5.0: op.run_toy(5.0, 10, lrs=[1e-6])})
    assert not any(r.reached for r in short) and short[0].iterations is None
    with pytest.raises(ValueError, match="reached_at"):
        op.toy_table({5.0: op.run_sweep(op.two_example_problem(5.0), op.toy_runs((1,), [1e-3]), 5)})
    lines = op.format_toy_table(results).splitlines()
    assert lines[0].split() == ["y1", "depth", "1", "depth", "2", "depth", "3"] and len(lines) == 2
    width = op.toy.TOY_TABLE_COLUMN  # one column per depth after the 6-character y1 column
    for j, r in enumerate(rows):
        cell = lines[1][6 + width * j: 6 + width * (j + 1)].strip()
        assert cell == (f"{r.iterations:,} (η={r.lr:.2g})" if r.reached else "not reached"), r


def _toy_result(rows) -> op.SweepResult:
    """A toy SweepResult from (depth, η, reached_at, diverged_at) rows, with a falling loss for every run that did not
    diverge (so that it trained) and ``reached_at`` as given."""
    B = len(rows)
    loss = np.array([[1.0, 0.5, 0.1, 1e-3] if np.isinf(div) else [1.0, 5.0, np.nan, np.nan] for *_, div in rows])
    return op.SweepResult(configs=tuple(op.RunConfig("gd", lr, depth=n, p=4) for n, lr, _, _ in rows),
                          steps=np.arange(4), loss=loss, diverged_at=np.array([div for *_, div in rows]),
                          w_e=np.zeros((B, 2)), factors=tuple((np.zeros((1, 2)),) for _ in rows),
                          weights_step=np.full(B, 3), num_iters=3, wall_time=0.0, dtype="float64", device="cpu",
                          target=op.TOY_TARGET,
                          reached_at=np.array([reached for _, _, reached, _ in rows], dtype=float))


def test_format_toy_table_lays_out_every_cell_of_the_toy_table():
    """Hand-made results: each cell is the fewest iterations (thousands separated) and its η to 2 significant digits,
    or "not reached"; a y1 column of 4 characters and two spaces, then one right-aligned column of 22 characters
    (TOY_TABLE_COLUMN) per depth, so that three depths fit the 76 characters of the book's text column.

    y1 = 5: depth 1 reaches the target at 4,321 with η = 0.03 (η = 0.01 needs 12,345), depth 2 at 98,765 with
    η = 10^-2.5 = 0.0031623 -> "0.0032", depth 3 at step 7 with η = 0.1. y1 = 20: at depth 1 one run never reaches
    it and the other diverges, depth 2 reaches it at 1,234,567 with η = 1.5e-4 -> "0.00015", depth 3 ties at 100,000
    between η = 1e-4 and 10^-3.5 = 0.00031623 -> the larger, "0.00032".
    """
    never = op.training.NEVER
    results = {
        5.0: _toy_result([(1, 0.01, 12345, never), (1, 0.03, 4321, never), (2, 1e-3, 250000, never),
                          (2, 10**-2.5, 98765, never), (3, 0.1, 7, never)]),
        20.0: _toy_result([(1, 0.003, never, never), (1, 0.005, never, 2), (2, 1.5e-4, 1234567, never),
                           (3, 1e-4, 100000, never), (3, 10**-3.5, 100000, never)]),
    }
    rows = op.toy_table(results)
    assert [(r.y1, r.depth, r.iterations, r.index) for r in rows] == [
        (5.0, 1, 4321, 1), (5.0, 2, 98765, 3), (5.0, 3, 7, 4), (20.0, 1, None, None), (20.0, 2, 1234567, 2),
        (20.0, 3, 100000, 4)]
    assert op.toy.TOY_TABLE_COLUMN == 22
    assert op.format_toy_table(results).splitlines() == [
        "  y1  " + "depth 1".rjust(22) + "depth 2".rjust(22) + "depth 3".rjust(22),
        "   5  " + "4,321 (η=0.03)".rjust(22) + "98,765 (η=0.0032)".rjust(22) + "7 (η=0.1)".rjust(22),
        "  20  " + "not reached".rjust(22) + "1,234,567 (η=0.00015)".rjust(22) + "100,000 (η=0.00032)".rjust(22),
    ]
    # A y1 whose sweep left out a depth: that cell says so (it used to raise StopIteration).
    partial = {5.0: results[5.0], 10.0: _toy_result([(1, 0.01, 50, never)])}
    assert op.format_toy_table(partial).splitlines()[2] == ("  10  " + "50 (η=0.01)".rjust(22) + "not run".rjust(22)
                                                            + "not run".rjust(22))


def test_cli_writes_results_and_figure(tmp_path, monkeypatch):
    from overparam.__main__ import main

    tiny = dataclasses.replace(op.TOY_PRESETS["fast"], num_iters=1500, y1_values=(5.0, 10.0))
    monkeypatch.setitem(op.TOY_PRESETS, "fast", tiny)
    stem = tmp_path / "toy"
    assert main(["toy", "--preset", "fast", "--out", str(stem), "--threads", "1"]) == 0
    results = op.load_toy_results(stem, (5.0, 10.0))
    assert set(results) == {5.0, 10.0}
    for y1, res in results.items():
        assert res.num_iters == 1500 and res.target == op.TOY_TARGET and res.reached_at is not None
        assert res.configs == op.toy_runs() and res.provenance["command"].startswith("python -m overparam toy")
        np.testing.assert_allclose(op.two_example_problem(y1)[1][0] / 2**0.25, y1)
    assert (tmp_path / "toy.png").stat().st_size > 10_000
    assert op.load_toy_results(stem) is None  # y1 = 20 missing


def _hand_predicted_iterations(lr, depth, y1, y2=1.0, target=op.TOY_TARGET):
    """The late-phase estimate re-derived step by step (Chapter 4; Equation 12 of arXiv:1802.06509).

    Near w* = (y1, y2) the end-to-end rule multiplies the step orthogonal to w by ρ = η‖w*‖^{2-2/N} and
    the step along w by Nρ. Each error then follows e <- e - ρ_i e³, whose tail is e_t ≈ 1/sqrt(2 ρ_i t),
    so L = ¼(e_along⁴ + e_orth⁴) ≈ ¼ (2ρt)^{-2} (N^{-2} + 1). Solve L = ε for t.
    """
    rho = lr * (y1**2 + y2**2) ** ((2 - 2 / depth) / 2)
    tail_loss_times_t2 = 0.25 * (1 / (2 * rho)) ** 2 * (depth**-2 + 1)  # L(t) · t²
    return np.sqrt(tail_loss_times_t2 / target)


def test_predicted_iterations_against_hand_values_for_every_depth():
    """The formula's values, from the derivation above and as numbers worked out by hand."""
    for depth in (1, 2, 3, 5):
        for lr, y1, y2 in ((0.01, 5.0, 1.0), (3e-3, 20.0, 1.0), (1e-4, 7.0, 2.0)):
            assert op.predicted_iterations(lr, depth, y1, y2) == pytest.approx(
                _hand_predicted_iterations(lr, depth, y1, y2), rel=1e-13)
    # ‖w*‖² = 26 for targets (5, 1), ε = 1e-5:
    # N = 1: 1/(η sqrt(8ε));  N = 2: sqrt(1.25e5) / (4η · 26^½);  N = 3: sqrt((10/9)·1e5) / (4η · 26^{2/3}).
    assert op.predicted_iterations(0.01, 1, 5.0) == pytest.approx(1 / (0.01 * np.sqrt(8e-5)), rel=1e-13)
    assert op.predicted_iterations(0.01, 2, 5.0) == pytest.approx(1733.43811, rel=1e-8)
    assert op.predicted_iterations(0.01, 3, 5.0) == pytest.approx(949.517971, rel=1e-8)
    # y2 enters through ‖w*‖ (depth > 1 only) and the target as ε^{-1/2}.
    assert op.predicted_iterations(0.01, 2, 5.0, 2.0) == pytest.approx(1733.43811 * np.sqrt(26 / 29), rel=1e-8)
    assert op.predicted_iterations(0.01, 1, 5.0, 2.0) == op.predicted_iterations(0.01, 1, 5.0)
    assert op.predicted_iterations(0.01, 3, 5.0, target=1e-7) == pytest.approx(9495.17971, rel=1e-8)


def test_predicted_iterations_match_the_measured_tail():
    """The late-phase formula against real runs, away from the stability edge (Chapter 4's collapse).

    Measured reached_at / prediction (targets (5, 1), 40,000 iterations), for η = 3e-3 and 1e-2:
    depth 1: 0.9975, 0.9972;  depth 2: 0.9197, 0.9190;  depth 3: 0.9930, 0.9942.
    Depth 2 runs 8 % faster than the estimate (it ignores the tilt of w* and the coupling of the two
    coordinates); the ratio is the same for both η, as it must be once t scales like 1/η. The margin,
    0.004, is about 4 iterations of the shortest run (944).
    """
    measured = {1: 0.997, 2: 0.919, 3: 0.994}
    res = op.run_toy(5.0, 40_000, lrs=[3e-3, 1e-2])
    assert sorted((c.depth, c.lr) for c in res.configs) == [(n, lr) for n in (1, 2, 3) for lr in (3e-3, 1e-2)]
    ratios = {}
    for i, c in enumerate(res.configs):
        assert not res.diverged[i] and 0 < res.reached_at[i] < 40_000
        ratios[c.depth, c.lr] = res.reached_at[i] / op.predicted_iterations(c.lr, c.depth, 5.0)
        assert ratios[c.depth, c.lr] == pytest.approx(measured[c.depth], abs=0.004)
    for depth in (1, 2, 3):  # measured differences 3e-4, 7e-4, 1.2e-3
        assert abs(ratios[depth, 3e-3] - ratios[depth, 1e-2]) < 0.002
    for kwargs, match in ((dict(lr=0.0, depth=1, y1=5.0), "lr"), (dict(lr=1e-3, depth=0, y1=5.0), "depth"),
                          (dict(lr=1e-3, depth=1, y1=0.0, y2=0.0), "y1"), (dict(lr=1e-3, depth=1, y1=5.0, target=-1.0),
                                                                           "target")):
        with pytest.raises(ValueError, match=match):
            op.predicted_iterations(**kwargs)


def test_damaged_toy_file_is_not_a_valid_results_file(tmp_path):
    """Bug: a truncated toy results file raised a zip error from deep inside numpy."""
    stem = tmp_path / "toy"
    for y1, path in op.toy_results_paths(stem, (5.0, 10.0)).items():
        op.run_toy(y1, 10, depths=(1,), lrs=[1e-3]).save(path)
    assert set(op.load_toy_results(stem, (5.0, 10.0))) == {5.0, 10.0}
    damaged = tmp_path / "toy_y10.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(op.InvalidResultsFile, match="toy_y10.npz: not a valid results file"):
        op.load_toy_results(stem, (5.0, 10.0))


@pytest.mark.parametrize("field, value", [
    ("num_iters", -5), ("num_iters", 0), ("num_iters", 1e4), ("y1_values", ()), ("y1_values", 5.0),
    ("y1_values", (5.0, 0.0)), ("y1_values", (float("nan"),)), ("depths", ()), ("depths", (1, 0)), ("depths", 2),
    ("name", None),
])
def test_preset_checks_its_fields(field, value):
    """Bug: ToyPreset("x", -5) was built without complaint."""
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        op.ToyPreset(**{"name": "x", "num_iters": 10, field: value})
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        dataclasses.replace(op.TOY_PRESETS["fast"], **{field: value})


def test_grid_functions_name_an_empty_or_scalar_grid():
    """Bug: toy_runs(lrs=[]) gave no runs silently, depths=2 a TypeError, run_toy(depths=[]) named "runs"."""
    with pytest.raises(ValueError, match="^lrs must be a non-empty"):
        op.toy_runs(lrs=[])
    with pytest.raises(ValueError, match="^depths must be a non-empty"):
        op.toy_runs(depths=2)
    with pytest.raises(ValueError, match="^depths must be a non-empty"):
        op.run_toy(5.0, 10, depths=[], lrs=[1e-3])
    with pytest.raises(ValueError, match="^results must be a dict"):
        op.toy_table([op.run_toy(5.0, 10, depths=(1,), lrs=[1e-3])])
    with pytest.raises(ValueError, match="^results must be a non-empty dict"):
        op.plot_iterations_vs_lr({})


def test_find_toy_results_reads_the_committed_files_wherever_the_book_runs(tmp_path, monkeypatch):
    """The committed paper-scale files are found through find_results (also from another working directory),
    and a missing one gives None rather than a partial dict; download=False keeps the test offline."""
    monkeypatch.chdir(tmp_path)  # neither results/ nor ../results/ here: only the package's own repository
    found = op.find_toy_results("toy_paper", download=False)
    assert found is not None and sorted(found) == [5.0, 10.0, 20.0]
    direct = op.load_toy_results(Path(op.__file__).resolve().parents[1] / "results" / "toy_paper")
    for y1 in found:
        np.testing.assert_array_equal(found[y1].loss, direct[y1].loss)
        assert found[y1].num_iters == direct[y1].num_iters == 400_000
    assert op.find_toy_results("toy_paper", (5.0, 7.0), download=False) is None  # y1 = 7 was never run


def test_the_figure_draws_every_run_of_the_grid():
    """Weak spot (review W5): runs that neither reached the target nor diverged were left out silently.

    Each run is on its depth's line (reached), or on its depth's row above the budget: ▽ not reached, × diverged.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = op.run_toy(5.0, 3000, depths=(1, 2), lrs=[1e-6, 3e-2, 5e-2, 3.0])
    (ax,) = op.plot_iterations_vs_lr({5.0: result})
    lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    drawn = {}
    for line in lines:
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            drawn.setdefault((line.get_color(), float(x)), []).append((float(y), line.get_marker()))
    for i, cfg in enumerate(result.configs):
        points = drawn[op.DEPTH_COLORS[cfg.depth], cfg.lr]
        row = 3000 * op.toy.ROW_STEP ** cfg.depth
        if result.diverged[i]:
            assert (row, "x") in points
        elif result.reached_at[i] == op.training.NEVER:
            assert (row, "v") in points  # the run at η = 1e-6 of each depth, and depth 1 at 0.03
        else:
            assert (float(result.reached_at[i]), "o") in points
    assert not result.diverged[0] and result.reached_at[0] == op.training.NEVER  # the case the old figure dropped
    budget = [line for line in ax.get_lines() if list(line.get_ydata()) == [3000, 3000]]
    assert budget and budget[0].get_linestyle() == "--"
    assert ax.get_ylabel() == "iterations to $L \\leq$ $10^{-5}$"
    legend = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    assert {"not within the budget", "diverged", "budget"} <= set(legend)
    # both lines are in the legend, told apart by their style: the budget (grey, dashed) and the depth-1 stability
    # limit (black, dotted)
    limit = legend["depth-1 limit $2/y_1^2$"]
    assert limit.get_linestyle() == ":" and limit.get_color() == "k"
    assert legend["budget"].get_linestyle() == "--"
    plt.close("all")


def test_predicted_iterations_is_never_for_depth_one_at_or_above_its_stability_limit():
    """Bug: op.predicted_iterations(10.0, 1, 5) returned 11.2 although η = 10 is 125 times the depth-1 limit 2/y1²
    and that run diverges. At or above the limit plain GD from near 0 never reaches the target: NEVER (inf)."""
    limit = op.depth1_stability_limit(5.0)
    assert op.predicted_iterations(10.0, 1, 5.0) == op.predicted_iterations(limit, 1, 5.0) == op.training.NEVER
    assert op.predicted_iterations(limit, 1, 1.0, 5.0) == op.training.NEVER, "the larger target sets the limit"
    assert np.isfinite(op.predicted_iterations(0.99 * limit, 1, 5.0))
    assert np.isfinite(op.predicted_iterations(10.0, 2, 5.0)), "no closed-form limit for N >= 2: the estimate"
    X, y = op.two_example_problem(5.0)
    assert op.gradient_descent(X, y, 4, 1.1 * limit, 500, on_divergence="stop").diverged
    assert not op.gradient_descent(X, y, 4, 0.9 * limit, 500, on_divergence="stop").diverged


def test_toy_readers_name_a_result_that_is_not_a_sweep():
    """toy_table({5.0: "x"}) and plot_iterations_vs_lr used to fail with an AttributeError."""
    for read in (op.toy.toy_table, op.toy.plot_iterations_vs_lr):
        with pytest.raises(ValueError, match=r"^results\[5\.0\] must be a SweepResult"):
            read({5.0: "x"})


def test_each_run_is_drawn_once_and_the_stability_limit_where_it_is():
    """Mutation testing: a run that reached the target and diverged later was drawn on the line and as × too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    never = op.training.NEVER
    rows = [(1, 1e-3, never, never), (1, 1e-2, 2, never), (1, 3e-2, 1, 3), (1, 1e-1, never, 2)]
    (ax,) = op.plot_iterations_vs_lr({5.0: _toy_result(rows)})
    drawn, vertical = {}, []
    for line in (line for line in ax.get_lines() if len(line.get_xdata())):  # not the legend's empty entries
        if line.get_marker() == "None":  # the budget (horizontal) and the stability limit (vertical)
            vertical += [list(line.get_xdata())] if line.get_xdata()[0] == line.get_xdata()[-1] else []
            continue
        for x in line.get_xdata():
            drawn.setdefault(float(x), []).append(line.get_marker())
    plt.close("all")
    assert drawn == {1e-3: ["v"], 1e-2: ["o"], 3e-2: ["x"], 1e-1: ["x"]}
    assert vertical == [[2 / 5.0 ** 2] * 2]


def test_load_toy_results_names_a_stem_that_is_a_file_or_a_folder(tmp_path):
    """Bug: a stem ending in .npz, or a folder, looked for toy_paper_y5.npz_y5.npz or <folder>_y5.npz and returned
    None silently."""
    for bad, what in (("results/toy_paper_y5.npz", "not a .npz file's name"), (tmp_path, "not a folder")):
        with pytest.raises(ValueError, match=rf"^stem must be a file stem such as results/toy_paper .*, {what}, got"):
            op.load_toy_results(bad)
    with pytest.raises(ValueError, match=r"^stem must be a file stem .*, got None \(NoneType\)"):
        op.toy_results_paths(None)
    assert op.load_toy_results(tmp_path / "toy") is None  # a stem whose files are missing


def test_toy_functions_name_a_scalar_where_a_tuple_is_expected(tmp_path):
    """Bug: y1_values=5.0 or depths=2 gave "'float' object is not iterable"."""
    with pytest.raises(ValueError, match=r"^y1_values must be a non-empty tuple of y1 values .* got 5\.0"):
        op.load_toy_results(tmp_path / "toy", 5.0)
    with pytest.raises(ValueError, match=r"^y1_values must be a non-empty tuple"):
        op.toy_results_paths("results/toy_paper", 5.0)
    result = op.run_toy(5.0, 10, depths=(1,), lrs=[1e-3])
    with pytest.raises(ValueError, match=r"^depths must be a non-empty tuple of depths, got 2"):
        op.toy_table({5.0: result}, depths=2)
