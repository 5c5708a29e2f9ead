"""Data loaders: the UCI Ethanol regression problem (Chapter 1, ``ch-lp-regression``).

The paper's linear experiments use the *Ethanol problem* of UCI's "Gas Sensor
Array Drift Dataset at Different Concentrations" (dataset 270; Vergara et al.
2012, Rodriguez-Lujan et al. 2014): every measurement whose gas label is 1
(ethanol), 128 sensor features each, with the ethanol concentration in ppmv as
the regression target. There are 2565 such rows.

Where the data come from, in order:

1. a *data directory*: the ``data_dir`` argument, else the environment variable
   ``OVERPARAM_DATA_DIR``. Inside it, ``gas_sensor/`` holds either UCI's ten
   files ``batch1.dat`` ... ``batch10.dat`` or the prepared table
   ``gas_sensor/derived/ethanol_2565.csv.gz``;
2. the user cache (``OVERPARAM_CACHE_DIR``, else ``~/.cache/overparam``), filled
   on first use by downloading UCI's zip archive and verifying it.

What is verified, and what cannot be: the prepared table is checked against
the SHA-256 of its content, so any change to it is caught. UCI publishes no
checksums for its batch files, so for those the loader can only check their
structure and known counts: text that decodes, every line of the form
``GAS;CONCENTRATION 1:v1 ... 128:v128``, the number of ethanol rows per batch,
128 finite features per row and concentrations within 2.5-600 ppmv. A damaged
or truncated batch file raises :class:`DataIntegrityError` naming the file and
line, but a digit changed inside a value is not caught.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import re
import socket
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .validation import check_int

__all__ = [
    "DataIntegrityError",
    "EthanolData",
    "Standardized",
    "ETHANOL_ROWS_PER_BATCH",
    "UCI_GAS_ZIP_URL",
    "cache_dir",
    "load_ethanol",
    "load_standardized_ethanol",
    "parse_uci_batch",
    "standardize",
]

#: Ethanol rows in each of UCI's ten batch files (2565 in all).
ETHANOL_ROWS_PER_BATCH: dict[int, int] = {
    1: 90, 2: 164, 3: 365, 4: 64, 5: 28, 6: 514, 7: 649, 8: 30, 9: 61, 10: 600,
}
N_ETHANOL_FEATURES = 128
ETHANOL_GAS_LABEL = 1
CONCENTRATION_RANGE_PPMV = (2.5, 600.0)

#: Canonical download of UCI dataset 270 (a zip holding batch1.dat ... batch10.dat).
UCI_GAS_ZIP_URL = (
    "https://archive.ics.uci.edu/static/public/270/"
    "gas+sensor+array+drift+dataset+at+different+concentrations.zip"
)
UCI_GAS_PAGE = (
    "https://archive.ics.uci.edu/dataset/270/"
    "gas+sensor+array+drift+dataset+at+different+concentrations"
)

_DERIVED_TABLE = Path("gas_sensor") / "derived" / "ethanol_2565.csv.gz"
_DERIVED_SHA256 = "d25c4f632325392e9c6f8be72332b988829e0d9fd79c6280fcbf2d35aaff8724"
_BATCH_NAME = re.compile(r"(?:^|/)batch(\d+)\.dat$")


class DataIntegrityError(ValueError):
    """A data file exists but its content is not what it must be."""


@dataclass(frozen=True)
class EthanolData:
    """The Ethanol regression problem (Chapter 1, ``ch-lp-regression``).

    Attributes
    ----------
    X : ndarray, shape (2565, 128)
        Raw sensor features (float64), in the units UCI ships them.
    y : ndarray, shape (2565,)
        Ethanol concentration in ppmv.
    batch : ndarray, shape (2565,)
        UCI batch number (1-10) of each row; 0 where the source does not know
        it (rows of the prepared table rebuilt from batches 7 and 10).
    source : str
        Which source was read, e.g. ``"UCI batch files in /data/gas_sensor"``.
    """

    X: np.ndarray
    y: np.ndarray
    batch: np.ndarray
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(examples, features)``."""
        return self.X.shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Standardized:
    """Z-scored features and label, with the statistics that produced them.

    ``X = (X_raw - x_mean) / x_std`` column by column and
    ``y = (y_raw - y_mean) / y_std``.
    """

    X: np.ndarray
    y: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float


# ---------------------------------------------------------------------------
# Arguments and locations
# ---------------------------------------------------------------------------
def _check_download(download: Any) -> bool:
    """``download`` as a bool; a string such as ``"no"`` (which is true) or a number is refused, naming it."""
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download must be True or False, got {download!r} ({type(download).__name__})")
    return bool(download)


def _data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The data directory asked for: ``data_dir``, else ``OVERPARAM_DATA_DIR``, else ``None`` (``~`` expanded)."""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a folder (a str or a path), got {data_dir!r} "
                            f"({type(data_dir).__name__})")
        return Path(data_dir).expanduser()
    env = os.environ.get("OVERPARAM_DATA_DIR")
    return Path(env).expanduser() if env else None


def _resolve_data_dir(data_dir: str | os.PathLike | None, subfolder: str,
                      holds_its_files: Callable[[Path], bool]) -> Path | None:
    """The data directory, checked: it exists, is a folder, and is not the ``subfolder`` folder itself.

    ``holds_its_files(folder)`` says whether ``folder`` directly holds the
    files that belong in ``<data dir>/<subfolder>/`` (the common mistake of
    passing ``.../gas_sensor`` or ``.../mnist``).

    Raises
    ------
    TypeError
        ``data_dir`` is not a str or a path.
    FileNotFoundError
        It does not exist, or it is the ``subfolder`` folder itself (the
        message says to pass its parent folder).
    NotADirectoryError
        It is a file.
    """
    root = _data_dir(data_dir)
    if root is None:
        return None
    origin = "the data_dir argument" if data_dir is not None else "OVERPARAM_DATA_DIR"
    if not root.exists():
        raise FileNotFoundError(f"data_dir {root} does not exist (from {origin})")
    if not root.is_dir():
        raise NotADirectoryError(f"data_dir {root} is a file, not a folder (from {origin}); give the folder "
                                 f"that holds {subfolder}/")
    if not (root / subfolder).is_dir() and (root.name == subfolder or holds_its_files(root)):
        raise FileNotFoundError(
            f"data_dir {root} (from {origin}) is the {subfolder}/ folder itself: pass its parent folder "
            f"{root.parent}, the data directory that holds {subfolder}/")
    return root


def cache_dir() -> Path:
    """The user cache: ``OVERPARAM_CACHE_DIR``, else ``~/.cache/overparam``."""
    env = os.environ.get("OVERPARAM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "overparam"


def _shown_path(path: Path, root: Path | None) -> str:
    """``path`` as a data set's ``source`` names it: relative to the data folder or the download cache, else in full.

    The source is printed on the book's pages (Chapters 1 and 6); the folder
    is the reader's own, so naming it there would print the build machine's
    paths. Error messages keep the full path.
    """
    for folder, where in ((cache_dir(), "the download cache"), (root, "the data folder")):
        if folder is not None and path.is_relative_to(folder):
            return f"{path.relative_to(folder)} in {where}"
    return str(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Parsing and verification
# ---------------------------------------------------------------------------
def parse_uci_batch(text: str, batch: int, name: str = "batch file") -> tuple[np.ndarray, np.ndarray]:
    """Parse one UCI batch file and keep its ethanol rows.

    Each line reads ``GAS;CONCENTRATION 1:v1 2:v2 ... 128:v128``; gas label 1
    is ethanol.

    Parameters
    ----------
    text : str
        The file's content.
    batch : int
        Its batch number (1-10), used to check the number of ethanol rows.
    name : str
        How to name the file in error messages.

    Returns
    -------
    X : ndarray, shape (rows, 128)
    y : ndarray, shape (rows,)

    Raises
    ------
    TypeError
        ``text`` is not a str (bytes, or a path: read the file first).
    ValueError
        ``batch`` is not an integer in 1..10.
    DataIntegrityError
        On a malformed line, a wrong number of features, a non-finite value, a
        negative concentration or a number of ethanol rows other than UCI's.
    """
    batch = check_int("batch", batch, 1, 10, expected="an integer in 1..10")
    if not isinstance(text, str):
        raise TypeError(f"text must be the file's content as str; read it with open(path).read(), "
                        f"got {type(text).__name__}")
    rows: list[list[float]] = []
    targets: list[float] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        gas, sep, conc = head.partition(";")
        if not sep:
            raise DataIntegrityError(f"{name}, line {lineno}: expected 'GAS;CONCENTRATION ...', got {line[:40]!r}")
        if gas.strip() != str(ETHANOL_GAS_LABEL):
            continue
        try:
            values = [float(tok.split(":", 1)[1]) for tok in rest.split()]
            indices = [int(tok.split(":", 1)[0]) for tok in rest.split()]
            target = float(conc)
        except (ValueError, IndexError) as exc:
            raise DataIntegrityError(f"{name}, line {lineno}: unreadable value ({exc})") from None
        if indices != list(range(1, N_ETHANOL_FEATURES + 1)):
            raise DataIntegrityError(
                f"{name}, line {lineno}: expected features 1..{N_ETHANOL_FEATURES} in order, got {len(values)} features"
            )
        if not (math.isfinite(target) and target >= 0 and all(map(math.isfinite, values))):
            raise DataIntegrityError(f"{name}, line {lineno}: the features must be finite and the concentration "
                                     f"finite and >= 0, got {line[:60]!r}")
        rows.append(values)
        targets.append(target)
    expected = ETHANOL_ROWS_PER_BATCH[batch]
    if len(rows) != expected:
        raise DataIntegrityError(
            f"{name}: found {len(rows)} ethanol rows, UCI's batch {batch} has {expected} (truncated or wrong file?)"
        )
    return np.asarray(rows, dtype=np.float64), np.asarray(targets, dtype=np.float64)


def _verify(X: np.ndarray, y: np.ndarray, where: str) -> None:
    total = sum(ETHANOL_ROWS_PER_BATCH.values())
    if X.shape != (total, N_ETHANOL_FEATURES) or y.shape != (total,):
        raise DataIntegrityError(f"{where}: expected {total} x {N_ETHANOL_FEATURES} features, got {X.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise DataIntegrityError(f"{where}: non-finite values")
    lo, hi = CONCENTRATION_RANGE_PPMV
    if y.min() < lo or y.max() > hi:
        raise DataIntegrityError(
            f"{where}: concentrations must lie in {lo}-{hi} ppmv, found {y.min():g}-{y.max():g}"
        )


def _read_text(path: Path) -> str:
    """A batch file's text; bytes that are not UTF-8 raise :class:`DataIntegrityError` naming file and line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise DataIntegrityError(
            f"{path}, line {lineno}: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not text "
            "(a damaged or wrong file; replace it with UCI's batch file)"
        ) from None


def _read_batch_files(files: dict[int, Path], where: str, source: str) -> EthanolData:
    """UCI's batch files, parsed and verified (``where`` names them in errors); ``source`` for the data set."""
    Xs, ys, bs = [], [], []
    for b in sorted(files):
        X, y = parse_uci_batch(_read_text(files[b]), b, name=str(files[b]))
        Xs.append(X)
        ys.append(y)
        bs.append(np.full(len(y), b, dtype=np.int64))
    X, y = np.concatenate(Xs), np.concatenate(ys)
    _verify(X, y, where)
    return EthanolData(X=X, y=y, batch=np.concatenate(bs), source=source)


def _read_derived_table(path: Path, root: Path | None) -> EthanolData:
    digest = _sha256(path)
    if digest != _DERIVED_SHA256:
        raise DataIntegrityError(
            f"{path}: SHA-256 is {digest}, expected {_DERIVED_SHA256} (corrupt or truncated copy; "
            "delete it: the loader then reads UCI's batch files gas_sensor/batch1.dat ... batch10.dat, or downloads them)"
        )
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    expected = ["batch", "exact", "concentration"] + [f"f{i}" for i in range(1, N_ETHANOL_FEATURES + 1)]
    if header != expected:
        raise DataIntegrityError(f"{path}: unexpected header {header[:4]}...")
    X, y, batch = table[:, 3:], table[:, 2], table[:, 0].astype(np.int64)
    _verify(X, y, str(path))
    return EthanolData(X=X, y=y, batch=batch, source=f"prepared table {_shown_path(path, root)}")


def _batch_files_in(folder: Path) -> dict[int, Path]:
    found = {}
    for b in ETHANOL_ROWS_PER_BATCH:
        f = folder / f"batch{b}.dat"
        if f.is_file():
            found[b] = f
    return found


def _holds_gas_sensor_files(folder: Path) -> bool:
    """Whether ``folder`` directly holds what belongs in ``gas_sensor/`` (batch files or ``derived/``'s table)."""
    return bool(_batch_files_in(folder)) or (folder / _DERIVED_TABLE.relative_to("gas_sensor")).is_file()


def _load_from_dir(root: Path) -> EthanolData | None:
    gas = root / "gas_sensor"
    files = _batch_files_in(gas)
    if len(files) == len(ETHANOL_ROWS_PER_BATCH):
        return _read_batch_files(files, str(gas), f"UCI batch files {_shown_path(gas / 'batch*.dat', root)}")
    if (root / _DERIVED_TABLE).is_file():
        return _read_derived_table(root / _DERIVED_TABLE, root)
    if files:
        missing = sorted(set(ETHANOL_ROWS_PER_BATCH) - set(files))
        raise DataIntegrityError(
            f"{gas}: has UCI batch files but not batch {', '.join(map(str, missing))}; "
            "all ten batch1.dat ... batch10.dat are needed"
        )
    return None


# ---------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------
#: Seconds a download waits for the server to answer (or to send more data) before giving up on that address.
DOWNLOAD_TIMEOUT = 20


class _NoAnswer(OSError):
    """A download whose server did not answer within :data:`DOWNLOAD_TIMEOUT` s."""


def _no_connection(exc: BaseException) -> bool:
    """Whether a download failed for want of a connection (a timeout, DNS, refused, unreachable), not an HTTP error.

    After such a failure the MNIST loader tries no other address: on a
    stalled or absent network each would cost another timeout.
    """
    if isinstance(exc, urllib.error.HTTPError):  # the server answered
        return False
    if isinstance(exc, urllib.error.URLError):
        return isinstance(exc.reason, OSError)
    return isinstance(exc, (_NoAnswer, TimeoutError, ConnectionError, socket.gaierror))


def _urlopen_bytes(url: str) -> bytes:
    """Download ``url``, saying so on stderr; a server silent for :data:`DOWNLOAD_TIMEOUT` s raises ``OSError``.

    A stalled connection times out while connecting (``URLError`` wrapping a
    timeout) or while reading (``TimeoutError``); both become the same
    ``OSError`` naming the address (a private subclass, which
    :func:`_no_connection` recognizes), which the loaders report.
    """
    print(f"downloading {url} (waiting at most {DOWNLOAD_TIMEOUT} s for an answer)", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310 (fixed https URL)
            return response.read()
    except (TimeoutError, urllib.error.URLError) as exc:
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, TimeoutError):
            raise
        raise _NoAnswer(f"no answer from {url} within {DOWNLOAD_TIMEOUT} s") from None


def _extract_batches(archive: bytes, dest: Path) -> None:
    """Write every ``batchN.dat`` of a (possibly nested) zip archive into ``dest``."""

    def walk(zf: zipfile.ZipFile) -> None:
        for member in zf.namelist():
            match = _BATCH_NAME.search(member)
            if match:
                (dest / f"batch{int(match.group(1))}.dat").write_bytes(zf.read(member))
            elif member.lower().endswith(".zip"):
                walk(zipfile.ZipFile(io.BytesIO(zf.read(member))))

    try:
        walk(zipfile.ZipFile(io.BytesIO(archive)))
    except zipfile.BadZipFile as exc:
        raise DataIntegrityError(f"the downloaded archive is not a valid zip file ({exc})") from None


def _download_to_cache(cache: Path, fetch: Callable[[str], bytes]) -> EthanolData:
    gas = cache / "gas_sensor"
    gas.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=gas.parent) as tmp:
        staged = Path(tmp) / "gas_sensor"
        staged.mkdir()
        _extract_batches(fetch(UCI_GAS_ZIP_URL), staged)
        # Verify before anything lands in the cache, then move the whole folder in with one rename (an
        # interrupted download leaves no partial set of batch files behind).
        data = _read_batch_files(_batch_files_in(staged), f"the archive from {UCI_GAS_ZIP_URL}",
                                 f"UCI batch files {_shown_path(gas / 'batch*.dat', None)} (downloaded)")
        if gas.exists():
            gas.rename(Path(tmp) / "replaced")  # a copy that failed its checks; removed with the folder
        staged.rename(gas)
    return data


def _missing_message(root: Path | None, cache: Path, reason: str) -> str:
    where = f"the data directory {root}" if root else "a data directory"
    return (
        "The Ethanol data set was not found and could not be downloaded "
        f"({reason}).\nEither put UCI's batch1.dat ... batch10.dat into {where}/gas_sensor/ "
        "(pass data_dir=... or set OVERPARAM_DATA_DIR; the prepared table "
        "gas_sensor/derived/ethanol_2565.csv.gz works too), or into the cache folder "
        f"{cache}/gas_sensor/, or connect to the internet so that the loader can fetch\n  {UCI_GAS_ZIP_URL}\n"
        f"(dataset page: {UCI_GAS_PAGE})."
    )


def load_ethanol(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    _fetch: Callable[[str], bytes] = _urlopen_bytes,
) -> EthanolData:
    """Load the paper's Ethanol regression problem (2565 examples x 128 features).

    Introduced in Chapter 1 (``chapters/01_lp_regression.ipynb``); the data are
    UCI's *Gas Sensor Array Drift Dataset at Different Concentrations*
    (Vergara et al. 2012; Rodriguez-Lujan et al. 2014), rows with gas label 1.

    Parameters
    ----------
    data_dir : path, optional
        Folder holding ``gas_sensor/batch1.dat ... batch10.dat`` or
        ``gas_sensor/derived/ethanol_2565.csv.gz`` (the folder *above*
        ``gas_sensor/``; ``~`` is expanded). Defaults to the environment
        variable ``OVERPARAM_DATA_DIR``.
    download : bool
        When no local copy exists, download UCI's archive into the cache
        (:func:`cache_dir`) and verify it. With ``False`` a missing copy raises.
        Only ``True`` or ``False`` (a string such as ``"no"`` is refused).

    Returns
    -------
    EthanolData
        Raw features ``X`` (2565, 128), concentrations ``y`` (ppmv), batch
        numbers and a description of the ``source`` that was read.

    Raises
    ------
    TypeError
        ``data_dir`` is not a str or a path, or ``download`` not a bool.
    FileNotFoundError
        ``data_dir`` does not exist, or is the ``gas_sensor/`` folder itself;
        or no copy anywhere and no download possible; the message says where
        to put the files.
    NotADirectoryError
        ``data_dir`` is a file.
    DataIntegrityError
        A copy exists but fails the checks: the prepared table its SHA-256;
        UCI's batch files, which have no published checksums, their
        structure and known counts only (text that decodes, the line format,
        ethanol rows per batch, 128 finite features, concentrations within
        2.5-600 ppmv; the message names the file and line). A digit changed
        inside a value of a batch file is not caught. A copy in the download
        cache that fails them is downloaded again (with a warning) when
        ``download`` is allowed.
    """
    download = _check_download(download)
    root = _resolve_data_dir(data_dir, "gas_sensor", _holds_gas_sensor_files)
    if root is not None:
        found = _load_from_dir(root)
        if found is not None:
            return found
    cache = cache_dir()
    try:
        cached = _load_from_dir(cache) if cache.is_dir() else None
    except DataIntegrityError as exc:  # a damaged or partial download cache (never the reader's own copy)
        if not download:
            raise DataIntegrityError(f"{exc}\nThat copy is in the download cache: delete {cache / 'gas_sensor'}, or "
                                     "allow the download, and the data are downloaded again.") from None
        warnings.warn(f"the cached copy failed its checks ({exc}); downloading the data again", stacklevel=2)
        cached = None
    if cached is not None:
        return cached
    if not download:
        raise FileNotFoundError(_missing_message(root, cache, "download=False"))
    try:
        return _download_to_cache(cache, _fetch)
    except OSError as exc:  # URLError is an OSError: offline, DNS, HTTP errors
        raise FileNotFoundError(_missing_message(root, cache, f"download failed: {exc}")) from None


def standardize(X: np.ndarray, y: np.ndarray) -> Standardized:
    """Z-score every feature column and the label (Chapter 1, ``ch-lp-regression``).

    .. math::

        \\tilde X_{ij} = (X_{ij} - \\bar X_j) / s_j, \\qquad
        \\tilde y_i = (y_i - \\bar y) / s_y,

    with population standard deviations. Introduced in Chapter 1: the raw
    features span about 1e-1 to 1e5, and without this step fixed-step gradient
    descent is hopeless. How the paper preprocessed the Ethanol data is not
    known to the book; z-scoring is the book's choice.

    Raises
    ------
    ValueError
        If shapes disagree, values are not finite, or a column is constant.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (examples, features), got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite")
    x_mean, x_std = X.mean(axis=0), X.std(axis=0)
    y_mean, y_std = float(y.mean()), float(y.std())
    if (x_std == 0).any() or y_std == 0:
        raise ValueError("X has a constant column or y is constant: cannot standardize")
    return Standardized(
        X=(X - x_mean) / x_std, y=(y - y_mean) / y_std, x_mean=x_mean, x_std=x_std, y_mean=y_mean, y_std=y_std
    )


def load_standardized_ethanol(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Standardized:
    """The problem every chapter after the first trains on: Ethanol, features and label z-scored.

    ``d = load_ethanol(...); standardize(d.X, d.y)`` in one call, the preprocessing that
    Chapter 1 (``ch-lp-regression``) builds step by step. Same arguments and
    errors as :func:`load_ethanol`.
    """
    ethanol = load_ethanol(data_dir, download=download)
    return standardize(ethanol.X, ethanol.y)
