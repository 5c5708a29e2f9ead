"""Tests of the MNIST loader (overparam.mnist) against the offline official files."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
from pathlib import Path

import urllib.error

import numpy as np
import pytest

from overparam import data as op_data
from overparam import mnist as mn
from overparam.data import DataIntegrityError
from overparam.mnist import load_mnist, mnist_training_set, parse_idx, scale_pixels, training_and_validation

SHARED = Path(os.environ.get("OVERPARAM_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
MNIST_DIR = SHARED / "mnist"
TEST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
TRAIN_LABELS = MNIST_DIR / "train-labels-idx1-ubyte.gz"
TRAIN_IMAGES = MNIST_DIR / "train-images-idx3-ubyte.gz"
needs_train = pytest.mark.skipif(not TRAIN_IMAGES.is_file(), reason=f"{TRAIN_IMAGES} not found")

pytestmark = pytest.mark.skipif(not TEST_IMAGES.is_file(), reason=f"offline MNIST copy not found in {MNIST_DIR}")


def _offline(url: str) -> bytes:
    raise OSError(f"offline test: no network for {url}")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets an empty cache, no OVERPARAM_DATA_DIR and no network."""
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OVERPARAM_DATA_DIR", raising=False)
    monkeypatch.setattr(mn, "_urlopen_bytes", _offline)


@pytest.fixture(scope="module")
def test_set():
    return load_mnist("test", SHARED, download=False)


def _data_dir_with(tmp_path: Path, files: dict[str, bytes | Path]) -> Path:
    """A data dir whose mnist/ holds the given files (bytes written, paths copied)."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content, folder / name)
        else:
            (folder / name).write_bytes(content)
    return folder.parent


def _idx_images(pixels: np.ndarray, magic: int = 2051) -> bytes:
    header = np.array([magic, *pixels.shape], dtype=">u4").tobytes()
    return header + pixels.astype(np.uint8).tobytes()


# ---------------------------------------------------------------------------
# Good files
# ---------------------------------------------------------------------------
def test_test_split_shapes_scaling_and_labels(test_set):
    assert test_set.images.shape == (10_000, 1, 28, 28) and test_set.images.dtype == np.float32
    assert test_set.labels.shape == (10_000,) and test_set.labels.dtype == np.int64
    assert test_set.images.min() == -0.5 and test_set.images.max() == 0.5
    # every value is (p - 127.5) / 255 for an integer pixel p
    pixels = test_set.images * 255 + 127.5
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
    # README: test label counts
    assert np.bincount(test_set.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test_set.split == "test" and test_set.stands_in_for is None
    assert f"mnist/{TEST_IMAGES.name} in the data folder" in test_set.source and "SHA-256 verified" in test_set.source
    assert str(SHARED) not in test_set.source, "the source names the file, not the build machine's folder"


def test_images_match_independent_idx_reading(test_set):
    with gzip.open(TEST_IMAGES, "rb") as fh:
        raw = fh.read()
    first = np.frombuffer(raw[16 : 16 + 784], dtype=np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(test_set.images[0, 0], (first.astype(np.float32) - 127.5) / 255)


def test_scale_pixels_endpoints_and_dtype():
    np.testing.assert_array_equal(scale_pixels(np.array([0, 255], dtype=np.uint8)), [-0.5, 0.5])
    with pytest.raises(ValueError, match="uint8"):
        scale_pixels(np.array([0.0, 1.0]))


def test_recompressed_copy_passes_content_check(tmp_path, test_set):
    """Verification is on decompressed content: a copy with other gz bytes is accepted."""
    content = gzip.decompress(TEST_LABELS.read_bytes())
    recompressed = gzip.compress(content, compresslevel=1, mtime=0)
    assert recompressed != TEST_LABELS.read_bytes()
    root = _data_dir_with(tmp_path, {TEST_IMAGES.name: TEST_IMAGES, TEST_LABELS.name: recompressed})
    np.testing.assert_array_equal(load_mnist("test", root, download=False).labels, test_set.labels)


# ---------------------------------------------------------------------------
# Bad and missing files
# ---------------------------------------------------------------------------
def test_corrupted_content_fails_checksum(tmp_path):
    content = bytearray(gzip.decompress(TEST_IMAGES.read_bytes()))
    content[5000] ^= 0xFF  # one pixel changed; header, size and gzip CRC all stay valid
    root = _data_dir_with(tmp_path, {TEST_IMAGES.name: gzip.compress(bytes(content), 1), TEST_LABELS.name: TEST_LABELS})
    with pytest.raises(DataIntegrityError, match="SHA-256 of the decompressed content"):
        load_mnist("test", root, download=False)


def test_changed_label_fails(tmp_path):
    content = bytearray(gzip.decompress(TEST_LABELS.read_bytes()))
    content[8] = (content[8] + 1) % 10
    root = _data_dir_with(tmp_path, {TEST_IMAGES.name: TEST_IMAGES, TEST_LABELS.name: gzip.compress(bytes(content))})
    with pytest.raises(DataIntegrityError, match="label counts|SHA-256"):
        load_mnist("test", root, download=False)


def test_truncated_gz_is_reported(tmp_path):
    raw = TEST_IMAGES.read_bytes()
    root = _data_dir_with(tmp_path, {TEST_IMAGES.name: raw[: len(raw) // 2], TEST_LABELS.name: TEST_LABELS})
    with pytest.raises(DataIntegrityError, match="not a complete gzip file"):
        load_mnist("test", root, download=False)


def test_not_gzip_is_reported(tmp_path):
    root = _data_dir_with(tmp_path, {TEST_IMAGES.name: b"<html>404</html>", TEST_LABELS.name: TEST_LABELS})
    with pytest.raises(DataIntegrityError, match="gzip"):
        load_mnist("test", root, download=False)


def test_bad_magic_number(tmp_path):
    fake = _idx_images(np.zeros((60_000, 28, 28), np.uint8), magic=2049)
    root = _data_dir_with(tmp_path, {"train-images-idx3-ubyte.gz": gzip.compress(fake, 1), TRAIN_LABELS.name: TRAIN_LABELS})
    with pytest.raises(DataIntegrityError, match="bad magic number 2049"):
        load_mnist("train", root, download=False)


def test_parse_idx_rejects_wrong_length_and_size():
    good = _idx_images(np.zeros((3, 28, 28), np.uint8))
    assert parse_idx(good, "images").shape == (3, 28, 28)
    with pytest.raises(DataIntegrityError, match="truncated or padded"):
        parse_idx(good[:-1], "images")
    with pytest.raises(DataIntegrityError, match="expected 28x28"):
        parse_idx(_idx_images(np.zeros((3, 27, 28), np.uint8)), "images")
    with pytest.raises(DataIntegrityError, match="outside 0-9"):
        parse_idx(np.array([2049, 2], ">u4").tobytes() + bytes([3, 10]), "labels")
    with pytest.raises(ValueError, match="kind"):
        parse_idx(good, "pixels")  # type: ignore[arg-type]


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist("test", tmp_path / "nowhere", download=False)


def test_missing_training_images_say_where_to_put_them(tmp_path):
    """A data dir with everything but the training images, offline: the message says where to put the file."""
    root = _data_dir_with(tmp_path, {p.name: p for p in (TEST_IMAGES, TEST_LABELS, TRAIN_LABELS)})
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("train", root)  # download=True, but offline
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert str(root / "mnist") in message and str(tmp_path / "cache" / "mnist") in message
    assert "download failed" in message and mn.MNIST_MIRRORS[0] in message


def test_bad_split_name():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("training", SHARED)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The tutorial's splits, the offline fallback, the download path
# ---------------------------------------------------------------------------
def test_absent_training_images_fall_back_to_the_labelled_test_set(tmp_path, test_set):
    root = _data_dir_with(tmp_path, {p.name: p for p in (TEST_IMAGES, TEST_LABELS, TRAIN_LABELS)})
    with pytest.warns(UserWarning, match="instead of the 55,000 training images"):
        data = mnist_training_set(root)
    assert data.split == "test" and data.stands_in_for == "train" and len(data) == 10_000
    assert "standing in for the tutorial's train split" in data.description
    np.testing.assert_array_equal(data.labels, test_set.labels)
    assert mnist_training_set(SHARED, prefer="test").stands_in_for == "train"
    with pytest.raises(ValueError, match="prefer"):
        mnist_training_set(SHARED, prefer="validation")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):  # a wrong folder is no reason to fall back
        mnist_training_set(tmp_path / "nowhere")


def test_training_and_validation_without_training_images_hold_out_the_last_test_images(tmp_path, test_set):
    root = _data_dir_with(tmp_path, {p.name: p for p in (TEST_IMAGES, TEST_LABELS)})
    with pytest.warns(UserWarning, match="instead of the 55,000 training images"):
        train, val = training_and_validation(root, stand_in_validation=1_000)
    assert (len(train), len(val)) == (9_000, 1_000)
    assert train.stands_in_for == "train" and val.stands_in_for == "validation"
    np.testing.assert_array_equal(np.r_[train.labels, val.labels], test_set.labels)
    np.testing.assert_array_equal(val.images, test_set.images[-1_000:])
    assert "standing in for the tutorial's validation split" in val.description
    for bad in (0, 10_000, 2.5):
        with pytest.raises(ValueError, match="stand_in_validation"):
            training_and_validation(root, stand_in_validation=bad)


@needs_train
def test_training_and_validation_are_the_tutorials_splits():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, val = training_and_validation(SHARED, download=False)
    assert (len(train), len(val)) == (55_000, 5_000)
    assert train.stands_in_for is None and val.stands_in_for is None
    assert (train.split, val.split) == ("train", "validation")
    # independent reading of the labels file: the tutorial's first 5,000 are validation, the rest training
    import gzip

    raw = np.frombuffer(gzip.decompress(TRAIN_LABELS.read_bytes())[8:], dtype=np.uint8)
    np.testing.assert_array_equal(val.labels, raw[:5_000])
    np.testing.assert_array_equal(train.labels, raw[5_000:])


@needs_train
def test_official_training_split_loads_verified_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = load_mnist("train", SHARED, download=False)
        val = load_mnist("validation", SHARED, download=False)
        chosen = mnist_training_set(SHARED, download=False)
    assert len(train) == 55_000 and len(val) == 5_000 and chosen.stands_in_for is None and len(chosen) == 55_000
    assert "content SHA-256 verified" in train.source and f"mnist/{TRAIN_IMAGES.name} in the data folder" in train.source
    # the tutorial's split: validation = first 5,000 of the 60,000, train = the rest (README: label counts)
    all_labels = np.frombuffer(gzip.decompress(TRAIN_LABELS.read_bytes())[8:], np.uint8)
    np.testing.assert_array_equal(val.labels, all_labels[:5000])
    np.testing.assert_array_equal(train.labels, all_labels[5000:])
    with gzip.open(TRAIN_IMAGES, "rb") as fh:
        raw = fh.read()
    first_train = np.frombuffer(raw[16 + 5000 * 784 : 16 + 5001 * 784], dtype=np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(train.images[0, 0], scale_pixels(first_train))
    # README: pixel mean of all 60,000 images
    pixels = np.frombuffer(raw[16:], dtype=np.uint8)
    assert abs(pixels.mean() - 33.3184) < 1e-4
    np.testing.assert_array_equal(chosen.images, train.images)


def test_fake_training_images_with_a_valid_header_are_rejected(tmp_path):
    """Blank images with a correct IDX header, shape and size: refused by the content checksum."""
    pixels = np.zeros((60_000, 28, 28), dtype=np.uint8)
    root = _data_dir_with(tmp_path, {
        "train-images-idx3-ubyte.gz": gzip.compress(_idx_images(pixels), 1), TRAIN_LABELS.name: TRAIN_LABELS,
        TEST_IMAGES.name: TEST_IMAGES, TEST_LABELS.name: TEST_LABELS,
    })
    for split in ("train", "validation"):
        with pytest.raises(DataIntegrityError, match="SHA-256 of the decompressed content"):
            load_mnist(split, root, download=False)
    with pytest.raises(DataIntegrityError):  # a damaged file never falls back to the test set
        mnist_training_set(root, download=False)


@needs_train
def test_one_changed_training_pixel_is_rejected(tmp_path):
    content = bytearray(gzip.decompress(TRAIN_IMAGES.read_bytes()))
    content[16 + 30_000 * 784 + 400] ^= 0x01
    root = _data_dir_with(tmp_path, {TRAIN_IMAGES.name: gzip.compress(bytes(content), 1), TRAIN_LABELS.name: TRAIN_LABELS})
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        load_mnist("train", root, download=False)


def _cache_missing_test_labels(tmp_path, monkeypatch):
    """A download cache holding the test images but not the test labels, whose official MD5 is set to that of the
    real file: a fetch that returns ``raw`` then lands verified. Returns ``(raw, cache folder)``."""
    raw = TEST_LABELS.read_bytes()
    spec = dataclasses.replace(mn._FILES["test-labels"], official_gz_md5=hashlib.md5(raw).hexdigest())
    monkeypatch.setitem(mn._FILES, "test-labels", spec)
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    shutil.copy(TEST_IMAGES, cache / TEST_IMAGES.name)
    return raw, cache


@pytest.mark.parametrize("first_mirror", ["down", "serves a wrong file"])
def test_download_lands_verified_in_cache(tmp_path, monkeypatch, first_mirror):
    """The first mirror fails (no answer, or an error page whose MD5 is wrong): the second one's file is used."""
    raw, cache = _cache_missing_test_labels(tmp_path, monkeypatch)
    asked = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        if url.startswith(mn.MNIST_MIRRORS[0]):
            if first_mirror == "down":
                raise OSError("first mirror down")
            return b"an error page"
        return raw

    data = load_mnist("test", _fetch=fetch)
    assert asked == [m + TEST_LABELS.name for m in mn.MNIST_MIRRORS]
    assert (cache / TEST_LABELS.name).read_bytes() == raw
    assert f"mnist/{TEST_LABELS.name} in the download cache" in data.source and len(data) == 10_000


def test_download_with_wrong_md5_is_rejected_and_not_cached(tmp_path):
    asked = []

    def wrong(url: str) -> bytes:
        asked.append(url)
        return b"not the official file"

    with pytest.raises(DataIntegrityError, match="MD5"):
        load_mnist("test", _fetch=wrong)
    assert asked == [m + TEST_IMAGES.name for m in mn.MNIST_MIRRORS], "every mirror is tried before giving up"
    assert not (tmp_path / "cache" / "mnist" / TEST_IMAGES.name).exists()
    assert not list((tmp_path / "cache").rglob("*.part"))


# ---------------------------------------------------------------------------
# Missing files, a stalled network, and the arguments
# ---------------------------------------------------------------------------
ALL_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")


@pytest.mark.parametrize("download", [False, True])
def test_an_empty_data_dir_names_every_missing_file(tmp_path, monkeypatch, download):
    """The final error used to name only t10k-images (the last file tried); now all four, and no fallback warning."""
    (tmp_path / "empty").mkdir()
    import warnings

    tried = []
    monkeypatch.setattr(mn, "_urlopen_bytes", lambda url: (tried.append(url), _offline(url))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError) as err:
            mnist_training_set(tmp_path / "empty", download=download)  # the download is offline (plain OSError)
    first = str(err.value).splitlines()[0]
    assert all(name in first for name in ALL_FILES), first
    assert ("download=False" if not download else "download failed: ") in first
    assert bool(tried) == download, f"download={download}, yet {len(tried)} downloads were tried"
    assert str(tmp_path / "empty" / "mnist") in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        load_mnist("test", tmp_path / "empty", download=False)
    assert all(name in str(err.value).splitlines()[0] for name in ALL_FILES[2:])


class _Opener:
    """A fake ``urllib.request.urlopen`` that fails every call with ``error`` after ``delay`` s, counting calls."""

    def __init__(self, error, delay=0.0):
        self.error, self.delay, self.urls = error, delay, []

    def __call__(self, url, timeout=None):
        import time

        self.urls.append(url)
        time.sleep(self.delay)
        raise self.error


@pytest.mark.parametrize("error", [
    pytest.param(lambda: urllib.error.URLError(TimeoutError("timed out")), id="connect timeout"),
    pytest.param(lambda: TimeoutError("The read operation timed out"), id="read timeout"),
    pytest.param(lambda: urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), id="refused"),
    pytest.param(lambda: urllib.error.URLError(OSError(101, "Network is unreachable")), id="unreachable"),
])
def test_a_stalled_network_costs_one_timeout_not_four(tmp_path, monkeypatch, error):
    """With a stalled network mnist_training_set used to wait 4 x 20 s (two files, two mirrors each)."""
    import urllib.request

    monkeypatch.setattr(mn, "_urlopen_bytes", op_data._urlopen_bytes)  # the real download, with a fake urlopen
    opener = _Opener(error(), delay=0.2)
    monkeypatch.setattr(urllib.request, "urlopen", opener)
    (tmp_path / "empty").mkdir()
    import time

    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        mnist_training_set(tmp_path / "empty")
    seconds = time.perf_counter() - start
    assert opener.urls == [mn.MNIST_MIRRORS[0] + ALL_FILES[0]], "nothing is tried after the first failure"
    assert seconds < 2 * opener.delay
    message = str(err.value).splitlines()[0]
    assert "stopped after this first timeout or connection failure, no other download was tried" in message
    assert all(name in message for name in ALL_FILES)


def test_a_mirror_that_answers_with_an_error_does_not_stop_the_download(tmp_path, monkeypatch):
    """An HTTP error is an answer: the next mirror is tried (as is every file)."""
    import urllib.request

    monkeypatch.setattr(mn, "_urlopen_bytes", op_data._urlopen_bytes)  # the real download, with a fake urlopen
    opener = _Opener(urllib.error.HTTPError("https://x", 404, "Not Found", {}, None))
    monkeypatch.setattr(urllib.request, "urlopen", opener)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="HTTP Error 404") as err:
        load_mnist("test", tmp_path / "empty")
    assert opener.urls == [m + name for name in ALL_FILES[2:] for m in mn.MNIST_MIRRORS]
    assert "stopped after" not in str(err.value)


def test_the_mnist_folder_itself_says_pass_its_parent(tmp_path):
    (tmp_path / "mnist").mkdir()
    for wrong in (MNIST_DIR, tmp_path / "mnist"):  # holding the files; empty but so named
        with pytest.raises(FileNotFoundError, match="is the mnist/ folder itself: pass its parent folder") as err:
            load_mnist("test", wrong, download=False)
        assert str(wrong.parent) in str(err.value)
        with pytest.raises(FileNotFoundError, match="pass its parent folder"):
            mnist_training_set(wrong, download=False)


def test_data_dir_and_download_arguments_are_checked(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(mn, "_urlopen_bytes", asked.append)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    for call in (lambda **kw: load_mnist("test", **kw), lambda **kw: mnist_training_set(**kw),
                 lambda **kw: training_and_validation(**kw)):
        with pytest.raises(TypeError, match=r"^download must be True or False, got 'no'"):
            call(data_dir=tmp_path / "empty", download="no")
        with pytest.raises(TypeError, match=r"^data_dir must be a folder"):
            call(data_dir=3, download=False)
        with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
            call(data_dir=tmp_path / "a_file", download=False)
    assert asked == []
    home = tmp_path / "home"
    (home / "d" / "mnist").mkdir(parents=True)
    for path in (TEST_IMAGES, TEST_LABELS):
        (home / "d" / "mnist" / path.name).symlink_to(path)
    monkeypatch.setenv("HOME", str(home))
    assert len(load_mnist("test", "~/d", download=False)) == 10_000


def test_a_downloaded_file_is_readable_like_any_new_file(tmp_path, monkeypatch):
    """Downloads went through a temporary file and kept its mode, 0o600."""
    raw, cache = _cache_missing_test_labels(tmp_path, monkeypatch)
    old = os.umask(0o022)
    try:
        load_mnist("test", _fetch=lambda url: raw)
    finally:
        os.umask(old)
    assert ((cache / TEST_LABELS.name).stat().st_mode & 0o777) == 0o644
