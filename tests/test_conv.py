"""conv2d / conv2d_backward and the GEMM under them, against float64 references."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
import reference as ref
from fastnn import _core, ops
from helpers import compare, f32, fd_check, same_bits, threads

# (N, H, W, C, K, R, S, stride, padding)
CASES = [
    (2, 7, 7, 3, 4, 3, 3, 1, 1),
    (1, 5, 6, 1, 2, 3, 3, 1, 0),
    (3, 9, 8, 5, 7, 3, 2, 2, "same"),
    (2, 8, 8, 4, 6, 5, 5, 1, "same"),
    (2, 7, 5, 3, 33, 2, 3, (2, 1), (1, 0)),
    (1, 6, 6, 2, 3, 6, 6, 1, "valid"),
    (2, 10, 9, 13, 5, 3, 3, 3, "same"),
    (1, 4, 4, 17, 40, 1, 1, 1, 0),
    (2, 11, 11, 8, 16, 4, 4, 2, 2),
    (1, 12, 12, 32, 32, 5, 5, 1, "same"),
    (0, 6, 6, 3, 4, 3, 3, 1, 1),
]
IDS = ["-".join(map(str, c)) for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("algorithm", ["auto", "gemm", "direct"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_forward_matches_reference(case, algorithm, with_bias):
    N, H, W, C, K, R, S, stride, padding = case
    rs = np.random.default_rng(hash(case) % 2**32)
    x, w = f32(rs, N, H, W, C), f32(rs, R, S, C, K)
    b = f32(rs, K) if with_bias else None
    y = ops.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm)
    assert y.dtype == np.float32
    compare(y, ref.conv2d(x, w, b, stride, padding))


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("algorithm", ["auto", "direct"])
def test_conv2d_backward_matches_reference(case, algorithm):
    N, H, W, C, K, R, S, stride, padding = case
    rs = np.random.default_rng(hash(case) % 2**32 + 1)
    x, w = f32(rs, N, H, W, C), f32(rs, R, S, C, K)
    y = ref.conv2d(x, w, None, stride, padding)
    dy = f32(rs, *y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=padding, algorithm=algorithm)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, stride, padding)
    compare(dx, rdx, name="dx")
    if N:
        compare(dw, rdw, name="dw")
        compare(db, rdb, name="db")
    else:
        assert not dw.any() and not db.any()


WINOGRAD_CASES = [c for c in CASES if c[5] == c[6] and c[5] in (3, 5) and c[7] == 1] + [
    (2, 14, 14, 32, 64, 3, 3, 1, 1), (1, 9, 7, 17, 33, 5, 5, 1, "same"), (2, 6, 5, 3, 2, 3, 3, 1, 2)]


WINOGRAD_ALGORITHMS = ["winograd", "winograd_f2x2", "winograd_f4x4"]


@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
def test_conv2d_winograd_matches_reference(case, algorithm):
    N, H, W, C, K, R, S, stride, padding = case
    rs = np.random.default_rng(hash(case) % 2**32 + 3)
    x, w, b = f32(rs, N, H, W, C), f32(rs, R, S, C, K), f32(rs, K)
    y = ops.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm)
    compare(y, ref.conv2d(x, w, b, stride, padding))
    dy = f32(rs, *y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=padding, algorithm=algorithm)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, stride, padding)
    compare(dx, rdx, name="dx")
    if N:
        compare(dw, rdw, name="dw")
    relu = _core.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm, relu=True)
    compare(relu, np.maximum(ref.conv2d(x, w, b, stride, padding), 0))


# Largest |error| / largest |output| against float64, N(0, 1) inputs and He-scaled
# weights, at the workbook's and the 56x56 benchmark's channel counts. Measured
# (AVX-512): F(2x2, 3x3) 4e-7, F(4x4, 3x3) 3e-6, F(2x2, 5x5) 1.8e-6, F(4x4, 5x5)
# 7e-6 (forward, data and weight gradients). The README states these bounds.
WINOGRAD_ERROR_BOUNDS = {("winograd_f2x2", 3): 4e-6, ("winograd_f4x4", 3): 2e-5,
                         ("winograd_f2x2", 5): 1e-5, ("winograd_f4x4", 5): 4e-5}


@pytest.mark.parametrize("algorithm,r", sorted(WINOGRAD_ERROR_BOUNDS))
def test_conv2d_winograd_error_bound(algorithm, r):
    rs = np.random.default_rng(70 + r)
    C = K = 64 if r == 3 else 32
    x = f32(rs, 3, 16, 16, C)
    w = (f32(rs, r, r, C, K) * np.sqrt(2.0 / (r * r * C))).astype(np.float32)
    bound = WINOGRAD_ERROR_BOUNDS[(algorithm, r)]
    y = ops.conv2d(x, w, padding="same", algorithm=algorithm)
    y_ref = ref.conv2d(x, w, padding=r // 2)
    assert np.abs(y - y_ref).max() <= bound * np.abs(y_ref).max()
    dy = f32(rs, *y.shape)
    dx, dw, _ = ops.conv2d_backward(dy, x, w, padding="same", algorithm=algorithm)
    dx_ref, dw_ref, _ = ref.conv2d_backward(dy, x, w, 1, r // 2)
    assert np.abs(dx - dx_ref).max() <= bound * np.abs(dx_ref).max()
    assert np.abs(dw - dw_ref).max() <= bound * np.abs(dw_ref).max()


@pytest.mark.parametrize("r,size,tile", [(3, 14, "f4x4"), (3, 6, "f2x2"), (3, 2, "f2x2"), (5, 28, "f4x4"),
                                         (5, 5, "f4x4"), (5, 2, "f2x2")])
def test_conv2d_winograd_tile_rule(r, size, tile):
    """"winograd" (and "auto") take the tile with fewer products per real output:
    F(4x4) except where the padding of the last tiles eats its advantage."""
    rs = np.random.default_rng(80 + size)
    x, w = f32(rs, 2, size, size, 16), f32(rs, r, r, 16, 16)
    same_bits(ops.conv2d(x, w, padding="same", algorithm="winograd"),
              ops.conv2d(x, w, padding="same", algorithm="winograd_" + tile))
    same_bits(ops.conv2d(x, w, padding="same", algorithm="auto"),
              ops.conv2d(x, w, padding="same", algorithm="winograd_" + tile))


@pytest.mark.parametrize("algorithm,r,bound", [("gemm", 5, 1e-6), ("gemm", 3, 1e-6), ("winograd", 5, 2e-5),
                                               ("winograd", 3, 1e-5)])
def test_weight_gradient_of_a_batch_vs_the_sum_of_its_halves(algorithm, r, bound):
    """What data-parallel training relies on: the weight gradient of 2B images and the
    sum of two B-image gradients differ by rounding only. For the implicit GEMM that is
    a reordering of the same products (measured 2e-7 of the largest element); Winograd
    sums in the transformed domain, where values cancel, so more (measured 1-5e-6)."""
    rs = np.random.default_rng(90 + r)
    C, K, H = (32, 32, 12) if r == 5 else (32, 64, 10)
    x, dy = f32(rs, 16, H, H, C), f32(rs, 16, H, H, K)
    w = np.zeros((r, r, C, K), np.float32)
    full = ops.conv2d_backward(dy, x, w, padding="same", algorithm=algorithm, need_dx=False)[1]
    halves = sum(ops.conv2d_backward(dy[s], x[s], w, padding="same", algorithm=algorithm, need_dx=False)[1]
                 for s in (slice(0, 8), slice(8, 16)))
    assert np.abs(full - halves).max() <= bound * np.abs(full).max()


@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
def test_conv2d_winograd_deterministic_and_batch_invariant(algorithm):
    rs = np.random.default_rng(31)
    x, w = f32(rs, 6, 13, 11, 20), f32(rs, 5, 5, 20, 24)
    with threads(1):
        y1 = ops.conv2d(x, w, padding="same", algorithm=algorithm)
    with threads(2):
        y2 = ops.conv2d(x, w, padding="same", algorithm=algorithm)
    same_bits(y1, y2)
    same_bits(ops.conv2d(x[3:4], w, padding="same", algorithm=algorithm)[0], y1[3])
    dy = f32(rs, *y1.shape)
    with threads(1):
        g1 = ops.conv2d_backward(dy, x, w, padding="same", algorithm=algorithm)
    with threads(2):
        g2 = ops.conv2d_backward(dy, x, w, padding="same", algorithm=algorithm)
    for a, b in zip(g1, g2):
        same_bits(a, b)


@pytest.mark.parametrize("kw", [dict(stride=2), dict(w=(4, 4))])
@pytest.mark.parametrize("algorithm", WINOGRAD_ALGORITHMS)
def test_conv2d_winograd_rejects_unsupported_shapes(kw, algorithm):
    x = np.zeros((1, 9, 9, 2), np.float32)
    k = kw.get("w", (3, 3))
    w = np.zeros(k + (2, 3), np.float32)
    with pytest.raises(ValueError, match="algorithm: 'winograd' needs"):
        ops.conv2d(x, w, stride=kw.get("stride", 1), padding=1, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["winograd_f2x2", "winograd_f4x4"])
@pytest.mark.parametrize("r", [3, 5])
def test_conv2d_winograd_backward_finite_differences(algorithm, r):
    """The Winograd data and weight gradients against finite differences of the Winograd
    forward (odd sizes, so the last tiles are partial)."""
    rs = np.random.default_rng(8 + r)
    x, w = f32(rs, 2, 7, 6, 5), f32(rs, r, r, 5, 6)
    kw = dict(padding="same", algorithm=algorithm)
    y = ops.conv2d(x, w, **kw)
    dy = f32(rs, *y.shape)
    dx, dw, _ = ops.conv2d_backward(dy, x, w, **kw)
    fd_check(lambda v: ops.conv2d(v.astype(np.float32), w, **kw), x, dy, dx, name="dx")
    fd_check(lambda v: ops.conv2d(x, v.astype(np.float32), **kw), w, dy, dw, name="dw")


def test_conv2d_fused_relu():
    rs = np.random.default_rng(5)
    x, w, b = f32(rs, 2, 9, 9, 6), f32(rs, 3, 3, 6, 20), f32(rs, 20)
    y = _core.conv2d(x, w, b, padding="same", relu=True)
    compare(y, np.maximum(ref.conv2d(x, w, b, 1, "same"), 0))


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]], ids=["s1", "same-s2", "pair"])
def test_conv2d_backward_finite_differences(case):
    N, H, W, C, K, R, S, stride, padding = case
    rs = np.random.default_rng(7)
    x, w, b = f32(rs, N, H, W, C), f32(rs, R, S, C, K), f32(rs, K)
    y = ops.conv2d(x, w, b, stride=stride, padding=padding)
    dy = f32(rs, *y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    fd_check(lambda v: ops.conv2d(v.astype(np.float32), w, b, stride=stride, padding=padding), x, dy, dx, name="dx")
    fd_check(lambda v: ops.conv2d(x, v.astype(np.float32), b, stride=stride, padding=padding), w, dy, dw, name="dw")
    fd_check(lambda v: ops.conv2d(x, w, v.astype(np.float32), stride=stride, padding=padding), b, dy, db, name="db")


def test_conv2d_need_flags():
    rs = np.random.default_rng(8)
    x, w = f32(rs, 2, 6, 6, 3), f32(rs, 3, 3, 3, 4)
    dy = f32(rs, 2, 6, 6, 4)
    dx, dw, db = ops.conv2d_backward(dy, x, w, padding=1, need_dx=False, need_db=False)
    assert dx is None and db is None
    compare(dw, ref.conv2d_backward(dy, x, w, 1, 1)[1])


def test_conv2d_same_padding_tensorflow_rule():
    # even kernel, stride 2: TF puts the extra pixel at the bottom/right
    rs = np.random.default_rng(9)
    x, w = f32(rs, 1, 8, 7, 2), f32(rs, 4, 4, 2, 3)
    y = ops.conv2d(x, w, stride=2, padding="same")
    assert y.shape == (1, 4, 4, 3)
    compare(y, ref.conv2d(x, w, None, 2, "same"))


def test_conv2d_accepts_float64_noncontiguous_and_lists():
    rs = np.random.default_rng(10)
    x64 = rs.standard_normal((2, 6, 6, 6))
    w = f32(rs, 3, 3, 3, 4)
    xs = x64[:, ::-1, :, ::2]  # negatively strided, non-contiguous, float64
    y = ops.conv2d(xs, w, padding=1)
    compare(y, ref.conv2d(xs, w, None, 1, 1))
    xf = np.asfortranarray(xs.astype(np.float32))
    same_bits(ops.conv2d(xf, w, padding=1), ops.conv2d(np.ascontiguousarray(xf), w, padding=1))
    xr = np.ascontiguousarray(xs, dtype=np.float32)
    xr.setflags(write=False)
    same_bits(ops.conv2d(xr, w, padding=1), y)
    y2 = ops.conv2d(xs.tolist(), w.tolist(), padding=1)
    same_bits(y2, y)


def test_conv2d_does_not_modify_inputs():
    rs = np.random.default_rng(11)
    x, w, b = f32(rs, 2, 6, 6, 3), f32(rs, 3, 3, 3, 4), f32(rs, 4)
    copies = [a.copy() for a in (x, w, b)]
    y = ops.conv2d(x, w, b, padding=1)
    ops.conv2d_backward(y, x, w, padding=1)
    for a, c in zip((x, w, b), copies):
        same_bits(a, c)


def test_conv2d_nan_passes_through():
    rs = np.random.default_rng(12)
    x, w = f32(rs, 1, 5, 5, 2), f32(rs, 3, 3, 2, 3)
    x[0, 2, 2, 0] = np.nan
    y = ops.conv2d(x, w, padding=1)
    assert np.isnan(y[0, 1:4, 1:4]).all()
    assert np.isfinite(y[0, 0, 0]).all()


def test_conv2d_empty_batch():
    w = np.ones((3, 3, 2, 4), np.float32)
    y = ops.conv2d(np.zeros((0, 5, 5, 2), np.float32), w, padding="same")
    assert y.shape == (0, 5, 5, 4)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 5, 5, 4), np.float32), np.zeros((0, 5, 5, 2), np.float32), w, padding="same")
    assert dx.shape == (0, 5, 5, 2) and dw.shape == w.shape and not dw.any() and not db.any()


@pytest.mark.parametrize("n_a,n_b", [(1, 2)])
def test_conv2d_bitwise_identical_across_threads(n_a, n_b):
    rs = np.random.default_rng(13)
    x, w, b = f32(rs, 8, 14, 14, 32), f32(rs, 3, 3, 32, 64), f32(rs, 64)
    dy = f32(rs, 8, 14, 14, 64)
    out = {}
    for n in (n_a, n_b):
        with threads(n):
            out[n] = (ops.conv2d(x, w, b, padding="same"),) + ops.conv2d_backward(dy, x, w, padding="same")
    for a, c in zip(out[n_a], out[n_b]):
        same_bits(a, c)


def test_conv2d_batch_size_invariant():
    rs = np.random.default_rng(14)
    x, w, b = f32(rs, 5, 9, 9, 7), f32(rs, 5, 5, 7, 33), f32(rs, 33)
    y = ops.conv2d(x, w, b, padding="same")
    for i in range(5):
        same_bits(ops.conv2d(x[i:i + 1], w, b, padding="same")[0], y[i])


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_conv_and_gemm_on_every_isa(isa):
    """The run-time dispatch paths give the same answers (checked in a subprocess)."""
    code = (
        "import numpy as np, fastnn, sys; sys.path.insert(0, %r)\n"
        "import reference as ref; from helpers import compare\n"
        "from fastnn import ops, _core\n"
        "assert fastnn.build_info()['isa'].startswith(%r), fastnn.build_info()\n"
        "rs = np.random.default_rng(0)\n"
        "for (N,H,W,C,K,R,st,pd) in [(2,9,8,5,19,3,1,'same'),(2,7,7,3,33,5,2,2),(1,6,6,13,7,1,1,0)]:\n"
        "    x = rs.standard_normal((N,H,W,C)).astype('f'); w = rs.standard_normal((R,R,C,K)).astype('f')\n"
        "    b = rs.standard_normal(K).astype('f')\n"
        "    compare(ops.conv2d(x, w, b, stride=st, padding=pd), ref.conv2d(x, w, b, st, pd))\n"
        "    dy = rs.standard_normal(ops.conv2d(x, w, stride=st, padding=pd).shape).astype('f')\n"
        "    for a, e in zip(ops.conv2d_backward(dy, x, w, stride=st, padding=pd), ref.conv2d_backward(dy, x, w, st, pd)):\n"
        "        compare(a, e)\n"
        "for R, alg in [(5, 'winograd_f2x2'), (5, 'winograd_f4x4'), (3, 'winograd_f2x2'), (3, 'winograd_f4x4')]:\n"
        "    x = rs.standard_normal((2,9,8,19)).astype('f'); w = rs.standard_normal((R,R,19,21)).astype('f')\n"
        "    compare(ops.conv2d(x, w, padding='same', algorithm=alg), ref.conv2d(x, w, None, 1, 'same'))\n"
        "    dy = rs.standard_normal((2,9,8,21)).astype('f')\n"
        "    for a, e in zip(ops.conv2d_backward(dy, x, w, padding='same', algorithm=alg), ref.conv2d_backward(dy, x, w, 1, 'same')):\n"
        "        compare(a, e)\n"
        "for (m,n,k) in [(37,29,300),(5,70,3),(130,17,513)]:\n"
        "    a = rs.standard_normal((m,k)).astype('f'); b = rs.standard_normal((k,n)).astype('f')\n"
        "    compare(_core.matmul(a, b), ref.matmul(a, b))\n"
        "print('ok')\n" % (os.path.dirname(__file__), isa)
    )
    env = dict(os.environ, FASTNN_ISA=isa)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


# ---- bad input --------------------------------------------------------------

def _xw():
    return np.zeros((1, 5, 5, 2), np.float32), np.zeros((3, 3, 2, 4), np.float32)


@pytest.mark.parametrize("bad,exc,match", [
    (dict(x=np.zeros((5, 5, 2), np.float32)), ValueError, "x: expected a 4-D"),
    (dict(w=np.zeros((3, 3, 4), np.float32)), ValueError, "w: expected a 4-D"),
    (dict(w=np.zeros((3, 3, 3, 4), np.float32)), ValueError, "w: expected C_in = 2"),
    (dict(x=np.zeros((1, 5, 5, 2), bool)), TypeError, "x: expected a real-valued"),
    (dict(x=np.zeros((1, 5, 5, 2), complex)), TypeError, "x: expected a real-valued"),
    (dict(x=np.zeros((1, 5, 5, 2), object)), TypeError, "x: expected a real-valued"),
    (dict(w="abc"), TypeError, "w: expected a numeric array"),
    (dict(b=np.zeros(5, np.float32)), ValueError, r"b: expected shape \(4,\)"),
    (dict(stride=0), ValueError, "stride: expected positive"),
    (dict(stride=(1, -1)), ValueError, "stride: expected positive"),
    (dict(stride=1.5), TypeError, "stride"),
    (dict(padding=-1), ValueError, "padding: expected non-negative"),
    (dict(padding="full"), ValueError, "padding: expected 'valid', 'same'"),
    (dict(padding=(1, 2, 3)), ValueError, "padding: expected an int or a pair"),
    (dict(w=np.zeros((7, 7, 2, 4), np.float32), padding="valid"), ValueError, "larger than the padded input"),
    (dict(w=np.zeros((0, 3, 2, 4), np.float32)), ValueError, "w: expected positive sizes"),
    (dict(x=np.zeros((1, 0, 5, 2), np.float32)), ValueError, "x: expected positive H, W, C"),
    (dict(algorithm="fft"), ValueError, "algorithm"),
])
def test_conv2d_bad_input(bad, exc, match):
    x, w = _xw()
    kw = dict(x=x, w=w, b=None, stride=1, padding=1, algorithm="auto")
    kw.update(bad)
    with pytest.raises(exc, match=match):
        ops.conv2d(kw["x"], kw["w"], kw["b"], stride=kw["stride"], padding=kw["padding"], algorithm=kw["algorithm"])


def test_conv2d_backward_bad_input():
    x, w = _xw()
    with pytest.raises(ValueError, match=r"dy: expected shape \(1, 5, 5, 4\)"):
        ops.conv2d_backward(np.zeros((1, 5, 5, 3), np.float32), x, w, padding=1)
    with pytest.raises(TypeError, match="dy"):
        ops.conv2d_backward(np.zeros((1, 5, 5, 4), bool), x, w, padding=1)
    with pytest.raises(ValueError, match="dy: expected a 4-D|dy: expected shape"):
        ops.conv2d_backward(np.zeros((5, 5, 4), np.float32), x, w, padding=1)


def test_conv2d_huge_output_raises_memory_error_before_allocating():
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1, 1, 1, 1), strides=(0, 0, 0, 0))
    w = np.zeros((1, 1, 1, 1), np.float32)
    # a padded output of (2**31)^2 pixels cannot be allocated
    with pytest.raises((MemoryError, ValueError)):
        ops.conv2d(x, w, padding=2**31)


# ---- GEMM ---------------------------------------------------------------------

@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1, 300, 257), (13, 31, 7), (64, 64, 64), (97, 129, 600), (300, 5, 1000), (2, 1600, 40)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_reference(m, n, k, ta, tb):
    rs = np.random.default_rng(m * 1000 + n + k)
    a = f32(rs, *((k, m) if ta else (m, k)))
    b = f32(rs, *((n, k) if tb else (k, n)))
    c = _core.matmul(a, b, transpose_a=ta, transpose_b=tb)
    compare(c, ref.matmul(a.T if ta else a, b.T if tb else b))


def test_matmul_deterministic_and_row_invariant():
    rs = np.random.default_rng(3)
    a, b = f32(rs, 300, 700), f32(rs, 700, 90)
    with threads(1):
        c1 = _core.matmul(a, b)
    with threads(2):
        c2 = _core.matmul(a, b)
    same_bits(c1, c2)
    same_bits(_core.matmul(a[17:18], b)[0], c1[17])


@pytest.mark.parametrize("n", [1, 5, 32, 64])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_few_columns_path_matches_packed_path_bitwise(n, tb):
    """Up to two column panels take a path that packs only B; its columns must carry
    the same bits as the same columns computed by the packed path (wider B)."""
    rs = np.random.default_rng(50 + n)
    a, wide = f32(rs, 200, 600), f32(rs, 600, 200)
    narrow = np.ascontiguousarray(wide[:, :n])
    if tb:
        c = _core.matmul(a, np.ascontiguousarray(narrow.T), transpose_b=True)
    else:
        c = _core.matmul(a, narrow)
    same_bits(c, _core.matmul(a, wide)[:, :n])
    compare(c, a.astype(np.float64) @ narrow)


def test_matmul_bad_input():
    with pytest.raises(ValueError, match="b: expected 3 rows"):
        _core.matmul(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="a: expected a 2-D"):
        _core.matmul(np.zeros(3, np.float32), np.zeros((3, 2), np.float32))


# ---- PyTorch cross-check ---------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in CASES if c[0] > 0 and not isinstance(c[8], str)], ids=lambda c: "-".join(map(str, c)))
def test_conv2d_against_torch(case):
    torch = pytest.importorskip("torch")
    N, H, W, C, K, R, S, stride, padding = case
    rs = np.random.default_rng(21)
    x, w, b = f32(rs, N, H, W, C), f32(rs, R, S, C, K), f32(rs, K)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    wt = torch.tensor(w).permute(3, 2, 0, 1).requires_grad_(True)
    bt = torch.tensor(b).requires_grad_(True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y = ops.conv2d(x, w, b, stride=stride, padding=padding)
    compare(y, yt.detach().permute(0, 2, 3, 1).double().numpy())
    dy = f32(rs, *y.shape)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    compare(dx, xt.grad.permute(0, 2, 3, 1).double().numpy(), name="dx")
    compare(dw, wt.grad.permute(2, 3, 1, 0).double().numpy(), name="dw")
    compare(db, bt.grad.double().numpy(), name="db")


def test_kernels_release_the_gil():
    """A long convolution in one thread must not stop Python code in another."""
    import threading
    import time

    rs = np.random.default_rng(30)
    # the implicit GEMM on 64 images: each call ~10-30 ms (Winograd would be ~4x shorter)
    x, w = f32(rs, 64, 28, 28, 32), f32(rs, 5, 5, 32, 32)
    ops.conv2d(x, w, padding="same", algorithm="gemm")
    done = threading.Event()
    ticks = []

    def work():
        for _ in range(3):
            ops.conv2d(x, w, padding="same", algorithm="gemm")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    assert len(ticks) >= 5, f"the main thread ran only {len(ticks)} times while the kernels ran"


@pytest.mark.parametrize("m", [1, 2, 5, 13, 40, 100])
def test_gemm_small_rows_path_is_bitwise_row_invariant(m):
    """Few rows take an unpacked path (no B packing); it must give the same bits as
    the packed path, including K > 256 (several K blocks), bias and fused ReLU."""
    rs = np.random.default_rng(40 + m)
    x = f32(rs, 120, 700)
    w, b = f32(rs, 700, 70), f32(rs, 70)
    full = _core.dense_relu(x, w, b)
    part = _core.dense_relu(x[:m], w, b)
    same_bits(part, full[:m])
    compare(part, np.maximum(x[:m].astype(np.float64) @ w + b, 0))
    same_bits(_core.matmul(x[:m], w), _core.matmul(x, w)[:m])


@pytest.mark.parametrize("r", [3, 5])
def test_winograd_weight_cache_never_serves_stale_weights(r):
    """Transformed Winograd weights are cached per thread by address and content: a
    weight tensor changed in place, a new tensor at a reused address, and more tensors
    than the cache holds must all give the result of a fresh computation."""
    rs = np.random.default_rng(60 + r)
    x = f32(rs, 2, 9, 9, 16)
    w = f32(rs, r, r, 16, 16)
    y1 = ops.conv2d(x, w, padding="same", algorithm="winograd")
    same_bits(ops.conv2d(x, w, padding="same", algorithm="winograd"), y1)   # a hit
    w[1, 1, 3, 7] += 0.5                                                      # in place
    y2 = ops.conv2d(x, w, padding="same", algorithm="winograd")
    compare(y2, ref.conv2d(x, w, padding=r // 2))
    assert not np.array_equal(y1, y2)
    same_bits(y2, ops.conv2d(x, w.copy(), padding="same", algorithm="winograd"))
    # the same weights through the other tile size: its own transform, not the cached one
    for alg in ("winograd_f2x2", "winograd_f4x4", "winograd_f2x2"):
        compare(ops.conv2d(x, w, padding="same", algorithm=alg), ref.conv2d(x, w, padding=r // 2))
    others = [f32(rs, r, r, 16, 16) for _ in range(6)]
    for _ in range(2):   # cycle through more tensors than the cache has entries
        for wo in others + [w]:
            compare(ops.conv2d(x, wo, padding="same", algorithm="winograd"), ref.conv2d(x, wo, padding=r // 2))
