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
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"offline data not found at {path}; set OVERPARAM_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def ethanol(data_dir):
    import overparam as op

    return op.load_ethanol(data_dir)


@pytest.fixture(scope="session")
def ethanol_std(ethanol):
    import overparam as op

    return op.standardize(ethanol.X, ethanol.y)
