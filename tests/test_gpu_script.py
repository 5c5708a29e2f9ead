"""The one-call GPU script (``scripts/gpu_sweep_check.sh``, issue 16) rehearsed on the CPU: every stage runs.

A device session is short and rare, so the script must not fail for a reason a CPU could have shown: a stage
calling the library the old way (the convnet stage once called ``train_convnet`` without its now required seed),
a missing file, a broken comparison. The numbers of a CPU rehearsal mean nothing; only the plumbing is checked.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("OVERPARAM_DATA_DIR", ROOT.parent / "shared" / "data"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "mnist").is_dir() or not (DATA / "gas_sensor").is_dir(),
                       reason="needs the offline data (OVERPARAM_DATA_DIR with gas_sensor/ and mnist/)"),
]


def test_every_stage_of_the_gpu_script_runs_on_the_cpu(tmp_path):
    env = {**os.environ, "OVERPARAM_DATA_DIR": str(DATA), "OMP_NUM_THREADS": "1"}
    script = ["bash", str(ROOT / "scripts" / "gpu_sweep_check.sh")]
    subprocess.run([*script, "--prepare"], cwd=ROOT, env=env, check=True, capture_output=True)
    reference = tmp_path / "reference.npz"  # the CPU run that stage 5 compares the "device" run with
    subprocess.run([sys.executable, "-m", "overparam", "ethanol", "--preset", "fast", "--device", "cpu",
                    "--no-figures", "--data-dir", str(ROOT / ".data"), "--out", str(reference)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    out.mkdir()
    rehearsal = {"DEVICE": "cpu", "PRESET": "fast", "BENCH_ITERS": "2000", "STEPS": "10", "PYTHON": sys.executable,
                 "OUT": str(out), "REFERENCE": str(reference)}
    done = subprocess.run(script, cwd=ROOT, env={**env, **rehearsal}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    log = (out / "log.txt").read_text()
    exits = dict(re.findall(r"^=== (\w+)\. .*: exit (\d+), \d+ s$", log, re.MULTILINE))
    assert set(exits) == {"1", "1b", "2", "3", "3b", "4", "5"}, log[-3000:]
    assert all(code == "0" for code in exits.values()), {k: v for k, v in exits.items() if v != "0"}
    assert sorted(p.name for p in out.iterdir()) == ["bench_cpu.json", "compare.json", "ethanol_fast_cpu.npz", "log.txt",
                                                     "mnist_10.json", "mnist_10.npz"]
    comparison = json.loads((out / "compare.json").read_text())["comparison"]
    assert comparison["runs"] == 16 and not comparison["diverged_only_first"] and not comparison["diverged_only_second"]
    assert "0 synchronizing calls in 10 steps" in log and "stage 4 runs with: --cuda-graph off --fuse" in log
