"""Tests of overparam.edge and ``python -m overparam ethanol-edge``: the stability edge of a step-size grid (Chapter 2)."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

import overparam as op
from overparam import edge
from overparam.__main__ import main
from overparam.cli import edge as cli_edge

NEVER = op.training.NEVER


def _sweep(rows, steps=(0, 10, 20, 30)) -> op.SweepResult:
    """A sweep of ``rows``: (config, losses at ``steps``, step it diverged at or None)."""
    configs = tuple(r[0] for r in rows)
    loss = np.array([r[1] for r in rows], dtype=float)
    div = np.array([-1 if r[2] is None else r[2] for r in rows])
    for i, r in enumerate(rows):
        if r[2] is not None:
            loss[i, np.searchsorted(steps, r[2]):] = np.nan
    B = len(rows)
    return op.SweepResult(configs=configs, steps=np.array(steps), loss=loss, diverged_at=div, w_e=np.zeros((B, 2)),
                          factors=tuple(() for _ in range(B)), weights_step=np.full(B, steps[-1]),
                          num_iters=steps[-1], wall_time=0.0, dtype="float64", device="cpu")


def gd(lr, depth=2):
    return op.RunConfig("gd", lr, depth=depth, p=4)


def ada(lr, rho=0.9):
    return op.RunConfig("adadelta", lr, p=4, rho=rho, eps=1e-8)


GOOD, BETTER, WORSE = [1.0, 0.5, 0.3, 0.2], [1.0, 0.4, 0.2, 0.1], [1.0, 0.6, 0.5, 0.4]
COLLAPSED = [1.0, 0.3, 0.8, 1.2]  # ends above its start: failed without diverging


def test_edge_lattice_cuts_the_interval_into_equal_ratios_rounded_like_the_grids():
    assert edge.edge_lattice(0.000562, 0.001) == [0.000649, 0.00075, 0.000866]
    half = edge.edge_lattice(0.0316, 0.1)
    assert len(half) == 7 and half[3] == 0.0562
    np.testing.assert_allclose(np.diff(np.log10([0.0316, *half, 0.1])), 1 / 16, rtol=0.02)
    assert edge.edge_lattice(1.0, 10.0, per_decade=4) == [1.78, 3.16, 5.62]
    assert edge.edge_lattice(1.0, 1.1) == [], "narrower than one ratio: nothing between"


@pytest.mark.parametrize("args, match", [((0.0, 1.0), "low"), ((1.0, 1.0), "high"), ((1.0, 0.5), "high"),
                                         ((1.0, 2.0, 0), "per_decade"), ((1.0, 2.0, 1.5), "per_decade")])
def test_edge_lattice_names_a_bad_argument(args, match):
    with pytest.raises(ValueError, match=match):
        edge.edge_lattice(*args)


def test_stability_edges_finds_exactly_the_groups_whose_best_run_is_their_largest_stable_step():
    res = _sweep([
        (gd(1e-3), GOOD, None), (gd(2e-3), BETTER, None), (gd(4e-3), GOOD, 15), (gd(8e-3), GOOD, 5),  # edge
        (ada(1e-2), GOOD, None), (ada(2e-2), BETTER, None), (ada(4e-2), WORSE, None),  # best inside: none
        (ada(1e-2, 0.95), GOOD, None), (ada(2e-2, 0.95), BETTER, None),  # top of the grid trained: none
        (gd(1e-3, 3), GOOD, 25), (gd(2e-3, 3), GOOD, 5),  # nothing trained: none
        (gd(1e-3, 1), BETTER, None), (gd(2e-3, 1), WORSE, None), (gd(4e-3, 1), GOOD, 5),  # best below: none
        (ada(1e-2, 0.5), BETTER, None), (ada(3e-2, 0.5), COLLAPSED, None),  # a collapse is a failure: edge
    ])
    found = edge.stability_edges(res, range(len(res)))
    assert [(e.group.method, e.group.depth, e.group.hyper.get("rho")) for e in found] == [
        ("gd", 2, None), ("adadelta", 1, 0.5)]
    first, second = found
    assert (first.trained_lr, first.failed_lr, first.failed_at) == (2e-3, 4e-3, 15.0), "the nearest failed step"
    assert first.group == gd(2e-3)
    assert (second.trained_lr, second.failed_lr) == (1e-2, 3e-2)
    assert second.failed_at == res.failed_at[15] < NEVER, "where the collapse rule says it failed"
    assert edge.stability_edges(res, [0, 1]) == [], "only the runs asked about: no failed step among them"
    runs = edge.edge_runs(res, range(len(res)), extend=0)
    lattice = edge.edge_lattice(2e-3, 4e-3) + edge.edge_lattice(1e-2, 3e-2)
    assert [c.lr for c in runs] == lattice
    assert all(c.method == "adadelta" and c.rho == 0.5 and c.eps == 1e-8 for c in runs[-7:]) and len(runs) == 4 + 7
    # the AdaDelta edge is at ρ = 0.5, the lowest of its grid (0.5, 0.9, 0.95): continued below it on the ratio of
    # 1 − ρ next to that end (0.5 / 0.1 = 5), ρ would leave [0, 1)
    assert edge.axis_extensions(res, range(len(res)), second.group) == {}, "1 − ρ = 2.5 and 12.5: out of range"
    assert edge.axis_extensions(res, range(len(res)), first.group) == {}, "GD has no hyper-parameter"
    with pytest.raises(ValueError, match="runs"):
        edge.stability_edges(res, [0, len(res)])


def test_a_methods_best_run_at_the_end_of_a_hyper_parameter_grid_continues_that_grid():
    # AdaDelta: ρ in {0.9, 0.95}, best at ρ = 0.95 and η = 0.02, below η = 0.04 that diverged
    res = _sweep([(ada(1e-2), GOOD, None), (ada(2e-2), WORSE, None), (ada(4e-2), GOOD, 5),
                  (ada(1e-2, 0.95), GOOD, None), (ada(2e-2, 0.95), BETTER, None), (ada(4e-2, 0.95), GOOD, 15),
                  (gd(1e-3), BETTER, None), (gd(2e-3), GOOD, 5)])
    edges = edge.stability_edges(res, range(len(res)))
    assert [e.group for e in edges] == [ada(2e-2, 0.95), gd(1e-3)], "ρ = 0.9's best is its smallest step: no edge"
    assert edge.axis_extensions(res, range(len(res)), edges[0].group) == {"rho": [0.975, 0.9875]}
    assert edge.axis_extensions(res, range(len(res)), edges[0].group, steps=3) == {"rho": [0.975, 0.9875, 0.99375]}
    runs = edge.edge_runs(res, range(len(res)))
    lattice = edge.edge_lattice(2e-2, 4e-2)
    steps = [2e-2, *lattice, 4e-2]
    assert runs == (tuple(ada(lr, 0.95) for lr in lattice) + tuple(gd(lr) for lr in edge.edge_lattice(1e-3, 2e-3))
                    + tuple(ada(lr, rho) for rho in (0.975, 0.9875) for lr in steps))
    # ε at the low end of {1e-8, 1e-6} continues geometrically below it; a best run inside a grid, not at all
    eps = _sweep([(op.RunConfig("adadelta", lr, p=4, rho=0.9, eps=e), curve, div)
                  for e, curve in ((1e-8, BETTER), (1e-6, GOOD)) for lr, div in ((2e-2, None), (4e-2, 5))]
                 + [(ada(1e-2, 0.8), GOOD, None), (ada(1e-2, 0.95), GOOD, None)])
    first = edge.stability_edges(eps, range(len(eps)))[0]
    assert first.group.eps == 1e-8 and edge.axis_extensions(eps, range(len(eps)), first.group) == {"eps": [1e-10, 1e-12]}
    # a method whose best run is not at an edge: its edges are refined, its grids not continued
    res2 = _sweep([(ada(2e-2), GOOD, None), (ada(4e-2), GOOD, 5), (ada(1e-2, 0.95), BETTER, None),
                   (ada(2e-2, 0.95), GOOD, None)])
    assert edge.edge_runs(res2, range(len(res2))) == tuple(ada(lr) for lr in edge.edge_lattice(2e-2, 4e-2))
    with pytest.raises(ValueError, match="steps"):
        edge.axis_extensions(res, range(len(res)), edges[0].group, steps=-1)


def test_a_decay_rate_best_at_the_low_end_continues_downward_within_its_range():
    res = _sweep([(ada(1e-2, 0.9), BETTER, None), (ada(2e-2, 0.9), GOOD, 5), (ada(1e-2, 0.95), GOOD, None)])
    (e,) = edge.stability_edges(res, range(len(res)))
    assert edge.axis_extensions(res, range(len(res)), e.group) == {"rho": [0.8, 0.6]}


def test_concat_sweeps_stacks_the_runs_and_refuses_another_budget():
    sweep, refinement, _ = _pair()
    both = edge.concat_sweeps(sweep, refinement)
    assert both.configs == sweep.configs + refinement.configs and both.loss.shape == (14, 4)
    np.testing.assert_array_equal(both.failed_at, np.concatenate([sweep.failed_at, refinement.failed_at]))
    with pytest.raises(ValueError, match="budget"):
        edge.concat_sweeps(sweep, _sweep([(gd(3e-3), GOOD, None)], steps=(0, 10, 20, 40)))


def _results(configs, outcome):
    """A sweep of ``configs``, each with the final loss and divergence step ``outcome(config)`` gives."""
    return _sweep([(c, [1.0, 0.5, 0.3, outcome(c)[0]], outcome(c)[1]) for c in configs])


def test_the_second_round_takes_up_what_the_first_left_open():
    # _pair's first round: depth 2's best is now lrs[1], below lrs[2] that failed: an edge still open, split
    # SECOND_PER_DECADE per decade; AdaDelta's best, lrs[4], is inside its group and its ρ grid has one value
    sweep, first, lrs = _pair()
    second = edge.second_round_runs(sweep, first)
    assert second == tuple(gd(lr) for lr in edge.edge_lattice(lrs[1], lrs[2], edge.SECOND_PER_DECADE))
    assert len(second) == 7


def test_the_second_round_continues_a_best_smallest_step_and_a_grid_still_at_its_end():
    # a group whose best step is its smallest after the first round: two smaller steps, a sixteenth-decade apart
    # (momentum's best is its smallest step too, but the first round did not refine momentum: left alone)
    mom = [op.RunConfig("momentum", lr, p=4, momentum=0.9) for lr in (1e-3, 2e-3)]
    low = _sweep([(ada(2e-2), BETTER, None), (ada(4e-2), GOOD, 5), (mom[0], BETTER, None), (mom[1], GOOD, None)])
    first = _results(edge.edge_runs(low, range(4)), lambda c: (0.2, None))
    assert {c.method for c in first.configs} == {"adadelta"}
    assert edge.second_round_runs(low, first) == (ada(0.0173), ada(0.015))
    # ρ: AdaDelta's best run is at ρ = 0.95, the top of {0.9, 0.95}, below a step that failed: the first round
    # continues ρ (0.975, 0.9875); there ρ = 0.9875 is best, at 0.0264, inside its group: the second round
    # continues ρ again, at that step and its two neighbours
    rho = _sweep([(ada(lr, r), WORSE if lr == 1e-2 else curve, 5 if lr == 4e-2 else None)
                  for r, curve in ((0.9, GOOD), (0.95, BETTER)) for lr in (1e-2, 2e-2, 4e-2)])
    runs = edge.edge_runs(rho, range(len(rho)))
    lattice = edge.edge_lattice(2e-2, 4e-2)
    assert {c.rho for c in runs} == {0.9, 0.95, 0.975, 0.9875}

    def outcome(c):
        if c.lr == 4e-2:
            return 0.9, 5
        inside = c.lr == lattice[1]  # each continued ρ's best step lies inside its group
        return {0.975: 0.075 if inside else 0.08, 0.9875: 0.05 if inside else 0.07}.get(c.rho, 0.15), None

    second = edge.second_round_runs(rho, _results(runs, outcome))
    assert second == tuple(ada(lr, r) for r in (0.99375, 0.996875) for lr in lattice[:3])
    with pytest.raises(ValueError, match="budget"):
        edge.second_round_runs(rho, _sweep([(ada(3e-2), GOOD, None)], steps=(0, 10, 20, 40)))


def test_an_extension_is_a_group_of_the_refinement_alone():
    sweep, _, _ = _pair()
    extra = _sweep([(ada(lr, 0.95), [1.0, 0.3, 0.2, v], None) for lr, v in ((2e-2, 0.05), (3e-2, 0.08))])
    (group,) = edge.edge_groups(sweep, extra, optimum=0.01)
    assert group.extension and group.label == "AdaDelta, ρ=0.95, ε=1e-08" and group.best_of(False) == np.inf
    assert group.best_of() == pytest.approx(0.04) and group.group == ada(2e-2, 0.95)
    sweep_groups = edge.edge_groups(sweep, _pair()[1], optimum=0.01)
    assert not any(g.extension for g in sweep_groups)


def test_teaser_grid_holds_the_l4_runs_of_gd_at_depths_1_and_2_and_of_the_baselines():
    res = _sweep([(gd(1e-3, 1), GOOD, None), (gd(1e-3, 2), GOOD, None), (gd(1e-3, 3), GOOD, None),
                  (op.RunConfig("gd", 1e-3, depth=2, p=2), GOOD, None), (ada(1e-2), GOOD, None),
                  (op.RunConfig("adam", 1e-3, p=4), GOOD, None), (op.RunConfig("e2e", 1e-3, depth=2, p=4), GOOD, None)])
    assert edge.teaser_grid(res) == [0, 1, 4, 5]


def _pair():
    sweep = _sweep([(gd(1e-3), GOOD, None), (gd(2e-3), BETTER, None), (gd(4e-3), [1.0, 0.05, 0.9, 0.9], 25),
                    (ada(1e-2), WORSE, None), (ada(2e-2), [1.0, 0.3, 0.2, 0.15], None), (ada(4e-2), GOOD, 5)])
    runs = edge.edge_runs(sweep, range(len(sweep)), extend=0)
    lrs = [c.lr for c in runs]
    assert lrs == edge.edge_lattice(2e-3, 4e-3) + edge.edge_lattice(2e-2, 4e-2) and len(lrs) == 8
    curves = [([1.0, 0.35, 0.15, 0.08], None), ([1.0, 0.3, 0.1, 0.06], None), ([1.0, 0.2, 0.9, 0.9], 25),
              ([1.0, 0.5, 0.9, 0.9], 25)]
    curves += [([1.0, 0.3, 0.2, v], None) for v in (0.12, 0.14, 0.13, 0.16)]
    refinement = _sweep([(c, *curve) for c, curve in zip(runs, curves)])
    return sweep, refinement, lrs


def test_edge_groups_reads_each_group_across_both_files_by_learning_rate():
    sweep, refinement, lrs = _pair()
    groups = edge.edge_groups(sweep, refinement, optimum=0.01)
    assert [g.group.method for g in groups] == ["gd", "adadelta"]
    d2, ad = groups
    np.testing.assert_array_equal(d2.lr, [1e-3, 2e-3, *lrs[:4], 4e-3])
    np.testing.assert_array_equal(d2.refined, [False, False, True, True, True, True, False])
    np.testing.assert_allclose(d2.final_gap, [0.19, 0.09, 0.07, 0.05, np.inf, np.inf, np.inf])
    np.testing.assert_allclose(d2.lowest_gap, [0.19, 0.09, 0.07, 0.05, 0.19, 0.49, 0.04])
    np.testing.assert_array_equal(d2.failed_at, [NEVER, NEVER, NEVER, NEVER, 25, 25, 25])
    assert d2.best == 3 and d2.group == gd(lrs[1]) and d2.label == "GD, depth 2 (one extra scalar)"
    assert d2.best_of(False) == pytest.approx(0.09) and d2.best_of(True) == pytest.approx(0.05)
    assert d2.best_of() == pytest.approx(0.05)
    assert ad.group == ada(lrs[4]) and ad.best_of(False) == pytest.approx(0.14) and ad.best_of() == pytest.approx(0.11)
    assert ad.lowest_gap[-1] == pytest.approx(0.99), "diverged at once: its lowest is its start"
    assert ad.label == "AdaDelta, ρ=0.9, ε=1e-08"


def test_edge_groups_refuses_files_that_do_not_belong_together():
    sweep, refinement, _ = _pair()
    with pytest.raises(ValueError, match="optimum"):
        edge.edge_groups(sweep, refinement, optimum=0.2)
    with pytest.raises(ValueError, match="budget and steps"):
        edge.edge_groups(sweep, _sweep([(gd(3e-3), GOOD, None)], steps=(0, 10, 20, 40)), 0.01)
    with pytest.raises(ValueError, match="has no run in the sweep"):
        edge.edge_groups(sweep, _sweep([(op.RunConfig("adam", 1e-3, p=4), GOOD, None)]), 0.01)
    with pytest.raises(ValueError, match="refinement"):
        edge.edge_groups(sweep, "a file", 0.01)


def test_edge_markdown_lists_each_groups_best_run_before_and_after_the_refinement():
    sweep, refinement, lrs = _pair()
    extra = _sweep([(ada(lr, 0.95), [1.0, 0.3, 0.2, v], None) for lr, v in ((2e-2, 0.05), (3e-2, 0.08))])
    table = edge.edge_markdown(edge.edge_groups(sweep, refinement, 0.01) + edge.edge_groups(sweep, extra, 0.01))
    lines = table.splitlines()
    assert lines[0].startswith("| method | best η, sweep's grid | its L − L* | best η, finer grid |")
    assert lines[2] == f"| GD, depth 2 (one extra scalar) | 0.002 | 0.0900 | {lrs[1]:.3g} | 0.0500 | {lrs[2]:.3g} (25) |"
    assert lines[3] == f"| AdaDelta, ρ=0.9, ε=1e-08 | 0.02 | 0.1400 | {lrs[4]:.3g} | 0.1100 | 0.04 (5) |"
    assert lines[4] == "| AdaDelta, ρ=0.95, ε=1e-08 | — | — | 0.02 | 0.0400 | none |", "an extension"
    with pytest.raises(ValueError, match="EdgeGroup"):
        edge.edge_markdown([sweep])


def test_plot_edge_fills_the_runs_that_trained_and_leaves_the_failed_ones_open():
    import matplotlib.pyplot as plt

    sweep, refinement, lrs = _pair()
    ax = edge.plot_edge(edge.edge_groups(sweep, refinement, optimum=0.01))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["GD, depth 2 (one extra scalar)", "GD, depth 2 (one extra scalar): best final",
                      "AdaDelta, ρ=0.9, ε=1e-08", "trained, sweep's grid (final)", "trained, refinement (final)",
                      "failed (lowest before failing)"]
    (reference,) = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert list(reference.get_ydata()) == pytest.approx([0.05, 0.05]), "at depth 2's best final L − L*"
    open_markers = [line for line in ax.lines if line.get_markerfacecolor() == "white" and len(line.get_xdata())]
    drawn = sorted((x, y) for line in open_markers for x, y in zip(line.get_xdata(), line.get_ydata()))
    expected = sorted([(lrs[2], 0.19), (lrs[3], 0.49), (4e-3, 0.04), (4e-2, 0.99)])
    assert [x for x, _ in drawn] == [x for x, _ in expected], "every failed run, and only those, drawn open"
    assert [y for _, y in drawn] == pytest.approx([y for _, y in expected]), "at the lowest L − L* before failing"
    filled = [line for line in ax.lines if line.get_linestyle() == "None" and len(line.get_xdata())
              and line.get_markerfacecolor() != "white"]
    sizes = {(x, line.get_markersize()) for line in filled for x in line.get_xdata()}
    assert sizes == {(1e-3, 8), (2e-3, 8), (lrs[0], 5), (lrs[1], 5), (1e-2, 8), (2e-2, 8), *(
        (x, 5) for x in lrs[4:])}, "trained runs filled: the sweep's large, the refinement's small"
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate η"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="EdgeGroup"):
        edge.plot_edge([sweep])


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------
@pytest.fixture
def source(tmp_path, monkeypatch, ethanol_std):
    """A small sweep on the Ethanol data with a stability edge: depth 1 on ℓ4, η = 0.00316 trains, 0.01 diverges."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_edge, "load_standardized_ethanol", lambda data_dir=None: ethanol_std)
    runs = op.product_runs(method="gd", depth=1, p=4, lr=[0.001, 0.00316, 0.01], init_scale=op.ethanol.W_E0_NORM)
    path = tmp_path / "source.npz"
    op.run_sweep(ethanol_std, runs, 200, record=op.log_steps(200, 10), dtype="float32").save(path)
    return path


def test_ethanol_edge_refines_the_edge_and_records_its_source(source, tmp_path, capsys):
    assert main(["ethanol-edge", "--source", str(source), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "results" / "ethanol_edge.npz"
    refinement = op.SweepResult.load(written)
    src = op.SweepResult.load(source)
    lattice = edge.edge_lattice(0.00316, 0.01)
    first = edge._first_runs(refinement, len(lattice))
    assert [c.lr for c in first.configs] == lattice and refinement.provenance["rounds"][0] == len(lattice)
    second = edge.second_round_runs(src, first)
    assert second and refinement.configs[len(lattice):] == second and refinement.provenance["rounds"][1] == len(second)
    assert all(c == dataclasses.replace(src.configs[1], lr=c.lr) for c in refinement.configs)
    assert refinement.num_iters == 200 and np.array_equal(refinement.steps, src.steps)
    assert refinement.dtype == "float32"
    assert refinement.provenance["source"] == {"file": "source.npz",
                                               "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    assert refinement.provenance["command"].startswith("python -m overparam ethanol-edge")
    assert "GD, depth 1: best final L − L*" in out and "with the refinement" in out
    assert (tmp_path / "results" / "ethanol_edge.png").exists()
    edge.check_refinement(refinement, src, source)  # the chapter's check: it holds the refinement of that file
    with pytest.raises(ValueError, match="rounds"):
        edge.check_refinement(dataclasses.replace(refinement, provenance={
            **refinement.provenance, "rounds": [len(lattice), 0]}), src, source)
    with pytest.raises(ValueError, match="runs are not"):
        edge.check_refinement(dataclasses.replace(refinement, configs=refinement.configs[::-1]), src, source)
    changed = tmp_path / "changed.npz"
    changed.write_bytes(source.read_bytes() + b" ")
    with pytest.raises(ValueError, match="SHA-256"):
        edge.check_refinement(refinement, src, changed)
    assert op.files.file_sha256(source) == hashlib.sha256(source.read_bytes()).hexdigest()
    # a second run keeps the first file
    before = written.read_bytes()
    assert main(["ethanol-edge", "--source", str(source), "--threads", "1", "--no-figures"]) == 0
    assert written.read_bytes() == before and len(list(written.parent.glob("ethanol_edge*.npz"))) == 2


def test_ethanol_edge_redraws_without_training_and_refuses_another_source(source, tmp_path, monkeypatch, capsys,
                                                                        ethanol_std):
    assert main(["ethanol-edge", "--source", str(source), "--threads", "1"]) == 0
    figure = tmp_path / "results" / "ethanol_edge.png"
    figure.unlink()
    monkeypatch.setattr(cli_edge, "run_sweep", lambda *a, **k: pytest.fail("--redraw trained"))
    assert main(["ethanol-edge", "--source", str(source), "--redraw"]) == 2, "the committed file's name: --out"
    assert "name the results file with --out" in capsys.readouterr().err and not figure.exists()
    assert main(["ethanol-edge", "--source", str(source), "--redraw", "--out", "results/ethanol_edge.npz"]) == 0
    assert figure.exists() and "redrew" in capsys.readouterr().out
    other = op.SweepResult.load(source)
    other = op.run_sweep(ethanol_std, other.configs[:1] + (
        op.RunConfig("gd", 0.00562, depth=1, p=4, init_scale=op.ethanol.W_E0_NORM), other.configs[2]), 200,
        record=other.steps, dtype="float32")
    other.save(tmp_path / "other.npz")
    assert main(["ethanol-edge", "--source", str(tmp_path / "other.npz"), "--redraw", "--out",
                 "results/ethanol_edge.npz"]) == 2
    assert "does not hold the refinement of" in capsys.readouterr().err


def test_ethanol_edge_without_an_edge_or_a_source_is_one_error_line(source, tmp_path, monkeypatch, capsys):
    flat = op.SweepResult.load(source)
    keep = [0, 1]
    op.SweepResult(configs=tuple(flat.configs[i] for i in keep), steps=flat.steps, loss=flat.loss[keep],
                   diverged_at=flat.diverged_at[keep], w_e=flat.w_e[keep], factors=flat.factors[:2],
                   weights_step=flat.weights_step[keep], num_iters=flat.num_iters, wall_time=0.0,
                   dtype=flat.dtype, device="cpu").save(tmp_path / "flat.npz")
    assert main(["ethanol-edge", "--source", str(tmp_path / "flat.npz")]) == 1
    assert "no teaser group at a stability edge" in capsys.readouterr().err
    monkeypatch.setattr(cli_edge, "find_results", lambda name: None)
    assert main(["ethanol-edge"]) == 1
    err = capsys.readouterr().err
    assert "ethanol_paper.npz was not found" in err and "--source" in err and len(err.strip().splitlines()) == 1
