"""The Ethanol loader on both file layouts, on corrupt and missing data, and its download path (faked)."""
import io
import re
import urllib.error
import urllib.request
from pathlib import Path
import zipfile

import numpy as np
import pytest

import overparam as op
from overparam.data import ETHANOL_ROWS_PER_BATCH


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test may read the real cache or the environment's data dir unless it asks."""
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OVERPARAM_DATA_DIR", raising=False)


def _no_network(url):
    raise urllib.error.URLError("offline (test)")


def test_prepared_table(data_dir):
    ethanol = op.load_ethanol(data_dir)
    assert ethanol.shape == (2565, 128)
    assert ethanol.source == "prepared table gas_sensor/derived/ethanol_2565.csv.gz in the data folder"
    assert str(data_dir) not in ethanol.source, "printed in Chapter 1: the file, not the build machine's folder"
    counts = {b: int((ethanol.batch == b).sum()) for b in range(11)}
    for b in (1, 2, 3, 4, 5, 6, 8, 9):
        assert counts[b] == ETHANOL_ROWS_PER_BATCH[b]
    assert counts[0] == ETHANOL_ROWS_PER_BATCH[7] + ETHANOL_ROWS_PER_BATCH[10]
    assert ethanol.y.min() == 2.5 and ethanol.y.max() == 600.0
    assert np.isfinite(ethanol.X).all()


def test_environment_variable_is_a_source(monkeypatch, data_dir):
    monkeypatch.setenv("OVERPARAM_DATA_DIR", str(data_dir))
    d = op.load_ethanol(download=False)
    assert d.shape == (2565, 128)


def _uci_lines(X, y, label=1):
    return [f"{label};{float(c)!r} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(row)) for row, c in zip(X, y)]


def _write_uci_batches(ethanol, folder, drop_rows_of=None):
    """UCI-format batch files rebuilt from the prepared table (rows of batches 7/10 split by count),
    with non-ethanol rows mixed in that the loader must skip."""
    folder.mkdir(parents=True, exist_ok=True)
    unknown = np.flatnonzero(ethanol.batch == 0)
    rows = {b: np.flatnonzero(ethanol.batch == b) for b in ETHANOL_ROWS_PER_BATCH}
    if unknown.size:  # the prepared table does not know which of these rows came from batch 7 or 10
        rows[7], rows[10] = unknown[: ETHANOL_ROWS_PER_BATCH[7]], unknown[ETHANOL_ROWS_PER_BATCH[7]:]
    for b, idx in rows.items():
        if b == drop_rows_of:
            idx = idx[:-3]
        lines = _uci_lines(ethanol.X[idx], ethanol.y[idx])
        lines[1:1] = _uci_lines(ethanol.X[idx[:2]] * 0.5, ethanol.y[idx[:2]], label=2)  # ethylene: skipped
        (folder / f"batch{b}.dat").write_text("\n".join(lines) + "\n")
    return rows


def test_uci_batch_files(ethanol, tmp_path):
    rows = _write_uci_batches(ethanol, tmp_path / "d" / "gas_sensor")
    d = op.load_ethanol(tmp_path / "d")
    assert d.source == "UCI batch files gas_sensor/batch*.dat in the data folder"
    order = np.concatenate([rows[b] for b in sorted(rows)])
    np.testing.assert_array_equal(d.X, ethanol.X[order])
    np.testing.assert_array_equal(d.y, ethanol.y[order])
    assert (d.batch == np.concatenate([[b] * len(rows[b]) for b in sorted(rows)])).all()


def test_truncated_batch_file_is_an_error(ethanol, tmp_path):
    _write_uci_batches(ethanol, tmp_path / "d" / "gas_sensor", drop_rows_of=3)
    with pytest.raises(op.DataIntegrityError, match="batch3.dat: found 362 ethanol rows, UCI's batch 3 has 365"):
        op.load_ethanol(tmp_path / "d")


def test_missing_batch_file_is_named(ethanol, tmp_path):
    _write_uci_batches(ethanol, tmp_path / "d" / "gas_sensor")
    (tmp_path / "d" / "gas_sensor" / "batch7.dat").unlink()
    with pytest.raises(op.DataIntegrityError, match="not batch 7"):
        op.load_ethanol(tmp_path / "d")


def test_malformed_line_is_an_error():
    with pytest.raises(op.DataIntegrityError, match="line 1: unreadable value"):
        op.parse_uci_batch("1;10.0 1:abc 2:3\n", 1, name="b1")
    with pytest.raises(op.DataIntegrityError, match="line 1: expected 'GAS;CONCENTRATION"):
        op.parse_uci_batch("garbage\n", 1, name="b1")


def test_corrupt_prepared_table_is_an_error(data_dir, tmp_path):
    dest = tmp_path / "d" / "gas_sensor" / "derived"
    dest.mkdir(parents=True)
    raw = bytearray((data_dir / "gas_sensor" / "derived" / "ethanol_2565.csv.gz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (dest / "ethanol_2565.csv.gz").write_bytes(bytes(raw))
    with pytest.raises(op.DataIntegrityError, match="SHA-256"):
        op.load_ethanol(tmp_path / "d")
    (dest / "ethanol_2565.csv.gz").write_bytes(bytes(raw[: len(raw) // 3]))  # truncated
    with pytest.raises(op.DataIntegrityError, match="corrupt or truncated"):
        op.load_ethanol(tmp_path / "d")


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        op.load_ethanol(tmp_path / "nowhere")


def test_offline_without_a_copy_says_where_to_put_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="put UCI's batch1.dat") as err:
        op.load_ethanol(tmp_path / "empty", _fetch=_no_network)
    assert "OVERPARAM_DATA_DIR" in str(err.value) and op.data.UCI_GAS_ZIP_URL in str(err.value)
    with pytest.raises(FileNotFoundError, match="download=False"):
        op.load_ethanol(tmp_path / "empty", download=False)


def _zip_of(folder, nested):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for f in sorted(folder.glob("batch*.dat")):
            zf.write(f, f"Dataset/{f.name}")
    if not nested:
        return inner.getvalue()
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("Dataset.zip", inner.getvalue())
    return outer.getvalue()


@pytest.mark.parametrize("nested", [False, True])
def test_download_fills_and_then_uses_the_cache(ethanol, tmp_path, nested):
    _write_uci_batches(ethanol, tmp_path / "src")
    archive = _zip_of(tmp_path / "src", nested)
    calls = []

    def fake_fetch(url):
        calls.append(url)
        return archive

    d = op.load_ethanol(_fetch=fake_fetch)
    assert calls == [op.data.UCI_GAS_ZIP_URL] and "downloaded" in d.source
    again = op.load_ethanol(_fetch=fake_fetch)
    assert len(calls) == 1 and again.source == "UCI batch files gas_sensor/batch*.dat in the download cache"
    np.testing.assert_array_equal(again.X, d.X)


def test_a_partial_cache_is_downloaded_again_or_named_offline(ethanol, tmp_path):
    """An interrupted earlier download left some batch files in the cache: it is replaced, never used or trusted."""
    _write_uci_batches(ethanol, tmp_path / "src")
    archive = _zip_of(tmp_path / "src", nested=False)
    gas = op.cache_dir() / "gas_sensor"
    gas.mkdir(parents=True)
    for f in sorted((tmp_path / "src").glob("batch*.dat"))[:3]:
        (gas / f.name).write_bytes(f.read_bytes())
    with pytest.raises(op.DataIntegrityError, match=f"delete {re.escape(str(gas))}"):
        op.load_ethanol(download=False)
    with pytest.warns(UserWarning, match="downloading the data again"):
        d = op.load_ethanol(_fetch=lambda url: archive)
    assert "downloaded" in d.source and len(list(gas.glob("batch*.dat"))) == 10
    assert sorted(p.name for p in gas.parent.iterdir()) == ["gas_sensor"], "a temporary folder was left behind"
    np.testing.assert_array_equal(op.load_ethanol(download=False).X, d.X)


def test_bad_download_never_reaches_the_cache(ethanol, tmp_path):
    _write_uci_batches(ethanol, tmp_path / "src", drop_rows_of=6)
    archive = _zip_of(tmp_path / "src", nested=False)
    with pytest.raises(op.DataIntegrityError, match="batch 6"):
        op.load_ethanol(_fetch=lambda url: archive)
    with pytest.raises(op.DataIntegrityError, match="not a valid zip"):
        op.load_ethanol(_fetch=lambda url: b"<html>not a zip</html>")
    assert not list((op.cache_dir() / "gas_sensor").glob("batch*.dat"))


def test_standardize(ethanol):
    s = op.standardize(ethanol.X, ethanol.y)
    np.testing.assert_allclose(s.X.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(s.X.std(axis=0), 1, rtol=1e-10)
    assert abs(s.y.mean()) < 1e-12 and s.y.std() == pytest.approx(1.0)
    np.testing.assert_allclose(s.X * s.x_std + s.x_mean, ethanol.X, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(s.y * s.y_std + s.y_mean, ethanol.y, rtol=1e-12)


def test_standardize_bad_input():
    with pytest.raises(ValueError, match="y must have shape"):
        op.standardize(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="constant column"):
        op.standardize(np.c_[np.ones(3), np.arange(3.0)], np.arange(3.0))
    with pytest.raises(ValueError, match="X must be a 2-D"):
        op.standardize(np.ones(3), np.ones(3))


def test_deterministic(data_dir):
    a, b = op.load_ethanol(data_dir), op.load_ethanol(data_dir)
    np.testing.assert_array_equal(a.X, b.X)


def test_non_utf8_byte_in_a_batch_file_names_the_file_and_line(ethanol, tmp_path):
    """Bug: a stray byte raised a bare UnicodeDecodeError that did not say which file."""
    _write_uci_batches(ethanol, tmp_path / "d" / "gas_sensor")
    path = tmp_path / "d" / "gas_sensor" / "batch4.dat"
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"1:", b"1:\xe9", 1)  # a Latin-1 "é" inside a value of line 5
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(op.DataIntegrityError, match=r"batch4\.dat, line 5: byte 0xe9 .* is not text"):
        op.load_ethanol(tmp_path / "d")


def test_readme_and_loader_say_what_is_verified():
    """The UCI batch files have no checksums: the docs promise structure and counts only, checksums elsewhere."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    data = readme.split("### Data", 1)[1].split("\n### ", 1)[0]
    flat = " ".join(data.split())
    assert "UCI's batch files are not checksummed" in flat and "structure and known counts only" in flat
    assert "a digit changed inside a value passes unnoticed" in flat
    assert "prepared Ethanol table is content-checksummed" in flat and "SHA-256" in flat
    for doc in (op.data.__doc__, op.load_ethanol.__doc__):
        flat = " ".join(doc.split())
        assert "structure and known counts" in flat and "SHA-256" in flat and "not caught" in flat


class _Stalled:
    """A fake ``urlopen`` whose server never answers: it records the timeout it was given and times out."""

    def __init__(self, where):
        self.where, self.timeouts = where, []

    def __call__(self, url, timeout=None):
        self.timeouts.append(timeout)
        if self.where == "connect":
            raise urllib.error.URLError(TimeoutError("timed out"))
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        raise TimeoutError("The read operation timed out")


@pytest.mark.parametrize("where", ["connect", "read"])
def test_stalled_server_times_out_quickly_and_says_so(monkeypatch, tmp_path, capsys, where):
    """Weak spot: a server that never answered made a loader wait silently for minutes."""
    stalled = _Stalled(where)
    monkeypatch.setattr(urllib.request, "urlopen", stalled)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no answer from https://\S+ within 20 s"):
        op.load_ethanol(tmp_path / "empty")
    assert stalled.timeouts == [op.data.DOWNLOAD_TIMEOUT] and op.data.DOWNLOAD_TIMEOUT <= 30
    assert f"downloading {op.data.UCI_GAS_ZIP_URL} (waiting at most 20 s" in capsys.readouterr().err
    # The MNIST loader shares the download: after the first mirror times out, nothing else is tried (it used to
    # try every mirror for every file, 20 s each), and the message says so.
    with pytest.raises(FileNotFoundError, match="no answer from") as err:
        op.load_mnist("test", tmp_path / "empty")
    mirrors = op.mnist.MNIST_MIRRORS
    assert stalled.timeouts[1:] == [op.data.DOWNLOAD_TIMEOUT]
    assert f"no answer from {mirrors[0]}" in str(err.value) and "stopped after this first timeout" in str(err.value)
    assert capsys.readouterr().err.count("downloading ") == 1


def test_other_network_errors_pass_through(monkeypatch):
    def refused(url, timeout=None):
        raise urllib.error.URLError(ConnectionRefusedError("refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    with pytest.raises(urllib.error.URLError, match="refused"):
        op.data._urlopen_bytes("https://example.invalid/x")


def test_load_standardized_ethanol_is_chapter_ones_preprocessing(ethanol, data_dir):
    direct = op.standardize(ethanol.X, ethanol.y)
    one_call = op.load_standardized_ethanol(data_dir, download=False)
    np.testing.assert_array_equal(one_call.X, direct.X)
    np.testing.assert_array_equal(one_call.y, direct.y)


# ---------------------------------------------------------------------------
# Arguments: data_dir and download say what is wrong with them
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [3, 2.5, ["data"], b"data"])
def test_a_data_dir_that_is_no_path_is_named(bad):
    """``load_ethanol(3)`` used to end in a bare ``TypeError`` from pathlib."""
    with pytest.raises(TypeError, match=r"^data_dir must be a folder \(a str or a path\), got"):
        op.load_ethanol(bad, download=False)


def test_a_data_dir_that_is_a_file_is_not_called_missing(tmp_path, monkeypatch):
    (tmp_path / "data.txt").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"data\.txt is a file, not a folder \(from the data_dir argument\)"):
        op.load_ethanol(tmp_path / "data.txt", download=False)
    monkeypatch.setenv("OVERPARAM_DATA_DIR", str(tmp_path / "data.txt"))
    with pytest.raises(NotADirectoryError, match=r"is a file, not a folder \(from OVERPARAM_DATA_DIR\)"):
        op.load_ethanol(download=False)


def test_the_gas_sensor_folder_itself_says_pass_its_parent(data_dir, tmp_path):
    """It used to say to put the files into .../gas_sensor/gas_sensor/."""
    (tmp_path / "gas_sensor").mkdir()
    for wrong in (data_dir / "gas_sensor", tmp_path / "gas_sensor"):  # with the prepared table; empty but so named
        with pytest.raises(FileNotFoundError, match="is the gas_sensor/ folder itself: pass its parent folder") as err:
            op.load_ethanol(wrong, download=False)
        assert str(wrong.parent) in str(err.value) and "gas_sensor/gas_sensor" not in str(err.value)


def test_batch_files_directly_in_the_data_dir_say_pass_its_parent(ethanol, tmp_path):
    _write_uci_batches(ethanol, tmp_path / "uci")
    with pytest.raises(FileNotFoundError, match="uci .*is the gas_sensor/ folder itself: pass its parent"):
        op.load_ethanol(tmp_path / "uci", download=False)


def test_a_tilde_in_the_data_dir_is_the_home_folder(data_dir, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "d" / "gas_sensor" / "derived").mkdir(parents=True)
    table = data_dir / "gas_sensor" / "derived" / "ethanol_2565.csv.gz"
    (home / "d" / "gas_sensor" / "derived" / table.name).symlink_to(table)
    monkeypatch.setenv("HOME", str(home))
    assert op.load_ethanol("~/d", download=False).shape == (2565, 128)
    monkeypatch.setenv("OVERPARAM_DATA_DIR", "~/d")
    assert op.load_ethanol(download=False).shape == (2565, 128)


@pytest.mark.parametrize("bad", ["no", "False", 0, 1, None])
def test_download_must_be_a_bool(tmp_path, bad):
    """``download='no'`` is a true value: it used to download."""
    asked = []
    (tmp_path / "empty").mkdir()
    with pytest.raises(TypeError, match=f"^download must be True or False, got {re.escape(repr(bad))}"):
        op.load_ethanol(tmp_path / "empty", download=bad, _fetch=asked.append)
    with pytest.raises(TypeError, match="^download must be True or False"):
        op.load_standardized_ethanol(tmp_path / "empty", download=bad)
    with pytest.raises(TypeError, match="^download must be True or False"):
        op.find_results("not_committed.npz", download=bad)
    assert asked == []
    with pytest.raises(FileNotFoundError, match="download=False"):  # numpy's bool is a bool
        op.load_ethanol(tmp_path / "empty", download=np.bool_(False))


def _ethanol_line(concentration: str = "10.0", first: str = "0.5") -> str:
    return f"1;{concentration} 1:{first} " + " ".join(f"{i}:0.5" for i in range(2, 129)) + "\n"


@pytest.mark.parametrize("concentration, first", [("10.0", "nan"), ("10.0", "inf"), ("nan", "0.5"), ("-10.0", "0.5")])
def test_a_non_finite_value_or_negative_concentration_is_a_data_error(concentration, first):
    """Bug: NaN or inf features, and a NaN or negative concentration, were returned silently."""
    with pytest.raises(op.DataIntegrityError, match=r"^b1, line 2: the features must be finite and the concentration"):
        op.parse_uci_batch("2;5.0 1:0.1\n" + _ethanol_line(concentration, first), 1, name="b1")


def test_parse_uci_batch_names_a_batch_or_text_of_the_wrong_kind_before_parsing():
    """Bugs: batch="1" was a DataIntegrityError "batch number must be 1-10" after the whole file was parsed, and
    batch=True was accepted; bytes or a Path failed inside str methods."""
    for bad in ("1", True, 0, 11, 1.0):
        with pytest.raises(ValueError, match=r"^batch must be an integer in 1\.\.10, got") as info:
            op.parse_uci_batch(_ethanol_line(), bad)
        assert not isinstance(info.value, op.DataIntegrityError)
    for bad in (_ethanol_line().encode(), Path("batch1.dat")):
        with pytest.raises(TypeError, match=r"^text must be the file's content as str; read it with open\(path\)"):
            op.parse_uci_batch(bad, 1)
