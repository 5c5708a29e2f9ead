"""Writing results files safely: atomic saves, output checks before long runs, no silent overwrites.

Every results file the library writes (sweeps, convnet histories, their JSON
metadata) goes through :func:`atomic_write`: the bytes go to a temporary file
in the destination folder, which then replaces the destination in one
``os.replace``. An interrupt or a full disk during the write leaves the old
file intact. The command-line tools call :func:`check_writable` before they
start computing and :func:`choose_output` to pick a path that never replaces
an existing file unless the user named it or passed ``--force``, and never
replaces a committed results file with a run other than the one it holds
(:data:`RESULTS_COMMANDS`). Every loader
reads through :func:`read_results`, so a truncated or incomplete file is one
clear :class:`InvalidResultsFile` ("not a valid results file"). A results file
fetched from the book's repository is checked against the SHA-256 of the
committed file (:data:`RESULTS_SHA256`) when it is downloaded and every time
it is taken from the cache (:func:`find_results`).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Sequence

import numpy as np

from .data import _check_download

__all__ = ["InvalidResultsFile", "OutputPathError", "RESULTS_COMMANDS", "RESULTS_SHA256", "RESULTS_URL",
           "atomic_savefig", "atomic_write", "check_writable", "choose_output", "choose_stem", "file_sha256",
           "find_results",
           "invalid_results", "json_text", "provenance", "read_provenance", "read_results", "reader_command"]

#: Where the committed results files of the paper-scale runs can be downloaded from (the book's repository).
RESULTS_URL = "https://raw.githubusercontent.com/overparam-book/overparam-book/main/results/"

#: SHA-256 of each committed results file that :func:`find_results` may download or take from the cache.
#: ``tests/test_convnet_analysis.py`` keeps this table equal to the files under ``results/``: whoever commits a
#: new results file updates its digest here in the same commit.
RESULTS_SHA256: dict[str, str] = {
    "completion_long.npz": "087ea636c7a967059bae6822d4339a52a4d2b7fb34e4799478ace3d717edf764",
    "convergence_long.npz": "48586e99ba39a3a2659b2f754082a0264db5e6aa1369a79530a64d918b0c941d",
    "ethanol_edge.npz": "b0b19584934de7b4460d86b66ef2675d14f6a7cd6a791de15dcf47514b89c4f7",
    "ethanol_paper.npz": "5c6254c00f215189355f3cd84abd02e51fa27c749a1905124ccb1084d47b10b1",
    "mnist_full.npz": "e9e32257fc9f40fb453f1ca4a8d9f0932598c7e840ca2218d91bd04177972523",
    "toy_paper_y5.npz": "8dde0100510fa6a9898c950fbe3c979efb80f8bdeaf41a15c18b207907bebfb7",
    "toy_paper_y10.npz": "e8b79b79ffdf64617146b1fbb5860362d94b5756045a7f127e396ef0e6405c67",
    "toy_paper_y20.npz": "d65231f3abb55b15f027710005533e15de652624bea59378751f8d5f2e71051d",
}

#: The run each committed results file holds: the sub-command and the scale of ``python -m overparam`` that wrote
#: it (the form of the ``run`` argument of :func:`choose_stem`). ``--out`` may name a committed file only from this
#: run, so that a run at another scale never replaces it. Every name of :data:`RESULTS_SHA256` has an entry.
RESULTS_COMMANDS: dict[str, str] = {
    "completion_long.npz": "completion --preset long",
    "convergence_long.npz": "convergence --preset long",
    "ethanol_edge.npz": "ethanol-edge",
    "ethanol_paper.npz": "ethanol --preset paper",
    "mnist_full.npz": "mnist --steps full",
    "toy_paper_y5.npz": "toy --preset paper",
    "toy_paper_y10.npz": "toy --preset paper",
    "toy_paper_y20.npz": "toy --preset paper",
}


class InvalidResultsFile(ValueError):
    """A results file that is truncated, incomplete or inconsistent (a member missing, rows that do not match)."""


#: What reading a damaged ``.npz`` can raise: zip and deflate errors, missing members, bad JSON, wrong shapes.
READ_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zlib.error, KeyError, EOFError, ValueError,
                                                TypeError, IndexError, AttributeError, OSError)


#: The metadata member of each kind of results file, and the loader that reads that kind.
RESULTS_KINDS: dict[str, tuple[str, str]] = {
    "meta": ("a sweep results file (python -m overparam ethanol, toy or convergence)",
             "op.SweepResult.load (op.load_toy_results for a toy file's stem)"),
    "metadata_json": ("a convnet runs file (python -m overparam mnist)", "op.load_histories"),
    "completion_json": ("a matrix-completion file (python -m overparam completion)", "op.completion.CompletionSeeds.load"),
}


class _OtherKind(Exception):
    """Raised inside :func:`read_results` when the file is of another kind (not one of ``READ_ERRORS``)."""


def _other_kind(missing: KeyError, members: Sequence[str]) -> str | None:
    """What to say when a loader missed its metadata member in a file that holds another kind's, else ``None``."""
    key = str(missing.args[0]).partition(" is not a file")[0] if missing.args else ""
    if key not in RESULTS_KINDS:
        return None
    for other, (what, loader) in RESULTS_KINDS.items():
        if other != key and other in members:
            return f"this is {what}, not the kind this loader reads; read it with {loader}"
    return None


def invalid_results(path: str | os.PathLike, why: str | BaseException) -> InvalidResultsFile:
    """The error for a damaged results file: ``"<path>: not a valid results file (<why>)"``.

    ``why`` is a sentence, or the exception that reading the file raised
    (its type and message are quoted).
    """
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}"
    return InvalidResultsFile(f"{path}: not a valid results file ({why}); run the command that writes it again, "
                              "or fetch the file anew")


@contextlib.contextmanager
def read_results(path: str | os.PathLike) -> Iterator[Any]:
    """Open a results ``.npz`` for reading (``allow_pickle=False``); damage found inside the block is one error.

    Use as ``with read_results(path) as npz: ...``: whatever reading the
    members raises in the block (a truncated zip, a missing member, bad JSON,
    a wrong shape) becomes :class:`InvalidResultsFile`.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InvalidResultsFile
        The file is not an ``.npz`` (zip) archive, or it, or what the block read from it, is damaged; or it is a
        results file of another kind (:data:`RESULTS_KINDS`: a convnet runs file read as a sweep, say), and the
        message names the loader that reads it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    if not zipfile.is_zipfile(path):  # else numpy's "contains pickled (object) data ... allow_pickle=True" advice
        raise invalid_results(path, "it is not an .npz archive: damaged, or not a results file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            try:
                yield npz
            except KeyError as exc:
                hint = _other_kind(exc, npz.files)
                if hint is None:
                    raise
                raise _OtherKind(hint) from None
    except _OtherKind as exc:
        raise InvalidResultsFile(f"{path}: {exc}") from None
    except READ_ERRORS as exc:
        raise invalid_results(path, exc) from None


class OutputPathError(ValueError):
    """An output path that cannot be written; the command line turns it into a one-line usage error."""


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the process's umask (read, and set back at once).

    Files written through a temporary file (``mkstemp``: ``0o600``) are given it before they replace their
    destination, so that results files, figures and downloads are as readable as any other file the user writes.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, then move it onto ``path`` atomically.

    Parameters
    ----------
    path : path
        Destination; its folder is created if needed.
    write : callable
        Writes the whole content to the binary file handle it is given.

    Returns
    -------
    Path
        ``path``, with the mode a newly created file gets (``0o666`` less the
        umask; the temporary file alone would be private, ``0o600``). On any
        exception the temporary file is removed and ``path`` is left as it was.

    Raises
    ------
    OutputPathError
        ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"path: {path} is a folder; give a file name such as {path / 'results.npz'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure to ``path`` with :func:`atomic_write` (the format is the file's suffix).

    A figure written beside a results file is replaced whole or not at all, like the results file.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))


def check_writable(path: str | os.PathLike, what: str = "--out") -> Path:
    """Make sure ``path`` can be written *before* a long computation (creates its folder).

    A folder that does not exist yet is created, saying so on standard error
    (``creating folder ...``), so that a mistyped ``--out`` does not build a
    tree of folders unnoticed.

    Raises
    ------
    OutputPathError
        ``path`` is a folder, or its folder cannot be created or written to;
        the message names ``what`` (the option or argument it came from).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what}: {path} is a folder; give a file name such as {path / 'results.npz'}")
    try:
        created = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if created:
            print(f"creating folder {path.parent} (for {what} {path})", file=sys.stderr)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise OutputPathError(f"{what}: cannot write into {path.parent} ({exc.strerror or exc})") from None
    return path


def _committed_files(paths: Sequence[Path], run: str | None) -> str:
    """Check the files a requested ``--out`` writes against :data:`RESULTS_COMMANDS`; what to add to "why".

    A committed file's name written by another run than the one it holds is an
    :class:`OutputPathError`; written by that run, the sentence says that it
    is replaced and that its digest must be updated. ``run=None`` (a caller
    that does not say which run it is) is not checked.
    """
    committed = [p for p in paths if p.name in RESULTS_SHA256]
    if not committed:
        return ""
    if run is not None:
        for p in committed:
            holds = RESULTS_COMMANDS.get(p.name)
            if holds is not None and holds != run:
                raise OutputPathError(
                    f"--out: {p} is the name of the committed results file of 'python -m overparam {holds}'; this "
                    f"run ({run}) would replace it with the results of another run (another scale): give another --out")
    names = ", ".join(map(str, committed))
    verb = "replaces" if any(p.exists() for p in committed) else "writes"
    return (f"; this {verb} the committed results file {names}: put its new SHA-256 in "
            "overparam.files.RESULTS_SHA256 in the same commit")


def choose_stem(requested: str | os.PathLike | None, default: str | os.PathLike, suffixes: Sequence[str], *,
                force: bool = False, run: str | None = None) -> tuple[Path, str]:
    """Where a command that writes several files ``<stem><suffix>`` writes them, and a sentence saying why.

    * ``requested`` (the user's ``--out``) is used as given: naming the
      outputs is asking for them to be replaced. A ``requested`` that is an
      existing folder raises :class:`OutputPathError`.
    * A ``requested`` stem whose files include a committed results file (a
      name of :data:`RESULTS_SHA256`) is refused with
      :class:`OutputPathError` unless ``run`` (the command's sub-command and
      scale, such as ``"ethanol --preset paper"``) is the run that file holds
      (:data:`RESULTS_COMMANDS`); when it is, the sentence says that the
      committed file is replaced and that its SHA-256 must be updated.
    * Otherwise ``default`` is used if none of its files exists yet, or if
      ``force``; else a fresh stem with a UTC time stamp beside it (and a
      counter, ``-2``, ``-3``, …, if that one is taken too), so that
      committed results are never overwritten by accident.
    * ``force`` does not replace a committed results file (one of
      :data:`RESULTS_SHA256`): that takes naming it with ``requested``, and
      its new digest belongs in :data:`RESULTS_SHA256` in the same commit.
    """
    if requested is not None:
        path = Path(requested)
        if path.is_dir():
            raise OutputPathError(f"--out: {path} is a folder; give a file name such as {path / Path(default).name}")
        return path, "as asked by --out" + _committed_files([Path(f"{path}{s}") for s in suffixes], run)
    stem = Path(default)
    existing = [Path(f"{stem}{s}") for s in suffixes if Path(f"{stem}{s}").exists()]
    if not existing:
        return stem, "the default"
    if force:
        committed = [str(p) for p in existing if p.name in RESULTS_SHA256]
        if committed:
            raise OutputPathError(
                f"--force does not replace the committed results file {', '.join(committed)}; to regenerate it, name "
                "it with --out (and put its new SHA-256 in overparam.files.RESULTS_SHA256)")
        return stem, "replacing the existing files, as asked by --force"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    fresh, n = stem.with_name(f"{stem.name}-{stamp}"), 1
    while any(Path(f"{fresh}{s}").exists() for s in suffixes):  # two runs started in the same second
        n += 1
        fresh = stem.with_name(f"{stem.name}-{stamp}-{n}")
    return fresh, (
        f"{existing[0]} exists and is kept; name it with --out, or pass --force, to replace it")


def choose_output(requested: str | os.PathLike | None, default: str | os.PathLike, *, force: bool = False,
                  suffix: str = ".npz", companions: Sequence[str] = (".json",),
                  run: str | None = None) -> tuple[Path, str]:
    """Where a command writes its results file ``<name><suffix>`` (and its companions), and why.

    The rules of :func:`choose_stem` (``run`` included); in addition
    ``suffix`` is appended to a requested name that has another one, so that
    the file written is the file named in the report (``--out run.out``
    writes ``run.out.npz``).
    """
    if requested is not None:
        path, why = choose_stem(requested, default, (), force=force)
        path = path if path.suffix == suffix else path.with_name(path.name + suffix)
        return path, why + _committed_files([path], run)
    stem, why = choose_stem(None, Path(default).with_suffix(""), [suffix, *companions], force=force)
    return stem.with_name(stem.name + suffix), why


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex: how a committed results file is recognized (:data:`RESULTS_SHA256`)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_results(name: str, *, download: bool = True, fetch: Callable[[str], bytes] | None = None) -> Path | None:
    """The committed results file ``results/<name>``, wherever the reader runs the book (Chapters 2, 4, 6, 7).

    Looked for, in order: the ``results/`` folder of the repository this
    package was installed from, ``results/`` and ``../results/`` relative to
    the working directory (a chapter runs in ``chapters/``); these copies are
    the reader's own and are used as they are. Then, for the committed files
    listed in :data:`RESULTS_SHA256` only, the user cache
    ``cache_dir()/results/`` and, with ``download``, :data:`RESULTS_URL` (as
    on Colab, where the package is installed but the repository is not there).

    A cached or downloaded file is used only if its SHA-256 is the committed
    file's: a cached copy that differs (damaged, or an older version of the
    file) is downloaded again, and a download that differs (an error page, a
    newer file than this version of the library knows) is not stored, and the
    stale cached copy, if any, is removed.

    Parameters
    ----------
    name : str
        A plain file name, such as ``"mnist_full.npz"``.
    download : bool
        Whether to fetch a file that is not found, or whose cached copy is stale.
    fetch : callable, optional
        Returns the bytes at a URL, raising ``OSError`` when it cannot; by
        default a plain HTTPS download (tests pass their own).

    Returns
    -------
    Path or None
        ``None`` when no usable copy is found or can be downloaded (a warning
        says why when a copy was rejected); the caller then skips what needs
        the file, saying so.

    Raises
    ------
    ValueError
        ``name`` is not a plain file name.
    TypeError
        ``download`` is not a bool.
    """
    from .data import _urlopen_bytes, cache_dir

    download = _check_download(download)

    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(f"name must be a plain file name such as 'mnist_full.npz', got {name!r}")
    package_repo = Path(__file__).resolve().parents[1]
    for folder in (package_repo / "results", Path("results"), Path("..") / "results"):
        if (folder / name).is_file():
            return folder / name
    expected = RESULTS_SHA256.get(name)
    if expected is None:  # not a committed file: nothing to fetch, and nothing to check a copy against
        return None
    cached = cache_dir() / "results" / name
    stale = cached.is_file() and file_sha256(cached) != expected
    if cached.is_file() and not stale:
        return cached
    raw = None
    if download:
        try:
            raw = (fetch or _urlopen_bytes)(RESULTS_URL + name)
        except OSError:
            pass
    if raw is None:
        if stale:
            warnings.warn(f"{cached} is not the committed {name} (its SHA-256 differs) and no fresh copy was "
                          "downloaded (offline, or download=False); not used", stacklevel=2)
        return None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected:
        cached.unlink(missing_ok=True)
        warnings.warn(
            f"{RESULTS_URL}{name}: the download ({len(raw):,} bytes, SHA-256 {digest[:16]}...) is not the "
            f"committed file this version of the library expects (SHA-256 {expected[:16]}...); not used. "
            "Update the library, or write the file yourself with the command the chapter names.", stacklevel=2)
        return None
    return atomic_write(cached, lambda fh: fh.write(raw))


def provenance(command: str | None = None, **extra: Any) -> dict[str, Any]:
    """Who, what and when of a results file: one format for every file the library writes.

    Keys: ``command`` (``command``, or the running command line), ``date_utc``
    (ISO 8601, seconds), ``python``, ``numpy``, ``torch``, ``torch_threads``,
    ``machine`` and ``host``, then the ``extra`` entries (which may override
    none of these, and must be JSON: a ``TypeError`` names the entry that is
    not). :func:`read_provenance` reads it back, older files included.
    """
    import torch  # noqa: PLC0415 (the version of the library the run used)

    if command is None:
        program = Path(sys.argv[0]).name if sys.argv else ""
        program = "python -m overparam" if program == "__main__.py" else program
        command = " ".join([program, *sys.argv[1:]]).strip()
    record: dict[str, Any] = {
        "command": command,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "host": platform.node(),
    }
    clash = sorted(set(extra) & set(record))
    if clash:
        raise ValueError(f"extra provenance entries may not replace the standard keys, got {clash}")
    json_text(extra, "provenance(**extra)")  # caught here, not when the results file is saved
    return {**record, **extra}


def _not_json(value: Any, where: str) -> tuple[str, Any] | None:
    """The first entry below ``value`` that JSON cannot hold, as ``(its place, its value)``; ``None`` if all can."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{where} (key {key!r})", key
            found = _not_json(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _not_json(item, f"{where}[{i}]")
            if found:
                return found
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    return where, value


def json_text(value: Any, name: str, **dumps_kwargs: Any) -> str:
    """``json.dumps(value, **dumps_kwargs)``, or a ``TypeError`` naming the argument and the entry JSON cannot hold.

    For the metadata of a results file (Chapters 2, 4, 6, 7): ``json_text({"x": object()}, "metadata")``
    raises ``TypeError: metadata['x'] is of type object (...), which a results file cannot store as JSON ...``.

    Raises
    ------
    TypeError
        An entry (or a key) is not JSON: the message names ``name`` and the
        entry's place in it.
    ValueError
        ``value`` refers to itself.
    """
    try:
        return json.dumps(value, **dumps_kwargs)
    except ValueError as exc:  # a circular reference
        raise ValueError(f"{name} cannot be stored as JSON ({exc})") from None
    except TypeError as exc:
        found = _not_json(value, name)
        if found is None:
            raise TypeError(f"{name} cannot be stored as JSON ({exc})") from None
        where, bad = found
        raise TypeError(f"{where} is of type {type(bad).__name__} ({bad!r:.60}), which a results file cannot store "
                        "as JSON; give a string, a number, a bool, None, or a list or dict of these") from None


#: Keys of older results files and the names :func:`provenance` gives them now.
LEGACY_PROVENANCE_KEYS = {"date": "date_utc"}


def reader_command(command: str) -> str:
    """A recorded command line as a reader can run it: without its ``--data-dir`` (Chapters 2, 4, 6, 7).

    The data folder named there is the machine's that ran the command (a
    reader's copy of the data is found or downloaded without the option), so
    the chapters print the command without it.
    """
    words = str(command).split()
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--data-dir":
            skip = True
        elif not word.startswith("--data-dir="):
            out.append(word)
    return " ".join(out)


def read_provenance(stored: dict[str, Any]) -> dict[str, Any]:
    """A results file's provenance in the format of :func:`provenance`, whatever version of the library wrote it.

    The sweep files written before the format was shared name the date
    ``date``; it is returned as ``date_utc``. Nothing else is changed.

    Raises
    ------
    TypeError
        ``stored`` is not a mapping (the message names ``stored``).
    """
    if not isinstance(stored, Mapping):
        raise TypeError(f"stored must be a mapping of provenance entries (such as provenance() returns), got "
                        f"{type(stored).__name__} {stored!r:.60}")
    out = dict(stored)
    for old, new in LEGACY_PROVENANCE_KEYS.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out
