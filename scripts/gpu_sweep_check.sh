#!/usr/bin/env bash
# One device call for the GPU speed work (the sweep engine's CUDA graphs and the convnet on CUDA): checks,
# timings and the paper-scale Ethanol sweep, all into $OUT (at most 6 files, so that every one comes back):
#
#   log.txt                  everything printed, stage by stage, with wall times
#   bench_cuda.json          scripts/bench_sweep.py --device cuda --fuse: us/iteration at B = 1, 32, 110, eager,
#                            CUDA graph and CUDA graph + torch.compile (fused), beside the bare matmul pair
#   ethanol_paper_cuda.npz   python -m overparam ethanol --preset paper on the GPU (CUDA graphs on; --fuse too
#                            if stage 1b passed)
#   compare.json             that file against the committed CPU run results/ethanol_paper.npz
#   mnist_1000.npz, .json    the four convnet variants, 1,000 steps each, on the GPU (ms/step per variant)
#
# Stages, each under its own time limit so that one slow stage cannot eat the others (at most 590 s in all):
#   1. pytest tests/test_sweep_graph.py but the CPU compile test: the CPU invariants and, on the GPU, graph
#      replay == eager loop bit for bit and agreement with the CPU engine (50 s)
#   1b. the fused sweep (torch.compile's kernels in the CUDA graph) against the eager one on the GPU (70 s);
#      stage 4 uses --fuse only if this passed
#   2. the benchmark (130 s)   3. the convnet (70 s), 3b. its host synchronizations per step (40 s)
#   4. the paper preset (210 s; if the fused run fails within 90 s, again without --fuse in what is left)
#   5. the comparison (20 s)
#
# First, where the data lives:  bash scripts/gpu_sweep_check.sh --prepare
# (copies the Ethanol and MNIST files from OVERPARAM_DATA_DIR, default ../shared/data, into .data/, which git
# ignores). Then, on the GPU machine, with this working tree and .data/ copied there:
#   OUT=/tmp/gpu_check bash scripts/gpu_sweep_check.sh
# It uses PYTHON (default: the machine's python3, which needs torch with CUDA, numpy, matplotlib and pytest;
# PYTHON=.venv/bin/python in a set-up clone) and installs nothing.
# A dry run of the script's plumbing on a CPU machine (minutes, numbers meaningless; REFERENCE names the CPU
# results file stage 5 compares with, by default results/ethanol_<PRESET>.npz; tests/test_gpu_script.py does this):
#   DEVICE=cpu PRESET=fast BENCH_ITERS=2000 STEPS=20 PYTHON=.venv/bin/python OUT=/tmp/out bash scripts/gpu_sweep_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    src=${OVERPARAM_DATA_DIR:-../shared/data}
    for d in gas_sensor mnist; do
        [ -d "$src/$d" ] || { echo "error: $src/$d not found; set OVERPARAM_DATA_DIR to the folder holding it" >&2; exit 2; }
    done
    mkdir -p .data && cp -r "$src/gas_sensor" "$src/mnist" .data/ && du -sh .data
    exit 0
fi

: "${OUT:?set OUT to the folder that receives the results}"
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda} PRESET=${PRESET:-paper} BENCH_ITERS=${BENCH_ITERS:-5000} STEPS=${STEPS:-1000}
REFERENCE=${REFERENCE:-results/ethanol_$PRESET.npz}  # the CPU run stage 5 compares with
GRAPH=$([ "$DEVICE" = cpu ] && echo off || echo on)
mkdir -p "$OUT"  # a folder named by hand may not exist yet
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OVERPARAM_DATA_DIR="$PWD/.data" \
    OVERPARAM_CACHE_DIR=/tmp/overparam-cache MPLBACKEND=Agg
for f in .data/gas_sensor .data/mnist/t10k-images-idx3-ubyte.gz; do
    [ -e "$f" ] || { echo "error: $f missing: run 'bash scripts/gpu_sweep_check.sh --prepare' here and carry .data" >&2; exit 2; }
done

stage() {  # stage NAME SECONDS COMMAND...: run COMMAND under a time limit, log its output and wall time
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "=== $name (limit ${limit} s) $(date -u +%H:%M:%SZ)" | tee -a "$LOG"
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc, $(( $(date +%s) - start )) s" | tee -a "$LOG"
    return "$rc"
}

{
    date -u +"start %Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader || true
    "$PY" -c 'import torch, numpy, platform; print("python", platform.python_version(), "torch", torch.__version__,
"numpy", numpy.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0))'
    git log -1 --format='commit %H %s' 2>/dev/null || true
} 2>&1 | tee "$LOG"

stage "1. tests/test_sweep_graph.py" 50 "$PY" -m pytest -q -p no:cacheprovider tests/test_sweep_graph.py \
    -k "not fuse"
FUSE=()
stage "1b. fused sweep on $DEVICE" 70 "$PY" -m pytest -q -rA -p no:cacheprovider tests/test_sweep_graph.py \
    -k "test_fused_cuda_graph_sweep_agrees_with_the_eager_device_engine" && FUSE=(--fuse)
echo "stage 4 runs with: --cuda-graph $GRAPH ${FUSE[*]:-(not fused)}" | tee -a "$LOG"
stage "2. bench_sweep --device $DEVICE --fuse" 130 "$PY" scripts/bench_sweep.py --device "$DEVICE" \
    --iters "$BENCH_ITERS" --repeats 1 --fuse --json "$OUT/bench_$DEVICE.json"
stage "3. convnet, 4 variants x $STEPS steps on $DEVICE" 70 "$PY" -m overparam mnist \
    --variants baseline,product,factors,original --steps "$STEPS" --device "$DEVICE" --data-dir .data --no-download \
    --out "$OUT/mnist_$STEPS.npz"
stage "3b. convnet host synchronizations per step on $DEVICE" 40 "$PY" -c '
import sys, warnings
import torch
import overparam as op
device, steps = sys.argv[1], int(sys.argv[2])
data = op.mnist_training_set(".data", download=False)  # train_convnet switches TF32 off itself
for variant in ("baseline", "product"):
    config = op.ConvNetConfig(variant=variant, eval_every=steps)  # accuracy only at the start and the end
    op.train_convnet(config, data, 20, device=device, seed=0)  # warm-up
    if device != "cpu":
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = op.train_convnet(config, data, steps, device=device, seed=0)
    if device != "cpu":
        torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    print(f"{variant}: {syncs} synchronizing calls in {steps} steps ({syncs / steps:.2f} per step; the loss is checked "
          f"every {max(1, steps // 200)} steps), {h.ms_per_step:.2f} ms/step")' "$DEVICE" "$STEPS"
paper() {  # paper LIMIT [--fuse]: the preset into $OUT
    local limit=$1
    shift
    stage "4. ethanol $PRESET preset on $DEVICE${1:+ ($1)}" "$limit" "$PY" -m overparam ethanol --preset "$PRESET" \
        --device "$DEVICE" --cuda-graph "$GRAPH" "$@" --no-figures --out "$OUT/ethanol_${PRESET}_$DEVICE.npz"
}
t4=$(date +%s)
if ! paper 210 "${FUSE[@]}" && [ ${#FUSE[@]} -gt 0 ] && [ $(( $(date +%s) - t4 )) -lt 90 ]; then
    echo "the fused run failed early: the preset again without --fuse" | tee -a "$LOG"
    paper $(( 210 - ($(date +%s) - t4) ))
fi
if [ -f "$OUT/ethanol_${PRESET}_$DEVICE.npz" ] && [ -f "$REFERENCE" ]; then
    stage "5. compare with $REFERENCE (CPU)" 20 "$PY" -c '
import json, sys
import overparam as op
cpu, gpu = op.SweepResult.load(sys.argv[3]), op.SweepResult.load(sys.argv[1])
out = {"cpu": {"device": cpu.device, "wall_time_s": cpu.wall_time, "date_utc": cpu.provenance.get("date_utc")},
       "gpu": {"device": gpu.device, "wall_time_s": gpu.wall_time, "date_utc": gpu.provenance.get("date_utc")},
       "comparison": op.compare_sweeps(cpu, gpu).as_dict()}
json.dump(out, open(sys.argv[2], "w"), indent=2)
print(json.dumps(out, indent=2))' "$OUT/ethanol_${PRESET}_$DEVICE.npz" "$OUT/compare.json" "$REFERENCE"
fi
echo "=== summary" | tee -a "$LOG"
grep -E "passed|failed|error|stage 4 runs|synchronizing calls|naive loop|engine, B = |bare pair|bare X|vs \(a\)|max_rel_diff|diverged_only|ms/step|: exit" "$LOG" \
    | grep -v "^=== .*limit" | tail -60
