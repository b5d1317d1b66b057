#!/usr/bin/env python3
"""Cut the bundled MNIST sample shipped in python/fastnn/datasets/data/.

Writes the first 10,000 training and the first 2,000 test images with their labels as
gzip-compressed IDX files (standard names), reproducibly: gzip level 9, mtime 0, no
file name in the gzip header. Usage:

    python tools/make_mnist_sample.py [--src ../shared/data/mnist] [--dst python/fastnn/datasets/data]
"""
from __future__ import annotations

import argparse
import gzip
import io
import os
import struct

N_TRAIN, N_TEST = 10_000, 2_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return magic, dims, data[4 + 4 * ndim:]


def write_idx(path, magic, dims, payload):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as g:
        g.write(header + payload)
    with open(path, "wb") as f:
        f.write(raw.getvalue())


def cut(src, dst, name, count):
    magic, dims, payload = read_idx(os.path.join(src, name + ".gz"))
    per_item = 1
    for d in dims[1:]:
        per_item *= d
    write_idx(os.path.join(dst, name + ".gz"), magic, (count,) + tuple(dims[1:]), payload[:count * per_item])
    print(f"{name}.gz: {count} of {dims[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist"))
    ap.add_argument("--dst", default=os.path.join(ROOT, "python", "fastnn", "datasets", "data"))
    a = ap.parse_args()
    os.makedirs(a.dst, exist_ok=True)
    cut(a.src, a.dst, "train-images-idx3-ubyte", N_TRAIN)
    cut(a.src, a.dst, "train-labels-idx1-ubyte", N_TRAIN)
    cut(a.src, a.dst, "t10k-images-idx3-ubyte", N_TEST)
    cut(a.src, a.dst, "t10k-labels-idx1-ubyte", N_TEST)


if __name__ == "__main__":
    main()
