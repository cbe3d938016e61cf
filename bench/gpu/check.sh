#!/usr/bin/env bash
# The GPU checks and benchmarks as one run on the device machine (see docs/gpu.md): FFCV built
# from the carried bundle, the GPU tests, then the end-to-end throughput (compile off at three
# resolutions, on at 160 px only: each compilation takes a minute or more). Results land in
# $OUT (the device tool brings them back). Usage: bash bench/gpu/check.sh [BUNDLE]
set -euo pipefail
bundle=${1:-build/ffcv-bundle}
out=${OUT:-build/gpu-out}
mkdir -p "$out"
python=python3
bash "$bundle/install.sh" "$bundle" /tmp/ffcv-prefix "$python" 2>&1 | tail -2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
# the torch-only GPU tests (the image has no ray, mlflow or submitit for the shared conftest)
CUBLAS_WORKSPACE_CONFIG=:4096:8 timeout 240 "$python" -m pytest --noconftest -p no:cacheprovider \
    -o addopts="" -q -m gpu tests/gpu -k "not inside_a_level" 2>&1 | tail -5 \
    | tee "$out/gpu-tests.txt" || true
timeout 120 "$python" bench/prune_and_step.py --device cuda --out "$out/results-cuda.json" || true
photos="$bundle/photos"
timeout 240 "$python" bench/gpu_throughput.py --compile off --photos "$photos" \
    --out "$out/throughput-eager.json" | tee "$out/throughput-eager.txt" || true
timeout 300 "$python" bench/gpu_throughput.py --compile on --resolutions 160 --photos "$photos" \
    --out "$out/throughput-compiled.json" | tee "$out/throughput-compiled.txt" || true
