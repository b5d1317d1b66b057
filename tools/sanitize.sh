#!/usr/bin/env bash
# Builds fastnn._core with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# kernel, bad-input and model tests against it. Exit status: non-zero on any finding.
# Usage: tools/sanitize.sh [pytest args...]   (default: the kernel + bad-input subset)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build/sanitize"
pybind_dir=$(python3 -c "import pybind11; print(pybind11.get_cmake_dir())")
flags="-DFASTNN_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$pybind_dir" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF -DFASTNN_CUDA=OFF >/dev/null
cmake --build "$bdir" >/dev/null
site="$bdir/site/fastnn"
rm -rf "$bdir/site"
mkdir -p "$site"
for f in "$root"/python/fastnn/*; do ln -s "$f" "$site/"; done
ln -sf "$bdir"/_core*.so "$site/"
libasan=$(g++ -print-file-name=libasan.so)
libubsan=$(g++ -print-file-name=libubsan.so)
if [ $# -eq 0 ]; then
  set -- tests/test_conv.py tests/test_pool.py tests/test_pool_layer_ops.py tests/test_dense.py tests/test_norm.py \
    tests/test_activation.py tests/test_loss.py tests/test_optim.py tests/test_augment.py tests/test_rnn.py \
    tests/test_gemm_paths.py tests/test_bad_input_matrix.py \
    tests/test_savefile.py tests/test_cuda.py tests/test_fp_env.py tests/test_properties_ops.py -m "not torch" \
    -p no:cacheprovider -q
fi
cd "$root"
PYTHONPATH="$bdir/site" LD_PRELOAD="$libasan $libubsan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  python3 -m pytest "$@"
