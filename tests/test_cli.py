"""``python -m overparam``'s commands: no silent overwrites, output checked first, one-line usage errors.

Every command runs a monkeypatched tiny preset in ``tmp_path`` (a few seconds in all);
the Ethanol data are replaced by a small random problem, so no test needs the data set, except the one that
checks ``python -m overparam data`` on the offline copy (skipped without it).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import overparam as op
from overparam import ethanol, toy
from overparam.cli import ethanol as cli_ethanol
from overparam.cli import toy as cli_toy
from overparam.__main__ import main
from overparam.files import OutputPathError


@pytest.fixture(autouse=True)
def tiny_presets(tmp_path, monkeypatch):
    """Tiny toy and Ethanol presets, a fake Ethanol problem, one thread, and ``tmp_path`` as working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(toy.TOY_PRESETS, "fast", dataclasses.replace(
        toy.TOY_PRESETS["fast"], num_iters=20, y1_values=(5.0,), depths=(1,)))
    monkeypatch.setitem(ethanol.PRESETS, "fast", dataclasses.replace(
        ethanol.PRESETS["fast"], num_iters=20, depths=(1, 2)))
    rng = np.random.default_rng(0)
    fake = op.standardize(rng.normal(size=(32, 5)), rng.normal(size=32))
    monkeypatch.setattr(cli_ethanol, "load_standardized_ethanol", lambda data_dir=None: fake)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _record_scale_stamps(monkeypatch, module) -> list[str]:
    """Record the scale each figure of ``module`` is stamped with (:func:`overparam.plotting.note_scale`)."""
    stamps, note_scale = [], module.note_scale
    monkeypatch.setattr(module, "note_scale", lambda fig, text, scale: (stamps.append(scale),
                                                                        note_scale(fig, text, scale=scale))[1])
    return stamps


def _forbid(monkeypatch, module, *names):
    """Make the data loader and the computations of ``module`` fail if they are ever called."""
    def called(*args, **kwargs):
        raise AssertionError("the command started working before it checked --out")

    for name in names:
        monkeypatch.setattr(module, name, called)


TOY = ["toy", "--preset", "fast", "--threads", "1", "--no-figures"]
ETHANOL = ["ethanol", "--preset", "fast", "--threads", "1", "--dtype", "float64", "--no-figures"]


# ---------------------------------------------------------------------------
# Bug 1: the default results files are never overwritten
# ---------------------------------------------------------------------------
def _committed(tmp_path, name):
    """A stand-in for a committed file ``results/<name>``."""
    path = tmp_path / "results" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"the committed results")
    return path


def test_toy_keeps_an_existing_default_file(tmp_path, capsys):
    committed = _committed(tmp_path, "toy_fast_y5.npz")
    assert main(TOY) == 0
    assert committed.read_bytes() == b"the committed results"
    fresh = [p for p in (tmp_path / "results").iterdir() if p != committed]
    assert len(fresh) == 1 and fresh[0].name.startswith("toy_fast-") and fresh[0].name.endswith("_y5.npz")
    err = capsys.readouterr().err
    stem = f"results/{fresh[0].name[: -len('_y5.npz')]}"
    assert "results/toy_fast_y5.npz exists and is kept" in err and f"written to {stem}_y*.npz" in err
    assert op.load_toy_results(stem, (5.0,))[5.0].num_iters == 20


@pytest.mark.parametrize("ask", [["--force"], ["--out", "results/toy_fast"]])
def test_toy_replaces_the_default_file_when_asked(tmp_path, ask):
    committed = _committed(tmp_path, "toy_fast_y5.npz")
    assert main(TOY + ask) == 0
    assert op.SweepResult.load(committed).num_iters == 20 and len(list(committed.parent.iterdir())) == 1


def test_toy_figure_counts_as_an_existing_default_file(tmp_path):
    figure = _committed(tmp_path, "toy_fast.png")
    assert main([*TOY[:-1]]) == 0  # with the figure
    assert figure.read_bytes() == b"the committed results"
    assert len(list(figure.parent.glob("toy_fast-*.png"))) == 1


def test_ethanol_figures_count_as_an_existing_default_file(tmp_path):
    figure = _committed(tmp_path, "ethanol_fast_teaser.png")
    assert main(ETHANOL[:-1]) == 0  # with the figures
    assert figure.read_bytes() == b"the committed results"
    assert len(list(figure.parent.glob("ethanol_fast-*_teaser.png"))) == 1


def test_ethanol_keeps_an_existing_default_file(tmp_path, capsys):
    committed = _committed(tmp_path, "ethanol_fast.npz")
    assert main(ETHANOL) == 0
    assert committed.read_bytes() == b"the committed results"
    (fresh,) = [p for p in committed.parent.iterdir() if p != committed]
    assert fresh.name.startswith("ethanol_fast-") and fresh.suffix == ".npz"
    captured = capsys.readouterr()
    assert "results/ethanol_fast.npz exists and is kept" in captured.err
    assert f"wrote results/{fresh.name}" in captured.out
    assert op.SweepResult.load(fresh).num_iters == 20


@pytest.mark.parametrize("ask", [["--force"], ["--out", "results/ethanol_fast.npz"]])
def test_ethanol_replaces_the_default_file_when_asked(tmp_path, ask):
    committed = _committed(tmp_path, "ethanol_fast.npz")
    assert main(ETHANOL + ask) == 0
    assert op.SweepResult.load(committed).num_iters == 20 and len(list(committed.parent.iterdir())) == 1


@pytest.mark.parametrize("argv, name", [(ETHANOL, "ethanol_fast.npz"), (TOY, "toy_fast_y5.npz")])
def test_force_does_not_replace_a_committed_results_file(tmp_path, monkeypatch, capsys, argv, name):
    """A file whose digest is pinned (committed) is replaced only when --out names it."""
    monkeypatch.setitem(op.files.RESULTS_SHA256, name, "0" * 64)
    committed = _committed(tmp_path, name)
    with pytest.raises(SystemExit) as info:
        main(argv + ["--force"])
    assert info.value.code == 2
    assert committed.read_bytes() == b"the committed results"
    assert f"--force does not replace the committed results file results/{name}" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Bug 6: the file written is the file reported
# ---------------------------------------------------------------------------
def test_ethanol_out_without_npz_suffix_writes_and_reports_the_same_path(tmp_path, capsys):
    assert main(ETHANOL + ["--out", "run.out"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.out.npz"]
    captured = capsys.readouterr()
    assert "results will be written to run.out.npz" in captured.err
    assert captured.out.rstrip().endswith("wrote run.out.npz")
    assert op.SweepResult.load(tmp_path / "run.out.npz").num_iters == 20


# ---------------------------------------------------------------------------
# Bug 3: an impossible --out is a usage error before any data are loaded or any run starts
# ---------------------------------------------------------------------------
def _impossible_outputs(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "a_folder").mkdir()
    return {"under a file": "a_file/results.npz", "a folder": "a_folder"}


def _assert_one_line_usage_error(capsys, *expected):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    for text in expected:
        assert text in errors[0]


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_toy_checks_out_before_computing(tmp_path, monkeypatch, capsys, where):
    _forbid(monkeypatch, cli_toy, "run_toy")
    with pytest.raises(SystemExit) as info:
        main(TOY + ["--out", _impossible_outputs(tmp_path)[where]])
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, "--out")


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_ethanol_checks_out_before_loading_data(tmp_path, monkeypatch, capsys, where):
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    with pytest.raises(SystemExit) as info:
        main(ETHANOL + ["--out", _impossible_outputs(tmp_path)[where]])
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, "--out")


def test_out_folder_is_created_before_the_run(tmp_path):
    assert main(ETHANOL + ["--out", "new/deeper/run.npz"]) == 0
    assert (tmp_path / "new" / "deeper" / "run.npz").is_file()


# ---------------------------------------------------------------------------
# Weak spot: user errors on the command line are one-line argparse errors, for every sub-command
# ---------------------------------------------------------------------------
BAD_ARGUMENTS = [
    (["toy", "--threads", "-1"], "--threads"),
    (["toy", "--threads", "0"], "--threads"),
    (["ethanol", "--threads", "-1"], "--threads"),
    (["ethanol", "--threads", "two"], "--threads"),
    (["ethanol", "--device", "bogus"], "--device"),
    (["ethanol", "--device", "tpu"], "--device"),
    (["mnist", "--threads", "-1"], "--threads"),
    (["mnist", "--eval-every", "0"], "--eval-every"),
    (["mnist", "--device", "bogus"], "--device"),
    (["mnist", "--device", "meta"], "--device"),
    (["mnist", "--variants", ","], "--variants"),
    (["mnist", "--variants", "baseline,product,baseline"], "--variants"),
    (["mnist", "--seed", "-1"], "--seed"),
    (["mnist", "--seed", "1.5"], "--seed"),
]


@pytest.mark.parametrize("argv, option", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_command_line_values_are_usage_errors(monkeypatch, capsys, argv, option):
    _forbid(monkeypatch, cli_toy, "run_toy")
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, option)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_ethanol_cuda_without_a_cuda_device_is_a_usage_error(monkeypatch, capsys):
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    with pytest.raises(SystemExit) as info:
        main(["ethanol", "--device", "cuda"])
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, "--device", "no CUDA device")


def test_device_auto_is_resolved_by_the_parser():
    """``--device auto`` reaches a command as the device it means, so ethanol (whose sweep takes a torch device)
    accepts it like mnist does."""
    from overparam.cli.args import device_name

    assert device_name("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device_name("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_ethanol_cuda_graph_on_a_cpu_device_is_an_error_before_any_data(monkeypatch, capsys):
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    assert main(["ethanol", "--device", "auto", "--cuda-graph", "on"]) == 2
    assert "--cuda-graph on needs a CUDA --device, got 'cpu'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_mnist_cuda_without_a_cuda_device_is_a_usage_error(capsys):
    """It used to pass the parser and end in a traceback from the trainer."""
    with pytest.raises(SystemExit) as info:
        main(["mnist", "--device", "cuda", "--steps", "1"])
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, "--device", "no CUDA device")


def test_missing_mnist_data_is_one_error_line_not_a_traceback(tmp_path, capsys):
    """The error names every missing file (it used to name only t10k-images), and no fallback is announced."""
    (tmp_path / "empty").mkdir()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing was trained on instead: no "training on the test images" warning
        assert main(["mnist", "--steps", "1", "--data-dir", str(tmp_path / "empty"), "--no-download",
                     "--out", "run.npz"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "python -m overparam mnist: error:" in err and "mnist" in err
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        assert name in err.split("error:")[1].splitlines()[0]
    assert not (tmp_path / "run.npz").exists()


def test_damaged_ethanol_data_is_one_error_line_not_a_traceback(monkeypatch, capsys):
    def damaged(data_dir=None):
        raise op.DataIntegrityError("batch1.dat, line 3: unreadable value")

    monkeypatch.setattr(cli_ethanol, "load_standardized_ethanol", damaged)
    assert main(ETHANOL) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.rstrip().endswith(
        "python -m overparam ethanol: error: batch1.dat, line 3: unreadable value")


def test_data_verifies_every_dataset_the_chapters_read(data_dir, capsys):
    assert main(["data", "--data-dir", str(data_dir), "--no-download"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["Ethanol", "MNIST training files", "MNIST test files"]
    assert "2,565 examples x 128 features" in out[0]
    assert "55,000 images" in out[1] and "train-images-idx3-ubyte.gz" in out[1] and "SHA-256 verified" in out[1]
    assert "10,000 images" in out[2] and "t10k-labels-idx1-ubyte.gz" in out[2]


def test_data_names_every_missing_dataset_in_one_run(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["data", "--data-dir", str(tmp_path / "empty"), "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("python -m overparam data: error:")]
    assert [e.split("error: ")[1].split(":")[0] for e in errors] == [
        "Ethanol", "MNIST training files", "MNIST test files"]
    for name in ("gas_sensor", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(tmp_path / "cache")):
        assert name in err


def test_data_reports_a_damaged_file_and_still_checks_the_rest(monkeypatch, capsys):
    from overparam.cli import data as cli_data

    class Images:
        def __init__(self, split):
            self.source = f"mnist {split} files"

        def __len__(self):
            return 7

    def load_mnist(split, data_dir, download):
        if split == "test":
            raise op.DataIntegrityError("t10k-images-idx3-ubyte.gz: content SHA-256 mismatch")
        return Images(split)

    monkeypatch.setattr(cli_data, "load_ethanol", lambda data_dir, download: types.SimpleNamespace(
        shape=(3, 2), source="a fake table"))
    monkeypatch.setattr(cli_data, "load_mnist", load_mnist)
    assert main(["data"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["Ethanol: 3 examples x 2 features, from a fake table",
                                         "MNIST training files: 7 images, from mnist train files"]
    assert captured.err.rstrip().endswith(
        "python -m overparam data: error: MNIST test files: t10k-images-idx3-ubyte.gz: content SHA-256 mismatch")


def test_make_fetches_the_data_before_the_book_is_built():
    """The strict build fails on stderr, and a chapter that downloads says so there: ``make data`` comes first."""
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    rules = dict(line.split(":", 1) for line in makefile.splitlines()
                 if re.match(r"^[a-z-]+:", line) and not line.startswith(".PHONY"))
    assert "python -m overparam data" in makefile.split("\ndata:", 1)[1].split("\n\n")[0]
    for target in ("book", "test"):
        assert rules[target].split() == ["$(STAMP)", "data"], f"make {target} must run make data first"


def test_toy_out_with_npz_suffix_is_taken_as_the_stem(tmp_path):
    """``--out run.npz`` used to write ``run.npz_y5.npz``."""
    assert main(TOY + ["--out", "run.npz"]) == 0
    assert (tmp_path / "run_y5.npz").is_file() and not list(tmp_path.glob("run.npz*"))


def test_time_stamped_names_never_collide(tmp_path, monkeypatch):
    """Two runs started in the same second used to get the same fresh name."""
    from overparam import files

    fixed = files._dt.datetime(2026, 12, 2, 8, 0, 0, tzinfo=files._dt.timezone.utc)
    monkeypatch.setattr(files, "_dt", types.SimpleNamespace(
        datetime=types.SimpleNamespace(now=lambda tz=None: fixed), timezone=files._dt.timezone))
    _committed(tmp_path, "e.npz")
    first, _ = files.choose_output(None, "results/e.npz")
    assert first.name == "e-20261202T080000Z.npz"
    first.write_bytes(b"the first run")
    second, _ = files.choose_output(None, "results/e.npz")
    assert second.name == "e-20261202T080000Z-2.npz"


def test_atomic_write_onto_a_folder_is_named(tmp_path):
    with pytest.raises(OutputPathError, match=r"^path: .* is a folder"):
        op.atomic_write(tmp_path, lambda fh: fh.write(b"x"))
    assert not list(tmp_path.iterdir())


def test_convergence_writes_the_sweep_and_keeps_an_existing_default_file(tmp_path, monkeypatch, capsys):
    from overparam import convergence
    from overparam.cli import convergence as cli_convergence

    monkeypatch.setitem(convergence.PRESETS, "fast", dataclasses.replace(
        convergence.PRESETS["fast"], num_iters=30, depths=(3,), stds=(0.1, 0.3), lrs=(0.1,), width=4))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    fake = op.Standardized(X=X, y=X @ rng.normal(size=5), x_mean=np.zeros(5), x_std=np.ones(5), y_mean=0.0, y_std=1.0)
    monkeypatch.setattr(cli_convergence, "load_standardized_ethanol", lambda data_dir=None: fake)
    stamps = _record_scale_stamps(monkeypatch, cli_convergence)
    figure = _committed(tmp_path, "convergence_fast.png")  # a figure alone keeps the default name taken too
    assert main(["convergence", "--preset", "fast"]) == 0
    assert figure.read_bytes() == b"the committed results" and len(list(figure.parent.glob("convergence_fast-*"))) == 2
    figure.unlink()
    for fresh in figure.parent.glob("convergence_fast-*"):
        fresh.unlink()
    stamps.clear()
    assert main(["convergence", "--preset", "fast"]) == 0
    out = capsys.readouterr().out
    assert "depth 3, gaussian:" in out and "wrote results/convergence_fast.npz" in out
    saved = op.SweepResult.load(tmp_path / "results" / "convergence_fast.npz")
    assert len(saved) == 6 and saved.target == 1e-5 and saved.provenance["command"].startswith("python -m overparam")
    assert all(f == () for f in saved.factors), "the layers stay out of the file (some 75 MB at the long preset)"
    assert stamps == ["fast"]
    assert (tmp_path / "results" / "convergence_fast.png").exists()
    before = (tmp_path / "results" / "convergence_fast.npz").read_bytes()
    assert main(["convergence", "--preset", "fast", "--no-figures"]) == 0
    assert (tmp_path / "results" / "convergence_fast.npz").read_bytes() == before, "the default file is kept"
    assert len(list((tmp_path / "results").glob("convergence_fast*.npz"))) == 2
    # --redraw: the figure again from the file, without training
    (tmp_path / "results" / "convergence_fast.png").unlink()
    _forbid(monkeypatch, cli_convergence, "run_convergence")
    assert main(["convergence", "--preset", "fast", "--redraw"]) == 0
    assert (tmp_path / "results" / "convergence_fast.png").exists() and stamps == ["fast", "fast"]
    assert (tmp_path / "results" / "convergence_fast.npz").read_bytes() == before
    assert "depth 3, gaussian:" in capsys.readouterr().out
    monkeypatch.setitem(convergence.PRESETS, "fast", dataclasses.replace(convergence.PRESETS["fast"], lrs=(0.2,)))
    assert main(["convergence", "--preset", "fast", "--redraw"]) == 2, "a file of other runs is refused"
    assert "does not hold the runs of --preset fast" in capsys.readouterr().err



def test_convergence_with_several_seeds_prints_and_draws_their_median(tmp_path, monkeypatch, capsys):
    from overparam import convergence
    from overparam.cli import convergence as cli_convergence

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(convergence.PRESETS, "fast", dataclasses.replace(
        convergence.PRESETS["fast"], num_iters=200, depths=(3,), stds=(0.3, 0.6), lrs=(0.1, 0.5), width=4,
        epsilon=1e-2, seeds=(0, 1, 2)))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    fake = op.Standardized(X=X, y=X @ rng.normal(size=5), x_mean=np.zeros(5), x_std=np.ones(5), y_mean=0.0, y_std=1.0)
    monkeypatch.setattr(cli_convergence, "load_standardized_ethanol", lambda data_dir=None: fake)
    drawn = []
    plot = cli_convergence.plot_iterations_vs_std
    monkeypatch.setattr(cli_convergence, "plot_iterations_vs_std",
                        lambda table, preset, by_seed=None: (drawn.append((table, by_seed)),
                                                             plot(table, preset, by_seed=by_seed))[1])
    assert main(["convergence", "--preset", "fast"]) == 0
    out = capsys.readouterr().out
    assert "median over the seeds 0, 1, 2 of each seed's fastest run" in out
    saved = op.SweepResult.load(tmp_path / "results" / "convergence_fast.npz")
    assert len(saved) == 3 * 2 * 2 * 3  # schemes x stds x learning rates x seeds
    (table, by_seed), = drawn
    preset = convergence.PRESETS["fast"]
    problem = convergence.whitened_problem(fake)
    assert by_seed is not None and all(c.shape == (2, 3) for c in by_seed.values())
    for key, row in convergence.iterations_vs_std(saved, problem, preset).items():
        np.testing.assert_array_equal(table[key], row)
        assert f"depth 3, {key[0]}: " + "  ".join(map(op.training.format_iterations, row)) in out

# ---------------------------------------------------------------------------
# A committed results file is replaced only by the run it holds
# ---------------------------------------------------------------------------
REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"


def _copy_of_committed(tmp_path, name):
    """A temporary copy of the committed ``results/<name>`` in ``tmp_path/results`` (the repository's stays as it is)."""
    copy = tmp_path / "results" / name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(REPO_RESULTS / name, copy)
    return copy


OTHER_SCALES = [
    (ETHANOL + ["--out", "results/ethanol_paper.npz"], "results/ethanol_paper.npz", "ethanol --preset paper"),
    (TOY + ["--out", "results/toy_paper"], "results/toy_paper_y5.npz", "toy --preset paper"),
    (["mnist", "--steps", "1", "--device", "cpu", "--no-download", "--out", "results/mnist_full.npz"],
     "results/mnist_full.npz", "mnist --steps full"),
    (["mnist", "--steps", "full", "--variants", "baseline", "--device", "cpu", "--no-download",
      "--out", "results/mnist_full.npz"], "results/mnist_full.npz", "mnist --steps full"),
    (["convergence", "--preset", "fast", "--out", "results/convergence_long.npz"], "results/convergence_long.npz",
     "convergence --preset long"),
    (["completion", "--preset", "fast", "--out", "results/completion_long.npz"], "results/completion_long.npz",
     "completion --preset long"),
]


@pytest.mark.parametrize("argv, name, holds", OTHER_SCALES, ids=[" ".join(a[:3]) for a, _, _ in OTHER_SCALES])
def test_out_naming_a_committed_file_from_another_scale_is_refused(tmp_path, monkeypatch, capsys, argv, name, holds):
    """``ethanol --preset fast --out results/ethanol_paper.npz`` used to replace the paper-scale file silently."""
    from overparam.cli import completion as cli_completion
    from overparam.cli import convergence as cli_convergence
    from overparam.cli import mnist as cli_mnist

    _forbid(monkeypatch, cli_toy, "run_toy")
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    _forbid(monkeypatch, cli_mnist, "training_and_validation", "train_convnet")
    _forbid(monkeypatch, cli_convergence, "load_standardized_ethanol", "run_convergence")
    _forbid(monkeypatch, cli_completion, "run_completion_seeds")
    copy = _copy_of_committed(tmp_path, Path(name).name)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, "--out", name, f"committed results file of 'python -m overparam {holds}'")
    assert copy.read_bytes() == (REPO_RESULTS / copy.name).read_bytes()
    assert sorted(p.name for p in copy.parent.iterdir()) == [copy.name]


def test_out_naming_a_committed_file_from_its_own_run_replaces_it_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ethanol.PRESETS, "paper", dataclasses.replace(ethanol.PRESETS["fast"], name="paper"))
    monkeypatch.setitem(toy.TOY_PRESETS, "paper", dataclasses.replace(toy.TOY_PRESETS["fast"], name="paper"))
    ethanol_copy = _copy_of_committed(tmp_path, "ethanol_paper.npz")
    toy_copy = _copy_of_committed(tmp_path, "toy_paper_y5.npz")
    argv = ["ethanol", "--preset", "paper", "--threads", "1", "--no-figures", "--out", "results/ethanol_paper.npz"]
    assert main(argv) == 0
    assert ("results will be written to results/ethanol_paper.npz (as asked by --out; this replaces the committed "
            "results file results/ethanol_paper.npz: put its new SHA-256 in overparam.files.RESULTS_SHA256 in the "
            "same commit)") in capsys.readouterr().err
    assert op.SweepResult.load(ethanol_copy).num_iters == 20
    assert main(["toy", "--preset", "paper", "--threads", "1", "--no-figures", "--out", "results/toy_paper"]) == 0
    assert "this replaces the committed results file results/toy_paper_y5.npz: put its new SHA-256" in (
        capsys.readouterr().err)
    assert op.SweepResult.load(toy_copy).num_iters == 20


def test_choose_output_checks_committed_names_against_the_run(tmp_path):
    from overparam import files

    path, why = files.choose_output("results/mnist_full.npz", "results/mnist_full.npz", run="mnist --steps full")
    assert path == Path("results/mnist_full.npz") and "this writes the committed results file" in why  # absent
    with pytest.raises(OutputPathError, match="this run \\(mnist --steps 100\\) would replace it"):
        files.choose_output("elsewhere/mnist_full", "results/mnist_100.npz", run="mnist --steps 100")  # + .npz
    assert files.choose_output("results/mnist_full2.npz", "x.npz", run="mnist --steps 100")[1] == "as asked by --out"


def test_every_committed_file_names_the_run_it_holds():
    """RESULTS_COMMANDS covers RESULTS_SHA256, and each entry is the command recorded in the committed file."""
    import json

    from overparam import files

    assert sorted(files.RESULTS_COMMANDS) == sorted(files.RESULTS_SHA256)
    for name, run in files.RESULTS_COMMANDS.items():
        with np.load(REPO_RESULTS / name, allow_pickle=False) as npz:
            if "meta" in npz.files:
                meta = json.loads(str(npz["meta"]))["provenance"]
            elif "completion_json" in npz.files:
                meta = json.loads(str(npz["completion_json"]))["provenance"]
            else:
                meta = json.loads(str(npz["metadata_json"]))["metadata"]
        words = meta["command"].split()
        assert " ".join(words[:len(run.split()) + 3]) == f"python -m overparam {run}", (name, meta["command"])


def test_the_committed_sweeps_hold_their_presets_runs():
    """Mutation testing: a preset's grid edited after its file was committed went unnoticed, although --redraw and
    the chapters read the file as that preset's runs."""
    from overparam import convergence as cv

    paper = op.SweepResult.load(REPO_RESULTS / "ethanol_paper.npz")
    assert paper.configs == tuple(ethanol.PRESETS["paper"].runs())
    assert paper.num_iters == ethanol.PRESETS["paper"].num_iters == 10**6
    preset = toy.TOY_PRESETS["paper"]
    for y1 in preset.y1_values:
        held = op.SweepResult.load(REPO_RESULTS / f"toy_paper_y{y1:g}.npz")
        assert held.configs == tuple(op.toy_runs(preset.depths)) and held.num_iters == preset.num_iters, y1
    op.edge.check_refinement(op.SweepResult.load(REPO_RESULTS / "ethanol_edge.npz"), paper,
                             REPO_RESULTS / "ethanol_paper.npz")
    long = op.SweepResult.load(REPO_RESULTS / "convergence_long.npz")
    problem = cv.whitened_problem(op.load_standardized_ethanol())
    assert cv.iterations_vs_std(long, problem, cv.PRESETS["long"])  # refuses a file of other runs (a ValueError)
    assert op.completion.CompletionSeeds.load(REPO_RESULTS / "completion_long.npz").holds(
        op.completion.SEED_PRESETS["long"])


# ---------------------------------------------------------------------------
# Files: a new folder is announced, files get the usual mode, loaders name the other loader, metadata errors
# ---------------------------------------------------------------------------
def test_a_new_out_folder_is_announced(tmp_path, capsys):
    assert main(ETHANOL + ["--out", "new/deeper/run.npz"]) == 0
    assert "creating folder new/deeper (for --out new/deeper/run.npz)" in capsys.readouterr().err
    assert main(ETHANOL + ["--out", "new/deeper/run2.npz"]) == 0
    assert "creating folder" not in capsys.readouterr().err  # it exists now


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_mode_of_a_new_file(tmp_path, umask, mode):
    """mkstemp's temporary file is 0o600: every results file and figure used to be private."""
    old = os.umask(umask)
    try:
        fresh = op.atomic_write(tmp_path / "fresh.npz", lambda fh: fh.write(b"x"))
        replaced = tmp_path / "replaced.png"
        replaced.write_bytes(b"old")
        op.atomic_write(replaced, lambda fh: fh.write(b"new"))
    finally:
        os.umask(old)
    assert (fresh.stat().st_mode & 0o777) == mode and (replaced.stat().st_mode & 0o777) == mode
    assert replaced.read_bytes() == b"new"


def test_a_results_file_of_the_other_kind_names_its_loader():
    """It used to say 'not a valid results file (KeyError ...); run the command that writes it again'."""
    with pytest.raises(op.InvalidResultsFile, match="a sweep results file .*read it with op.SweepResult.load") as err:
        op.load_histories(REPO_RESULTS / "ethanol_paper.npz")
    assert "run the command" not in str(err.value) and "KeyError" not in str(err.value)
    with pytest.raises(op.InvalidResultsFile, match="a convnet runs file .*read it with op.load_histories") as err:
        op.SweepResult.load(REPO_RESULTS / "mnist_full.npz")
    assert "run the command" not in str(err.value) and "KeyError" not in str(err.value)


def test_a_damaged_results_file_is_still_called_damaged(tmp_path):
    """A member missing from a file of the right kind is damage, not the other kind."""
    np.savez(tmp_path / "partial.npz", meta=np.array("{}"))
    with pytest.raises(op.InvalidResultsFile, match="not a valid results file \\(KeyError"):
        op.SweepResult.load(tmp_path / "partial.npz")


def test_read_provenance_and_json_metadata_name_the_argument():
    from overparam import files

    with pytest.raises(TypeError, match="^stored must be a mapping .* got str 'abc'"):
        op.read_provenance("abc")
    with pytest.raises(TypeError, match=r"^metadata\['x'\] is of type object \(<object object"):
        files.json_text({"x": object()}, "metadata")
    with pytest.raises(TypeError, match=r"^metadata\['a'\]\[1\]\['n'\] is of type int64"):
        files.json_text({"a": [1, {"n": np.int64(3)}]}, "metadata")
    with pytest.raises(TypeError, match=r"^metadata \(key \(1, 2\)\)"):
        files.json_text({(1, 2): 0}, "metadata")
    assert files.json_text({"a": [1, 2.5, None, True, "s"]}, "metadata") == '{"a": [1, 2.5, null, true, "s"]}'
    with pytest.raises(TypeError, match=r"^provenance\(\*\*extra\)\['device'\] is of type device"):
        op.provenance("cmd", device=torch.device("cpu"))


# ---------------------------------------------------------------------------
# --redraw: the figures of an existing results file, again, without training
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, files", [
    (["ethanol", "--preset", "fast", "--threads", "1"], ["results/ethanol_fast.npz"]),
    (["toy", "--preset", "fast", "--threads", "1"], ["results/toy_fast_y5.npz"]),
])
def test_redraw_draws_the_figures_again_without_training(tmp_path, monkeypatch, capsys, argv, files):
    assert main(argv) == 0
    figures = sorted(p for p in (tmp_path / "results").glob("*.png"))
    assert figures
    data = {f: (tmp_path / f).read_bytes() for f in files}
    for figure in figures:
        figure.unlink()
    _forbid(monkeypatch, cli_ethanol, "run_sweep")
    _forbid(monkeypatch, cli_toy, "run_toy")
    capsys.readouterr()
    assert main([*argv, "--redraw"]) == 0
    assert sorted((tmp_path / "results").glob("*.png")) == figures, "every figure is drawn again"
    assert all((tmp_path / f).read_bytes() == raw for f, raw in data.items()), "the results files are untouched"
    assert "redrew" in capsys.readouterr().out


def test_redraw_of_a_file_from_another_preset_is_refused(tmp_path, monkeypatch, capsys):
    assert main(ETHANOL) == 0
    shutil.copy(tmp_path / "results" / "ethanol_fast.npz", tmp_path / "other.npz")
    monkeypatch.setitem(ethanol.PRESETS, "fast", dataclasses.replace(ethanol.PRESETS["fast"], num_iters=21))
    capsys.readouterr()
    assert main(["ethanol", "--preset", "fast", "--out", "other.npz", "--redraw"]) == 2
    assert "does not hold the runs of --preset fast" in capsys.readouterr().err
    assert not list(tmp_path.glob("other_*.png"))


def test_redraw_without_the_results_file_is_one_error_line(tmp_path, capsys):
    assert main(["toy", "--preset", "fast", "--redraw"]) == 1
    err = capsys.readouterr().err
    assert "toy_fast_y5.npz" in err and "Traceback" not in err


def test_redraw_of_a_damaged_results_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 half a zip")
    assert main(["ethanol", "--preset", "fast", "--out", "broken.npz", "--redraw"]) == 1
    err = capsys.readouterr().err
    assert "not a valid results file" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, committed, out", [
    (["ethanol", "--preset", "fast", "--threads", "1"], "ethanol_fast.npz", "results/ethanol_fast.npz"),
    (["toy", "--preset", "fast", "--threads", "1"], "toy_fast_y5.npz", "results/toy_fast"),
    (["convergence", "--preset", "fast"], "convergence_fast.npz", "results/convergence_fast.npz"),
    (["completion", "--preset", "fast"], "completion_fast.npz", "results/completion_fast.npz"),
])
def test_redraw_does_not_replace_a_committed_file_s_figures_unless_out_names_it(monkeypatch, capsys, argv, committed,
                                                                                out):
    """Bug: `--redraw` without --out rewrote the committed figures beside the committed results files."""
    assert main(argv) == 0
    figures = {p: p.read_bytes() for p in Path("results").glob("*.png")}
    assert figures
    monkeypatch.setitem(op.files.RESULTS_SHA256, committed, "0" * 64)  # as if the file were committed
    capsys.readouterr()
    assert main([*argv, "--redraw"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --redraw replaces the committed figures beside results/{committed}; to redraw them, name "
                   f"the results file with --out results/{committed}\n")
    assert {p: p.read_bytes() for p in Path("results").glob("*.png")} == figures, "nothing was redrawn"
    assert main([*argv, "--redraw", "--out", out]) == 0, "named, the figures are redrawn"
    assert "redrew" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# Found by mutation testing: which figure shows which loss, against which L*, stamped with which scale
# ---------------------------------------------------------------------------
def test_ethanol_draws_each_loss_against_its_own_optimum_with_its_scale_and_records_the_optima(
        tmp_path, monkeypatch, capsys):
    drawn, sweep, teaser, savefig = [], cli_ethanol.plot_depth_sweep, cli_ethanol.plot_teaser, cli_ethanol.atomic_savefig
    monkeypatch.setattr(cli_ethanol, "plot_depth_sweep", lambda r, p, optimum=None: (
        drawn.append([f"ℓ{p} sweep", optimum]), sweep(r, p, optimum=optimum))[1])
    monkeypatch.setattr(cli_ethanol, "plot_teaser", lambda r, optimum=None: (
        drawn.append(["teaser", optimum]), teaser(r, optimum=optimum))[1])
    monkeypatch.setattr(cli_ethanol, "atomic_savefig", lambda fig, path, **kw: (
        drawn[-1].append(Path(path).name), savefig(fig, path, **kw))[1])
    stamps = _record_scale_stamps(monkeypatch, cli_ethanol)
    assert main(["ethanol", "--preset", "fast", "--threads", "1", "--dtype", "float64"]) == 0
    data = cli_ethanol.load_standardized_ethanol()
    optima = {p: op.lp_optimum(data.X, data.y, p).loss for p in (2, 4)}
    expected = [["ℓ2 sweep", optima[2], "ethanol_fast_depth_l2.png"], ["ℓ4 sweep", optima[4], "ethanol_fast_depth_l4.png"],
                ["teaser", optima[4], "ethanol_fast_teaser.png"]]
    assert drawn == expected and stamps == ["fast"] * 3
    saved = op.SweepResult.load(tmp_path / "results" / "ethanol_fast.npz")
    assert saved.provenance["optimum_loss"] == {"2": optima[2], "4": optima[4]}
    # --redraw draws the same figures from the optima the file recorded, without the data
    drawn.clear()
    stamps.clear()
    _forbid(monkeypatch, cli_ethanol, "load_standardized_ethanol", "run_sweep")
    assert main(["ethanol", "--preset", "fast", "--redraw"]) == 0
    assert drawn == expected and stamps == ["fast"] * 3


def test_toy_stamps_its_scale_and_redraw_refuses_a_file_of_another_budget(tmp_path, monkeypatch, capsys):
    stamps = _record_scale_stamps(monkeypatch, cli_toy)
    assert main(["toy", "--preset", "fast", "--threads", "1"]) == 0
    assert main(["toy", "--preset", "fast", "--redraw"]) == 0
    assert stamps == ["fast", "fast"]
    # the toy presets differ only in their budgets: a file of 20 iterations is not one of 21
    monkeypatch.setitem(toy.TOY_PRESETS, "fast", dataclasses.replace(toy.TOY_PRESETS["fast"], num_iters=21))
    capsys.readouterr()
    assert main(["toy", "--preset", "fast", "--redraw"]) == 2
    assert "does not hold the runs of --preset fast" in capsys.readouterr().err


def test_mnist_on_stand_in_data_records_the_deviation_and_keeps_the_variants_it_finished(tmp_path, monkeypatch):
    """Only the test images: the file says so (``deviation``), and a run cut off in its second variant keeps the first."""
    from overparam.cli import mnist as cli_mnist

    shared = Path(os.environ.get("OVERPARAM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    images = shared / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not images.is_file():
        pytest.skip(f"offline MNIST copy not found in {images.parent}")
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared / "mnist" / name, tmp_path / "data" / "mnist" / name)
    configs, train_convnet = [], cli_mnist.train_convnet

    def cut_off_in_the_second(config, *args, **kwargs):
        configs.append(config)
        if len(configs) == 2:
            raise KeyboardInterrupt
        return train_convnet(config, *args, **kwargs)

    monkeypatch.setattr(cli_mnist, "train_convnet", cut_off_in_the_second)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="instead of the 55,000 training images"):
        main(["mnist", "--steps", "2", "--variants", "baseline,product", "--device", "cpu", "--no-download",
              "--data-dir", str(tmp_path / "data"), "--out", "run.npz"])
    histories, meta = op.convnet.load_histories(tmp_path / "run.npz")
    assert [h.variant for h in histories] == ["baseline"]
    assert "test images" in meta["deviation"] and meta["device"].startswith("cpu")
    assert meta["eval_every"] == 200 == configs[0].eval_every  # on the CPU; the tutorial's 100 on CUDA
    # on a CUDA device the tutorial's 100 (the device itself is not needed: training is replaced)
    monkeypatch.setattr(cli_mnist, "resolve_device", lambda name: torch.device("cuda"))
    configs.clear()

    def stop_at_once(config, *args, **kwargs):
        configs.append(config)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_mnist, "train_convnet", stop_at_once)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="instead of the 55,000 training images"):
        main(["mnist", "--steps", "2", "--variants", "baseline,product", "--no-download",
              "--data-dir", str(tmp_path / "data"), "--out", "run_cuda.npz"])
    assert configs[0].eval_every == 100


def test_device_auto_picks_cuda_when_torch_sees_a_gpu(monkeypatch):
    from overparam.cli.args import device_name

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_name("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_name("auto") == "cpu"


def test_files_found_from_a_chapter_and_dated_in_utc(tmp_path, monkeypatch):
    """A chapter runs in chapters/: the results beside it are ../results; the provenance's date is UTC."""
    import datetime

    from overparam import files

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x_only_here.npz").write_bytes(b"x")
    (tmp_path / "chapters").mkdir()
    monkeypatch.chdir(tmp_path / "chapters")
    assert files.find_results("x_only_here.npz", download=False) == Path("..") / "results" / "x_only_here.npz"
    stamp = datetime.datetime.fromisoformat(op.provenance("cmd")["date_utc"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert op.read_provenance({"date": "old", "date_utc": "new"})["date_utc"] == "new"


def test_a_companion_file_alone_keeps_the_default_name_taken(tmp_path):
    """An existing figure of an earlier run, without its results file, is not overwritten either."""
    from overparam import files

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ethanol_fast_teaser.png").write_bytes(b"png")
    path, why = files.choose_output(None, "results/ethanol_fast.npz", companions=cli_ethanol.FIGURE_SUFFIXES)
    assert path != Path("results/ethanol_fast.npz") and path.name.startswith("ethanol_fast-") and "is kept" in why
    path, _ = files.choose_output(None, "results/other.npz")  # the default companion: the .json beside a file
    assert path == Path("results/other.npz")
    (tmp_path / "results" / "other.json").write_text("{}")
    assert files.choose_output(None, "results/other.npz")[0] != Path("results/other.npz")
    with pytest.raises(OutputPathError, match="--out"):
        files.check_writable(tmp_path / "results")


def test_toy_redraw_names_an_out_that_is_a_folder(tmp_path, capsys):
    """A folder given as --out stem: one usage line (load_toy_results refuses a folder as a stem)."""
    with pytest.raises(SystemExit) as info:
        main(["toy", "--redraw", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--out:" in err and "is a folder" in err and "Traceback" not in err
