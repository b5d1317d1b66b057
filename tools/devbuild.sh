#!/usr/bin/env bash
# Developer build without pip: builds _core in build/dev-NAME and makes a package
# tree there (symlinks to python/fastnn + the built extension).
# Usage: eval "$(tools/devbuild.sh NAME)"   -> exports PYTHONPATH for that build.
set -euo pipefail
name=${1:-default}
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build/dev-$name"
pybind_dir=$(python3 -c "import pybind11; print(pybind11.get_cmake_dir())")
if [ ! -f "$bdir/build.ninja" ]; then
  cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$pybind_dir" >&2
fi
cmake --build "$bdir" >&2
pkg="$bdir/site/fastnn"
rm -rf "$bdir/site"
mkdir -p "$pkg"
for f in "$root"/python/fastnn/*; do ln -s "$f" "$pkg/"; done
ln -sf "$bdir"/_core*.so "$pkg/"
echo "export PYTHONPATH=$bdir/site"
