"""A reader outside the repository with no network (Colab offline, a copied notebook): every chapter still runs.

The chapters plot committed paper-scale files from ``results/`` beside their live runs. Where no copy of the
repository is at hand and the download fails, ``op.find_results`` returns ``None`` and each chapter skips what needs
the file, saying so. The book build never takes that path (it runs in the repository), so this test does: the
library and the chapters are copied out of the repository, the cache is empty and every download is refused.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import shared_data_dir
from tests.notebooks import execute_all

ROOT = Path(__file__).resolve().parents[1]

#: The chapters that read a committed results file, and what each prints when it has none.
READS_RESULTS = ("02_deep_linear", "04_preconditioner", "06_mnist_convnet", "07_beyond_speed")
NOT_AVAILABLE = re.compile(r"is not available here|no paper-scale results file")


@pytest.mark.slow
def test_every_chapter_runs_without_the_results_files_and_says_what_it_skipped(tmp_path, monkeypatch):
    data = shared_data_dir()
    if not data.is_dir():
        pytest.skip(f"offline data not found at {data} (set OVERPARAM_DATA_DIR): with downloads refused the "
                    "chapters would have no data")
    shutil.copytree(ROOT / "overparam", tmp_path / "lib" / "overparam",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "chapters").mkdir()
    for path in (ROOT / "chapters").glob("*.ipynb"):
        shutil.copy(path, tmp_path / "chapters" / path.name)
    # The kernels inherit this environment: the copied library first on the path (not this checkout, whose
    # results/ find_results would find), an empty cache, fast mode, and a proxy on a closed port for every download.
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))
    monkeypatch.setenv("OVERPARAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OVERPARAM_DATA_DIR", str(data))
    monkeypatch.setenv("OVERPARAM_FAST", "1")
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    paths = sorted((tmp_path / "chapters").glob("*.ipynb"))
    assert paths and len(paths) == len(list((ROOT / "chapters").glob("*.ipynb")))
    for path, nb in zip(paths, execute_all(paths, jobs=min(2, os.cpu_count() or 1))):
        outputs = [out for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell["outputs"]]
        errors = [f"{out['ename']}: {out['evalue']}" for out in outputs if out["output_type"] == "error"]
        assert not errors, f"{path.name} failed without the results files: {errors}"
        text = "".join(out.get("text", "") for out in outputs if out["output_type"] == "stream")
        if path.stem in READS_RESULTS:  # (had the kernel imported this checkout's library, it would have found them)
            assert NOT_AVAILABLE.search(text), f"{path.name} did not say which results file it went without"
    assert not any((tmp_path / "cache").rglob("*.npz")), "a results file was downloaded although downloads fail"
