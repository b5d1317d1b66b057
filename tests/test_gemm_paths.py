"""fastnn's GEMM picks a path by shape (packed, rows read in place, strided colseg,
one-vector tiles for <= 16 columns): every path must give the canonical bits, so the
same product through two paths, on 1 or 2 threads, is bitwise equal and matches a
float64 reference."""
import numpy as np
import pytest

from helpers import same_bits, threads, f32
from fastnn import _core


def ref64(a, b):
    return (a.astype(np.float64) @ b.astype(np.float64))


@pytest.mark.parametrize("M,N,K", [(480, 80, 1), (300, 17, 2), (500, 80, 4), (97, 5, 3), (700, 33, 1)])
def test_short_sums_read_in_place(M, N, K):
    """K <= 4: rows of A and B are read in place (parallel from 2^15 outputs); each row
    has the bits it has alone (a one-row product takes the small-M path)."""
    rs = np.random.default_rng(M + N + K)
    a, b = f32(rs, M, K), f32(rs, K, N)
    outs = []
    for n in (1, 2):
        with threads(n):
            outs.append(_core.matmul(a, b))
    same_bits(outs[0], outs[1], "1 vs 2 threads")
    np.testing.assert_allclose(outs[0], ref64(a, b), rtol=1e-5, atol=1e-5)
    for i in (0, M // 2, M - 1):
        same_bits(_core.matmul(a[i:i + 1], b)[0], outs[0][i], f"row {i}")


@pytest.mark.parametrize("M,N,K", [(20, 1, 32), (20, 10, 86), (256, 10, 86), (7, 16, 5), (13, 40, 256),
                                   (3, 33, 100), (1, 1, 1)])
def test_small_transposed_a_strided(M, N, K):
    """op(A) = A^T with A's columns contiguous (a dense layer's x^T dy): the strided
    micro-kernel reads both operands in place; same bits as the product of the copied
    transpose through the other paths."""
    rs = np.random.default_rng(M * N + K)
    at, b = f32(rs, K, M), f32(rs, K, N)
    outs = []
    for n in (1, 2):
        with threads(n):
            outs.append(_core.matmul(at, b, transpose_a=True))
    same_bits(outs[0], outs[1], "1 vs 2 threads")
    same_bits(outs[0], _core.matmul(np.ascontiguousarray(at.T), b), "through a copied transpose")
    np.testing.assert_allclose(outs[0], ref64(at.T, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("N", [1, 5, 15, 16, 17, 20, 31, 32, 48, 80])
def test_narrow_tiles_one_vector(N):
    """Tiles of <= 16 columns compute one vector per row: the same bits as the same
    columns inside a wider product (each column's arithmetic does not depend on the
    tile width), on both in-place paths."""
    rs = np.random.default_rng(N)
    a, b = f32(rs, 40, 20), f32(rs, 20, 96)
    wide = _core.matmul(a, b)
    same_bits(_core.matmul(a, np.ascontiguousarray(b[:, :N])), wide[:, :N], f"rows in place, N={N}")
    at = np.ascontiguousarray(a.T)
    same_bits(_core.matmul(at, np.ascontiguousarray(b[:, :N]), transpose_a=True), wide[:, :N],
              f"strided, N={N}")
    np.testing.assert_allclose(wide, ref64(a, b), rtol=1e-5, atol=1e-5)
