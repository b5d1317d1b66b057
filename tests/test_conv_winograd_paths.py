"""Winograd paths the symmetric-padding cases never reach (issue 23).

* Asymmetric padding (pad_h != pad_w): the tile origin of the forward and of the data
  gradient is (-pad_top, -pad_left) and the data gradient pads dy by (R-1-pt, S-1-pl); a
  swap of top and left is invisible when they are equal. Every Winograd variant and
  "auto", forward, data and weight gradients, against the float64 reference.
  For a Winograd-eligible shape (stride 1, odd square kernel) 'same' is always
  symmetric (TensorFlow's rule gives (R-1)/2 on each side); its asymmetric counterpart
  is a non-square image, where the tile grids of the two axes differ.
* The weight gradient's reduction over tiles cut into 1-8 chunks of whole blocks
  (conv_winograd_impl.hpp: blocks_per_chunk = max(ceil(nblocks / 8), 2)): shapes that
  give 2, 3 and 8 chunks, against the reference and bitwise across thread counts.
"""
import numpy as np
import pytest

import reference as ref
from fastnn import ops
from helpers import compare, f32, same_bits, threads

ALGORITHMS = ["winograd", "winograd_f2x2", "winograd_f4x4", "auto"]

# (N, H, W, C, K, r, padding); C, K >= 16 in some so "auto" takes Winograd itself.
ASYM_CASES = [
    (2, 7, 9, 3, 5, 3, (1, 0)),
    (1, 8, 6, 4, 3, 3, (0, 1)),
    (2, 9, 8, 5, 6, 5, (2, 1)),
    (1, 10, 7, 2, 3, 5, (1, 2)),
    (1, 9, 11, 16, 16, 3, (1, 0)),
    (2, 8, 10, 16, 17, 3, (0, 1)),
    (1, 9, 10, 16, 16, 5, (2, 1)),
    (2, 11, 6, 17, 16, 3, (2, 1)),
    (1, 13, 7, 16, 16, 3, "same"),     # non-square 'same': different tile grids per axis
    (2, 6, 13, 16, 18, 5, "same"),
]
ASYM_IDS = ["-".join(map(str, c)) for c in ASYM_CASES]


@pytest.mark.parametrize("case", ASYM_CASES, ids=ASYM_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_winograd_asymmetric_padding_forward_and_backward(case, algorithm):
    N, H, W, C, K, r, padding = case
    rs = np.random.default_rng(abs(hash(case)) % 2**32)
    x, w, b = f32(rs, N, H, W, C), f32(rs, r, r, C, K), f32(rs, K)
    y = ops.conv2d(x, w, b, padding=padding, algorithm=algorithm)
    compare(y, ref.conv2d(x, w, b, 1, padding))
    dy = f32(rs, *y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, 1, padding)
    compare(dx, rdx, name="dx")
    compare(dw, rdw, name="dw")
    compare(db, rdb, name="db")


@pytest.mark.parametrize("padding", [(1, 0), (0, 1), (2, 1)])
@pytest.mark.parametrize("algorithm", ["winograd_f2x2", "winograd_f4x4"])
def test_winograd_asymmetric_padding_agrees_with_gemm(padding, algorithm):
    """The issue's measurement: GEMM and Winograd agree to ~5e-6 for these paddings."""
    rs = np.random.default_rng(7)
    r = 3 if padding != (2, 1) else 5
    x, w = f32(rs, 2, 12, 11, 16), f32(rs, r, r, 16, 16)
    yg = ops.conv2d(x, w, padding=padding, algorithm="gemm")
    yw = ops.conv2d(x, w, padding=padding, algorithm=algorithm)
    assert np.abs(yg - yw).max() <= 5e-5 * np.abs(yg).max()
    dy = f32(rs, *yg.shape)
    dg = ops.conv2d_backward(dy, x, w, padding=padding, algorithm="gemm", need_db=False)
    dw_ = ops.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm, need_db=False)
    for a, e in zip(dw_[:2], dg[:2]):
        assert np.abs(a - e).max() <= 5e-5 * np.abs(e).max()


def test_winograd_is_the_default_for_asymmetric_padding():
    """ops.conv2d(..., padding=(1, 0)) picks Winograd by default at C, K >= 16: "auto"
    gives the bits of "winograd"."""
    rs = np.random.default_rng(3)
    x, w = f32(rs, 1, 10, 9, 16), f32(rs, 3, 3, 16, 16)
    same_bits(ops.conv2d(x, w, padding=(1, 0)), ops.conv2d(x, w, padding=(1, 0), algorithm="winograd"))


# ---------------------------------------------------------------------------
# Multi-chunk weight-gradient reduction


def wgrad_chunks(r, m, N, P, Q, C, K):
    """The chunk count of winograd_weight_grad<r, m> (conv_winograd_impl.hpp)."""
    A = r + m - 1
    per_tile = A * A * (C + K) * 4
    fit = (512 << 10) // max(per_tile, 1)
    tbmax = min(48, max(12, fit // 12 * 12))
    ntiles = N * -(-P // m) * -(-Q // m)
    nblocks = -(-ntiles // tbmax)
    bpc = max(-(-nblocks // 8), 2)
    return -(-nblocks // bpc)


# (chunks, algorithm, r, N, H, W, C, K, padding)
CHUNK_CASES = [
    (2, "winograd_f2x2", 3, 2, 18, 18, 4, 4, 1),        # 162 tiles, 4 blocks
    (2, "winograd_f4x4", 5, 5, 20, 18, 3, 5, (2, 1)),  # 100 tiles, 3 blocks
    (3, "winograd_f2x2", 3, 2, 22, 20, 4, 4, (1, 0)),   # 198 tiles, 5 blocks
    (3, "winograd_f2x2", 5, 3, 18, 16, 5, 3, 2),
    (8, "winograd_f2x2", 3, 5, 24, 24, 4, 4, 1),        # 720 tiles, 15 blocks
    (8, "winograd_f4x4", 3, 4, 60, 48, 3, 4, (0, 1)),  # 720 tiles, 15 blocks
    (1, "winograd_f2x2", 3, 1, 9, 9, 4, 4, 1),          # one chunk: no reduction
]


@pytest.mark.parametrize("case", CHUNK_CASES, ids=["-".join(map(str, c)) for c in CHUNK_CASES])
def test_winograd_weight_gradient_multi_chunk(case):
    chunks, algorithm, r, N, H, W, C, K, padding = case
    pt, pl = (padding, padding) if isinstance(padding, int) else padding
    P, Q = H + 2 * pt - r + 1, W + 2 * pl - r + 1
    m = 2 if algorithm == "winograd_f2x2" else 4
    assert wgrad_chunks(r, m, N, P, Q, C, K) == chunks  # the case reaches what it names
    rs = np.random.default_rng(40 + chunks + r)
    x, w = f32(rs, N, H, W, C), f32(rs, r, r, C, K)
    dy = f32(rs, N, P, Q, K)
    out = {}
    for n in (1, 2):
        with threads(n):
            out[n] = ops.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm, need_dx=False)[1]
    same_bits(out[1], out[2], name="dw 1 vs 2 threads")
    rdw = ref.conv2d_backward(dy, x, w, 1, padding)[1]
    compare(out[1], rdw, name="dw")
    # the last chunk matters: zeroing the dy rows it covers changes dw
    dy2 = dy.copy()
    dy2[-1] = 0
    dw2 = ops.conv2d_backward(dy2, x, w, padding=padding, algorithm=algorithm, need_dx=False)[1]
    compare(dw2, ref.conv2d_backward(dy2, x, w, 1, padding)[1], name="dw, last image zero")


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_asymmetric_padding_on_every_isa(isa):
    """The generic and AVX2 builds of the Winograd body (and the GEMM micro-kernels'
    fused bias + ReLU) with asymmetric padding, in a subprocess under FASTNN_ISA."""
    import os
    import subprocess
    import sys
    code = (
        "import numpy as np, fastnn, sys; sys.path.insert(0, %r)\n"
        "import reference as ref; from helpers import compare\n"
        "from fastnn import ops, _core\n"
        "assert fastnn.build_info()['isa'].startswith(%r), fastnn.build_info()\n"
        "rs = np.random.default_rng(1)\n"
        "for r, pd in [(3, (1, 0)), (3, (0, 1)), (5, (2, 1))]:\n"
        "    x = rs.standard_normal((2, 9, 8, 17)).astype('f'); w = rs.standard_normal((r, r, 17, 19)).astype('f')\n"
        "    b = rs.standard_normal(19).astype('f')\n"
        "    for alg in ('winograd_f2x2', 'winograd_f4x4', 'gemm'):\n"
        "        compare(ops.conv2d(x, w, b, padding=pd, algorithm=alg), ref.conv2d(x, w, b, 1, pd))\n"
        "        compare(_core.conv2d(x, w, b, padding=pd, algorithm=alg, relu=True),\n"
        "                np.maximum(ref.conv2d(x, w, b, 1, pd), 0))\n"
        "        dy = rs.standard_normal(ref.conv2d(x, w, None, 1, pd).shape).astype('f')\n"
        "        for a, e in zip(ops.conv2d_backward(dy, x, w, padding=pd, algorithm=alg), ref.conv2d_backward(dy, x, w, 1, pd)):\n"
        "            compare(a, e)\n"
        "print('ok')\n" % (os.path.dirname(__file__), isa)
    )
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FASTNN_ISA=isa),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


@pytest.mark.parametrize("stride", [(1, 2), (2, 1)])
@pytest.mark.parametrize("algorithm", ["winograd", "winograd_f2x2", "winograd_f4x4"])
def test_winograd_rejects_a_stride_on_one_axis(stride, algorithm):
    """Winograd needs stride 1 on both axes: (1, 2) and (2, 1) are refused by name..."""
    x, w = np.zeros((1, 9, 9, 16), np.float32), np.zeros((3, 3, 16, 16), np.float32)
    with pytest.raises(ValueError, match="algorithm: 'winograd' needs"):
        ops.conv2d(x, w, stride=stride, padding=1, algorithm=algorithm)


@pytest.mark.parametrize("stride", [(1, 2), (2, 1)])
def test_auto_with_a_stride_on_one_axis_is_right(stride):
    """... and "auto" at C, K >= 16 (where stride 1 would take Winograd) gives the reference."""
    rs = np.random.default_rng(11)
    x, w, b = f32(rs, 2, 9, 10, 16), f32(rs, 3, 3, 16, 16), f32(rs, 16)
    y = ops.conv2d(x, w, b, stride=stride, padding=1)
    compare(y, ref.conv2d(x, w, b, stride, 1))
    dy = f32(rs, *y.shape)
    for a, e in zip(ops.conv2d_backward(dy, x, w, stride=stride, padding=1), ref.conv2d_backward(dy, x, w, stride, 1)):
        compare(a, e)
