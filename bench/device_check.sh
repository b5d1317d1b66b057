#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (H100/H200, driver 580, nvcc 13,
# Python with PyTorch+CUDA, CuPy, pybind11, scikit-build-core, CMake, ninja; no
# network). Run from the repository root:
#     OUT=/some/dir bash bench/device_check.sh
# Steps (each under `timeout`, all within 8 minutes; a failing step is logged and
# the next one still runs):
#   1. environment: nvidia-smi, nvcc, python, torch, cupy          -> env.txt
#   2. build + install with CUDA (pip --no-build-isolation, FASTNN_CUDA=ON) -> build.log
#   3. the `cuda` tests (tests/test_cuda.py -m cuda)               -> pytest_cuda.log, .xml
#   4. compute-sanitizer memcheck over a small subset (the tool may refuse
#      the device on some runtimes: that is reported, not fatal)  -> memcheck.log
#   5. benchmarks vs PyTorch (cuBLAS/cuDNN)                        -> bench.log, cuda_bench.json
# A summary with each step's exit status and seconds goes to summary.json.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device_check_out}
PY=${PYTHON:-$(command -v python3 || command -v python)}
mkdir -p "$OUT"
start=$(date +%s)
deadline=$((start + 470))  # 8 minutes minus a margin for the summary
summary="$OUT/summary.json"
echo "{" > "$summary"

left() { echo $((deadline - $(date +%s))); }

# run_step NAME MAX_SECONDS LOGFILE command...
run_step() {
  local name=$1 max=$2 log=$3
  shift 3
  local budget
  budget=$(left)
  [ "$budget" -gt "$max" ] && budget=$max
  if [ "$budget" -lt 5 ]; then
    echo "  \"$name\": {\"rc\": \"skipped (no time left)\"}," >> "$summary"
    echo "== $name: skipped, no time left"
    return
  fi
  echo "== $name (limit ${budget}s) -> $log"
  local t0=$(date +%s)
  # bash -c so that the step may be one of the functions below (exported)
  timeout --kill-after=10 "$budget" bash -c '"$@"' "$name" "$@" > "$OUT/$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  echo "  \"$name\": {\"rc\": $rc, \"seconds\": $dt, \"log\": \"$log\"}," >> "$summary"
  echo "   rc=$rc in ${dt}s"
  tail -n 5 "$OUT/$log"
}

env_info() {
  nvidia-smi || true
  nvcc --version || true
  "$PY" -c "import sys; print(sys.version)"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0))" || true
  "$PY" -c "import cupy; print('cupy', cupy.__version__)" || true
  "$PY" -c "import pytest; print('pytest', pytest.__version__)" || true
  command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null || true
  nproc
}

build() {
  export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
  export PATH="$PATH:/usr/local/cuda/bin"
  export CUDACXX=${CUDACXX:-$(command -v nvcc)}
  time "$PY" -m pip install --no-build-isolation --no-deps -v . -Ccmake.define.FASTNN_CUDA=ON
  # run from outside the tree so the installed package is the one imported
  (cd /tmp && "$PY" -c "import fastnn, fastnn.cuda as fc; print(fastnn.build_info()); print('available', fc.is_available(), fc.device_count())")
}

# pytest may be missing there (no network): wheels carried in bench/wheels are used,
# e.g. made here with: pip download pytest -d bench/wheels --only-binary :all:
ensure_pytest() {
  "$PY" -c "import pytest" 2>/dev/null && return 0
  [ -d bench/wheels ] && "$PY" -m pip install --no-index --find-links bench/wheels pytest
  "$PY" -c "import pytest"
}

cuda_tests() {
  ensure_pytest || return 4
  "$PY" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider -rs --junitxml="$OUT/pytest_cuda.xml"
}

memcheck() {
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
  if [ -z "$cs" ]; then echo "compute-sanitizer not found"; return 3; fi
  ensure_pytest || return 4
  "$cs" --tool memcheck --leak-check no --error-exitcode 9 \
    "$PY" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider -x \
    -k "TestArray or test_batch_norm or test_dense or test_pools or test_dropout or test_softmax_cross_entropy or test_optimizer_updates or test_conv2d_forward_backward"
}

export OUT PY
export -f env_info build ensure_pytest cuda_tests memcheck
run_step env 20 env.txt env_info
run_step build 240 build.log build
run_step cuda_tests 150 pytest_cuda.log cuda_tests
run_step memcheck 120 memcheck.log memcheck
run_step bench 120 bench.log "$PY" bench/cuda_bench.py --out "$OUT/cuda_bench.json"
echo "  \"total_seconds\": $(( $(date +%s) - start ))" >> "$summary"
echo "}" >> "$summary"
cat "$summary"
