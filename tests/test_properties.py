"""Property-based tests (hypothesis): random shapes and parameters against the float64
references. 25 examples per property by default; `python -m pytest --long` runs 1000."""
import numpy as np
import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import reference as ref  # noqa: E402
from fastnn import ops  # noqa: E402
from helpers import compare  # noqa: E402


@st.composite
def conv_case(draw):
    R = draw(st.integers(1, 5))
    S = draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    H = draw(st.integers(R, R + 8))
    W = draw(st.integers(S, S + 8))
    N, C, K = draw(st.integers(0, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 40))
    algorithm = draw(st.sampled_from(["auto", "gemm", "direct", "winograd", "winograd_f2x2", "winograd_f4x4"]))
    eligible = R == S and R in (3, 5) and sh == sw == 1
    if algorithm.startswith("winograd") and not eligible:
        algorithm = "auto"
    if eligible:
        # Winograd-eligible: always asymmetric (pad_h != pad_w), so a swap of the top and
        # left padding in the Winograd tile origin cannot pass unseen (issue 23)
        ph = draw(st.integers(0, R // 2))
        pw = draw(st.integers(0, R // 2).filter(lambda v: v != ph))
        padding = (ph, pw)
        H, W = max(H, R - 2 * ph), max(W, R - 2 * pw)
    seed = draw(st.integers(0, 2**31))
    return N, H, W, C, K, R, S, (sh, sw), padding, algorithm, seed


@given(conv_case())
def test_conv2d_property(case):
    N, H, W, C, K, R, S, stride, padding, algorithm, seed = case
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((N, H, W, C)).astype(np.float32)
    w = rs.standard_normal((R, S, C, K)).astype(np.float32)
    b = rs.standard_normal(K).astype(np.float32)
    y = ops.conv2d(x, w, b, stride=stride, padding=padding, algorithm=algorithm)
    compare(y, ref.conv2d(x, w, b, stride, padding))
    dy = rs.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=padding, algorithm=algorithm)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, stride, padding)
    compare(dx, rdx, name="dx")
    if N and y.size:
        compare(dw, rdw, name="dw")
        compare(db, rdb, name="db")


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(1, 6),
       st.integers(0, 2**31), st.booleans())
def test_pool_property(n, pool, stride, pad, c, seed, include_pad):
    pad = min(pad, pool // 2)
    rs = np.random.default_rng(seed)
    H = pool + rs.integers(0, 6)
    W = pool + rs.integers(0, 6)
    x = rs.standard_normal((n, H, W, c)).astype(np.float32)
    y, idx = ops.max_pool2d(x, pool, stride=stride, padding=pad)
    compare(y, ref.max_pool2d(x, pool, stride, pad)[0])
    ya = ops.avg_pool2d(x, pool, stride=stride, padding=pad, count_include_pad=include_pad)
    compare(ya, ref.avg_pool2d(x, pool, stride, pad, include_pad))


@given(st.integers(0, 40), st.integers(1, 300), st.integers(1, 70), st.integers(0, 2**31))
def test_dense_property(n, i, o, seed):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((n, i)).astype(np.float32)
    w = rs.standard_normal((i, o)).astype(np.float32)
    b = rs.standard_normal(o).astype(np.float32)
    compare(ops.dense(x, w, b), x.astype(np.float64) @ w + b)
    dy = rs.standard_normal((n, o)).astype(np.float32)
    dx, dw, db = ops.dense_backward(dy, x, w)
    compare(dx, dy.astype(np.float64) @ w.T.astype(np.float64), name="dx")
    if n:
        compare(dw, x.T.astype(np.float64) @ dy, name="dw")


@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 5), st.integers(1, 12), st.integers(0, 2**31))
def test_lstm_property(n, t, i, h, seed):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((n, t, i)).astype(np.float32)
    k = (rs.standard_normal((i, 4 * h)) * 0.5).astype(np.float32)
    rk = (rs.standard_normal((h, 4 * h)) * 0.5).astype(np.float32)
    b = rs.standard_normal(4 * h).astype(np.float32)
    hs, hT, cT, _ = ops.lstm_forward(x, k, rk, b)
    rhs = ref.lstm_ref(x, k, rk, b)[0]
    compare(hs, rhs)
