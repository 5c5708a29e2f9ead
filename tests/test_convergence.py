"""Chapter 7, Part A: the whitened problem, the two schemes, iterations to the optimum, the theorem's quantities."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import overparam as op
from overparam import convergence as cv
from overparam.sweep import RunConfig, run_sweep, start_layers


def _correlated(seed=0, m=400, d=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) @ rng.normal(size=(d, d))  # correlated features
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)
    return X, y


def test_whitened_problem_reduces_the_l2_loss_to_half_the_squared_distance_to_lambda():
    X, y = _correlated()
    prob = cv.whitened_problem((X, y))
    assert np.linalg.norm(prob.target) == pytest.approx(1.0) and prob.whitening_error < 1e-10
    # independent route: whiten by a Cholesky factor and an orthogonal rotation (any whitening gives the same loss
    # up to a rotation of w); here compare losses through the PCA basis used by the reduction
    m, d = X.shape
    Xc, yc = X - X.mean(0), (y - y.mean()) * prob.label_scale
    lam, V = np.linalg.eigh(Xc.T @ Xc / m)
    Xw = Xc @ V / np.sqrt(lam)
    full = lambda w: 0.5 * np.mean((Xw @ w - yc) ** 2)  # noqa: E731
    rng = np.random.default_rng(1)
    for _ in range(3):
        w = rng.normal(size=d)
        assert full(w) - full(prob.target) == pytest.approx(prob.loss(w), rel=1e-10)
        assert op.lp_loss(w, prob.X, prob.y, 2) == pytest.approx(prob.loss(w), rel=1e-12), "the reduced regression"
    assert prob.loss(prob.target) == 0.0
    with pytest.raises(ValueError, match="singular"):
        cv.whitened_problem((np.c_[X, X[:, :1]], y))
    with pytest.raises(ValueError, match="entries"):
        prob.loss(np.ones(d + 1))


def test_gaussian_init_runs_start_from_gaussian_init_and_train_like_the_autograd_network():
    X, y = _correlated(d=5)
    prob = cv.whitened_problem((X, y))
    cfg = RunConfig("gd", 0.05, depth=3, p=2, width=4, init="gaussian", init_scale=0.4, seed=3)
    layers = start_layers(cfg, 5)
    for got, want in zip(layers, op.gaussian_init([5, 4, 4, 1], 0.4, 3)):
        np.testing.assert_array_equal(got, want)
    res = run_sweep((prob.X, prob.y), [cfg], 200, record=20)
    oracle = op.train_deep_linear(prob.X, prob.y, 2, layers, 0.05, 200, record_every=20)
    np.testing.assert_allclose(res.loss[0], oracle.loss, rtol=1e-9, atol=1e-12 * oracle.loss[0])
    with pytest.raises(ValueError, match="init 'gaussian' needs"):
        RunConfig("gd", 0.1, depth=3, width=1, init="gaussian")
    with pytest.raises(ValueError, match="init must be one of"):
        RunConfig("gd", 0.1, depth=3, width=4, init="orthogonal")


def test_start_layers_names_a_bad_config_dimension_or_direction():
    """A direction of the wrong length used to replace the length-d draw silently (layers of the wrong shape)."""
    wide = RunConfig("gd", 1e-3, depth=2, width=3, init_direction=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"cfg.init_direction must have length d = 5, got 2"):
        start_layers(wide, 5)
    assert [W.shape for W in start_layers(wide, 2)] == [(3, 2), (1, 3)]
    with pytest.raises(ValueError, match="cfg must be a RunConfig, got dict"):
        start_layers({"depth": 2}, 5)
    with pytest.raises(ValueError, match="d must be"):
        start_layers(RunConfig("gd", 1e-3, depth=2, width=3), 0)


def test_the_three_schemes_at_their_sizes_and_balancedness():
    X, y = _correlated(d=8)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (3,), 4, (0.3,), (0.1,), 10, seeds=(0,))
    runs = cv.convergence_runs(prob, preset)
    assert [r.scheme for r in runs] == list(cv.SCHEMES)
    by = {r.scheme: start_layers(r.config, 8) for r in runs}
    assert op.max_imbalance(by["balanced"]) < 1e-12 and op.max_imbalance(by["balanced, same start"]) < 1e-12
    assert op.max_imbalance(by["gaussian"]) > 1e-3
    a = np.random.default_rng(0).standard_normal(8)
    np.testing.assert_allclose(op.end_to_end(by["balanced"])[0], 0.3 * a, rtol=1e-10)
    # the control starts from the Gaussian layers' own end-to-end row, split into balanced layers
    gaussian = op.gaussian_init([8, 4, 4, 1], 0.3, 0)
    np.testing.assert_array_equal(by["gaussian"][0], gaussian[0])
    np.testing.assert_allclose(op.end_to_end(by["balanced, same start"]), op.end_to_end(gaussian), rtol=1e-12)
    assert not np.allclose(by["balanced, same start"][0], gaussian[0])


def test_start_margins_are_the_margins_of_each_schemes_start():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2, 3), 4, (0.01, 0.3, 1.0), (0.1, 0.2), 10, seeds=(1, 2))
    margins = cv.start_margins(prob, preset)
    assert set(margins) == {(s, N) for s in cv.SCHEMES for N in (2, 3)}
    for run in cv.convergence_runs(prob, preset):
        if run.seed == 1 and run.lr == 0.1:
            k = preset.stds.index(run.std)
            start = op.end_to_end(start_layers(run.config, 6))
            assert margins[run.scheme, run.depth][k] == cv.deficiency_margin(start, prob.target)
    for N in (2, 3):  # the same end-to-end start, balanced or not
        np.testing.assert_allclose(margins["balanced, same start", N], margins["gaussian", N], rtol=1e-9)
        # seed 1's row points toward the target: a positive margin when small, none when large
        assert margins["balanced", N][0] > 0 > margins["balanced", N][-1]


def test_iterations_vs_std_takes_the_fastest_run_per_scheme_and_std():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.2, 0.6), (0.05, 0.3), 400, epsilon=1e-4)
    res = cv.run_convergence(prob, preset, dtype="float64")
    table = cv.iterations_vs_std(res, prob, preset)
    runs = cv.convergence_runs(prob, preset)
    assert set(table) == {(s, 2) for s in cv.SCHEMES}
    for (scheme, depth), row in table.items():
        for k, std in enumerate(preset.stds):
            idx = [i for i, r in enumerate(runs) if r.scheme == scheme and r.std == std]
            assert row[k] == min(res.reached_at[i] for i in idx)
    assert np.isfinite(table["balanced", 2]).all()
    with pytest.raises(ValueError, match="not the sweep"):
        cv.iterations_vs_std(res, prob, dataclasses.replace(preset, lrs=(0.05,)))


def test_iterations_by_seed_keeps_each_seeds_fastest_and_iterations_vs_std_their_median():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.05, 0.6), (0.05, 0.3), 300, epsilon=1e-4, seeds=(4, 0, 7))
    res = cv.run_convergence(prob, preset, dtype="float64")
    by_seed = cv.iterations_by_seed(res, prob, preset)
    runs = cv.convergence_runs(prob, preset)
    assert set(by_seed) == {(s, 2) for s in cv.SCHEMES}
    for (scheme, depth), counts in by_seed.items():
        assert counts.shape == (2, 3)
        for k, std in enumerate(preset.stds):
            for j, seed in enumerate(preset.seeds):  # columns in the preset's order of seeds, not sorted
                idx = [i for i, r in enumerate(runs) if r.scheme == scheme and r.std == std and r.seed == seed]
                assert len(idx) == len(preset.lrs)
                assert counts[k, j] == min(res.reached_at[i] for i in idx)
    # the draw matters: the seeds do not all take the same number of iterations
    assert any(np.unique(c[np.isfinite(c)]).size > 1 for c in by_seed.values())
    table = cv.iterations_vs_std(res, prob, preset)
    for key, counts in by_seed.items():
        np.testing.assert_array_equal(table[key], np.sort(counts, axis=1)[:, 1])  # the middle seed's count
    # one seed: that seed's column, whatever the others did
    single = cv.iterations_vs_std(cv.run_convergence(prob, dataclasses.replace(preset, seeds=(7,)), dtype="float64"),
                                  prob, dataclasses.replace(preset, seeds=(7,)))
    for key, counts in by_seed.items():
        np.testing.assert_array_equal(single[key], counts[:, 2])


def test_median_over_seeds_counts_never_as_more_than_any_count():
    never = op.training.NEVER
    table = {("gaussian", 3): np.array([[10.0, never, never], [10.0, 30.0, never], [never] * 3]),
             ("balanced", 3): np.array([[5.0, 7.0], [5.0, never]])}
    out = cv.median_over_seeds(table)
    np.testing.assert_array_equal(out["gaussian", 3], [never, 30.0, never])  # converged when most seeds did
    np.testing.assert_array_equal(out["balanced", 3], [6.0, never])  # two seeds: the mean of both, never if either
    for bad in (np.ones(3), np.ones((2, 0)), np.array([[1.0, np.nan]])):
        with pytest.raises(ValueError, match=r"by_seed\[\('balanced', 3\)\] must be a \(stds, seeds\) array"):
            cv.median_over_seeds({("balanced", 3): bad})


def test_deficiency_margin_and_the_rate_bound_along_a_balanced_run():
    """The proof's step: along gradient descent from a balanced start, −Δℓ/(ηℓ) ≥ 2σ_min^{2(N−1)/N} up to O(η)."""
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    target = prob.target
    assert cv.deficiency_margin(0.5 * target, target) == pytest.approx(0.5)
    assert cv.deficiency_margin(-0.5 * target, target) == pytest.approx(-0.5)
    assert cv.rate_bound(np.array([[0.0, 2.0]]), 3) == pytest.approx(2 * 2 ** (4 / 3))
    # A start off the target's direction (a start along it makes the rate exactly N times the bound, where a bound
    # wrong by a factor up to N would pass): 0.6 Φ plus a perpendicular part of norm 0.5 ‖Φ‖, margin 0.36 ‖Φ‖ > 0.
    rng = np.random.default_rng(1)
    v = rng.normal(size=target.size)
    v -= v @ target / (target @ target) * target
    W0 = 0.6 * target + 0.5 * np.linalg.norm(target) / np.linalg.norm(v) * v
    assert cv.deficiency_margin(W0, target) == pytest.approx(0.36, abs=0.01)
    start = op.balanced_factors(W0[None, :], 3, widths=[4, 4], seed=0)
    eta = 1e-3
    run = op.train_deep_linear(prob.X, prob.y, 2, start, eta, 2000, record_every=1)
    rates = -np.diff(run.loss) / (eta * run.loss[:-1])
    bounds = np.array([cv.rate_bound(W, 3) for W in run.W_e[:-1]])
    # For a single output, P_{W_e} stretches the gradient's component along W_e by N: the rate is the bound times
    # 1 + (N−1) cos²θ, θ the angle between W_e and W_e − Φ (measured: within 6.2e-4, the O(η) of a discrete step)
    W = run.W_e[:-1].reshape(len(bounds), -1)
    g = W - target
    cos2 = np.sum(W * g, 1) ** 2 / (np.sum(W * W, 1) * np.sum(g * g, 1))
    np.testing.assert_allclose(rates / bounds, 1 + 2 * cos2, rtol=2e-3)
    assert np.all(rates >= 0.999 * bounds)  # measured: 0.99963 at the least
    assert (rates / bounds).min() < 1.01  # the bound is nearly attained along this run, not loose by a factor
    with pytest.raises(ValueError, match="shape"):
        cv.deficiency_margin(np.ones(3), target)


def test_imbalance_along_starts_at_the_start_and_follows_the_training():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (3,), 4, (0.3,), (0.05,), 10)
    gauss, bal, _ = (r.config for r in cv.convergence_runs(prob, preset))
    trace = cv.imbalance_along(prob, gauss, [10, 50])
    assert trace[0] == pytest.approx(op.max_imbalance(start_layers(gauss, 6)))
    after = op.train_deep_linear(prob.X, prob.y, 2, start_layers(gauss, 6), 0.05, 50).factors
    assert trace[-1] == pytest.approx(op.max_imbalance(after), rel=1e-12)
    bal_trace = cv.imbalance_along(prob, bal, [10, 50])
    assert bal_trace[0] < 1e-14 and bal_trace.max() < 0.02 * trace[0], "balanced drifts by O(η²) a step only"


def test_fastest_run_is_the_first_to_reach_epsilon():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.2,), (0.05, 0.3), 400, epsilon=1e-4)
    res = cv.run_convergence(prob, preset, dtype="float64")
    runs = cv.convergence_runs(prob, preset)
    best = cv.fastest_run(res, prob, preset, "balanced", 2, 0.2)
    i = runs.index(best)
    assert res.reached_at[i] == cv.iterations_vs_std(res, prob, preset)["balanced", 2][0]
    with pytest.raises(ValueError, match="no runs"):
        cv.fastest_run(res, prob, preset, "balanced", 5, 0.2)
    # a tie goes to the larger step size, as in the sweep's FASTEST_TO_TARGET
    tie = dataclasses.replace(res, reached_at=np.full_like(res.reached_at, 100.0))
    assert cv.fastest_run(tie, prob, preset, "balanced", 2, 0.2).lr == 0.3


def test_fastest_run_of_one_seed_is_that_seeds_fastest():
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.05,), (0.05, 0.3), 300, epsilon=1e-4, seeds=(0, 1, 2))
    res = cv.run_convergence(prob, preset, dtype="float64")
    runs = cv.convergence_runs(prob, preset)
    by_seed = cv.iterations_by_seed(res, prob, preset)
    overall = cv.fastest_run(res, prob, preset, "gaussian", 2, 0.05)
    for j, seed in enumerate(preset.seeds):
        best = cv.fastest_run(res, prob, preset, "gaussian", 2, 0.05, seed=seed)
        assert best.seed == seed and res.reached_at[runs.index(best)] == by_seed["gaussian", 2][0, j]
    assert res.reached_at[runs.index(overall)] == by_seed["gaussian", 2][0].min()
    with pytest.raises(ValueError, match="no runs of scheme 'gaussian', depth 2 at std 0.05 of seed 3"):
        cv.fastest_run(res, prob, preset, "gaussian", 2, 0.05, seed=3)


@pytest.mark.parametrize("data, match", [
    (np.ones((5, 3)), r"data must be a pair \(X, y\) or an object with attributes X and y .*, got ndarray of shape"),
    ((np.ones((5, 3)), np.ones(5), np.ones(5)), "data must be"),
    ((np.zeros((0, 3)), np.zeros(0)), "X must have at least one row and one column"),
    ((np.zeros((4, 0)), np.zeros(4)), "X must have at least one row and one column"),
])
def test_whitened_problem_names_bad_data(data, match):
    """Bug: a bare array gave "too many values to unpack", an empty X a LinAlgError from LAPACK."""
    with pytest.raises(ValueError, match=match):
        cv.whitened_problem(data)


@pytest.mark.parametrize("where", ["X", "y"])
def test_whitened_problem_refuses_non_finite_data(where):
    """Bug: NaN data gave "Eigenvalues did not converge" from LAPACK."""
    X, y = _correlated(m=20, d=3)
    if where == "X":
        X[3, 1] = np.nan
    else:
        y[0] = np.inf
    with pytest.raises(ValueError, match=rf"^{where} must contain only finite values"):
        cv.whitened_problem((X, y))


@pytest.mark.parametrize("field, value", [
    ("depths", ()), ("depths", 3), ("depths", (3, 0)), ("width", 1), ("stds", ()), ("stds", (0.1, 0.0)),
    ("lrs", (-1.0,)), ("lrs", (float("nan"),)), ("num_iters", -1), ("num_iters", 10.0), ("epsilon", 0),
    ("epsilon", -1e-5), ("seeds", (-1,)), ("seeds", (1.5,)), ("seeds", ()), ("name", None),
])
def test_convergence_preset_checks_its_fields(field, value):
    """Bug: a preset with lrs=(-1,) or num_iters=-1 was built, and epsilon=0 was reported as "target must be > 0"."""
    good = dict(name="t", depths=(3,), width=4, stds=(0.1,), lrs=(0.1,), num_iters=10)
    cv.ConvergencePreset(**good)
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        cv.ConvergencePreset(**{**good, field: value})
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        dataclasses.replace(cv.PRESETS["fast"], **{field: value})


def test_convergence_runs_and_the_theorems_quantities_check_their_inputs():
    X, y = _correlated(m=40, d=3)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (3,), 4, (0.3,), (0.05,), 10)
    with pytest.raises(ValueError, match="problem must be a WhitenedProblem"):
        cv.convergence_runs((X, y), preset)
    with pytest.raises(ValueError, match="preset must be a ConvergencePreset"):
        cv.run_convergence(prob, "fast")
    with pytest.raises(ValueError, match="W_e must contain only finite values"):
        cv.deficiency_margin(np.full(3, np.nan), prob.target)
    with pytest.raises(ValueError, match="target must contain only finite values"):
        cv.deficiency_margin(prob.target, np.full(3, np.inf))
    with pytest.raises(ValueError, match="W_e must contain only finite values"):
        cv.rate_bound(np.array([[np.nan, 1.0]]), 2)
    with pytest.raises(ValueError, match="scheme"):
        cv.plot_iterations_vs_std({("orthogonal", 3): np.ones(1)}, preset)


def test_iterations_markdown_formats_a_hand_built_table():
    """Chapter 7's table: depths in the preset's order, the three schemes within each, 'not reached' where never."""
    preset = cv.ConvergencePreset("t", (3, 8), 4, (0.01, 0.1), (0.1,), 1000)
    table = {("gaussian", 3): np.array([1234.0, op.training.NEVER]), ("balanced", 3): np.array([56.0, 7.0]),
             ("balanced, same start", 3): np.array([np.inf, 999.6]), ("gaussian", 8): np.array([np.nan, 12345.0]),
             ("balanced", 8): np.array([1.0, 2.0]), ("balanced, same start", 8): np.array([3.0, 4.0])}
    assert cv.iterations_markdown(table, preset) == "\n".join([
        "| depth | scheme | s = 0.01 | s = 0.1 |",
        "|---|---|---|---|",
        "| 3 | gaussian | 1,234 | not reached |",
        "| 3 | balanced | 56 | 7 |",
        "| 3 | balanced, same start | not reached | 1,000 |",
        "| 8 | gaussian | not reached | 12,345 |",
        "| 8 | balanced | 1 | 2 |",
        "| 8 | balanced, same start | 3 | 4 |",
    ])
    assert [cv.format_iterations(v) for v in (0.0, 1e6, op.training.NEVER, np.nan)] == ["0", "1,000,000", "not reached", "not reached"]
    with pytest.raises(ValueError, match="no row for scheme 'gaussian' at depth 8"):
        cv.iterations_markdown({k: v for k, v in table.items() if k != ("gaussian", 8)}, preset)
    with pytest.raises(ValueError, match=r"table\['balanced', 3\] has 1 counts, the preset has 2 stds"):
        cv.iterations_markdown(table | {("balanced", 3): np.array([5.0])}, preset)
    with pytest.raises(ValueError, match="preset must be a ConvergencePreset"):
        cv.iterations_markdown(table, "default")


def test_depth_colors_are_the_books():
    """Same depth, same colour across the book (Chapter 7 used its own pair before)."""
    for depth in (1, 2, 3, 8):
        assert cv.depth_color(depth) == op.DEPTH_COLORS[depth]


def test_plot_puts_each_failed_scheme_and_depth_on_its_own_row_above_the_cap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preset = cv.ConvergencePreset("t", (3, 8), 4, (0.01, 0.1, 1.0), (0.1,), 1000, epsilon=1e-5)
    never = op.training.NEVER
    table = {("gaussian", 3): np.array([500.0, 50.0, never]), ("balanced", 3): np.array([40.0, 40.0, 60.0]),
             ("gaussian", 8): np.array([never, 80.0, never]), ("balanced", 8): np.array([never, 30.0, never])}
    rows = cv.failed_rows(table, preset.num_iters)
    assert list(rows) == [("gaussian", 3), ("gaussian", 8), ("balanced", 8)]
    heights = np.array(list(rows.values()))
    factor = 10 ** (cv.FAILED_ROW_SPACING * np.log10(1000 / 30))  # spaced by the decades from 30 to the cap
    np.testing.assert_allclose(heights, 1000 * factor ** np.arange(1, 4), rtol=1e-12)  # above the cap, one row each
    ax = cv.plot_iterations_vs_std(table, preset)
    failed = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none"]
    assert len(failed) == 3
    for line, (scheme, depth) in zip(failed, rows):
        assert line.get_marker() == cv.SCHEME_STYLES[scheme][1] and line.get_linestyle() == "None"
        np.testing.assert_array_equal(line.get_xdata(), np.asarray(preset.stds)[~np.isfinite(table[scheme, depth])])
        assert np.all(line.get_ydata() == rows[scheme, depth])
        assert matplotlib.colors.same_color(line.get_color(), op.DEPTH_COLORS[depth])
    assert ax.get_ylabel() == "iterations to ℓ ≤ $10^{-5}$"
    assert ax.get_ylim()[1] == pytest.approx(heights[-1] * factor, rel=1e-12)  # room above the highest row
    plt.close(ax.figure)


def test_plot_with_seeds_draws_each_converged_seed_as_a_dot_behind_the_median():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preset = cv.ConvergencePreset("t", (3, 8), 4, (0.01, 0.1, 1.0), (0.1,), 1000, epsilon=1e-5, seeds=(0, 1, 2))
    never = op.training.NEVER
    by_seed = {("gaussian", 3): np.array([[500.0, 400.0, 450.0], [50.0, 60.0, never], [never] * 3]),
               ("balanced", 8): np.array([[40.0, 45.0, 41.0], [30.0, 33.0, 31.0], [60.0, never, never]])}
    table = cv.median_over_seeds(by_seed)
    ax = cv.plot_iterations_vs_std(table, preset, by_seed=by_seed)
    dots = [line for line in ax.get_lines() if line.get_marker() == "." and len(line.get_xdata())]
    assert len(dots) == 2
    for line, (key, counts) in zip(dots, by_seed.items()):
        done = np.isfinite(counts)
        np.testing.assert_array_equal(np.sort(line.get_ydata()), np.sort(counts[done]))  # converged seeds only
        assert matplotlib.colors.same_color(line.get_color(), op.DEPTH_COLORS[key[1]])
        assert line.get_zorder() < 2  # behind the medians' markers
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "each of the 3 seeds (where it converged); line: their median" in labels
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"by_seed\[\('gaussian', 3\)\] must be a \(stds, seeds\) array"):
        cv.plot_iterations_vs_std(table, preset, by_seed={("gaussian", 3): np.ones((2, 3))})
    plt.close("all")


def test_readers_of_a_convergence_sweep_refuse_another_presets_sweep():
    """fastest_run used to compare only the number of runs, so it answered for a preset with other step sizes."""
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.2,), (0.05, 0.3), 60, epsilon=1e-2)
    res = cv.run_convergence(prob, preset, dtype="float64")
    others = [dataclasses.replace(preset, lrs=(0.06, 0.3)), dataclasses.replace(preset, num_iters=61),
              dataclasses.replace(preset, epsilon=1e-3)]
    for other in others:
        with pytest.raises(ValueError, match=r"^result is not the sweep of preset 't'"):
            cv.fastest_run(res, prob, other, "balanced", 2, 0.2)
        with pytest.raises(ValueError, match=r"^result is not the sweep of preset 't'"):
            cv.iterations_vs_std(res, prob, other)
    for read in (lambda r: cv.fastest_run(r, prob, preset, "balanced", 2, 0.2),
                 lambda r: cv.iterations_vs_std(r, prob, preset)):
        with pytest.raises(ValueError, match=r"^result must be a SweepResult"):
            read({"balanced": 1})
    assert cv.fastest_run(res, prob, preset, "balanced", 2, 0.2) is not None


def test_a_sweep_written_on_another_machine_is_read_despite_round_off_in_its_configs():
    """Bug: the committed long sweep was refused on another CPU, whose BLAS put the last bit of a vector's norm
    (a balanced run's init_scale) elsewhere; a change beyond round-off is still refused, naming the field."""
    X, y = _correlated(d=6)
    prob = cv.whitened_problem((X, y))
    preset = cv.ConvergencePreset("t", (2,), 3, (0.2,), (0.05, 0.3), 60, epsilon=1e-2)
    res = cv.run_convergence(prob, preset, dtype="float64")
    i = next(k for k, c in enumerate(res.configs) if c.init_direction is not None)

    def changed(**fields):
        configs = list(res.configs)
        configs[i] = dataclasses.replace(configs[i], **fields)
        return dataclasses.replace(res, configs=tuple(configs))

    scale, direction = res.configs[i].init_scale, res.configs[i].init_direction
    elsewhere = changed(init_scale=float(np.nextafter(scale, np.inf)),
                        init_direction=(float(np.nextafter(direction[0], 0)),) + direction[1:])
    assert np.array_equal(cv.iterations_vs_std(elsewhere, prob, preset)["balanced", 2],
                          cv.iterations_vs_std(res, prob, preset)["balanced", 2])
    for fields, named in ((dict(init_scale=scale * (1 + 1e-9)), rf"init_scale={scale * (1 + 1e-9)!r}, the preset's"),
                          (dict(init_direction=(direction[0] * 1.01,) + direction[1:]), "another init_direction"),
                          (dict(seed=7), "seed=7, the preset's 0")):
        with pytest.raises(ValueError, match=rf"^result is not the sweep of preset 't' on this problem: its run {i} "
                                             rf"\(gd N=2 .*\) has {named}"):
            cv.iterations_vs_std(changed(**fields), prob, preset)


def test_depth_color_refuses_a_depth_that_is_not_an_integer_at_least_one():
    """Bug: depth_color(0) and depth_color(2.5) were accepted (int() truncated the float)."""
    for bad in (0, 2.5, None):
        with pytest.raises(ValueError, match=r"^depth must be an integer >= 1, got"):
            cv.depth_color(bad)
    assert cv.depth_color(np.int64(3)) == op.DEPTH_COLORS[3]
