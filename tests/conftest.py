"""Shared fixtures: the offline data directory and the standardized Ethanol problem."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The offline data: OVERPARAM_DATA_DIR, else ../shared/data beside the project."""
    env = os.environ.get("OVERPARAM_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline copy (../shared/data or OVERPARAM_DATA_DIR); tests that need its exact files skip without it."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"offline data not found at {path} (set OVERPARAM_DATA_DIR); tests of its exact files skipped")
    return path


@pytest.fixture(scope="session")
def ethanol():
    """The Ethanol problem: from the offline copy when present, else from the user cache, else downloaded.

    The download is how GitHub's runners get the data (the workflow caches it). Where it fails (offline, no
    copy) the tests that need the data skip, saying where to put the files, instead of erroring.
    """
    import overparam as op

    path = shared_data_dir()
    try:
        return op.load_ethanol(path if path.is_dir() else None)
    except FileNotFoundError as exc:
        pytest.skip(f"Ethanol data not found at {path} or in the user cache, and not downloaded ({exc}); put UCI's "
                    "gas_sensor/batch1.dat ... batch10.dat there, or set OVERPARAM_DATA_DIR to a folder holding them")


@pytest.fixture(scope="session")
def ethanol_std(ethanol):
    import overparam as op

    return op.standardize(ethanol.X, ethanol.y)
