#!/usr/bin/env bash
# Developer build without pip: builds _core in build/dev-NAME and makes a package
# tree there (symlinks to python/fastnn + the built extension).
# Usage: eval "$(tools/devbuild.sh NAME)"   -> exports PYTHONPATH for that build.
# FASTNN_CUDA=OFF|ON|AUTO in the environment sets the CMake option of the same name
# (default AUTO: the CUDA module fastnn._cuda is built when nvcc is found).
set -euo pipefail
name=${1:-default}
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build/dev-$name"
pybind_dir=$(python3 -c "import pybind11; print(pybind11.get_cmake_dir())")
if [ ! -f "$bdir/build.ninja" ] || [ -n "${FASTNN_CUDA:-}" ]; then
  cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$pybind_dir" \
    -DFASTNN_CUDA="${FASTNN_CUDA:-AUTO}" >&2
fi
cmake --build "$bdir" >&2
pkg="$bdir/site/fastnn"
rm -rf "$bdir/site"
mkdir -p "$pkg"
for f in "$root"/python/fastnn/*; do ln -s "$f" "$pkg/"; done
ln -sf "$bdir"/_core*.so "$pkg/"
for so in "$bdir"/_cuda*.so; do if [ -e "$so" ]; then ln -sf "$so" "$pkg/"; fi; done
echo "export PYTHONPATH=$bdir/site"
