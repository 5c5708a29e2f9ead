"""The MNIST digits, split and scaled as TensorFlow's ``convolutional.py`` tutorial (Chapter 6, ``ch-mnist``).

The paper's MNIST convnet experiment (arXiv:1802.06509; the authors' blog
post names TensorFlow's ``convolutional.py`` tutorial) trains the tutorial's
convnet on MNIST: the first 5,000 of the 60,000 training images are held out
for validation, the remaining 55,000 are the training split, and the 10,000
``t10k`` images are the test set. Pixels are scaled as the tutorial does,
``(pixel - 127.5) / 255``, to [-0.5, 0.5].

Where the four official IDX files come from, file by file, in order:

1. the *data directory*'s ``mnist/`` folder: the ``data_dir`` argument, else
   the environment variable ``OVERPARAM_DATA_DIR``;
2. the user cache ``cache_dir()/mnist/`` (see :func:`overparam.data.cache_dir`),
   filled on first use by downloading from a public mirror (the files that
   torchvision's MNIST downloader uses).

Everything read is verified: the gzip stream must decompress completely, the
IDX header must carry the right magic number and shape, and the decompressed
content must match its SHA-256 (pinned for all four files). A download is
also checked against the published MD5 of the official ``.gz`` file before it
lands in the cache. A copy that was recompressed (other ``.gz`` bytes, the same
content) is accepted; any other content is refused with
:class:`~overparam.data.DataIntegrityError`.

:func:`mnist_training_set` returns the 55,000-image training split. Only when
the training-images file is truly absent (not in the data directory nor the
cache, and no download possible) does it fall back to the 10,000-image test
set, saying so in the result; a damaged file is never replaced silently.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from .data import (DataIntegrityError, _check_download, _no_connection, _resolve_data_dir, _shown_path, _urlopen_bytes,
                   cache_dir)
from .files import atomic_write
from .validation import check_int

__all__ = [
    "MNISTData",
    "MNIST_MIRRORS",
    "PIXEL_DEPTH",
    "VALIDATION_SIZE",
    "final_evaluation_sets",
    "load_mnist",
    "mnist_training_set",
    "parse_idx",
    "training_and_validation",
    "scale_pixels",
]

#: Mirrors tried in order; each serves the four official ``.gz`` files.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: The tutorial's pixel depth: pixels are mapped to ``(p - PIXEL_DEPTH / 2) / PIXEL_DEPTH``.
PIXEL_DEPTH = 255
#: The tutorial holds out the *first* 5,000 training images for validation.
VALIDATION_SIZE = 5_000
IMAGE_SIZE = 28
N_CLASSES = 10

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


@dataclass(frozen=True)
class _FileSpec:
    name: str
    kind: Literal["images", "labels"]
    count: int
    content_sha256: str  # of the decompressed IDX content
    official_gz_md5: str  # of the official download
    label_counts: tuple[int, ...] | None = None


_FILES: dict[str, _FileSpec] = {
    "train-images": _FileSpec(
        "train-images-idx3-ubyte.gz", "images", 60_000,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    ),
    "train-labels": _FileSpec(
        "train-labels-idx1-ubyte.gz", "labels", 60_000,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "d53e105ee54ea40749a09fcbcd1e9432",
        (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    ),
    "test-images": _FileSpec(
        "t10k-images-idx3-ubyte.gz", "images", 10_000,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "9fb629c4189551a2d022fa330f9573f3",
    ),
    "test-labels": _FileSpec(
        "t10k-labels-idx1-ubyte.gz", "labels", 10_000,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "ec29112dd5afa0611ce80d1b7f02629c",
        (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    ),
}

Split = Literal["train", "validation", "test"]
_SPLITS: dict[str, tuple[str, slice]] = {
    "train": ("train", slice(VALIDATION_SIZE, None)),
    "validation": ("train", slice(0, VALIDATION_SIZE)),
    "test": ("test", slice(None)),
}


@dataclass(frozen=True)
class MNISTData:
    """One MNIST split, scaled like the tutorial (Chapter 6, ``ch-mnist``).

    Attributes
    ----------
    images : ndarray of float32, shape (n, 1, 28, 28)
        ``(pixel - 127.5) / 255``, in [-0.5, 0.5].
    labels : ndarray of int64, shape (n,)
        Digits 0-9.
    split : {"train", "validation", "test"}
        Which split the images *are*.
    source : str
        The files read, where from, and how they were verified.
    stands_in_for : str or None
        Set (to ``"train"``) when :func:`mnist_training_set` returns the test
        set because the training images are not available.
    """

    images: np.ndarray
    labels: np.ndarray
    split: str
    source: str
    stands_in_for: str | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def description(self) -> str:
        """One line for captions and results files, e.g. ``"MNIST test set (10,000 images) ..."``."""
        text = f"MNIST {self.split} split ({len(self):,} images)"
        if self.stands_in_for:
            text += (
                f", standing in for the tutorial's {self.stands_in_for} split "
                "(the 60,000 MNIST training images were not available)"
            )
        return text


# ---------------------------------------------------------------------------
# Parsing and verification
# ---------------------------------------------------------------------------
def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """Scale raw uint8 pixels as the tutorial does (Chapter 6, ``ch-mnist``).

    .. math::

        x = \\frac{p - 255/2}{255} \\in [-0.5, 0.5] .

    Returns float32 of the same shape.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8 (raw MNIST values 0-255), got dtype {pixels.dtype}")
    # In place on one float32 copy: the same float32 arithmetic as (x - 127.5) / 255 without its temporaries,
    # which for the 55,000 training images cost about 350 MB at the peak (Binder gives 1-2 GB)
    scaled = pixels.astype(np.float32)
    scaled -= PIXEL_DEPTH / 2.0
    scaled /= PIXEL_DEPTH
    return scaled


def parse_idx(content: bytes, kind: Literal["images", "labels"], name: str = "IDX file") -> np.ndarray:
    """Parse the decompressed content of an MNIST IDX file.

    Layout (big-endian 32-bit integers, then unsigned bytes): images are
    ``magic=2051, n, 28, 28`` followed by ``n * 784`` pixels; labels are
    ``magic=2049, n`` followed by ``n`` digits.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28) for images or (n,) for labels

    Raises
    ------
    DataIntegrityError
        On a wrong magic number, wrong image size, a length that does not
        match the header, or a label outside 0-9.
    """
    if kind not in ("images", "labels"):
        raise ValueError(f"kind must be 'images' or 'labels', got {kind!r}")
    magic, n_dims = (_IMAGES_MAGIC, 3) if kind == "images" else (_LABELS_MAGIC, 1)
    header_len = 4 * (1 + n_dims)
    if len(content) < header_len:
        raise DataIntegrityError(f"{name}: only {len(content)} bytes, shorter than an IDX {kind} header")
    header = np.frombuffer(content[:header_len], dtype=">u4").astype(np.int64)
    if header[0] != magic:
        raise DataIntegrityError(
            f"{name}: bad magic number {int(header[0])}, expected {magic} for MNIST {kind} (wrong or damaged file)"
        )
    shape = tuple(int(d) for d in header[1:])
    if kind == "images" and shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataIntegrityError(f"{name}: images are {shape[1]}x{shape[2]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    expected = header_len + int(np.prod(shape))
    if len(content) != expected:
        raise DataIntegrityError(
            f"{name}: {len(content)} bytes, but its header {shape} needs {expected} (truncated or padded)"
        )
    array = np.frombuffer(content, dtype=np.uint8, offset=header_len).reshape(shape)
    if kind == "labels" and array.size and array.max() >= N_CLASSES:
        raise DataIntegrityError(f"{name}: label {int(array.max())} outside 0-9")
    return array


def _decompress(raw: bytes, path: Path) -> bytes:
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataIntegrityError(
            f"{path}: not a complete gzip file ({exc}); the download was probably truncated or damaged, "
            "delete it and fetch it again"
        ) from None


def _read_verified(spec: _FileSpec, path: Path) -> tuple[np.ndarray, str]:
    """Decompress, parse and verify one file; return the array and how it was verified."""
    raw = path.read_bytes()
    content = _decompress(raw, path)
    array = parse_idx(content, spec.kind, name=str(path))
    if array.shape[0] != spec.count:
        raise DataIntegrityError(f"{path}: holds {array.shape[0]} {spec.kind}, the official file has {spec.count}")
    if spec.label_counts is not None:
        counts = tuple(int(c) for c in np.bincount(array, minlength=N_CLASSES))
        if counts != spec.label_counts:
            raise DataIntegrityError(f"{path}: label counts {counts} differ from the official {spec.label_counts}")
    digest = hashlib.sha256(content).hexdigest()
    if digest != spec.content_sha256:
        raise DataIntegrityError(
            f"{path}: SHA-256 of the decompressed content is {digest}, expected {spec.content_sha256} "
            "(corrupt or modified copy; replace it with the official file)"
        )
    return array, "content SHA-256 verified"


# ---------------------------------------------------------------------------
# Locations and download
# ---------------------------------------------------------------------------
class _Downloads:
    """The downloads of one call of a loader: after the first timeout or connection failure, none is tried again.

    On a stalled network every address would cost another
    :data:`~overparam.data.DOWNLOAD_TIMEOUT` s (two mirrors times two files:
    80 s before a loader gave up); one is enough to know.
    """

    def __init__(self, fetch: Callable[[str], bytes] | None) -> None:
        self.fetch = fetch or _urlopen_bytes
        self.failures: list[str] = []
        self.stopped = False

    def reason(self, download: bool) -> str:
        """Why the missing files are missing, for the error message."""
        if not download:
            return "download=False"
        text = "download failed: " + "; ".join(self.failures)
        if self.stopped:
            text += "; stopped after this first timeout or connection failure, no other download was tried"
        return text


def _download(spec: _FileSpec, folder: Path, downloads: _Downloads) -> Path | None:
    """Fetch one official file into ``folder`` (atomically), checking its published MD5 first.

    The mirrors are tried in order; one that answers with an error or serves a file with another MD5 is passed
    over, and the failure recorded in ``downloads``. A timeout or connection failure stops all downloads of the call
    (``downloads.stopped``). Returns ``None`` if no mirror served the official file; raises
    ``DataIntegrityError`` (naming every mirror's failure) if some mirror served a wrong file.
    """
    failures, wrong_file = [], False
    for mirror in MNIST_MIRRORS:
        if downloads.stopped:
            break
        url = mirror + spec.name
        try:
            raw = downloads.fetch(url)
        except OSError as exc:  # URLError is an OSError: offline, DNS, HTTP errors
            failures.append(f"{url}: {exc}")
            downloads.stopped = _no_connection(exc)
            continue
        digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if digest != spec.official_gz_md5:
            failures.append(f"{url}: downloaded {len(raw)} bytes with MD5 {digest}, the official file's is "
                            f"{spec.official_gz_md5}")
            wrong_file = True
            continue
        return atomic_write(folder / spec.name, lambda fh: fh.write(raw))
    if wrong_file:
        raise DataIntegrityError("; ".join(failures))
    downloads.failures.extend(failures)
    return None


class _MissingFiles(FileNotFoundError):
    """MNIST files that are nowhere and could not be downloaded; ``names`` lists them all."""

    def __init__(self, names: list[str], looked: list[Path], reason: str) -> None:
        self.names, self.looked, self.reason = list(names), list(looked), reason
        places = "\n".join(f"  {p}/" for p in looked)
        files = ", ".join(self.names)
        super().__init__(
            f"The MNIST file{'s' if len(self.names) > 1 else ''} {files} {'were' if len(self.names) > 1 else 'was'} "
            f"not found and could not be downloaded ({reason}).\n"
            f"Looked in:\n{places}\n"
            "Put the official files into <data dir>/mnist/ (pass data_dir=... or set OVERPARAM_DATA_DIR) or into "
            f"the cache folder {cache_dir() / 'mnist'}/, or connect to the internet so that they are fetched from\n"
            f"  {MNIST_MIRRORS[0]}{self.names[0] if len(self.names) == 1 else ''}"
        )


def _holds_mnist_files(folder: Path) -> bool:
    """Whether ``folder`` directly holds official MNIST files (which belong in ``<data dir>/mnist/``)."""
    return any((folder / spec.name).is_file() for spec in _FILES.values())


def _resolve_root(data_dir: str | os.PathLike | None) -> Path | None:
    return _resolve_data_dir(data_dir, "mnist", _holds_mnist_files)


def _find_or_fetch(specs: list[_FileSpec], root: Path | None, download: bool, downloads: _Downloads) -> list[Path]:
    """The path of every file of ``specs``: found locally, else downloaded; else one error naming all that are missing."""
    cache = cache_dir() / "mnist"
    looked = ([root / "mnist"] if root is not None else []) + [cache]
    paths: dict[str, Path] = {}
    for spec in specs:
        found = [folder / spec.name for folder in looked if (folder / spec.name).is_file()]
        if found:
            paths[spec.name] = found[0]
    missing = [spec for spec in specs if spec.name not in paths]
    if missing and download:
        for spec in missing:
            path = _download(spec, cache, downloads)
            if path is not None:
                paths[spec.name] = path
        missing = [spec for spec in specs if spec.name not in paths]
    if missing:
        raise _MissingFiles([spec.name for spec in missing], looked, downloads.reason(download))
    return [paths[spec.name] for spec in specs]


def load_mnist(
    split: Split,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    _fetch: Callable[[str], bytes] | None = None,
) -> MNISTData:
    """Load one MNIST split as the TensorFlow tutorial uses it (Chapter 6, ``ch-mnist``).

    ``"validation"`` is the *first* 5,000 of the 60,000 training images,
    ``"train"`` the remaining 55,000 and ``"test"`` the 10,000 ``t10k`` images.
    Pixels are scaled by :func:`scale_pixels` to [-0.5, 0.5].

    Parameters
    ----------
    split : {"train", "validation", "test"}
    data_dir : path, optional
        Folder whose ``mnist/`` subfolder holds the official ``*-ubyte.gz``
        files. Defaults to the environment variable ``OVERPARAM_DATA_DIR``;
        files not found there are looked up in ``cache_dir()/mnist/``.
    download : bool
        Fetch missing files from :data:`MNIST_MIRRORS` into the cache (only
        ``True`` or ``False``). After a timeout or a connection failure no
        other address is tried.

    Returns
    -------
    MNISTData
        ``images`` float32 (n, 1, 28, 28), ``labels`` int64 (n,), ``source``.

    Raises
    ------
    TypeError
        ``data_dir`` is not a str or a path, or ``download`` not a bool.
    FileNotFoundError
        A file is nowhere and cannot be downloaded (the message names every
        such file and says where to put them); or ``data_dir`` does not
        exist, or is the ``mnist/`` folder itself.
    NotADirectoryError
        ``data_dir`` is a file.
    DataIntegrityError
        A file is truncated, not gzip, has a bad IDX header, or its content
        fails its checksum.
    """
    return _load(split, _resolve_root(data_dir), _check_download(download), _Downloads(_fetch))


def _load(split: Split, root: Path | None, download: bool, downloads: _Downloads) -> MNISTData:
    """:func:`load_mnist` with its arguments checked; ``downloads`` may be shared by several calls."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    group, rows = _SPLITS[split]
    specs = [_FILES[f"{group}-{kind}"] for kind in ("images", "labels")]
    arrays, notes = [], []
    for spec, path in zip(specs, _find_or_fetch(specs, root, download, downloads)):
        array, how = _read_verified(spec, path)
        arrays.append(array[rows])
        notes.append(f"{_shown_path(path, root)} ({how})")
    images, labels = arrays
    return MNISTData(
        images=scale_pixels(images)[:, None, :, :],
        labels=labels.astype(np.int64),
        split=split,
        source="; ".join(notes),
    )


def mnist_training_set(
    data_dir: str | os.PathLike | None = None,
    prefer: Literal["train", "test"] = "train",
    download: bool = True,
    *,
    _fetch: Callable[[str], bytes] | None = None,
) -> MNISTData:
    """The data a chapter trains the convnet on: the tutorial's split when possible (Chapter 6, ``ch-mnist``).

    With ``prefer="train"`` this is :func:`load_mnist` ``("train")``, the
    55,000 tutorial training images. Only when one of the two training files
    is absent everywhere and cannot be downloaded does it return the
    10,000-image test set instead, with ``stands_in_for="train"``, a
    :attr:`MNISTData.description` that says so, and a ``UserWarning``.
    ``prefer="test"`` always returns the test set (labelled the same way).

    The downloads of the two attempts are one: after a timeout or a
    connection failure nothing more is downloaded (a stalled network costs
    one :data:`~overparam.data.DOWNLOAD_TIMEOUT`, not one per file and mirror).

    Raises
    ------
    DataIntegrityError
        A file exists but is damaged or altered: a bad copy never falls back.
    FileNotFoundError
        ``data_dir`` does not exist, or not even the test set is available
        (the message names every missing file, the training files included).
    """
    if prefer not in ("train", "test"):
        raise ValueError(f"prefer must be 'train' or 'test', got {prefer!r}")
    root = _resolve_root(data_dir)  # a mistyped data_dir is an error, not a reason to fall back
    download = _check_download(download)
    downloads = _Downloads(_fetch)
    absent: _MissingFiles | None = None
    if prefer == "train":
        try:
            return _load("train", root, download, downloads)
        except _MissingFiles as exc:
            absent = exc
    try:
        test = _load("test", root, download, downloads)
    except _MissingFiles as exc:
        if absent is None:
            raise
        raise _MissingFiles(absent.names + exc.names, exc.looked, downloads.reason(download)) from None
    if absent is not None:
        reason = str(absent).splitlines()[0]
        warnings.warn(f"training on the 10,000 MNIST test images instead of the 55,000 training images: {reason}",
                      stacklevel=2)
    return MNISTData(test.images, test.labels, test.split, test.source, stands_in_for="train")


def training_and_validation(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    stand_in_validation: int = 1_000,
    _fetch: Callable[[str], bytes] | None = None,
) -> tuple[MNISTData, MNISTData]:
    """The images to train on and the images to validate on, as the tutorial splits them (Chapter 6, ``ch-mnist``).

    Normally the tutorial's 55,000-image training split and its 5,000-image
    validation split (the first 5,000 of the 60,000 training images), so a
    run here is the same run as ``python -m overparam mnist``. When the
    training files are absent (see :func:`mnist_training_set`, which then
    warns), the 10,000 test images stand in: the last ``stand_in_validation``
    of them are held out for validation and the rest are trained on; both
    carry ``stands_in_for``.

    Returns
    -------
    train, validation : MNISTData
    """
    stand_in_validation = check_int("stand_in_validation", stand_in_validation, 1, 9_999,
                                    expected="an integer in 1..9999")
    train = mnist_training_set(data_dir, download=download, _fetch=_fetch)
    if train.stands_in_for is None:
        return train, load_mnist("validation", data_dir, download, _fetch=_fetch)
    n = len(train) - int(stand_in_validation)
    return (
        MNISTData(train.images[:n], train.labels[:n], train.split, train.source, stands_in_for="train"),
        MNISTData(train.images[n:], train.labels[n:], train.split, train.source, stands_in_for="validation"),
    )


def final_evaluation_sets(
    train: MNISTData,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    _fetch: Callable[[str], bytes] | None = None,
) -> dict[str, MNISTData]:
    """The sets measured once, after training (Chapter 6, ``ch-mnist``): the tutorial's 10,000 test images.

    An empty dict when ``train`` is test images standing in for the training split
    (:func:`training_and_validation` without the training files): the test
    error of a network trained on them would mean nothing.
    """
    if not isinstance(train, MNISTData):
        raise ValueError(f"train must be an MNISTData, got {type(train).__name__}")
    if train.stands_in_for is not None:
        return {}
    return {"test": load_mnist("test", data_dir, download, _fetch=_fetch)}
