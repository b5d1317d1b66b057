"""Activations, softmax and dropout: fastnn.ops vs float64 references, finite
differences, PyTorch, bad input, NaN handling and thread-count determinism."""
import numpy as np
import pytest

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads
from fastnn import ops

UNARY = ["relu", "sigmoid", "tanh"]
SHAPES = [(), (1,), (7,), (0,), (0, 5), (1, 1), (3, 5), (2, 3, 4, 5), (4, 1, 3, 2), (1, 33)]
BAD_DTYPES = [np.bool_, np.complex64, object]


def _away_from_zero(rs, *shape):
    """Values with |x| >= 0.1 (finite differences of relu need no kink nearby)."""
    x = rs.standard_normal(shape)
    return (np.sign(x) * (0.1 + np.abs(x))).astype(np.float32)


# ---- forward / backward vs float64 references -------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_reference(name, shape, rng):
    x = f32(rng, *shape, scale=3.0)
    y = getattr(ops, name)(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    compare(y, getattr(ref, name)(x), name=name)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_backward_matches_reference(name, shape, rng):
    x = f32(rng, *shape, scale=3.0)
    dy = f32(rng, *shape)
    dx = getattr(ops, name + "_backward")(dy, x)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    compare(dx, getattr(ref, name + "_backward")(dy, x), name=name + "_backward")


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_unary_elementwise_accuracy_over_wide_range(name):
    # Element-wise relative accuracy (not just relative to the largest output):
    # tiny and huge inputs, both signs, including the saturated tails.
    mags = np.concatenate([np.logspace(-30, 2.05, 4001), np.linspace(0, 110, 4001)])
    x = np.concatenate([mags, -mags]).astype(np.float32)
    y = getattr(ops, name)(x).astype(np.float64)
    r = getattr(ref, name)(x)
    assert np.all(np.isfinite(y)), f"{name} produced non-finite values"
    # a few float32 ulps; kernels run with flush-to-zero, so results below the smallest
    # normal float32 (e.g. sigmoid(-90)) come back as 0 (README "Denormals")
    assert np.all(np.abs(y - r) <= 6e-7 * np.abs(r) + np.finfo(np.float32).tiny)
    tiny = np.abs(r) < np.finfo(np.float32).tiny
    assert np.all(y[tiny] == 0.0) and np.all(np.abs(y[~tiny] - r[~tiny]) <= 6e-7 * np.abs(r[~tiny]))


def test_sigmoid_extremes_do_not_overflow():
    x = np.array([-1e30, -1e4, -200, -88.5, 88.5, 200, 1e4, 1e30, -np.inf, np.inf], np.float32)
    y = ops.sigmoid(x)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_array_equal(y[[4, 5, 6, 7, 9]], 1.0)
    np.testing.assert_array_equal(y[[0, 1, 2, 8]], 0.0)


def test_tanh_saturates_and_keeps_sign():
    x = np.array([-np.inf, -50.0, 50.0, np.inf, -0.0, 0.0, 1e-20, -1e-20], np.float32)
    y = ops.tanh(x)
    np.testing.assert_array_equal(y[:4], [-1.0, -1.0, 1.0, 1.0])
    assert np.signbit(y[4]) and not np.signbit(y[5])
    np.testing.assert_array_equal(y[6:], x[6:])


@pytest.mark.parametrize("name", UNARY)
def test_unary_backward_finite_differences(name, rng):
    x = _away_from_zero(rng, 3, 7)
    dy = f32(rng, 3, 7)
    f = getattr(ops, name)
    dx = getattr(ops, name + "_backward")(dy, x)
    fd_check(lambda v: f(v.astype(np.float32)), x, dy, dx, eps=1e-2, name=name)


# ---- softmax -----------------------------------------------------------------

SOFTMAX_CASES = [((7,), 0), ((7,), -1), ((1, 1), -1), ((3, 5), 0), ((3, 5), 1), ((3, 5), -2),
                 ((0, 4), -1), ((0, 4), 0), ((4, 300), -1), ((300, 3), 0)]
SOFTMAX_CASES += [((2, 3, 4, 5), a) for a in range(-4, 4)]
SOFTMAX_CASES += [((3, 1, 260, 2), 2), ((2, 5, 3, 270), 1)]  # inner > one column block


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_matches_reference(shape, axis, rng):
    x = f32(rng, *shape, scale=4.0)
    y = ops.softmax(x, axis=axis)
    assert y.dtype == np.float32 and y.shape == x.shape
    if y.size:
        compare(y, ref.softmax(x, axis=axis), name="softmax")
        np.testing.assert_allclose(np.sum(y.astype(np.float64), axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_backward_matches_reference(shape, axis, rng):
    y = ops.softmax(f32(rng, *shape), axis=axis)
    dy = f32(rng, *shape)
    dx = ops.softmax_backward(dy, y, axis=axis)
    assert dx.dtype == np.float32 and dx.shape == y.shape
    compare(dx, ref.softmax_backward(dy, y, axis=axis), name="softmax_backward")


def test_softmax_default_axis_is_last(rng):
    x = f32(rng, 3, 4, 5)
    same_bits(ops.softmax(x), ops.softmax(x, axis=2))
    dy = f32(rng, 3, 4, 5)
    y = ops.softmax(x)
    same_bits(ops.softmax_backward(dy, y), ops.softmax_backward(dy, y, axis=-1))


@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((4, 6), 0), ((2, 3, 4), 1)])
def test_softmax_backward_finite_differences(shape, axis, rng):
    x = f32(rng, *shape)
    dy = f32(rng, *shape)
    dx = ops.softmax_backward(dy, ops.softmax(x, axis=axis), axis=axis)
    fd_check(lambda v: ops.softmax(v.astype(np.float32), axis=axis), x, dy, dx, eps=1e-2,
             name="softmax")


def test_softmax_is_stable_for_large_logits():
    x = np.array([[1000.0, 1000.0, -1000.0], [-1e30, -1e30, -1e30], [3e38, 0.0, -3e38]],
                 np.float32)
    y = ops.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[0], [0.5, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(y[2], [1.0, 0.0, 0.0], atol=1e-7)


def test_softmax_nan_stays_in_its_row():
    x = np.zeros((3, 4), np.float32)
    x[1, 2] = np.nan
    y = ops.softmax(x)
    assert np.all(np.isnan(y[1]))
    np.testing.assert_allclose(y[[0, 2]], 0.25, rtol=1e-6)
    y0 = ops.softmax(x, axis=0)
    assert np.all(np.isnan(y0[:, 2]))
    np.testing.assert_allclose(y0[:, [0, 1, 3]], 1 / 3, rtol=1e-6)


def test_nan_and_inf_pass_through_unary():
    x = np.array([np.nan, np.inf, -np.inf, 1.0, -1.0], np.float32)
    r = ops.relu(x)
    assert np.isnan(r[0]) and r[1] == np.inf and r[2] == 0 and r[3] == 1 and r[4] == 0
    for name in ["sigmoid", "tanh"]:
        y = getattr(ops, name)(x)
        assert np.isnan(y[0]) and np.all(np.isfinite(y[1:])), name
    dy = np.ones(5, np.float32)
    for name in ["sigmoid", "tanh"]:
        dx = getattr(ops, name + "_backward")(dy, x)
        assert np.isnan(dx[0]) and np.all(dx[1:3] == 0), name
    dy_nan = np.full(5, np.nan, np.float32)
    assert np.all(np.isnan(ops.sigmoid_backward(dy_nan, x)))


def test_inputs_are_not_modified_and_any_layout_is_accepted(rng):
    base = f32(rng, 6, 8)
    x = base.copy()
    for name in UNARY + ["softmax"]:
        getattr(ops, name)(x)
    same_bits(x, base)
    # float64, Fortran-ordered, strided, read-only and integer inputs are converted once
    x64 = base.astype(np.float64)
    xf = np.asfortranarray(base)
    xs = np.repeat(base, 2, axis=1)[:, ::2]
    xr = base.copy()
    xr.setflags(write=False)
    for name in UNARY + ["softmax"]:
        f = getattr(ops, name)
        expected = f(base)
        for variant in (x64, xf, xs, xr):
            compare(f(variant), expected.astype(np.float64), rtol=1e-6, name=name)
    compare(ops.relu([[-1, 2], [3, -4]]), np.array([[0.0, 2.0], [3.0, 0.0]]))
    dy = f32(rng, 8, 6).T  # non-contiguous dy
    compare(ops.tanh_backward(dy, base), ref.tanh_backward(dy, base))


# ---- PyTorch cross-checks ----------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("shape", [(5,), (4, 7), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", UNARY)
def test_unary_against_torch(name, shape, rng):
    torch = pytest.importorskip("torch")
    x = f32(rng, *shape, scale=3.0)
    dy = f32(rng, *shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt) if name == "relu" else getattr(torch, name)(xt)
    yt.backward(torch.tensor(dy))
    compare(getattr(ops, name)(x), yt.detach().numpy().astype(np.float64), name=name)
    compare(getattr(ops, name + "_backward")(dy, x), xt.grad.numpy().astype(np.float64),
            name=name + "_backward")


@pytest.mark.torch
def test_relu_nan_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, -1.0, 0.0, 2.0], np.float32)
    dy = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.relu(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(ops.relu(x), yt.detach().numpy())
    np.testing.assert_array_equal(ops.relu_backward(dy, x), xt.grad.numpy())


@pytest.mark.torch
@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((4, 7), 0), ((2, 3, 4, 5), 1),
                                        ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 0)])
def test_softmax_against_torch(shape, axis, rng):
    torch = pytest.importorskip("torch")
    x = f32(rng, *shape, scale=3.0)
    dy = f32(rng, *shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.softmax(xt, dim=axis)
    yt.backward(torch.tensor(dy))
    y = ops.softmax(x, axis=axis)
    compare(y, yt.detach().numpy().astype(np.float64), name="softmax")
    compare(ops.softmax_backward(dy, y, axis=axis), xt.grad.numpy().astype(np.float64),
            name="softmax_backward")


# ---- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("name", UNARY + ["softmax"])
def test_forward_bad_dtype(name, dtype):
    x = np.zeros((2, 3), dtype=dtype)
    with pytest.raises(TypeError, match="x"):
        getattr(ops, name)(x)


@pytest.mark.parametrize("name", UNARY)
def test_backward_bad_dtype_and_shape(name):
    f = getattr(ops, name + "_backward")
    ok = np.zeros((2, 3), np.float32)
    for dtype in BAD_DTYPES:
        with pytest.raises(TypeError, match="dy"):
            f(np.zeros((2, 3), dtype=dtype), ok)
        with pytest.raises(TypeError, match="x"):
            f(ok, np.zeros((2, 3), dtype=dtype))
    for bad in [np.zeros((3, 2), np.float32), np.zeros((2, 3, 1), np.float32),
                np.zeros(6, np.float32), np.zeros((0, 3), np.float32)]:
        with pytest.raises(ValueError, match="dy"):
            f(bad, ok)
    with pytest.raises(TypeError):
        f("abc", ok)
    with pytest.raises(TypeError):
        f(None, ok)


def test_softmax_bad_axis():
    x = np.zeros((2, 3), np.float32)
    for axis in [2, -3, 100]:
        with pytest.raises(ValueError, match="axis"):
            ops.softmax(x, axis=axis)
        with pytest.raises(ValueError, match="axis"):
            ops.softmax_backward(x, x, axis=axis)
    with pytest.raises(ValueError, match="axis"):
        ops.softmax(np.float32(1.0))  # a 0-D array has no axis
    for axis in [1.0, "0", None, True]:
        with pytest.raises(TypeError, match="axis"):
            ops.softmax(x, axis=axis)
    compare(ops.softmax(x, axis=np.int64(0)), ref.softmax(x, axis=0))


def test_softmax_backward_bad_shapes():
    y = np.full((2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="dy"):
        ops.softmax_backward(np.zeros((3, 2), np.float32), y)
    with pytest.raises(TypeError, match="y"):
        ops.softmax_backward(y, y.astype(np.complex64))


# ---- dropout -----------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9])
def test_dropout_keep_fraction_and_expected_value(rate):
    n = 100_000
    x = np.ones((200, 500), np.float32)
    y, mask = ops.dropout(x, rate, 12345)
    assert mask.dtype == np.uint8 and mask.shape == x.shape and y.shape == x.shape
    assert set(np.unique(mask)) <= {0, 1}
    kept = int(mask.sum())
    sigma = np.sqrt(n * rate * (1 - rate))
    assert abs(kept - n * (1 - rate)) <= 5 * sigma, (kept, n * (1 - rate))
    # E[y] = x: mean(y) = kept / (n (1 - rate)) with sd sqrt(rate / ((1 - rate) n))
    assert abs(float(y.astype(np.float64).mean()) - 1.0) <= 5 * np.sqrt(rate / ((1 - rate) * n))
    # no visible structure: both halves, every row block and even/odd elements agree
    flat = mask.reshape(-1)
    for part in (flat[: n // 2], flat[n // 2:], flat[0::2], flat[1::2], mask[:, :7].reshape(-1)):
        m = part.size
        assert abs(int(part.sum()) - m * (1 - rate)) <= 5 * np.sqrt(m * rate * (1 - rate)) + 1


@pytest.mark.parametrize("shape", [(0, 5), (1,), (9,), (3, 4), (2, 3, 4, 5), ()])
def test_dropout_matches_reference_given_its_mask(shape, rng):
    x = f32(rng, *shape)
    y, mask = ops.dropout(x, 0.3, 7)
    assert y.dtype == np.float32 and y.shape == x.shape == mask.shape
    compare(y, ref.dropout_apply(x, mask, 0.3), name="dropout")
    dy = f32(rng, *shape)
    compare(ops.dropout_backward(dy, mask, 0.3), ref.dropout_apply(dy, mask, 0.3),
            name="dropout_backward")


def test_dropout_seeds():
    x = np.ones((50, 400), np.float32)
    y1, m1 = ops.dropout(x, 0.5, 1)
    y2, m2 = ops.dropout(x, 0.5, 1)
    same_bits(y1, y2)
    same_bits(m1, m2)
    n = m1.size
    for seed in [2, 1 + 2**32, 2**63, 2**64 - 1, np.uint64(3)]:
        _, m3 = ops.dropout(x, 0.5, seed)
        agree = float(np.mean(m1 == m3))
        assert abs(agree - 0.5) <= 5 * 0.5 / np.sqrt(n), (seed, agree)
    # different rows of one call are different draws too
    assert not np.array_equal(m1[0], m1[1])


@pytest.mark.parametrize("shape", [(6, 5, 7), (6,), (6, 40)])
def test_dropout_sample_offset_consistency(shape, rng):
    x = f32(rng, *shape)
    y, mask = ops.dropout(x, 0.4, 99)
    for lo, hi in [(2, 4), (0, 1), (5, 6), (3, 6)]:
        ys, ms = ops.dropout(x[lo:hi], 0.4, 99, sample_offset=lo)
        same_bits(ys, y[lo:hi])
        same_bits(ms, mask[lo:hi])
    y0, m0 = ops.dropout(x, 0.4, 99, sample_offset=0)
    same_bits(y0, y)
    _, m1 = ops.dropout(x, 0.4, 99, sample_offset=1)
    same_bits(m1[:-1], mask[1:])


def test_dropout_rate_zero_is_identity(rng):
    x = f32(rng, 4, 9)
    x[0, 0] = np.nan
    x[1, 1] = -0.0
    y, mask = ops.dropout(x, 0.0, 5)
    same_bits(y, x)
    assert np.all(mask == 1)
    same_bits(ops.dropout_backward(x, mask, 0.0), x)


def test_dropout_nan_passes_through():
    x = np.full((20, 30), np.nan, np.float32)
    y, mask = ops.dropout(x, 0.5, 3)
    assert 0 < mask.sum() < mask.size
    assert np.all(np.isnan(y))  # x * mask / (1 - rate): 0 * NaN is NaN, as in PyTorch
    xi = np.ones((20, 30), np.float32)
    xi[0] = np.inf
    yi, mi = ops.dropout(xi, 0.5, 3)
    assert np.all(yi[0][mi[0] == 1] == np.inf) and np.all(np.isnan(yi[0][mi[0] == 0]))


def test_dropout_backward_finite_differences(rng):
    x = f32(rng, 5, 8)
    dy = f32(rng, 5, 8)
    _, mask = ops.dropout(x, 0.35, 11)
    dx = ops.dropout_backward(dy, mask, 0.35)
    fd_check(lambda v: ops.dropout(v.astype(np.float32), 0.35, 11)[0], x, dy, dx, eps=1e-2,
             name="dropout")


@pytest.mark.parametrize("mask_dtype", [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint16])
def test_dropout_backward_mask_dtypes(mask_dtype, rng):
    dy = f32(rng, 6, 7)
    m = (rng.random((6, 7)) < 0.5)
    dx = ops.dropout_backward(dy, m.astype(mask_dtype), 0.5)
    compare(dx, ref.dropout_apply(dy, m, 0.5))
    # a non-contiguous mask
    big = np.zeros((6, 14), mask_dtype)
    big[:, ::2] = m
    compare(ops.dropout_backward(dy, big[:, ::2], 0.5), ref.dropout_apply(dy, m, 0.5))


def test_dropout_bad_input():
    x = np.ones((3, 4), np.float32)
    for rate in [-0.1, 1.0, 1.5, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="rate"):
            ops.dropout(x, rate, 0)
        with pytest.raises(ValueError, match="rate"):
            ops.dropout_backward(x, np.ones((3, 4), np.uint8), rate)
    for rate in ["0.5", None, [0.5]]:
        with pytest.raises(TypeError, match="rate"):
            ops.dropout(x, rate, 0)
    for seed in [-1, 2**64, -(2**70)]:
        with pytest.raises(ValueError, match="seed"):
            ops.dropout(x, 0.5, seed)
    for seed in [1.0, "1", None, True]:
        with pytest.raises(TypeError, match="seed"):
            ops.dropout(x, 0.5, seed)
    with pytest.raises(ValueError, match="sample_offset"):
        ops.dropout(x, 0.5, 0, sample_offset=-1)
    with pytest.raises(TypeError, match="sample_offset"):
        ops.dropout(x, 0.5, 0, sample_offset=1.5)
    with pytest.raises(TypeError):
        ops.dropout(x, 0.5, 0, 2)  # sample_offset is keyword-only
    for dtype in BAD_DTYPES:
        with pytest.raises(TypeError, match="x"):
            ops.dropout(np.zeros((2, 2), dtype), 0.5, 0)
    mask = np.ones((3, 4), np.uint8)
    with pytest.raises(ValueError, match="mask"):
        ops.dropout_backward(x, np.ones((4, 3), np.uint8), 0.5)
    for bad in [np.ones((3, 4), np.float32), np.ones((3, 4), np.complex64),
                np.ones((3, 4), object), None, "mask"]:
        with pytest.raises(TypeError, match="mask"):
            ops.dropout_backward(x, bad, 0.5)
    with pytest.raises(TypeError, match="dy"):
        ops.dropout_backward(x.astype(bool), mask, 0.5)


# ---- threads -----------------------------------------------------------------

DET_CASES = [
    ("relu", lambda x, dy: ops.relu(x)),
    ("sigmoid", lambda x, dy: ops.sigmoid(x)),
    ("tanh", lambda x, dy: ops.tanh(x)),
    ("relu_backward", lambda x, dy: ops.relu_backward(dy, x)),
    ("sigmoid_backward", lambda x, dy: ops.sigmoid_backward(dy, x)),
    ("tanh_backward", lambda x, dy: ops.tanh_backward(dy, x)),
    ("softmax_last", lambda x, dy: ops.softmax(x)),
    ("softmax_first", lambda x, dy: ops.softmax(x, axis=0)),
    ("softmax_middle", lambda x, dy: ops.softmax(x.reshape(20, 300, 25), axis=1)),
    ("softmax_backward_last", lambda x, dy: ops.softmax_backward(dy, ops.softmax(x))),
    ("softmax_backward_first", lambda x, dy: ops.softmax_backward(dy, ops.softmax(x, 0), 0)),
    ("dropout", lambda x, dy: np.concatenate([a.reshape(-1).view(np.uint8)
                                              for a in ops.dropout(x, 0.3, 42)])),
    ("dropout_backward", lambda x, dy: ops.dropout_backward(dy, (x > 0).astype(np.uint8), 0.3)),
]


@pytest.mark.parametrize("name,fn", DET_CASES, ids=[c[0] for c in DET_CASES])
def test_one_and_two_threads_bitwise_identical(name, fn):
    rs = np.random.default_rng(7)
    x = f32(rs, 500, 300, scale=3.0)  # 1.5e5 elements: split over several tasks
    dy = f32(rs, 500, 300)
    with threads(1):
        a = fn(x, dy)
    with threads(2):
        b = fn(x, dy)
    same_bits(a, b, name)
