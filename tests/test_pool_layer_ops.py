"""Tests of the MaxPooling2D layer's private max-pooling forms:
ops._max_pool2d_inference (y only), ops._max_pool2d_window (y and uint8 window offsets)
and ops._max_pool2d_window_backward; and of the layer, which uses them."""
import numpy as np
import pytest

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads
from test_pool import CASES, IDS, _kw

import fastnn
from fastnn import layers, ops


def _flat_from_window(win, x_shape, k, st, p):
    """The flat indices (as ops.max_pool2d returns them) that window offsets name."""
    N, H, W, C = x_shape
    kh, kw, sh, sw, ph, pw, P, Q = ref.pool_geometry(x_shape, k, st, p)
    win = win.astype(np.int64)
    h = (np.arange(P) * sh - ph)[None, :, None, None] + win // kw
    w = (np.arange(Q) * sw - pw)[None, None, :, None] + win % kw
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, None, None, :]
    return ((n * H + h) * W + w) * C + c


# ------------------------------------------------------------ forward forms

@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_inference_and_window_forward_match_reference(shape, k, st, p, rng):
    x = f32(rng, *shape)
    y_ref, _ = ref.max_pool2d(x, k, st, p)
    _, win_ref = ref.max_pool2d_window(x, k, st, p)
    y_inf = ops._max_pool2d_inference(x, k, **_kw(st, p))
    y_win, win = ops._max_pool2d_window(x, k, **_kw(st, p))
    assert y_inf.dtype == np.float32 and y_win.dtype == np.float32 and win.dtype == np.uint8
    assert y_inf.shape == y_ref.shape and win.shape == y_ref.shape
    compare(y_inf, y_ref, name="y (inference)")
    compare(y_win, y_ref, name="y (window)")
    np.testing.assert_array_equal(win, win_ref)
    # the same bits as the public op, and the offsets name its indices
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    same_bits(y_inf, y)
    same_bits(y_win, y)
    np.testing.assert_array_equal(_flat_from_window(win, shape, k, st, p), idx)


@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_window_backward_matches_reference_and_flat_path(shape, k, st, p, rng):
    x = f32(rng, *shape)
    y, win = ops._max_pool2d_window(x, k, **_kw(st, p))
    dy = f32(rng, *y.shape)
    dx = ops._max_pool2d_window_backward(dy, win, shape, k, **_kw(st, p))
    assert dx.dtype == np.float32 and dx.shape == shape
    compare(dx, ref.max_pool2d_window_backward(dy, win, shape, k, st, p), name="dx")
    _, idx = ops.max_pool2d(x, k, **_kw(st, p))
    same_bits(dx, ops.max_pool2d_backward(dy, idx, shape))


def test_2x2_odd_sizes_leave_uncovered_rows_and_columns_zero(rng):
    # 2x2 / stride 2 on odd H and W: the last row and column are in no window
    x = f32(rng, 3, 7, 9, 5)
    y, win = ops._max_pool2d_window(x, 2)
    dy = f32(rng, *y.shape) + 3.0            # never zero
    dx = ops._max_pool2d_window_backward(dy, win, x.shape, 2)
    assert np.all(dx[:, 6, :, :] == 0) and np.all(dx[:, :, 8, :] == 0)
    assert np.count_nonzero(dx) == y.size    # one winner per window, nothing else
    compare(dx, ref.max_pool2d_window_backward(dy, win, x.shape, 2), name="dx")


@pytest.mark.parametrize("k,st,p", [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 1)), (3, 2, 1)])
def test_ties_signed_zeros_nan_inf_bitwise_equal_to_flat_path(k, st, p, rng):
    # many ties (small integers), +0/-0 ties, NaN (first NaN wins), +-inf; dy holds
    # -0.0 and NaN so that "0 + dy" rounding of the flat path must be reproduced
    x = rng.integers(-2, 2, size=(3, 9, 8, 19)).astype(np.float32)
    x[x == 0] = np.where(rng.random(np.count_nonzero(x == 0)) < 0.5, 0.0, -0.0)
    x[0, 1, 1, :3] = np.nan
    x[0, 0, 1, 1] = np.nan
    x[1, 4, 4, 5] = np.inf
    x[2, 2:5, 2:5, 7] = -np.inf
    x[2, :, :, 8] = -np.inf                  # whole plane -inf (padding must not win)
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    y_win, win = ops._max_pool2d_window(x, k, **_kw(st, p))
    same_bits(y_win, y)
    same_bits(ops._max_pool2d_inference(x, k, **_kw(st, p)), y)
    np.testing.assert_array_equal(_flat_from_window(win, x.shape, k, st, p), idx)
    y_ref, idx_ref = ref.max_pool2d(x, k, st, p)
    np.testing.assert_array_equal(idx, idx_ref)
    dy = f32(rng, *y.shape)
    dy[0, 0, 0, :4] = -0.0
    dy[1, 0, 0, 2] = np.nan
    dx = ops._max_pool2d_window_backward(dy, win, x.shape, k, **_kw(st, p))
    same_bits(dx, ops.max_pool2d_backward(dy, idx, x.shape))


def test_window_backward_finite_differences(rng):
    # distinct values spaced well beyond the FD step so no winner flips under perturbation
    shape = (2, 5, 6, 3)
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1).astype(np.float32)
    for k, st, p in [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))]:
        y, win = ops._max_pool2d_window(x, k, **_kw(st, p))
        dy = f32(rng, *y.shape)
        dx = ops._max_pool2d_window_backward(dy, win, x.shape, k, **_kw(st, p))
        fd_check(lambda v: ops._max_pool2d_inference(v, k, **_kw(st, p)), x, dy, dx,
                 eps=1e-2, n_coords=60, name=f"window dx k={k} s={st} p={p}")


def test_largest_window_of_256_elements(rng):
    x = f32(rng, 2, 17, 16, 3)
    y, win = ops._max_pool2d_window(x, 16, stride=1)      # 16x16 = 256: offsets 0..255
    _, idx = ops.max_pool2d(x, 16, stride=1)
    np.testing.assert_array_equal(_flat_from_window(win, x.shape, 16, 1, 0), idx)
    dy = f32(rng, *y.shape)
    same_bits(ops._max_pool2d_window_backward(dy, win, x.shape, 16, stride=1),
              ops.max_pool2d_backward(dy, idx, x.shape))


def test_thread_count_does_not_change_bits(rng):
    x = f32(rng, 5, 13, 11, 7)
    results = {}
    for n in (1, 2):
        with threads(n):
            out = []
            for k, st, p in [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))]:
                y, win = ops._max_pool2d_window(x, k, **_kw(st, p))
                dy = f32(np.random.default_rng(7), *y.shape)
                out += [y, win, ops._max_pool2d_inference(x, k, **_kw(st, p)),
                        ops._max_pool2d_window_backward(dy, win, x.shape, k, **_kw(st, p))]
            results[n] = out
    for a, b in zip(results[1], results[2]):
        same_bits(a, b)


def test_empty_batch_and_inputs_not_modified(rng):
    x0 = np.zeros((0, 6, 6, 3), np.float32)
    assert ops._max_pool2d_inference(x0, 2).shape == (0, 3, 3, 3)
    y0, w0 = ops._max_pool2d_window(x0, 2)
    assert y0.shape == w0.shape == (0, 3, 3, 3)
    assert ops._max_pool2d_window_backward(y0, w0, x0.shape, 2).shape == (0, 6, 6, 3)
    x = f32(rng, 2, 5, 5, 3)
    xc = x.copy()
    y, win = ops._max_pool2d_window(x, 3, stride=1, padding=1)
    ops._max_pool2d_inference(x, 3, stride=1, padding=1)
    dy = f32(rng, *y.shape)
    dyc, winc = dy.copy(), win.copy()
    ops._max_pool2d_window_backward(dy, win, x.shape, 3, stride=1, padding=1)
    same_bits(x, xc)
    same_bits(dy, dyc)
    same_bits(win, winc)


def test_any_real_array_is_accepted(rng):
    base = f32(rng, 2, 6, 8, 3)
    y0, w0 = ops._max_pool2d_window(base, 3, stride=2, padding=1)
    for x in (base.astype(np.float64), np.asfortranarray(base), base[:, :, ::-1][:, :, ::-1]):
        same_bits(ops._max_pool2d_inference(x, 3, stride=2, padding=1), y0)
        y, w = ops._max_pool2d_window(x, 3, stride=2, padding=1)
        same_bits(y, y0)
        same_bits(w, w0)
    dy = f32(rng, *y0.shape)
    dx0 = ops._max_pool2d_window_backward(dy, w0, base.shape, 3, stride=2, padding=1)
    same_bits(ops._max_pool2d_window_backward(dy.astype(np.float64), np.asfortranarray(w0), list(base.shape), 3,
                                              stride=2, padding=1), dx0)


# --------------------------------------------------------------- bad input

def test_bad_x_and_window_arguments():
    for fn in (ops._max_pool2d_inference, ops._max_pool2d_window):
        with pytest.raises(TypeError, match="x"):
            fn(np.ones((1, 4, 4, 1), dtype=bool))
        with pytest.raises(TypeError, match="x"):
            fn("abc")
        with pytest.raises(ValueError, match="x"):
            fn(np.ones((4, 4, 1), np.float32))
        with pytest.raises(ValueError, match="x"):
            fn(np.ones((1, 0, 4, 1), np.float32))
        x = np.ones((1, 6, 5, 2), np.float32)
        with pytest.raises(ValueError, match="padding"):
            fn(x, 2, padding=2)
        with pytest.raises(ValueError, match="pool"):
            fn(x, 7)
        with pytest.raises(ValueError, match="stride"):
            fn(x, 2, stride=0)
        with pytest.raises(TypeError, match="pool"):
            fn(x, 2.5)
    # window offsets are uint8: at most 256 elements per window
    x = np.ones((1, 20, 20, 1), np.float32)
    with pytest.raises(ValueError, match="256"):
        ops._max_pool2d_window(x, (16, 17))
    ops._max_pool2d_inference(x, (16, 17))   # y only: any window


def test_window_backward_bad_win(rng):
    x = f32(rng, 2, 4, 4, 3)
    y, win = ops._max_pool2d_window(x, 2)
    dy = f32(rng, *y.shape)
    for bad in (4, 255):                      # >= kh*kw
        w = win.copy()
        w[1, 1, 0, 2] = bad
        with pytest.raises(ValueError, match=f"win.*got {bad} at flat position {w.size - 4}"):
            ops._max_pool2d_window_backward(dy, w, x.shape, 2)
    # an offset inside the window that points at padding (row -1 of window (0, 0))
    y, win = ops._max_pool2d_window(x, 3, stride=1, padding=1)
    dy = f32(rng, *y.shape)
    w = win.copy()
    w[0, 0, 0, 0] = 0
    with pytest.raises(ValueError, match="win.*padding"):
        ops._max_pool2d_window_backward(dy, w, x.shape, 3, stride=1, padding=1)
    w = win.copy()
    w[1, 3, 3, 2] = 8                         # bottom-right of the last window: padding
    with pytest.raises(ValueError, match="win"):
        ops._max_pool2d_window_backward(dy, w, x.shape, 3, stride=1, padding=1)
    for w in (win.astype(np.int64), win.astype(np.float32), win.astype(bool), win.astype(np.int8)):
        with pytest.raises(TypeError, match="win.*uint8"):
            ops._max_pool2d_window_backward(dy, w, x.shape, 3, stride=1, padding=1)
    for w in (None, "abc", [0, 1], 3):
        with pytest.raises(TypeError, match="win"):
            ops._max_pool2d_window_backward(dy, w, x.shape, 3, stride=1, padding=1)
    with pytest.raises(ValueError, match="win"):
        ops._max_pool2d_window_backward(dy, win[:, :2], x.shape, 3, stride=1, padding=1)


def test_window_backward_bad_dy_and_geometry(rng):
    x = f32(rng, 2, 4, 4, 3)
    y, win = ops._max_pool2d_window(x, 2)
    dy = f32(rng, *y.shape)
    with pytest.raises(ValueError, match="dy"):
        ops._max_pool2d_window_backward(dy, win, x.shape, 2, stride=1)   # dy should be (2, 3, 3, 3)
    with pytest.raises(ValueError, match="dy"):
        ops._max_pool2d_window_backward(dy.reshape(2, 4, 3), win, x.shape, 2)
    with pytest.raises(TypeError, match="dy"):
        ops._max_pool2d_window_backward(dy.astype(np.complex64), win, x.shape, 2)
    with pytest.raises(ValueError, match="x_shape"):
        ops._max_pool2d_window_backward(dy, win, (2, 4, 4), 2)
    with pytest.raises(ValueError, match="x_shape"):
        ops._max_pool2d_window_backward(dy, win, (2, 0, 4, 3), 2)
    with pytest.raises(TypeError, match="x_shape"):
        ops._max_pool2d_window_backward(dy, win, 96, 2)
    with pytest.raises(ValueError, match="padding"):
        ops._max_pool2d_window_backward(dy, win, x.shape, 2, padding=2)
    with pytest.raises(ValueError, match="pool"):
        ops._max_pool2d_window_backward(dy, win, x.shape, 5)
    with pytest.raises(ValueError, match="256"):
        ops._max_pool2d_window_backward(dy, win, (2, 40, 40, 3), (17, 16), stride=(19, 16))
    with pytest.raises((MemoryError, ValueError)):
        ops._max_pool2d_window_backward(dy, win, (2, 2**40, 2**40, 3), 2)


# ------------------------------------------------------------------ the layer

def _old_layer_path(x, layer):
    """What MaxPooling2D computed before the private forms: the public op with int64
    indices (explicit -inf padding for asymmetric 'same'), then its backward."""
    t, b, l, r = layer._pads
    if layer._kernel_pad is not None:
        xin, pad = x, layer._kernel_pad
    else:
        xin, pad = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=-np.inf), (0, 0)
    y, idx = ops.max_pool2d(xin, layer.pool_size, stride=layer.strides, padding=pad)

    def backward(dy):
        dx = ops.max_pool2d_backward(dy, idx, xin.shape)
        if layer._kernel_pad is not None:
            return dx
        return np.ascontiguousarray(dx[:, t:dx.shape[1] - b, l:dx.shape[2] - r, :])
    return y, backward


@pytest.mark.parametrize("pool,strides,padding,hw", [
    (2, None, "valid", (28, 28)), (2, None, "valid", (7, 9)), (2, 2, "same", (7, 9)),
    (3, 2, "same", (11, 13)), (3, 1, "same", (6, 7)), ((2, 3), (1, 2), "valid", (6, 7)),
    ((2, 4), 2, "same", (5, 9)), ((17, 16), 1, "valid", (18, 17)),   # 272 elements: int64 path
])
def test_layer_training_and_inference_bitwise_equal_to_the_flat_index_path(pool, strides, padding, hw, rng):
    C = 5
    layer = layers.MaxPool2D(pool, strides=strides, padding=padding)
    layer.build(hw + (C,))
    x = rng.integers(-3, 3, size=(4,) + hw + (C,)).astype(np.float32)   # many ties
    x[0, 0, 0, :] = np.nan
    y_old, backward_old = _old_layer_path(x, layer)
    y_pred = layer.forward(x, training=False)
    y_train = layer.forward(x, training=True)
    same_bits(y_pred, y_old)
    same_bits(y_train, y_old)
    dy = f32(rng, *y_old.shape)
    dy[0, 0, 0, 0] = -0.0
    same_bits(layer.backward(dy), backward_old(dy))
    assert layer.backward(dy, need_dx=False) is None
    if layer.pool_size[0] * layer.pool_size[1] <= 256:
        assert layer._win is not None and layer._win.dtype == np.uint8 and layer._idx is None
    else:
        assert layer._idx is not None and layer._win is None


def test_model_predict_and_fit_use_the_layer_forms(rng, monkeypatch):
    calls = []
    for name in ("_max_pool2d_inference", "_max_pool2d_window", "_max_pool2d_window_backward"):
        real = getattr(ops, name)
        monkeypatch.setattr(ops, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
                               layers.MaxPool2D(2), layers.Flatten(), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = f32(rng, 6, 8, 8, 1)
    yl = np.arange(6) % 3
    model.predict(x, verbose=0)
    assert calls == ["_max_pool2d_inference"]
    calls.clear()
    model.fit(x, yl, batch_size=6, epochs=1, verbose=0, shuffle=False)
    assert calls == ["_max_pool2d_window", "_max_pool2d_window_backward"]


# ------------------------------------------------------------------ every ISA

_ISA_SCRIPT = """
import hashlib, sys
import numpy as np
import fastnn
from fastnn import ops
assert fastnn.build_info()['isa'].startswith(sys.argv[1]), fastnn.build_info()
rs = np.random.default_rng(3)
h = hashlib.sha256()
for shape, k, st, p in [((3, 9, 11, 37), 2, None, 0), ((2, 8, 8, 16), 2, None, 0), ((2, 9, 7, 5), 3, 1, 1),
                        ((2, 7, 6, 19), (2, 3), (2, 1), (1, 1))]:
    x = rs.integers(-3, 3, size=shape).astype(np.float32)
    x[0, 0, 0, :] = np.nan
    kw = dict(stride=st, padding=p)
    y, idx = ops.max_pool2d(x, k, **kw)
    _, win = ops._max_pool2d_window(x, k, **kw)
    dy = rs.standard_normal(y.shape).astype(np.float32)
    for a in (y, idx, win, ops._max_pool2d_inference(x, k, **kw), ops.max_pool2d_backward(dy, idx, x.shape),
              ops._max_pool2d_window_backward(dy, win, x.shape, k, **kw)):
        h.update(np.ascontiguousarray(a).tobytes())
print(h.hexdigest())
"""


def test_every_isa_gives_the_same_bits():
    """The max loops are compiled per ISA (pool_max_impl.hpp); they only compare and
    select, so generic, AVX2 and AVX-512 must agree bitwise (checked in subprocesses)."""
    import os
    import subprocess
    import sys
    best = fastnn.build_info()["isa"]   # 'generic', 'avx2+fma' or 'avx512'
    isas = ["generic"] + (["avx2"] if best != "generic" else []) + (["avx512"] if best == "avx512" else [])
    digests = {}
    for isa in isas:
        res = subprocess.run([sys.executable, "-c", _ISA_SCRIPT, isa], env=dict(os.environ, FASTNN_ISA=isa),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        digests[isa] = res.stdout.strip()
    assert len(set(digests.values())) == 1, digests
