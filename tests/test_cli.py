"""``python -m overparam toy`` and ``ethanol``: no silent overwrites, output checked first, one-line usage errors.

Every command runs a monkeypatched tiny preset in ``tmp_path`` (a few seconds in all);
the Ethanol data are replaced by a small random problem, so no test needs the data set.
"""
from __future__ import annotations

import dataclasses
import types

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
    fake = types.SimpleNamespace(X=rng.normal(size=(32, 5)), y=rng.normal(size=32))
    monkeypatch.setattr(cli_ethanol, "load_ethanol", lambda data_dir=None: fake)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


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
    _forbid(monkeypatch, cli_ethanol, "load_ethanol", "run_sweep")
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
    (["mnist", "--variants", "baseline,product,baseline"], "--variants"),
    (["mnist", "--seed", "-1"], "--seed"),
    (["mnist", "--seed", "1.5"], "--seed"),
]


@pytest.mark.parametrize("argv, option", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_command_line_values_are_usage_errors(monkeypatch, capsys, argv, option):
    _forbid(monkeypatch, cli_toy, "run_toy")
    _forbid(monkeypatch, cli_ethanol, "load_ethanol", "run_sweep")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _assert_one_line_usage_error(capsys, option)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_ethanol_cuda_without_a_cuda_device_is_a_usage_error(monkeypatch, capsys):
    _forbid(monkeypatch, cli_ethanol, "load_ethanol", "run_sweep")
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
    _forbid(monkeypatch, cli_ethanol, "load_ethanol", "run_sweep")
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
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match="instead of the 55,000 training images"):  # it tries the test set first
        assert main(["mnist", "--steps", "1", "--data-dir", str(tmp_path / "empty"), "--no-download",
                     "--out", "run.npz"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "python -m overparam mnist: error:" in err and "mnist" in err
    assert not (tmp_path / "run.npz").exists()


def test_damaged_ethanol_data_is_one_error_line_not_a_traceback(monkeypatch, capsys):
    def damaged(data_dir=None):
        raise op.DataIntegrityError("batch1.dat, line 3: unreadable value")

    monkeypatch.setattr(cli_ethanol, "load_ethanol", damaged)
    assert main(ETHANOL) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.rstrip().endswith(
        "python -m overparam ethanol: error: batch1.dat, line 3: unreadable value")


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
    assert main(["convergence", "--preset", "fast"]) == 0
    out = capsys.readouterr().out
    assert "depth 3, gaussian:" in out and "wrote results/convergence_fast.npz" in out
    saved = op.SweepResult.load(tmp_path / "results" / "convergence_fast.npz")
    assert len(saved) == 6 and saved.target == 1e-5 and saved.provenance["command"].startswith("python -m overparam")
    assert (tmp_path / "results" / "convergence_fast.png").exists()
    before = (tmp_path / "results" / "convergence_fast.npz").read_bytes()
    assert main(["convergence", "--preset", "fast", "--no-figures"]) == 0
    assert (tmp_path / "results" / "convergence_fast.npz").read_bytes() == before, "the default file is kept"
    assert len(list((tmp_path / "results").glob("convergence_fast*.npz"))) == 2
