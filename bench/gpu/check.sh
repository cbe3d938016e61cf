#!/usr/bin/env bash
# The GPU checks and benchmarks as one run on the device machine (see docs/gpu.md): FFCV built
# from the carried bundle; Ray, MLflow and submitit from the wheel set staged in STAGE
# (bench/gpu/stack.sh's parts); the torch-only GPU tests; the lottery through Ray Train
# (tests/gpu/test_gpu_lottery.py); the pruning benchmark; the end-to-end throughput (compile off
# at three resolutions, then on at 160 px only: each compilation takes a minute or more); runs
# packed onto the GPU (bench/gpu/packing.py: a ResNet-20 lottery's makespan at 1, 2, 4 and 8
# runs per GPU).
# Each step has a limit of its own and none runs past the deadline, CHECK_BUDGET_S (480) after
# the start, so the call ends inside its timeout with what it got; a step stopped at its limit
# gets SIGINT first (pytest then stops the processes its tests started). CHECK_STEPS picks steps
# (default: ffcv stack tests lottery prune eager compiled packing); ffcv and stack are skipped
# where already installed (a warm machine). Results land in $OUT (the device tool brings back 8
# files at most): log.txt, and the benchmarks' JSON.
# Usage: bash bench/gpu/check.sh [BUNDLE] [STAGE]
set -uo pipefail
bundle=${1:-build/ffcv-bundle}
stage=${2:-/tmp/stage}
out=${OUT:-build/gpu-out}
mkdir -p "$out"
log="$out/log.txt"
python=python3
site=/tmp/site
deadline=$((SECONDS + ${CHECK_BUDGET_S:-480}))
steps=" ${CHECK_STEPS:-ffcv stack tests lottery prune eager compiled packing} "
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=:4096:8

# step NAME LIMIT COMMAND...: COMMAND, where CHECK_STEPS names NAME, for at most LIMIT seconds
# or what is left before the deadline; its output goes to the log too
step() {
    local name=$1 limit=$2 left=$((deadline - SECONDS)) start=$SECONDS
    shift 2
    [[ $steps == *" $name "* ]] || return 0
    if ((left < 20)); then
        echo "== $name: not run, ${left} s left" | tee -a "$log"
        return 0
    fi
    ((limit > left)) && limit=$left
    echo "== $name (at most $limit s): $*" | tee -a "$log"
    timeout -s INT -k 20 "$limit" "$@" 2>&1 | tee -a "$log"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$log"
}
installed() { "$python" -c "import $1" 2>/dev/null; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$log"
if installed ffcv.libffcv; then steps=${steps/ ffcv / }; fi
if installed "ray, mlflow, submitit, scale_lth"; then steps=${steps/ stack / }; fi
step ffcv 240 bash "$bundle/install.sh" "$bundle" /tmp/ffcv-prefix "$python"
step stack 180 bash bench/gpu/install-stack.sh "$stage" "$site" "$python"
pytest=("$python" -m pytest -p no:cacheprovider -q -m gpu)
if installed "ray, mlflow, submitit"; then
    step tests 180 "${pytest[@]}" tests/gpu/test_cuda_path.py
else  # no stack: the tests that need no more than torch, without the shared conftest
    step tests 180 "${pytest[@]}" --noconftest -o addopts="" tests/gpu/test_cuda_path.py \
        -k "not inside_a_level"
fi
step lottery 330 "${pytest[@]}" -rA tests/gpu/test_gpu_lottery.py
step prune 90 "$python" bench/prune_and_step.py --device cuda --out "$out/results-cuda.json"
photos="$bundle/photos"
step eager 240 "$python" bench/gpu_throughput.py --compile off --photos "$photos" \
    --out "$out/throughput-eager.json"
step compiled 300 "$python" bench/gpu_throughput.py --compile on --resolutions 160 \
    --photos "$photos" --out "$out/throughput-compiled.json"
step packing 240 "$python" bench/gpu/packing.py --out "$out/packing.json"
echo "== done, $((deadline - SECONDS)) s before the deadline" | tee -a "$log"
