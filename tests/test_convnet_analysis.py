"""Tests of Chapter 6's analysis helpers (overparam.convnet_analysis) and of finding results files."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import overparam as op
from overparam import files


def test_running_median_against_a_plain_loop():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=50)
    steps, med = op.running_median(values, 7)
    assert steps[0] == 3 and steps[-1] == 46 and med.size == 44
    np.testing.assert_array_equal(med, [np.median(values[i : i + 7]) for i in range(44)])
    for bad in (0, 4, 51):
        with pytest.raises(ValueError, match="window"):
            op.running_median(values, bad)


def test_first_step_below_and_crossing_on_known_series():
    t = np.arange(100, dtype=float)
    falling = 10 - 0.1 * t  # 10 at step 0, below 5 after step 50
    assert op.first_step_below(falling, 5.0, 1) == 51
    assert op.first_step_below(falling, -100.0, 1) is None
    flat = np.full(100, 4.0)
    assert op.crossing_step(falling, flat, 3) == 61  # 10 - 0.1 t < 4 from t = 61 on
    assert op.crossing_step(flat, falling, 3) is None  # ends above
    assert op.crossing_step(flat - 10, flat, 3) == 1  # below from the first median on
    with pytest.raises(ValueError, match=r"lower and upper must have the same shape.*\(10,\) and \(8,\)"):
        op.crossing_step(np.arange(10.0), np.arange(8.0), 3)


def test_accumulated_step_is_the_distance_momentum_moves_under_a_constant_gradient():
    lr, m = np.array([0.01] * 30 + [0.005] * 20), 0.9
    S = op.accumulated_step(lr, m)
    theta, buf = 0.0, 0.0
    positions = [0.0]
    for s in range(lr.size):
        buf = m * buf + 1.0  # gradient 1
        theta -= lr[s] * buf
        positions.append(-theta)
    np.testing.assert_allclose(S, positions, rtol=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        op.accumulated_step(lr, 1.0)
    with pytest.raises(ValueError, match="lr must be a one-dimensional array of finite positive"):
        op.accumulated_step(np.array([0.1, np.nan]), 0.9)
    with pytest.raises(ValueError, match="positive"):
        op.accumulated_step(-lr, 0.9)


def test_product_penalty_gradients_against_autograd():
    rng = np.random.default_rng(1)
    W_a, W_b = rng.normal(size=(7, 4)), rng.normal(size=(4, 3))
    ta, tb = (torch.tensor(w, requires_grad=True, dtype=torch.float64) for w in (W_a, W_b))
    (0.5 * (ta @ tb).square().sum()).backward()
    ga, gb = op.product_penalty_gradients(W_a, W_b)
    np.testing.assert_allclose(ga, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="W_a.shape"):
        op.product_penalty_gradients(W_a, W_b.T)


def _product_kappa_parts(net: op.TutorialConvNet) -> tuple[float, float, float]:
    """Hand-derived pieces of κ for the penalty on the product, in float64 numpy from the net's parameters.

    With P = λ·½(‖A₁B₁‖² + ‖A₂B₂‖² + ‖b₁‖² + ‖b₂‖²) (E_k = A_k B_k the dense layers' end-to-end
    matrices, row-vector convention), ∇_{A_k} P = λ E_k B_kᵀ, ∇_{B_k} P = λ A_kᵀ E_k and ∇_{b} P = λ b, so

        κ = ‖∇P‖² / (2λP) = (Σ_k ‖E_k B_kᵀ‖² + ‖A_kᵀ E_k‖² + ‖b‖²) / (Σ_k ‖E_k‖² + ‖b‖²),

    independent of λ; no other parameter enters the penalty. Returns (weights' numerator,
    weights' denominator, ‖b‖²), so that the scaling of the weight parts can be checked too.
    """
    as64 = lambda t: t.detach().to(torch.float64).numpy()  # noqa: E731
    layers = [(as64(net.fc1_w), as64(net.fc1_w2)), (as64(net.fc2_w), as64(net.fc2_w2))]
    numerator = sum(np.sum((A @ B @ B.T) ** 2) + np.sum((A.T @ A @ B) ** 2) for A, B in layers)
    denominator = sum(np.sum((A @ B) ** 2) for A, B in layers)
    bias = float(np.sum(as64(net.fc1_b) ** 2) + np.sum(as64(net.fc2_b) ** 2))
    return float(numerator), float(denominator), bias


def test_penalty_speedup_is_one_for_plain_sums_of_squares_and_large_for_the_product():
    kappa = {v: op.penalty_speedup(op.TutorialConvNet(v, seed=0)) for v in op.VARIANTS}
    for v in ("baseline", "factors", "original"):
        # ‖λθ‖² / (2λ · λ‖θ‖²/2) = 1 exactly; float32 autograd gave 1 - 6e-9 and 1 - 4e-8
        assert kappa[v] == pytest.approx(1.0, rel=1e-6)
    # The chapter's estimate "about 36" at init_std 0.1; measured 36.1271 with seed 0.
    assert kappa["product"] == pytest.approx(36.127, rel=1e-4)


def test_penalty_speedup_names_a_net_without_penalty():
    net = op.TutorialConvNet("baseline", seed=0)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    with pytest.raises(ValueError, match="net's penalty is 0"):
        op.penalty_speedup(net)


def test_penalty_speedup_of_the_product_matches_the_hand_derived_formula():
    """Oracle: κ from the closed form of _product_kappa_parts (float64 numpy), not autograd."""
    net = op.TutorialConvNet("product", seed=0)
    num, den, bias = _product_kappa_parts(net)
    assert bias == pytest.approx(0.01 * (512 + 10), rel=1e-6)  # every dense bias starts at 0.1
    by_hand = (num + bias) / (den + bias)
    # float32 autograd against float64 by hand: measured relative gap 6e-9 (float32 round-off 6e-8).
    assert op.penalty_speedup(net) == pytest.approx(by_hand, rel=1e-6)
    # λ cancels: the same κ for another weight decay (measured gap 0 at 1e-3, 8e-8 at λ = 1).
    assert op.penalty_speedup(net, weight_decay=1e-3) == pytest.approx(by_hand, rel=1e-6)
    # The same net in float64: autograd and the closed form agree to round-off (measured 2e-15).
    assert op.penalty_speedup(net.double()) == pytest.approx(by_hand, rel=1e-12)


def test_penalty_speedup_grows_like_init_std_squared():
    """Halving init_std scales every weight by exactly ½ (same seed, the truncation scales with std).

    The weight parts of κ's numerator scale like c⁶ and of its denominator like c⁴ (c = ½), the biases
    (0.1, not drawn) not at all; so κ(0.05) is predicted from the init_std-0.1 net's parts alone.
    """
    num, den, bias = _product_kappa_parts(op.TutorialConvNet("product", init_std=0.1, seed=0))
    c = 0.5
    predicted = (c**6 * num + bias) / (c**4 * den + bias)
    small = op.penalty_speedup(op.TutorialConvNet("product", init_std=0.05, seed=0))
    assert small == pytest.approx(predicted, rel=1e-6)  # measured relative gap 4e-9
    # The plain "κ ∝ init_std²" reading is off only through the biases: measured κ(0.05) / (κ(0.1)/4) = 0.9986.
    assert small / ((num + bias) / (den + bias) / 4) == pytest.approx(0.9986, abs=2e-4)


def _serve(content: bytes, asked: list[str]):
    """A stand-in for the download: records each URL asked for and returns ``content``."""

    def fetch(url: str) -> bytes:
        asked.append(url)
        return content

    return fetch


@pytest.fixture
def fake_committed(tmp_path, monkeypatch):
    """A committed file ``fake.npz`` (known digest) that is nowhere local; an empty cache in ``tmp_path``."""
    good = b"the committed bytes"
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no results/ nor ../results/ here
    monkeypatch.setitem(files.RESULTS_SHA256, "fake.npz", hashlib.sha256(good).hexdigest())
    return good, tmp_path / "cache" / "results" / "fake.npz"


def test_pinned_digests_are_those_of_the_committed_results_files():
    """Every committed results file has its SHA-256 in RESULTS_SHA256, and no other name has one."""
    folder = Path(files.__file__).resolve().parents[1] / "results"
    try:  # the files git tracks, so that a fresh, uncommitted output beside them does not count
        tracked = subprocess.run(["git", "ls-files", "*.npz"], cwd=folder, capture_output=True, text=True,
                                 check=True).stdout.split()
        paths = [folder / name for name in tracked] or sorted(folder.glob("*.npz"))
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        paths = sorted(folder.glob("*.npz"))
    committed = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert "mnist_full.npz" in committed
    assert files.RESULTS_SHA256 == committed


def test_find_results_prefers_local_files_and_fetches_only_committed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert files.find_results("toy_paper_y5.npz", download=False) is not None  # the repository's own file
    asked: list[str] = []
    assert files.find_results("not_committed.npz", fetch=_serve(b"x", asked)) is None and asked == []
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "not_committed.npz").write_bytes(b"mine")  # a reader's own file is used as it is
    assert files.find_results("not_committed.npz") == Path("results") / "not_committed.npz"
    with pytest.raises(ValueError, match="plain file name"):
        files.find_results("../etc/passwd")


def test_find_results_accepts_and_caches_the_committed_file(fake_committed):
    good, cached = fake_committed
    asked: list[str] = []
    assert files.find_results("fake.npz", fetch=_serve(good, asked)) == cached
    assert asked == [files.RESULTS_URL + "fake.npz"] and cached.read_bytes() == good
    assert files.find_results("fake.npz", fetch=_serve(good, asked)) == cached and len(asked) == 1  # from the cache


def test_find_results_rejects_a_download_that_is_not_the_committed_file(fake_committed):
    _, cached = fake_committed
    asked: list[str] = []
    with pytest.warns(UserWarning, match=r"fake\.npz: the download \(15 bytes.*not used"):
        assert files.find_results("fake.npz", fetch=_serve(b"<html>404</html", asked)) is None
    assert not cached.exists() and len(asked) == 1  # not cached: the next call asks again
    with pytest.warns(UserWarning, match="not used"):
        assert files.find_results("fake.npz", fetch=_serve(b"<html>404</html", asked)) is None
    assert len(asked) == 2


def test_find_results_fetches_a_stale_cached_copy_again(fake_committed):
    good, cached = fake_committed
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"an older version")
    asked: list[str] = []
    assert files.find_results("fake.npz", fetch=_serve(good, asked)) == cached
    assert len(asked) == 1 and cached.read_bytes() == good
    # A stale copy that cannot be replaced is not used, and a bad download removes it.
    cached.write_bytes(b"an older version")
    with pytest.warns(UserWarning, match="its SHA-256 differs.*not used"):
        assert files.find_results("fake.npz", download=False) is None
    assert cached.exists()

    def offline(url: str) -> bytes:
        raise OSError("no network")

    with pytest.warns(UserWarning, match="its SHA-256 differs.*not used"):
        assert files.find_results("fake.npz", fetch=offline) is None
    with pytest.warns(UserWarning, match="is not the committed file"):
        assert files.find_results("fake.npz", fetch=_serve(b"another file", asked)) is None
    assert not cached.exists()


def test_find_results_without_a_copy_or_a_network_is_none(fake_committed):
    def offline(url: str) -> bytes:
        raise OSError("no network")

    assert files.find_results("fake.npz", fetch=offline) is None
    assert files.find_results("fake.npz", download=False) is None


def _fake_history(variant: str, cross_entropy: np.ndarray) -> op.ConvNetHistory:
    steps = cross_entropy.size
    return op.ConvNetHistory(
        config=op.ConvNetConfig(variant=variant), cross_entropy=cross_entropy, penalty=np.full(steps, 0.5),
        lr=np.full(steps, 0.01), eval_steps=np.array([0, steps]), accuracy={}, num_params=1, seconds=1.0, seed=0,
        device="cpu",
    )


def test_steps_to_levels_per_run_and_part():
    t = np.arange(200, dtype=float)
    runs = {"baseline": _fake_history("baseline", 1.0 / (1 + t)), "product": _fake_history("product", 1.0 / (1 + 2 * t))}
    table = op.steps_to_levels(runs, (0.1, 0.01), window=1)
    # 1/(1+t) < 0.1 from t = 10, < 0.01 from t = 100; twice as fast for 1/(1+2t), which never gets below 0.001
    assert table == {"baseline": [10, 100], "product": [5, 50]}
    assert op.steps_to_levels(runs, (1e-3,), 1) == {"baseline": [None], "product": [None]}
    # batch loss = cross-entropy + penalty (0.5 here): below 0.6 when the cross-entropy is below 0.1
    assert op.steps_to_levels(runs, (0.6,), 1, part="batch_loss") == {"baseline": [10], "product": [5]}
    with pytest.raises(ValueError, match="part"):
        op.steps_to_levels(runs, (0.1,), 1, part="accuracy")


def test_error_standard_error_matches_simulated_error_rates():
    rng = np.random.default_rng(1)
    rates = rng.binomial(10_000, 0.008, size=20_000) / 10_000
    assert abs(op.error_standard_error(0.008, 10_000) / rates.std() - 1) < 0.02
    assert op.error_standard_error(0.0, 5) == 0.0
    with pytest.raises(ValueError, match="error"):
        op.error_standard_error(1.5, 10)
    with pytest.raises(ValueError, match="n must"):
        op.error_standard_error(0.1, 0)


def test_levels_table_speedups_and_markdown():
    t = np.arange(200, dtype=float)
    runs = {"baseline": _fake_history("baseline", 1.0 / (1 + t)), "product": _fake_history("product", 1.0 / (1 + 2 * t))}
    speedup, table = op.levels_table(runs, (0.1, 0.01), window=1)
    assert speedup == {"baseline": [1.0, 1.0], "product": [2.0, 2.0]}
    lines = table.splitlines()
    assert lines[0] == "| variant | CE < 0.1 | CE < 0.01 |" and lines[1] == "|---|---|---|"
    assert lines[3] == "| product | step 5 (2.00×) | step 50 (2.00×) |"
    with pytest.raises(ValueError, match="never reach"):
        op.levels_table(runs, (1e-3,), 1)
    with pytest.raises(ValueError, match="baseline"):
        op.levels_table(runs, (0.1,), 1, baseline="tutorial")


def test_readoff_comparison_reads_our_curve_at_the_paper_steps():
    t = np.arange(1000, dtype=float)
    runs = {"baseline": _fake_history("baseline", 2.0 / (1 + t / 100)), "product": _fake_history("product", 0 * t + 0.5)}
    readoffs = {"tutorial": {0: 1.0, 100: 2.0}, "overparameterized": {500: 0.25}}
    worst, table = op.readoff_comparison(runs, 1, readoffs)
    # ours: baseline batch loss 2 + 0.5 (penalty) at step 0, 1 + 0.5 at step 100; product 1.0 (0.5 + 0.5)
    assert worst == pytest.approx(4.0)  # product: 1.0 against 0.25; step 0 does not count
    rows = table.splitlines()[2:]
    assert rows == ["| tutorial | baseline | 0 | 1 | 2.5 | 2.50 |", "| tutorial | baseline | 100 | 2 | 1.5 | 0.75 |",
                    "| overparameterized | product | 500 | 0.25 | 1 | 4.00 |"]
    # Another reading of where the paper's penalty sits: compare its curve with the penalty on both factors.
    runs["factors"] = _fake_history("factors", 0 * t + 0.25)  # batch loss 0.25 + 0.5
    worst, table = op.readoff_comparison(runs, 1, {"overparameterized": {500: 0.25}},
                                         {"overparameterized": "factors"})
    assert worst == pytest.approx(3.0)
    assert table.splitlines()[2] == "| overparameterized | factors | 500 | 0.25 | 0.75 | 3.00 |"
    with pytest.raises(ValueError, match="no run 'factors'"):
        op.readoff_comparison({k: runs[k] for k in ("baseline", "product")}, 1, {"overparameterized": {10: 1.0}},
                              {"overparameterized": "factors"})
    with pytest.raises(ValueError, match="no run of ours for the paper's curve 'other'"):
        op.readoff_comparison(runs, 1, {"other": {10: 1.0}})


def test_summary_table_rows_and_markdown_on_known_tails():
    """Medians over the last ``tail`` steps (not means, not the whole run), errors in %, ms per step, by hand.

    baseline (7 steps, tail 4): cross-entropy tail [1, 2, 3, 10] -> median 2.5 (mean 4, whole-run median 3);
    penalty tail [0.1, 0.2, 0.4, 0.3] -> 0.25; batch loss = their sum per step, [1.1, 2.2, 3.4, 10.3] -> 2.8
    (not 2.5 + 0.25); validation error 100·(1 − 0.9875) = 1.25 % from the last validation accuracy; test error
    100·(1 − 0.99) = 1.00 % from final_accuracy; (2.0 s − 0.6 s of evaluations)/7 steps = 200 ms.
    product (3 steps, shorter than the tail): its whole run, cross-entropy [4, 1, 2] -> 2, penalty 0.5 ->
    batch loss 2.5; no evaluations -> NaN errors; 1.0 s / 3 steps = 333 ms.
    """
    base = dataclasses.replace(
        _fake_history("baseline", np.array([50.0, 40.0, 30.0, 1.0, 2.0, 3.0, 10.0])),
        penalty=np.array([9.0, 9.0, 9.0, 0.1, 0.2, 0.4, 0.3]), accuracy={"validation": np.array([0.5, 0.9875])},
        final_accuracy={"test": 0.99}, seconds=2.0, eval_seconds=0.6)
    product = _fake_history("product", np.array([4.0, 1.0, 2.0]))
    rows, table = op.summary_table({"baseline": base, "product": product}, tail=4)
    assert rows[0] == pytest.approx({"batch loss": 2.8, "cross-entropy": 2.5, "λ · penalty": 0.25,
                                     "validation error %": 1.25, "test error %": 1.0, "ms/step": 200.0}, rel=1e-12)
    assert {k: v for k, v in rows[1].items() if "error" not in k} == pytest.approx(
        {"batch loss": 2.5, "cross-entropy": 2.0, "λ · penalty": 0.5, "ms/step": 1000 / 3}, rel=1e-12)
    assert np.isnan(rows[1]["validation error %"]) and np.isnan(rows[1]["test error %"])
    assert table.splitlines() == [
        "| variant | batch loss | cross-entropy | λ · penalty | validation error % | test error % | ms/step |",
        "|---|---|---|---|---|---|---|",
        "| baseline | 2.8 | 2.5 | 0.25 | 1.25 | 1.00 | 200 |",
        "| product | 2.5 | 2 | 0.5 | nan | nan | 333 |",
    ]
    with pytest.raises(ValueError, match="tail"):
        op.summary_table({"baseline": base}, tail=0)


def test_figures_and_tables_name_the_missing_runs_and_sets():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(50, dtype=float)
    run = _fake_history("baseline", 1.0 / (1 + t))  # trained without eval_data: no validation accuracies
    with pytest.raises(ValueError, match=r"histories hold no validation evaluations.*eval_data=\{'validation'"):
        op.plot_validation_error({"baseline": run})
    with pytest.raises(ValueError, match=r"histories must hold the runs .*missing \['product'\]"):
        op.plot_paper_figure({"baseline": run}, 3)
    for call in (lambda: op.steps_to_levels(run, (0.1,), 1), lambda: op.summary_table(run)):
        with pytest.raises(ValueError, match="histories must be a mapping of variant names to ConvNetHistory"):
            call()
    with pytest.raises(ValueError, match="net must be a TutorialConvNet, got NoneType"):
        op.penalty_speedup(None)
    validated = dataclasses.replace(run, accuracy={"validation": np.array([0.1, 0.9])})
    fig = op.plot_validation_error({"baseline": validated})
    assert len(fig.axes[0].lines) == 1
    plt.close(fig)


def test_validation_figure_puts_each_test_error_in_its_own_column_with_its_own_marker():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from overparam.convnet_analysis import TEST_MARKERS

    t = np.arange(100, dtype=float)
    runs = {}
    for v in ("baseline", "product", "factors"):
        h = _fake_history(v, 1.0 / (1 + t))
        runs[v] = dataclasses.replace(h, accuracy={"validation": np.array([0.1, 0.99])},
                                      final_accuracy={"test": 0.992})  # the same test error for all three
    fig = op.plot_validation_error(runs)
    ax = fig.axes[0]
    dots = [line for line in ax.get_lines() if line.get_marker() in TEST_MARKERS and len(line.get_xdata()) == 1]
    assert [d.get_marker() for d in dots] == list(TEST_MARKERS[:3])
    xs = [float(d.get_xdata()[0]) for d in dots]
    assert xs[0] > 100 and np.all(np.diff(xs) > 0)  # right of the end, one column each: equal errors do not hide
    assert all(float(d.get_ydata()[0]) == pytest.approx(0.8) for d in dots)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [op.VARIANT_LABELS[v] for v in runs]
    plt.close(fig)


def test_loss_parts_can_thin_and_cut_one_panel():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(50, dtype=float)
    runs = {"baseline": _fake_history("baseline", 1.0 / (1 + t) ** 3)}
    fig = op.plot_loss_parts(runs, 5, part_alpha={"cross_entropy": 0.05}, bottom={"cross_entropy": 1e-3})
    batch, ce, penalty = fig.axes
    assert ce.get_lines()[0].get_alpha() == 0.05 and batch.get_lines()[0].get_alpha() == 0.15
    assert ce.get_ylim()[0] == 1e-3 and batch.get_ylim()[0] != 1e-3
    plt.close(fig)
    with pytest.raises(ValueError, match=r"bottom keys must be parts of the loss .*\['ce'\]"):
        op.plot_loss_parts(runs, 5, bottom={"ce": 1e-3})
    with pytest.raises(ValueError, match="part_alpha values must be opacities"):
        op.plot_loss_parts(runs, 5, part_alpha={"penalty": 2.0})


def test_an_empty_mapping_of_histories_is_named():
    """Bug: op.plot_validation_error({}) raised "max() arg is an empty sequence"."""
    import matplotlib

    matplotlib.use("Agg")
    for call in (lambda: op.plot_validation_error({}), lambda: op.summary_table({}),
                 lambda: op.steps_to_levels({}, (0.1,), 1)):
        with pytest.raises(ValueError, match="^histories must hold at least one run"):
            call()


def test_nan_series_and_matrices_are_refused_by_name():
    """Bugs: a NaN or inf in running_median's series, or in product_penalty_gradients' matrices, came out as
    NaN medians and gradients. The convnet trainer raises on divergence, so its histories are finite."""
    series = np.arange(9.0)
    for bad in (np.nan, np.inf):
        series[4] = bad
        with pytest.raises(ValueError, match="^values must contain only finite values"):
            op.running_median(series, 3)
        with pytest.raises(ValueError, match="^values must contain only finite values"):
            op.first_step_below(series, 1.0, 3)
        with pytest.raises(ValueError, match="^upper must contain only finite values"):
            op.crossing_step(np.arange(9.0), series, 3)
        with pytest.raises(ValueError, match="^W_a must contain only finite values"):
            op.product_penalty_gradients(np.full((2, 2), bad), np.ones((2, 2)))
        with pytest.raises(ValueError, match="^W_b must contain only finite values"):
            op.product_penalty_gradients(np.ones((2, 2)), np.full((2, 2), bad))
    with pytest.raises(ValueError, match="^values must be an array of real numbers"):
        op.running_median(["a", "b", "c"], 3)
    run = _fake_history("baseline", np.r_[np.ones(10), np.nan, np.ones(10)])
    with pytest.raises(ValueError, match=r"^baseline.batch_loss must contain only finite values"):
        op.plot_loss_parts({"baseline": run}, 3)


def test_the_paper_readoffs_default_cannot_be_changed_by_a_chapter():
    """PAPER_READOFFS and PAPER_CURVE_RUNS are readoff_comparison's defaults: a chapter that edited them would have
    changed every later call."""
    with pytest.raises(TypeError):
        op.PAPER_READOFFS["tutorial"] = {}
    with pytest.raises(TypeError):
        op.PAPER_READOFFS["tutorial"][0] = 1.0
    with pytest.raises(TypeError):
        op.PAPER_CURVE_RUNS["tutorial"] = "product"
    assert op.PAPER_READOFFS["overparameterized"][0] == 14.0 and op.PAPER_CURVE_RUNS["tutorial"] == "baseline"


# ---------------------------------------------------------------------------------------------------------------
# Found by mutation testing
# ---------------------------------------------------------------------------------------------------------------
def test_error_standard_error_is_the_binomial_formula():
    assert op.error_standard_error(0.01, 10_000) == pytest.approx(np.sqrt(0.01 * 0.99 / 10_000), rel=1e-12)


def test_readoff_comparison_counts_a_run_below_the_paper_and_not_step_0():
    """Ours half the paper's value at step 500 (a factor 2 the other way), ten times it at step 0 (not counted)."""
    t = np.arange(1000, dtype=float)
    runs = {"baseline": _fake_history("baseline", 0 * t + 0.5), "product": _fake_history("product", 0 * t + 0.5)}
    worst, _ = op.readoff_comparison(runs, 1, {"tutorial": {0: 0.1, 500: 2.0}})  # ours: 1.0 (0.5 + penalty 0.5)
    assert worst == pytest.approx(2.0)


def test_paper_figure_draws_each_curves_read_offs_in_its_runs_colour():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    t = np.arange(300, dtype=float)
    runs = {v: _fake_history(v, 1.0 / (1 + t)) for v in ("baseline", "product")}
    fig = op.plot_paper_figure(runs, 3)
    crosses = {line.get_label(): line for line in fig.axes[0].lines if line.get_marker() == "x"}
    plt.close(fig)
    for curve, run in op.PAPER_CURVE_RUNS.items():
        line = crosses[f"blog post's figure, read by eye ({curve})"]
        assert to_hex(line.get_color()) == to_hex(op.convnet_analysis.VARIANT_COLORS[run])
        assert list(line.get_xdata()) == list(op.PAPER_READOFFS[curve])
        assert list(line.get_ydata()) == list(op.PAPER_READOFFS[curve].values())
    assert fig.axes[0].get_ylim() == (1e-2, 1e2)  # the blog post's range


def test_levels_and_runs_of_the_wrong_kind_are_named():
    """Bugs: a scalar level gave "'float' object is not iterable", an empty list of levels an empty table, a single
    history given to plot_loss_parts "not iterable", and an empty mapping an empty figure."""
    runs = {"baseline": _fake_history("baseline", np.linspace(1.0, 0.01, 20))}
    for call in (lambda levels: op.steps_to_levels(runs, levels, 1), lambda levels: op.levels_table(runs, levels, 1)):
        for bad in (1.0, []):
            with pytest.raises(ValueError, match=r"^levels must be a non-empty tuple of loss levels, got"):
                call(bad)
    with pytest.raises(ValueError, match=r"^histories must be a non-empty tuple of ConvNetHistory"):
        op.plot_loss_parts(runs["baseline"], 3)
    with pytest.raises(ValueError, match=r"^histories must hold at least one run"):
        op.plot_loss_parts({}, 3)
    with pytest.raises(ValueError, match=r"^histories must hold ConvNetHistory runs, got str at entry 0"):
        op.plot_loss_parts(["baseline"], 3)


def test_find_results_names_a_name_that_is_not_a_string():
    """Bug: find_results(5) raised pathlib's TypeError."""
    with pytest.raises(ValueError, match=r"^name must be a plain file name such as 'mnist_full.npz', got 5"):
        files.find_results(5)
