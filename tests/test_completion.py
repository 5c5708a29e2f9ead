"""Part B's completion experiment over many draws (``op.completion``) and ``python -m overparam completion``.

The oracle of the runner is the single-draw experiment, :func:`op.factorization.completion_experiment`, which
``tests/test_factorization.py`` tests against closed forms and autograd; here each seed of the many-draw file must
be exactly that call. The summaries are checked on hand-made files whose answers are known.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import overparam as op
from overparam.__main__ import main
from overparam.cli import completion as cli_completion

cp = op.completion
fz = op.factorization
REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"
FAST = cp.SEED_PRESETS["fast"]


@pytest.fixture(scope="module")
def fast_run() -> cp.CompletionSeeds:
    calls = []
    result = cp.run_completion_seeds(FAST, command="test", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k + 1, len(FAST.seeds)) for k in range(len(FAST.seeds))]
    return result


def _made(errors: np.ndarray, nuclear: np.ndarray, counts=None) -> cp.CompletionSeeds:
    """A file with the given errors (shape (S, D, C) and (S, C)); the other fields are filler."""
    S, D, C = errors.shape
    counts = np.arange(1, C + 1) * 100 if counts is None else np.asarray(counts)
    zeros = np.zeros((S, D, C))
    return cp.CompletionSeeds(
        seeds=np.arange(S) * 2, counts=counts, depths=np.arange(2, 2 + D), errors=errors, final_loss=zeros,
        effective_ranks=zeros, diverged_at=np.where(np.isnan(errors), 5.0, np.inf), seconds=zeros,
        singular_values=np.zeros((S, D, C, 3)), nuclear_errors=nuclear, nuclear_effective_ranks=np.zeros((S, C)),
        nuclear_seconds=np.zeros((S, C)))


# ---------------------------------------------------------------------------
# The preset and the runner
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seeds, match", [((0, 2, 0), "each seed once"), ((), "non-empty"), ((0, -2), r"seeds\[1\]"),
                                          ((0, 1.5), r"seeds\[1\]")])
def test_a_preset_s_seeds_are_distinct_integers(seeds, match):
    with pytest.raises(ValueError, match=match):
        cp.CompletionSeedsPreset("x", FAST.base, seeds=seeds)


def test_a_preset_needs_a_completion_preset_as_its_base():
    with pytest.raises(ValueError, match="base must be a CompletionPreset"):
        cp.CompletionSeedsPreset("x", {"n": 3}, seeds=(0,))
    with pytest.raises(TypeError, match="preset must be a CompletionSeedsPreset"):
        cp.run_completion_seeds(FAST.base)


def test_the_long_preset_is_the_chapter_s_live_run_at_more_counts_and_draws():
    """The file the chapter reads beside its live run must share the live run's settings, and its seeds no
    generator (a draw with seed s starts from s + 1)."""
    long, live = cp.SEED_PRESETS["long"], fz.COMPLETION_PRESETS["default"]
    for name in ("n", "rank", "depths", "lr", "num_iters", "scale"):
        assert getattr(long.base, name) == getattr(live, name), name
    assert set(live.counts) <= set(long.base.counts) and live.seed in long.seeds
    assert len(long.seeds) == 20 and not set(long.seeds) & {s + 1 for s in long.seeds}
    assert long.base.counts[0] > long.base.rank * (2 * long.base.n - long.base.rank)  # above the degrees of freedom


def test_the_single_draw_experiment_passes_its_iteration_budget_to_the_convex_solver():
    b = FAST.base
    with pytest.raises(fz.ConvergenceError, match="in max_iters=3 iterations"):
        fz.completion_experiment(b.n, b.rank, b.counts, b.depths, b.lr, 5, b.scale, 0, nuclear_max_iters=3)
    with pytest.raises(ValueError, match="nuclear_max_iters"):
        fz.completion_experiment(b.n, b.rank, b.counts, b.depths, b.lr, 5, b.scale, 0, nuclear_max_iters=0)


def test_each_seed_is_the_single_draw_experiment(fast_run):
    b = FAST.base
    S, D, C = len(FAST.seeds), len(b.depths), len(b.counts)
    assert fast_run.errors.shape == (S, D, C) and fast_run.nuclear_errors.shape == (S, C)
    for k, seed in enumerate(FAST.seeds):
        one = fz.completion_experiment(b.n, b.rank, b.counts, b.depths, b.lr, b.num_iters, b.scale, seed,
                                       record=b.num_iters, nuclear_max_iters=cp.NUCLEAR_MAX_ITERS)
        for name in ("errors", "final_loss", "effective_ranks", "diverged_at", "nuclear_errors",
                     "nuclear_effective_ranks"):
            np.testing.assert_array_equal(getattr(fast_run, name)[k], getattr(one, name), err_msg=name)
        np.testing.assert_array_equal(fast_run.singular_values[k], one.singular_values[:, :, -1, :])
    assert not np.array_equal(fast_run.errors[0], fast_run.errors[1]), "each seed is its own draw"
    assert fast_run.settings == FAST.settings and fast_run.provenance["command"] == "test"
    assert fast_run.provenance["preset"] == "fast" and fast_run.wall_time > 0


def test_an_interrupted_run_goes_on_from_its_checkpoint_to_the_same_result(fast_run, tmp_path):
    checkpoint = tmp_path / "run.partial.npz"

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cp.run_completion_seeds(FAST, command="test", checkpoint=checkpoint, progress=stop_after_two)
    held = cp.CompletionSeeds.load(checkpoint)
    assert held.seeds.tolist() == [0, 2] and held.settings == {**FAST.settings, "seeds": [0, 2]}
    assert cp.resume_from(checkpoint, FAST).seeds.tolist() == [0, 2]
    resumed = cp.run_completion_seeds(FAST, command="test", checkpoint=checkpoint)
    assert resumed.provenance["resumed_draws"] == 2 and resumed.holds(FAST)
    for name in ("errors", "final_loss", "effective_ranks", "diverged_at", "singular_values", "nuclear_errors"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(fast_run, name), err_msg=name)
    assert cp.resume_from(tmp_path / "none.npz", FAST) is None


def test_a_checkpoint_of_other_settings_or_seeds_is_refused(fast_run, tmp_path):
    other = dataclasses.replace(FAST, base=dataclasses.replace(FAST.base, num_iters=301))
    fast_run.save(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="checkpoint: .*c.npz holds the draws of other settings or seeds"):
        cp.run_completion_seeds(other, checkpoint=tmp_path / "c.npz")
    with pytest.raises(ValueError, match="other settings or seeds"):
        cp.resume_from(tmp_path / "c.npz", dataclasses.replace(FAST, seeds=(2, 0, 4)))


def test_save_and_load_give_the_same_file_and_check_the_preset(fast_run, tmp_path):
    path = fast_run.save(tmp_path / "seeds.npz")
    back = cp.CompletionSeeds.load(path)
    for f in dataclasses.fields(cp.CompletionSeeds):
        a, b = getattr(fast_run, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        else:
            assert a == b, f.name
    assert back.holds(FAST)
    assert not back.holds(dataclasses.replace(FAST, seeds=(0, 2)))
    assert not back.holds(dataclasses.replace(FAST, base=dataclasses.replace(FAST.base, num_iters=301)))


def test_a_file_whose_arrays_do_not_match_its_draws_is_refused(fast_run, tmp_path):
    bad = dataclasses.replace(fast_run, final_loss=fast_run.final_loss[:, :, :1])
    bad.save(tmp_path / "bad.npz")
    with pytest.raises(op.InvalidResultsFile, match=r"final_loss has shape \(3, 2, 1\), expected \(3, 2, 2\)"):
        cp.CompletionSeeds.load(tmp_path / "bad.npz")


def test_a_file_whose_singular_values_or_settings_do_not_match_is_refused(fast_run, tmp_path):
    dataclasses.replace(fast_run, singular_values=fast_run.singular_values[:2]).save(tmp_path / "sv.npz")
    with pytest.raises(op.InvalidResultsFile,
                       match=r"singular_values has shape \(2, 2, 2, 6\), expected \(3, 2, 2, top\)"):
        cp.CompletionSeeds.load(tmp_path / "sv.npz")
    dataclasses.replace(fast_run, settings={**fast_run.settings, "seeds": [0, 2, 6]}).save(tmp_path / "seeds.npz")
    with pytest.raises(op.InvalidResultsFile, match=r"seeds \[0, 2, 4\] are not those of the file's settings"):
        cp.CompletionSeeds.load(tmp_path / "seeds.npz")
    dataclasses.replace(fast_run, counts=fast_run.counts[None, :]).save(tmp_path / "2d.npz")
    with pytest.raises(op.InvalidResultsFile, match="counts"):
        cp.CompletionSeeds.load(tmp_path / "2d.npz")


def test_a_file_without_one_of_its_arrays_is_called_damaged(fast_run, tmp_path):
    path = fast_run.save(tmp_path / "full.npz")
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files if k != "effective_ranks"}
    np.savez(tmp_path / "partial.npz", **members)
    with pytest.raises(op.InvalidResultsFile, match="not a valid results file .*effective_ranks"):
        cp.CompletionSeeds.load(tmp_path / "partial.npz")


def test_a_results_file_of_another_kind_names_its_loader(fast_run, tmp_path):
    with pytest.raises(op.InvalidResultsFile, match="a sweep results file .*read it with op.SweepResult.load"):
        cp.CompletionSeeds.load(REPO_RESULTS / "ethanol_edge.npz")
    fast_run.save(tmp_path / "seeds.npz")
    with pytest.raises(op.InvalidResultsFile, match="a matrix-completion file .*op.completion.CompletionSeeds.load"):
        op.SweepResult.load(tmp_path / "seeds.npz")


# ---------------------------------------------------------------------------
# The summaries, on files with known answers
# ---------------------------------------------------------------------------
def test_recovered_counts_count_errors_up_to_the_threshold_and_no_diverged_run():
    errors = np.array([[[0.5, 0.01, 0.001]], [[np.nan, 0.02, 0.0]]])  # 2 seeds, 1 depth, 3 counts
    nuclear = np.array([[0.3, 0.3, 1e-8], [0.3, 1e-8, 1e-8]])
    made = _made(errors, nuclear)
    np.testing.assert_array_equal(cp.recovered_counts(made), [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(cp.recovered_counts(made, threshold=0.03), [[0, 2, 2], [0, 1, 2]])
    assert cp.method_names(made) == ["depth 2", "nuclear norm"]
    assert cp.method_errors(made).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="threshold"):
        cp.recovered_counts(made, threshold=0)


def test_recovery_onset_is_where_half_the_draws_recover_from_then_on():
    ok, bad = 0.001, 0.5
    errors = np.array([[[bad, ok, bad, ok, ok], [ok, ok, ok, ok, ok], [ok, ok, ok, ok, bad]],
                       [[bad, ok, bad, bad, ok], [bad, ok, ok, ok, ok], [ok, ok, ok, ok, bad]]])
    nuclear = np.full((2, 5), bad)
    made = _made(errors, nuclear, counts=[10, 20, 30, 40, 50])
    # depth 2: half (1 of 2) from count 40 on (30 fails in both); depth 3: from 10 (one of two is half);
    # depth 4: fails at the last count; the nuclear norm never recovers
    np.testing.assert_array_equal(cp.recovery_onset(made), [40, 10, np.nan, np.nan])


def test_recovery_onset_with_an_odd_number_of_draws_at_the_last_count_and_for_every_draw():
    ok, bad = 0.001, 0.5
    errors = np.array([[[bad, bad, ok]], [[bad, ok, ok]], [[ok, bad, bad]]])  # 3 draws, 1 depth, 3 counts
    nuclear = np.array([[bad, ok, ok], [bad, ok, ok], [bad, bad, ok]])
    made = _made(errors, nuclear, counts=[10, 20, 30])
    # depth 2: 1, 1, 2 of 3 draws (two of three are needed); nuclear norm: 0, 2, 3
    np.testing.assert_array_equal(cp.recovery_onset(made), [30, 20])
    np.testing.assert_array_equal(cp.recovery_onset(made, fraction=1.0), [np.nan, 30])
    np.testing.assert_array_equal(cp.recovery_onset(made, fraction=1 / 3), [10, 20])
    for fraction in (0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            cp.recovery_onset(made, fraction=fraction)


def test_the_table_gives_the_median_and_the_recovered_draws_and_counts_a_diverged_run_as_the_worst():
    errors = np.array([[[0.2, 0.004]], [[0.4, 0.006]], [[np.nan, 0.5]]])
    nuclear = np.array([[0.3, 1e-8], [0.1, 1e-8], [0.2, 0.02]])
    text = cp.seeds_markdown(_made(errors, nuclear))
    assert "Median relative error over 3 draws; in parentheses, the number of draws with error ≤ 0.01" in text
    assert "error ≤ 0.5:" in cp.seeds_markdown(_made(errors, nuclear), threshold=0.5)
    assert "| \\|Ω\\| | depth 2 | nuclear norm |\n|---|---|---|\n" in text
    assert "| 100 | 0.4 (0/3) | 0.2 (0/3) |" in text
    assert "| 200 | 0.006 (2/3) | 1e-08 (2/3) |" in text


def test_the_figure_draws_each_method_s_median_its_range_and_the_threshold():
    import matplotlib.pyplot as plt

    errors = np.array([[[0.2, 0.004]], [[0.4, 0.006]], [[np.nan, 0.5]]])
    nuclear = np.array([[0.3, 1e-8], [0.1, 1e-8], [0.2, 0.02]])
    ax = cp.plot_seed_errors(_made(errors, nuclear))
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"depth 2 (1 diverged left out)", "minimum nuclear norm", "recovery threshold 0.01"}
    np.testing.assert_allclose(lines["depth 2 (1 diverged left out)"].get_ydata(), [0.3, 0.006])
    np.testing.assert_allclose(lines["minimum nuclear norm"].get_ydata(), [0.2, 1e-8])
    bands = [c for c in ax.collections]
    assert len(bands) == 2
    low_high = bands[1].get_paths()[0].vertices[:, 1]  # the nuclear norm's band, from 1e-8 up to 0.3
    assert low_high.min() == pytest.approx(1e-8) and low_high.max() == pytest.approx(0.3)
    assert "20 draws" not in ax.get_title() and "3 draws" in ax.get_title()
    plt.close(ax.figure)
    unsolved = nuclear.copy()
    unsolved[0, 0] = np.nan  # completion_experiment(nuclear=False) leaves the convex fits nan
    ax = cp.plot_seed_errors(_made(errors, unsolved))
    assert "minimum nuclear norm (1 not solved left out)" in [line.get_label() for line in ax.get_lines()]
    plt.close(ax.figure)


def test_the_recovered_figure_draws_each_method_s_fraction_of_draws():
    import matplotlib.pyplot as plt

    errors = np.array([[[0.2, 0.004]], [[0.4, 0.006]], [[np.nan, 0.5]]])
    nuclear = np.array([[0.3, 1e-8], [0.1, 1e-8], [0.2, 0.02]])
    ax = cp.plot_recovered(_made(errors, nuclear), threshold=0.01)
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(lines["depth 2"], [0, 2 / 3])
    np.testing.assert_allclose(lines["minimum nuclear norm"], [0, 2 / 3])
    assert "error ≤ 0.01" in ax.get_ylabel() and ax.get_title() == "fraction of the 3 draws recovered"
    # the legend sits beside the axes, where no line can run through it
    renderer = ax.figure.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    plt.close(ax.figure)


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------
def test_the_command_writes_the_file_the_figure_and_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["completion", "--preset", "fast"]) == 0
    out = capsys.readouterr()
    written = tmp_path / "results" / "completion_fast.npz"
    assert written.is_file() and written.with_suffix(".png").is_file()
    assert "| depth 3 |" in out.out and "results will be written to results/completion_fast.npz" in out.err
    held = cp.CompletionSeeds.load(written)
    assert held.holds(FAST) and held.provenance["command"] == "python -m overparam completion --preset fast"


def test_the_command_resumes_from_its_checkpoint_removes_it_and_refuses_another_run_s(fast_run, tmp_path,
                                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "results" / "completion_fast.partial.npz"
    checkpoint.parent.mkdir()
    partial = cp.CompletionSeeds(
        seeds=fast_run.seeds[:1], counts=fast_run.counts, depths=fast_run.depths,
        **{name: getattr(fast_run, name)[:1] for name in ("errors", "final_loss", "effective_ranks",
                                                          "diverged_at", "seconds", "singular_values",
                                                          "nuclear_errors", "nuclear_effective_ranks",
                                                          "nuclear_seconds")},
        settings={**FAST.settings, "seeds": [0]})
    partial.save(checkpoint)
    assert main(["completion", "--preset", "fast", "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert f"resuming from results/completion_fast.partial.npz: 1 of {len(FAST.seeds)} draws done" in err
    held = cp.CompletionSeeds.load(tmp_path / "results" / "completion_fast.npz")
    assert held.provenance["resumed_draws"] == 1 and held.holds(FAST) and not checkpoint.exists()
    np.testing.assert_array_equal(held.errors, fast_run.errors)
    dataclasses.replace(partial, settings={**partial.settings, "num_iters": 7}).save(
        tmp_path / "results" / "other.partial.npz")
    with pytest.raises(SystemExit) as info:
        main(["completion", "--preset", "fast", "--out", "results/other.npz"])
    assert info.value.code == 2
    assert "holds the draws of other settings or seeds" in capsys.readouterr().err
    assert not (tmp_path / "results" / "other.npz").exists()


def test_the_command_never_replaces_its_default_file_and_redraws_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["completion", "--preset", "fast"]) == 0
    default = tmp_path / "results" / "completion_fast.npz"
    raw = default.read_bytes()
    assert main(["completion", "--preset", "fast", "--no-figures"]) == 0
    assert default.read_bytes() == raw
    assert len(list((tmp_path / "results").glob("completion_fast-*.npz"))) == 1, "a fresh time-stamped file"
    capsys.readouterr()

    def never(*args, **kwargs):
        raise AssertionError("--redraw trained")

    monkeypatch.setattr(cli_completion, "run_completion_seeds", never)
    default.with_suffix(".png").unlink()
    assert main(["completion", "--preset", "fast", "--redraw"]) == 0
    assert default.with_suffix(".png").is_file() and "redrew" in capsys.readouterr().out
    monkeypatch.setitem(cp.SEED_PRESETS, "fast", dataclasses.replace(FAST, seeds=(0, 2)))
    assert main(["completion", "--preset", "fast", "--redraw"]) == 2
    assert "does not hold the runs of --preset fast" in capsys.readouterr().err


def test_the_committed_file_holds_the_long_preset_and_its_first_draw_is_reproduced():
    """Recompute one network run and one convex fit of the committed file's first draw (a few seconds)."""
    held = cp.CompletionSeeds.load(REPO_RESULTS / "completion_long.npz")
    long = cp.SEED_PRESETS["long"]
    assert held.holds(long) and not held.diverged.any()
    b, c, d = long.base, list(long.base.counts).index(2000), list(long.base.depths).index(3)
    again = fz.completion_experiment(b.n, b.rank, [2000], [3], b.lr, b.num_iters, b.scale, int(held.seeds[0]),
                                     record=b.num_iters, nuclear_max_iters=cp.NUCLEAR_MAX_ITERS)
    np.testing.assert_allclose(again.errors[0, 0], held.errors[0, d, c], rtol=1e-6)
    np.testing.assert_allclose(again.final_loss[0, 0], held.final_loss[0, d, c], rtol=1e-4)
    np.testing.assert_allclose(again.nuclear_errors[0], held.nuclear_errors[0, c], rtol=1e-6)


def test_the_single_draw_table_has_a_row_per_count_and_a_column_per_method(fast_run):
    b = FAST.base
    one = fz.completion_experiment(b.n, b.rank, b.counts, b.depths, b.lr, b.num_iters, b.scale, 0,
                                   record=b.num_iters)
    text = fz.completion_markdown(one)
    assert text.startswith("Relative error (effective rank of the fit):\n\n| \\|Ω\\| | depth 2 | depth 3 | "
                           "nuclear norm |\n|---|---|---|---|\n")
    assert (f"| 500 | {one.errors[0, 1]:.2g} (rank {one.effective_ranks[0, 1]:.2f}) | "
            f"{one.errors[1, 1]:.2g} (rank {one.effective_ranks[1, 1]:.2f}) | "
            f"{one.nuclear_errors[1]:.2g} (rank {one.nuclear_effective_ranks[1]:.2f}) |") in text
    with pytest.raises(ValueError, match="one row of 2 texts"):
        fz.counts_table([1, 2], ["a"], [["x"]])
