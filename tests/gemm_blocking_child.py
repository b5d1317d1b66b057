"""Run in a subprocess by test_gemm_blocking.py under a forced FASTNN_GEMM_BLOCKING and
FASTNN_ISA: every sgemm path against a float64 reference, 1 vs 2 threads bitwise, and
the paths against each other bitwise (the same K blocks everywhere). Writes a few
products to argv[1] (.npz) for the parent to compare across blockings."""
import sys

import numpy as np

import fastnn
from fastnn import _core


def bits(x):
    return np.ascontiguousarray(x).view(np.int32)


def check_same(a, b, what):
    if not np.array_equal(bits(a), bits(b)):
        d = np.argwhere(bits(a) != bits(b))
        raise AssertionError(f"{what}: bits differ at {len(d)} places, first {d[0].tolist()}")


def mm(a, b, ta=False, tb=False):
    return _core.matmul(a, b, transpose_a=ta, transpose_b=tb)


def ref(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


def close(y, r, what):
    err = np.abs(y - r).max() / (np.abs(r).max() + 1e-30)
    if not err < 2e-5:
        raise AssertionError(f"{what}: relative error {err:.3g} against float64")


def main():
    rs = np.random.default_rng(7)
    # shapes that reach each path: packed (large), small M read in place (M < 128),
    # rows in place (M <= 4 MR), short sums (K <= 4), few columns, K over many KC blocks
    shapes = [(200, 300, 1000), (86, 256, 3136 // 4), (64, 130, 777), (100, 70, 513), (5, 33, 900),
              (1, 40, 600), (300, 40, 3), (37, 10, 1000), (130, 65, 300), (13, 29, 17)]
    out = {}
    for (M, N, K) in shapes:
        a = rs.standard_normal((M, K), dtype=np.float32)
        b = rs.standard_normal((K, N), dtype=np.float32)
        r = ref(a, b)
        ys = []
        for n in (1, 2):
            fastnn.set_num_threads(n)
            ys.append(mm(a, b))
        name = f"m{M}n{N}k{K}"
        check_same(ys[0], ys[1], name + " 1 vs 2 threads")
        close(ys[0], r, name)
        # the packed loop nest with A packed (small-M in-place path off): same bits
        _core._set_gemm_disabled_paths(1)
        check_same(mm(a, b), ys[0], name + " small-M in place vs packed A")
        _core._set_gemm_disabled_paths(0)
        # batch-size invariance: a row alone, and a block of rows, give the same bits
        for i in {0, M // 2, M - 1}:
            check_same(mm(a[i:i + 1], b)[0], ys[0][i], f"{name} row {i} alone")
        if M > 20:
            check_same(mm(a[3:20], b), ys[0][3:20], name + " rows 3:20")
        # transposed operands (strided packing / in-place strided kernels)
        at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
        check_same(mm(at, b, ta=True), ys[0], name + " A transposed")
        check_same(mm(a, bt, tb=True), ys[0], name + " B transposed")
        out[name] = ys[0]
    np.savez(sys.argv[1], **out)
    info = fastnn.build_info()
    print(info["isa"], info["gemm_blocking"])


if __name__ == "__main__":
    main()
