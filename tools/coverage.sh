#!/usr/bin/env bash
# Line (and branch) coverage of the C++ core csrc/cpu: builds fastnn._core with gcc
# --coverage -O1 in build/coverage (its own build dir; the dev build is untouched), runs
# the kernel tests against it (the FASTNN_ISA subprocess tests too, so the generic and
# AVX2 bodies count), and writes per-file line coverage with the uncovered lines:
#   build/coverage/report.txt        (gcovr text table, Missing = uncovered lines)
#   bench/results/coverage-latest.json (gcovr JSON summary: per-file lines/branches)
# -DFASTNN_SANITIZE only drops the forced unrolling of the Winograd body (same logic,
# compiles in seconds at -O1 instead of minutes). Needs gcovr (pip install gcovr).
# Usage: tools/coverage.sh [pytest args...]   (default: the kernel test subset)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build/coverage"
pybind_dir=$(python3 -c "import pybind11; print(pybind11.get_cmake_dir())")
t0=$(date +%s)
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Coverage -Dpybind11_DIR="$pybind_dir" \
  -DCMAKE_CXX_FLAGS="--coverage -O1 -DFASTNN_SANITIZE" -DCMAKE_SHARED_LINKER_FLAGS="--coverage" \
  -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF -DFASTNN_CUDA=OFF >/dev/null
cmake --build "$bdir" >/dev/null
t1=$(date +%s)
site="$bdir/site/fastnn"
rm -rf "$bdir/site"
mkdir -p "$site"
for f in "$root"/python/fastnn/*; do ln -s "$f" "$site/"; done
ln -sf "$bdir"/_core*.so "$site/"
find "$bdir" -name '*.gcda' -delete
if [ $# -eq 0 ]; then
  set -- tests/test_conv.py tests/test_conv_winograd_paths.py tests/test_second_guards.py tests/test_pool.py \
    tests/test_pool_layer_ops.py tests/test_dense.py tests/test_norm.py tests/test_activation.py tests/test_loss.py \
    tests/test_optim.py tests/test_optimizers.py tests/test_augment.py tests/test_rnn.py tests/test_recurrent.py \
    tests/test_gemm_paths.py tests/test_bad_input_matrix.py tests/test_threads.py tests/test_fp_env.py \
    tests/test_properties.py tests/test_properties_ops.py tests/test_layers.py tests/test_models.py \
    -m "not torch and not slow" -p no:cacheprovider -q
fi
cd "$root"
PYTHONPATH="$bdir/site" python3 -m pytest "$@" || echo "coverage.sh: some tests failed (coverage still reported)" >&2
t2=$(date +%s)
mkdir -p bench/results
gcovr -r "$root" --object-directory "$bdir" --filter 'csrc/cpu/' --txt "$bdir/report.txt" \
  --json-summary-pretty --json-summary bench/results/coverage-latest.json --gcov-ignore-parse-errors=all >/dev/null
gcovr -r "$root" --object-directory "$bdir" --filter 'csrc/cpu/' --txt-metric branch --txt "$bdir/report-branches.txt" \
  --gcov-ignore-parse-errors=all >/dev/null || true
t3=$(date +%s)
cat "$bdir/report.txt"
echo "coverage.sh: build $((t1 - t0)) s, tests $((t2 - t1)) s, report $((t3 - t2)) s (total $((t3 - t0)) s)"
