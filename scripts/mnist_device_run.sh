#!/usr/bin/env bash
# Chapter 6 at paper scale: the four convnet variants (baseline, product, factors, original), the tutorial's
# 8,593 steps each, on one CUDA GPU, into $OUT/ (mnist_full.npz + .json, log.txt, timing.txt).
#
# Assumes: this repository, the four MNIST .gz files in .data/mnist/ (the tutorial trains on train-images-idx3-ubyte.gz
# and train-labels-idx1-ubyte.gz, 55,000 images; without them the loader falls back to the test set), and a system python3 that already has torch
# (with CUDA) and numpy. It installs nothing. STEPS=N overrides the step budget (e.g. STEPS=200 for a smoke test).
#
# Estimate on one H100: the net is tiny, so a step is bound by kernel launches and Python, about 2-4 ms;
# 4 x 8,593 steps ~ 1.5-2.5 min plus evaluations every 100 steps (~2 s per variant), well under 8 min.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the results}"
PY=${PYTHON:-python3}
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
    echo "error: $PY cannot import torch and numpy; this script installs nothing, use a machine that has them" >&2
    exit 2
fi
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "error: torch sees no CUDA device" >&2
    exit 2
fi
if [ ! -f .data/mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "error: copy the MNIST .gz files into $(pwd)/.data/mnist/ first" >&2
    exit 2
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OVERPARAM_CACHE_DIR="$OUT/.cache"
{
    date -u +"start %Y-%m-%dT%H:%M:%SZ"
    "$PY" -c 'import torch, platform; print("python", platform.python_version(), "torch", torch.__version__,
"gpu", torch.cuda.get_device_name(0))'
} | tee "$OUT/timing.txt"
start=$(date +%s)
"$PY" -m overparam mnist --variants baseline,product,factors,original --steps "${STEPS:-full}" --device cuda \
    --data-dir .data --no-download --out "$OUT/mnist_${STEPS:-full}.npz" 2>&1 | tee "$OUT/log.txt"
{
    grep -E '^(baseline|product|factors|original): ' "$OUT/log.txt" || true
    echo "total wall time: $(( $(date +%s) - start )) s"
} | tee -a "$OUT/timing.txt"
