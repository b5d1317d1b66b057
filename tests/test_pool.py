"""Tests of the pooling family: max_pool2d(+backward), avg_pool2d(+backward)."""
import numpy as np
import pytest

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads

from fastnn import ops

# (x shape, pool, stride, padding)
CASES = [
    ((1, 4, 4, 1), 2, None, 0),
    ((2, 7, 5, 3), 2, None, 0),
    ((2, 7, 5, 3), 3, 2, 1),
    ((1, 7, 5, 4), (2, 3), 1, 0),
    ((2, 7, 5, 2), (2, 3), (2, 1), (1, 0)),
    ((3, 6, 6, 5), 3, 1, 1),
    ((1, 9, 8, 17), (3, 2), 2, (1, 1)),
    ((2, 5, 5, 1), 5, 1, 2),           # window = the whole padded input at the corners
    ((1, 5, 7, 3), 2, 3, 0),           # stride > pool: rows/cols no window covers
    ((1, 1, 1, 8), 1, None, 0),
    ((2, 8, 8, 33), 2, None, 0),       # C not a multiple of any vector width
    ((1, 6, 5, 2), (1, 3), (1, 2), (0, 1)),
    ((2, 5, 4, 3), (4, 1), (1, 1), (2, 0)),
    ((0, 5, 5, 3), 2, None, 0),        # empty batch
    ((0, 7, 5, 2), (2, 3), (2, 1), (1, 0)),
]
IDS = [f"{s}-k{k}-s{st}-p{p}" for s, k, st, p in CASES]


def _kw(stride, padding):
    kw = {}
    if stride is not None:
        kw["stride"] = stride
    if padding != 0:
        kw["padding"] = padding
    return kw


def _out_shape(shape, k, st, p):
    *_, P, Q = ref.pool_geometry(shape, k, st, p)
    return (shape[0], P, Q, shape[3])


# ---------------------------------------------------------------- max pooling

@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_max_pool2d_matches_reference(shape, k, st, p, rng):
    x = f32(rng, *shape)
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    y_ref, idx_ref = ref.max_pool2d(x, k, st, p)
    assert y.dtype == np.float32 and idx.dtype == np.int64
    assert y.shape == y_ref.shape and idx.shape == y_ref.shape
    compare(y, y_ref, name="y")
    np.testing.assert_array_equal(idx, idx_ref)
    # the value at idx is the output, exactly
    np.testing.assert_array_equal(x.reshape(-1)[idx], y)


@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_max_pool2d_backward_matches_reference(shape, k, st, p, rng):
    x = f32(rng, *shape)
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    dy = f32(rng, *y.shape)
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    compare(dx, ref.max_pool2d_backward(dy, idx, x.shape), name="dx")


def test_max_pool2d_defaults_and_keywords(rng):
    x = f32(rng, 2, 6, 6, 3)
    y, idx = ops.max_pool2d(x)  # pool=2, stride=pool, padding=0
    y_ref, idx_ref = ref.max_pool2d(x, 2)
    compare(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    y2, idx2 = ops.max_pool2d(x=x, pool=(2, 2), stride=(2, 2), padding=(0, 0))
    same_bits(y, y2)
    same_bits(idx, idx2)
    with pytest.raises(TypeError):
        ops.max_pool2d(x, 2, 2)  # stride is keyword-only


@pytest.mark.parametrize("shape,k,st,p", [((2, 6, 5, 3), 2, None, 0), ((1, 7, 7, 4), 3, 1, 1),
                                          ((2, 5, 6, 2), (2, 3), (1, 2), (1, 1))])
def test_max_pool2d_ties_pick_first_in_window(shape, k, st, p):
    # constant input: every element ties, so idx is the first real element of the window
    x = np.full(shape, 0.5, dtype=np.float32)
    N, H, W, C = shape
    kh, kw, sh, sw, ph, pw, P, Q = ref.pool_geometry(shape, k, st, p)
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    expect = np.empty((N, P, Q, C), dtype=np.int64)
    for n in range(N):
        for pp in range(P):
            for q in range(Q):
                h0, w0 = max(pp * sh - ph, 0), max(q * sw - pw, 0)
                for c in range(C):
                    expect[n, pp, q, c] = ((n * H + h0) * W + w0) * C + c
    np.testing.assert_array_equal(idx, expect)
    assert np.all(y == 0.5)


def test_max_pool2d_many_ties_matches_reference(rng):
    # small integers: many ties in every window, including with the padding (-inf)
    x = rng.integers(-2, 2, size=(3, 9, 7, 6)).astype(np.float32)
    for k, st, p in [(3, 1, 1), ((2, 3), (2, 1), (1, 1)), (2, None, 0)]:
        y, idx = ops.max_pool2d(x, k, **_kw(st, p))
        y_ref, idx_ref = ref.max_pool2d(x, k, st, p)
        np.testing.assert_array_equal(idx, idx_ref)
        np.testing.assert_array_equal(y, y_ref)


def test_max_pool2d_all_neg_inf_with_padding():
    # padding is -inf but never chosen: a window of real -inf picks its first real element
    x = np.full((1, 3, 3, 2), -np.inf, dtype=np.float32)
    y, idx = ops.max_pool2d(x, 3, stride=1, padding=1)
    y_ref, idx_ref = ref.max_pool2d(x, 3, 1, 1)
    assert np.all(np.isneginf(y))
    np.testing.assert_array_equal(idx, idx_ref)
    assert idx[0, 0, 0, 0] == 0 and idx[0, 2, 2, 1] == ((1 * 3) + 1) * 2 + 1


def test_max_pool2d_nan_and_inf_propagate(rng):
    x = f32(rng, 2, 6, 6, 3)
    x[0, 0, 1, 0] = np.nan
    x[0, 1, 0, 0] = np.nan           # second NaN in the same 2x2 window: idx -> first NaN
    x[1, 3, 3, 2] = np.nan
    x[1, 2, 2, 1] = np.inf
    x[0, 4, 4, 2] = -np.inf
    y, idx = ops.max_pool2d(x, 2)
    y_ref, idx_ref = ref.max_pool2d(x, 2)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))  # NaN == NaN here
    np.testing.assert_array_equal(idx, idx_ref)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == (0 * 6 + 1) * 3 + 0
    assert np.isnan(y[1, 1, 1, 2]) and y[1, 1, 1, 1] == np.inf
    # NaN also wins over a +inf that comes first in the window
    z = np.array([np.inf, np.nan, 1.0, np.inf], dtype=np.float32).reshape(1, 2, 2, 1)
    yz, iz = ops.max_pool2d(z, 2)
    assert np.isnan(yz[0, 0, 0, 0]) and iz[0, 0, 0, 0] == 1


def test_max_pool2d_backward_overlapping_windows_accumulate():
    # stride 1, pool 2 on an increasing ramp: interior maxima are chosen by several windows
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    y, idx = ops.max_pool2d(x, 2, stride=1)
    dy = np.ones_like(y)
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    compare(dx, ref.max_pool2d_backward(dy, idx, x.shape))
    assert dx.sum() == y.size  # every dy lands somewhere exactly once
    assert dx[0, 1, 1, 0] == 1 and dx[0, 3, 3, 0] == 1 and dx[0, 2, 2, 0] == 1


def test_max_pool2d_backward_cross_image_indices(rng):
    # idx values that point into another image are valid (in range): serial path
    x_shape = (3, 4, 4, 2)
    dy = f32(rng, 3, 2, 2, 2)
    idx = rng.integers(0, int(np.prod(x_shape)), size=dy.shape)
    idx[0, 0, 0, 0] = idx[2, 1, 1, 1] = 5  # repeated index across images accumulates
    dx = ops.max_pool2d_backward(dy, idx, x_shape)
    compare(dx, ref.max_pool2d_backward(dy, idx, x_shape))
    # any integer dtype is accepted
    same_bits(dx, ops.max_pool2d_backward(dy, idx.astype(np.int32), x_shape))
    same_bits(dx, ops.max_pool2d_backward(dy, idx.astype(np.uint16), list(x_shape)))
    same_bits(dx, ops.max_pool2d_backward(dy, idx, np.array(x_shape)))


def test_max_pool2d_backward_empty_batch():
    dx = ops.max_pool2d_backward(np.zeros((0, 2, 2, 3), np.float32),
                                 np.zeros((0, 2, 2, 3), np.int64), (0, 4, 4, 3))
    assert dx.shape == (0, 4, 4, 3) and dx.dtype == np.float32


def test_max_pool2d_backward_finite_differences(rng):
    # distinct values spaced well beyond the FD step so no argmax flips under perturbation
    shape = (2, 5, 6, 3)
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1).astype(np.float32)
    for k, st, p in [(2, None, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0))]:
        y, idx = ops.max_pool2d(x, k, **_kw(st, p))
        dy = f32(rng, *y.shape)
        dx = ops.max_pool2d_backward(dy, idx, x.shape)
        fd_check(lambda v: ops.max_pool2d(v, k, **_kw(st, p))[0], x, dy, dx,
                 eps=1e-2, n_coords=60, name=f"max_pool2d dx k={k} s={st} p={p}")


# ------------------------------------------------------------ average pooling

@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_avg_pool2d_matches_reference(shape, k, st, p, cip, rng):
    x = f32(rng, *shape)
    y = ops.avg_pool2d(x, k, count_include_pad=cip, **_kw(st, p))
    assert y.dtype == np.float32
    compare(y, ref.avg_pool2d(x, k, st, p, cip), name="y")


@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("shape,k,st,p", CASES, ids=IDS)
def test_avg_pool2d_backward_matches_reference(shape, k, st, p, cip, rng):
    dy = f32(rng, *_out_shape(shape, k, st, p))
    dx = ops.avg_pool2d_backward(dy, shape, k, count_include_pad=cip, **_kw(st, p))
    assert dx.dtype == np.float32 and dx.shape == shape
    compare(dx, ref.avg_pool2d_backward(dy, shape, k, st, p, cip), name="dx")


def test_avg_pool2d_count_include_pad_divisor():
    # ones with padding: interior windows average to 1 either way; at the corner of a
    # 3x3 window with padding 1 only 4 of 9 are real
    x = np.ones((1, 4, 4, 1), np.float32)
    y_excl = ops.avg_pool2d(x, 3, stride=1, padding=1)
    y_incl = ops.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)
    np.testing.assert_allclose(y_excl, 1.0, rtol=1e-6)
    assert abs(y_incl[0, 0, 0, 0] - 4 / 9) < 1e-6 and abs(y_incl[0, 0, 1, 0] - 6 / 9) < 1e-6
    assert abs(y_incl[0, 1, 1, 0] - 1.0) < 1e-6


@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("shape,k,st,p", [((2, 5, 6, 3), 2, None, 0), ((1, 7, 5, 2), 3, 2, 1),
                                          ((2, 6, 5, 2), (2, 3), (2, 1), (1, 0)),
                                          ((1, 5, 7, 2), 2, 3, 0)])
def test_avg_pool2d_backward_finite_differences(shape, k, st, p, cip, rng):
    x = f32(rng, *shape)
    dy = f32(rng, *_out_shape(shape, k, st, p))
    dx = ops.avg_pool2d_backward(dy, shape, k, count_include_pad=cip, **_kw(st, p))
    fd_check(lambda v: ops.avg_pool2d(v, k, count_include_pad=cip, **_kw(st, p)), x, dy, dx,
             n_coords=60, name="avg_pool2d dx")


def test_avg_pool2d_nan_inf_pass_through():
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 3, 3, 1] = np.inf
    y = ops.avg_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 1, 1, 1] == np.inf
    assert np.count_nonzero(~np.isfinite(y)) == 2


# ------------------------------------------------------------ input handling

@pytest.mark.parametrize("kind", ["float64", "int", "fortran", "strided", "readonly"])
def test_any_real_array_is_accepted(kind, rng):
    base = (rng.standard_normal((2, 6, 8, 3)) * 4).astype(np.float32)
    if kind == "int":
        base = np.round(base).astype(np.float32)
    if kind == "float64":
        x = base.astype(np.float64)
    elif kind == "int":
        x = base.astype(np.int32)
    elif kind == "fortran":
        x = np.asfortranarray(base)
    elif kind == "strided":
        big = np.zeros((2, 12, 8, 6), np.float32)
        big[:, ::2, :, ::2] = base
        x = big[:, ::2, :, ::2]
    else:
        x = base.copy()
        x.setflags(write=False)
    x_before = np.array(x, copy=True)
    y, idx = ops.max_pool2d(x, 3, stride=2, padding=1)
    y0, idx0 = ops.max_pool2d(base, 3, stride=2, padding=1)
    same_bits(y, y0)
    same_bits(idx, idx0)
    same_bits(ops.avg_pool2d(x, 2), ops.avg_pool2d(base, 2))
    dy = np.asfortranarray(f32(rng, *y.shape).astype(np.float64))
    same_bits(ops.max_pool2d_backward(dy, np.asfortranarray(idx), x.shape),
              ops.max_pool2d_backward(dy.astype(np.float32), idx, base.shape))
    same_bits(ops.avg_pool2d_backward(dy, x.shape, 3, stride=2, padding=1),
              ops.avg_pool2d_backward(np.ascontiguousarray(dy, np.float32), base.shape, 3,
                                      stride=2, padding=1))
    np.testing.assert_array_equal(x, x_before)  # inputs are never modified


def test_inputs_not_modified(rng):
    x = f32(rng, 2, 5, 5, 3)
    x0 = x.copy()
    y, idx = ops.max_pool2d(x, 2, stride=1, padding=1)
    dy = f32(rng, *y.shape)
    dy0, idx0 = dy.copy(), idx.copy()
    ops.max_pool2d_backward(dy, idx, x.shape)
    ops.avg_pool2d(x, 3, padding=1)
    ops.avg_pool2d_backward(dy, x.shape, 2, stride=1, padding=1)
    same_bits(x, x0)
    same_bits(dy, dy0)
    same_bits(idx, idx0)


# --------------------------------------------------------------- bad input

FWD = [ops.max_pool2d, ops.avg_pool2d]


@pytest.mark.parametrize("fn", FWD)
def test_bad_x(fn):
    with pytest.raises(TypeError, match="x"):
        fn(np.ones((1, 4, 4, 1), dtype=bool))
    with pytest.raises(TypeError, match="x"):
        fn(np.ones((1, 4, 4, 1), dtype=np.complex64))
    with pytest.raises(TypeError, match="x"):
        fn(np.empty((1, 4, 4, 1), dtype=object))
    with pytest.raises(TypeError, match="x"):
        fn("abc")
    with pytest.raises(ValueError, match="x"):
        fn(np.ones((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="x"):
        fn(np.ones((1, 1, 4, 4, 1), np.float32))
    for shape in [(1, 0, 4, 1), (1, 4, 0, 1), (1, 4, 4, 0)]:
        with pytest.raises(ValueError, match="x"):
            fn(np.ones(shape, np.float32))


@pytest.mark.parametrize("fn", FWD)
def test_bad_window_arguments(fn):
    x = np.ones((1, 6, 5, 2), np.float32)
    with pytest.raises(ValueError, match="padding"):
        fn(x, 2, padding=2)                # > pool//2 = 1
    with pytest.raises(ValueError, match="padding"):
        fn(x, 3, padding=2)                # > pool//2 = 1
    with pytest.raises(ValueError, match="padding"):
        fn(x, (2, 3), padding=(0, 2))      # along w only
    with pytest.raises(ValueError, match="padding"):
        fn(x, (1, 3), padding=(1, 0))      # pool 1 admits no padding
    with pytest.raises(ValueError, match="padding"):
        fn(x, 2, padding=-1)
    with pytest.raises(ValueError, match="pool"):
        fn(x, 7)                           # larger than H = 6
    with pytest.raises(ValueError, match="pool"):
        fn(x, (2, 6))                      # larger than W = 5
    with pytest.raises(ValueError, match="pool"):
        fn(x, (9, 2), padding=(1, 0))      # larger than the padded H = 8
    with pytest.raises(ValueError, match="pool"):
        fn(x, 0)
    with pytest.raises(ValueError, match="stride"):
        fn(x, 2, stride=0)
    with pytest.raises(ValueError, match="stride"):
        fn(x, 2, stride=(1, -1))
    with pytest.raises(ValueError, match="pool"):
        fn(x, (2, 2, 2))
    with pytest.raises(TypeError, match="pool"):
        fn(x, 2.5)
    # boundary cases that are valid: pool = padded size, padding = pool//2
    fn(x, (8, 7), padding=(4, 3))
    fn(x, (10, 9), padding=(2, 2))
    fn(x, (6, 5))


def test_pool_fits_only_with_padding():
    x = np.ones((1, 3, 3, 1), np.float32)
    y, _ = ops.max_pool2d(x, 5, padding=2)  # 5 <= 3 + 4
    assert y.shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="pool"):
        ops.max_pool2d(x, 5, padding=0)


def test_max_pool2d_backward_bad_idx(rng):
    x = f32(rng, 2, 4, 4, 3)
    y, idx = ops.max_pool2d(x, 2)
    dy = f32(rng, *y.shape)
    for bad in [-1, x.size, x.size + 100, np.iinfo(np.int64).max, np.iinfo(np.int64).min]:
        b = idx.copy()
        b[1, 1, 0, 2] = bad
        with pytest.raises(ValueError, match="idx"):
            ops.max_pool2d_backward(dy, b, x.shape)
    with pytest.raises(ValueError, match="idx"):
        ops.max_pool2d_backward(dy, idx.astype(np.uint64) + np.uint64(2**63), x.shape)
    with pytest.raises(ValueError, match="idx"):
        ops.max_pool2d_backward(dy, idx[:, :1], x.shape)          # shape differs from dy
    with pytest.raises(TypeError, match="idx"):
        ops.max_pool2d_backward(dy, idx.astype(np.float64), x.shape)
    with pytest.raises(TypeError, match="idx"):
        ops.max_pool2d_backward(dy, idx.astype(bool), x.shape)
    with pytest.raises(TypeError, match="idx"):
        ops.max_pool2d_backward(dy, None, x.shape)


def test_max_pool2d_backward_bad_dy_and_x_shape(rng):
    x = f32(rng, 2, 4, 4, 3)
    y, idx = ops.max_pool2d(x, 2)
    dy = f32(rng, *y.shape)
    with pytest.raises(ValueError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, (2, 4, 4))
    with pytest.raises(ValueError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, (2, 4, 4, 3, 1))
    with pytest.raises(ValueError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, (2, 0, 4, 3))
    with pytest.raises(ValueError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, (2, 4, -4, 3))
    with pytest.raises(TypeError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, 96)
    with pytest.raises(TypeError, match="x_shape"):
        ops.max_pool2d_backward(dy, idx, (2.0, 4, 4, 3))
    with pytest.raises(ValueError, match="dy"):
        ops.max_pool2d_backward(dy, idx, (3, 4, 4, 3))            # batch differs
    with pytest.raises(ValueError, match="dy"):
        ops.max_pool2d_backward(dy[..., :2], idx[..., :2], x.shape)  # channels differ
    with pytest.raises(ValueError, match="dy"):
        ops.max_pool2d_backward(dy.reshape(2, 4, 3), idx.reshape(2, 4, 3), x.shape)
    with pytest.raises(TypeError, match="dy"):
        ops.max_pool2d_backward(dy.astype(np.complex64), idx, x.shape)
    with pytest.raises((MemoryError, ValueError)):
        ops.max_pool2d_backward(dy, idx, (2, 2**40, 2**40, 3))


def test_avg_pool2d_backward_bad_input(rng):
    dy = f32(rng, 2, 2, 2, 3)
    ops.avg_pool2d_backward(dy, (2, 4, 4, 3), 2)  # valid
    with pytest.raises(ValueError, match="dy"):
        ops.avg_pool2d_backward(dy, (2, 5, 6, 3), 2)              # dy should be (2, 2, 3, 3)
    with pytest.raises(ValueError, match="dy"):
        ops.avg_pool2d_backward(dy, (2, 4, 4, 3), 2, stride=1)
    with pytest.raises(ValueError, match="dy"):
        ops.avg_pool2d_backward(dy.reshape(2, 4, 3), (2, 4, 4, 3), 2)
    with pytest.raises(ValueError, match="x_shape"):
        ops.avg_pool2d_backward(dy, (2, 4, 4), 2)
    with pytest.raises(ValueError, match="x_shape"):
        ops.avg_pool2d_backward(dy, (2, 4, 0, 3), 2)
    with pytest.raises(ValueError, match="padding"):
        ops.avg_pool2d_backward(dy, (2, 4, 4, 3), 2, padding=2)
    with pytest.raises(ValueError, match="pool"):
        ops.avg_pool2d_backward(dy, (2, 4, 4, 3), 5)
    with pytest.raises(TypeError, match="dy"):
        ops.avg_pool2d_backward(dy.astype(bool), (2, 4, 4, 3), 2)
    dx = ops.avg_pool2d_backward(np.zeros((0, 2, 2, 3), np.float32), (0, 4, 4, 3), 2)
    assert dx.shape == (0, 4, 4, 3)


# ------------------------------------------------------------- determinism

def test_thread_count_does_not_change_bits(rng):
    x = f32(rng, 5, 13, 11, 7)
    cases = [(3, 1, 1), ((2, 3), (2, 1), (1, 0)), (2, None, 0)]
    results = {}
    for n in (1, 2):
        with threads(n):
            out = []
            for k, st, p in cases:
                y, idx = ops.max_pool2d(x, k, **_kw(st, p))
                dy = f32(np.random.default_rng(7), *y.shape)
                out += [y, idx, ops.max_pool2d_backward(dy, idx, x.shape)]
                # cross-image indices take the serial path
                mixed = idx[::-1].copy()
                out.append(ops.max_pool2d_backward(dy, mixed, x.shape))
                for cip in (False, True):
                    out.append(ops.avg_pool2d(x, k, count_include_pad=cip, **_kw(st, p)))
                    out.append(ops.avg_pool2d_backward(dy, x.shape, k, count_include_pad=cip,
                                                       **_kw(st, p)))
            results[n] = out
    for a, b in zip(results[1], results[2]):
        same_bits(a, b)


# ----------------------------------------------------------------- PyTorch

TORCH_CASES = [
    ((2, 7, 5, 3), 2, None, 0),
    ((2, 7, 5, 3), 3, 2, 1),
    ((1, 7, 5, 4), (2, 3), 1, 0),
    ((2, 7, 5, 2), (2, 3), (2, 1), (1, 0)),
    ((3, 6, 6, 5), 3, 1, 1),
    ((1, 5, 7, 3), 2, 3, 0),
    ((2, 5, 5, 1), 5, 1, 2),
]


def _torch_args(k, st, p):
    return dict(kernel_size=k, stride=k if st is None else st, padding=p)


@pytest.mark.torch
@pytest.mark.parametrize("shape,k,st,p", TORCH_CASES)
def test_max_pool2d_against_torch(shape, k, st, p, rng):
    torch = pytest.importorskip("torch")
    x = f32(rng, *shape)
    y, idx = ops.max_pool2d(x, k, **_kw(st, p))
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    yt, it = torch.nn.functional.max_pool2d(xt, return_indices=True, **_torch_args(k, st, p))
    np.testing.assert_array_equal(y, yt.detach().permute(0, 2, 3, 1).numpy())
    # torch indices are per (n, c) plane: h*W + w; ours are flat NHWC
    N, H, W, C = shape
    plane = (idx // C) % (H * W)
    np.testing.assert_array_equal(plane, it.permute(0, 2, 3, 1).numpy())
    dy = f32(rng, *y.shape)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    np.testing.assert_allclose(dx, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("shape,k,st,p", TORCH_CASES)
def test_avg_pool2d_against_torch(shape, k, st, p, cip, rng):
    torch = pytest.importorskip("torch")
    x = f32(rng, *shape)
    y = ops.avg_pool2d(x, k, count_include_pad=cip, **_kw(st, p))
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    yt = torch.nn.functional.avg_pool2d(xt, count_include_pad=cip, **_torch_args(k, st, p))
    np.testing.assert_allclose(y, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)
    dy = f32(rng, *y.shape)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    dx = ops.avg_pool2d_backward(dy, shape, k, count_include_pad=cip, **_kw(st, p))
    np.testing.assert_allclose(dx, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-6)
