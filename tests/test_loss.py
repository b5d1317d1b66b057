"""Losses: softmax_cross_entropy, mse, mae vs float64 references, finite
differences of the loss value, PyTorch, bad input, NaN and thread determinism."""
import numpy as np
import pytest

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads
from fastnn import ops

CE_SHAPES = [(1, 1), (1, 10), (7, 3), (32, 10), (5, 1000), (0, 4), (3, 17)]
LABEL_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64]
EW_SHAPES = [(), (1,), (7,), (0,), (0, 3), (3, 5), (2, 3, 4, 5), (1, 1)]
BAD_DTYPES = [np.bool_, np.complex64, object]


def _prob_rows(rs, n, k):
    p = rs.random((n, k)) + 0.05
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _check_loss(loss, dgrad, expected, name):
    ref_loss, ref_grad = expected
    assert isinstance(loss, float), f"{name}: loss should be a Python float, got {type(loss)}"
    assert dgrad.dtype == np.float32
    assert abs(loss - ref_loss) <= 1e-5 * max(abs(ref_loss), 1e-3), (name, loss, ref_loss)
    compare(dgrad, ref_grad, name=name + " gradient")


# ---- softmax cross-entropy ----------------------------------------------------

@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", CE_SHAPES)
def test_cross_entropy_class_indices(shape, dtype, rng):
    n, k = shape
    logits = f32(rng, n, k, scale=3.0)
    labels = rng.integers(0, min(k, 127), size=n).astype(dtype)
    loss, d = ops.softmax_cross_entropy(logits, labels)
    assert d.shape == (n, k)
    _check_loss(loss, d, ref.softmax_cross_entropy(logits, labels), "cross_entropy")


@pytest.mark.parametrize("shape", CE_SHAPES)
def test_cross_entropy_probabilities_and_one_hot(shape, rng):
    n, k = shape
    logits = f32(rng, n, k, scale=3.0)
    t = _prob_rows(rng, n, k)
    loss, d = ops.softmax_cross_entropy(logits, t)
    _check_loss(loss, d, ref.softmax_cross_entropy(logits, t), "cross_entropy(prob)")
    labels = rng.integers(0, k, size=n)
    onehot = ref.onehot(labels, k)
    loss1, d1 = ops.softmax_cross_entropy(logits, onehot)  # float64 one-hot rows
    loss2, d2 = ops.softmax_cross_entropy(logits, labels)
    _check_loss(loss1, d1, ref.softmax_cross_entropy(logits, labels), "cross_entropy(onehot)")
    assert abs(loss1 - loss2) <= 1e-6 * max(abs(loss2), 1.0)
    compare(d1, d2.astype(np.float64), rtol=1e-6)


def test_cross_entropy_keras_column_labels(rng):
    logits = f32(rng, 6, 4)
    labels = rng.integers(0, 4, size=6)
    a = ops.softmax_cross_entropy(logits, labels)
    b = ops.softmax_cross_entropy(logits, labels.reshape(6, 1))
    assert a[0] == b[0]
    same_bits(a[1], b[1])


def test_cross_entropy_unnormalized_rows_have_the_exact_gradient(rng):
    logits = f32(rng, 4, 5)
    t = (rng.random((4, 5)) * 2).astype(np.float32)  # rows do not sum to 1
    loss, d = ops.softmax_cross_entropy(logits, t)
    _check_loss(loss, d, ref.softmax_cross_entropy(logits, t), "cross_entropy(soft)")
    fd_check(lambda z: ops.softmax_cross_entropy(z.astype(np.float32), t)[0], logits,
             np.array(1.0), d, eps=1e-2, name="cross_entropy(soft)")


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("shape", [(1, 3), (6, 5), (3, 40)])
def test_cross_entropy_finite_differences(shape, kind, rng):
    n, k = shape
    logits = f32(rng, n, k)
    labels = rng.integers(0, k, size=n) if kind == "index" else _prob_rows(rng, n, k)
    _, d = ops.softmax_cross_entropy(logits, labels)
    fd_check(lambda z: ops.softmax_cross_entropy(z.astype(np.float32), labels)[0], logits,
             np.array(1.0), d, eps=1e-2, name="cross_entropy")


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1e30, 1e30, 0.0], [50.0, 50.0, 50.0]],
                      np.float32)
    labels = np.array([0, 0, 2])
    loss, d = ops.softmax_cross_entropy(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    # row losses: 0, 2e30, log 3
    np.testing.assert_allclose(loss, (0.0 + 2e30 + np.log(3.0)) / 3, rtol=1e-6)
    _check_loss(loss, d, ref.softmax_cross_entropy(logits, labels), "cross_entropy(large)")


def test_cross_entropy_empty_batch():
    for labels in [np.zeros(0, np.int64), np.zeros((0, 4), np.float32), []]:
        loss, d = ops.softmax_cross_entropy(np.zeros((0, 4), np.float32), labels)
        assert loss == 0.0 and isinstance(loss, float)
        assert d.shape == (0, 4) and d.dtype == np.float32


def test_cross_entropy_nan_stays_in_its_row():
    logits = np.zeros((3, 4), np.float32)
    logits[1, 2] = np.nan
    loss, d = ops.softmax_cross_entropy(logits, np.array([0, 1, 2]))
    assert np.isnan(loss)
    assert np.all(np.isnan(d[1]))
    np.testing.assert_allclose(d[[0, 2]], ref.softmax_cross_entropy(
        np.zeros((2, 4)), np.array([0, 2]))[1] * 2 / 3, rtol=1e-6)


def test_cross_entropy_inputs_unchanged_and_layouts(rng):
    logits = f32(rng, 5, 6)
    keep = logits.copy()
    labels = np.array([0, 5, 2, 3, 1], np.int32)
    loss, d = ops.softmax_cross_entropy(logits, labels)
    same_bits(logits, keep)
    loss_f, d_f = ops.softmax_cross_entropy(np.asfortranarray(logits.astype(np.float64)),
                                            labels[::-1].copy()[::-1])
    assert loss_f == loss
    same_bits(d_f, d)
    loss_l, _ = ops.softmax_cross_entropy(logits.tolist(), labels.tolist())
    assert loss_l == loss


def test_cross_entropy_bad_input(rng):
    logits = f32(rng, 4, 3)
    good = np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="logits"):
        ops.softmax_cross_entropy(logits.reshape(-1), good)
    with pytest.raises(ValueError, match="logits"):
        ops.softmax_cross_entropy(logits.reshape(4, 3, 1), good)
    with pytest.raises(ValueError, match="logits"):
        ops.softmax_cross_entropy(np.zeros((4, 0), np.float32), good)
    for dtype in BAD_DTYPES:
        with pytest.raises(TypeError, match="logits"):
            ops.softmax_cross_entropy(np.zeros((4, 3), dtype), good)
    # labels out of range
    for bad in [np.array([0, 1, 3, 0]), np.array([0, -1, 2, 0]), np.array([0, 1, 2, 255], np.uint8),
                np.array([0, 1, 2, 2**63], np.uint64)]:
        with pytest.raises(ValueError, match="labels"):
            ops.softmax_cross_entropy(logits, bad)
    # wrong length / shape
    for bad in [np.array([0, 1, 2]), np.array([0, 1, 2, 0, 1]), np.zeros((4, 2), np.int64),
                np.zeros((4, 3), np.int64), np.zeros((2, 2), np.int64), np.zeros((4, 1, 1), np.int64)]:
        with pytest.raises(ValueError, match="labels"):
            ops.softmax_cross_entropy(logits, bad)
    for bad in [np.zeros((4, 2), np.float32), np.zeros((3, 3), np.float32),
                np.zeros((4, 3, 1), np.float32)]:
        with pytest.raises(ValueError, match="labels"):
            ops.softmax_cross_entropy(logits, bad)
    # wrong dtype: float class indices, bool, complex, object, str, None
    for bad in [good.astype(np.float32), good.astype(bool), good.astype(np.complex64),
                good.astype(object), "0123", None]:
        with pytest.raises(TypeError, match="labels"):
            ops.softmax_cross_entropy(logits, bad)


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(1, 5), (8, 10), (16, 3)])
def test_cross_entropy_against_torch(shape, rng):
    torch = pytest.importorskip("torch")
    n, k = shape
    logits = f32(rng, n, k, scale=3.0)
    labels = rng.integers(0, k, size=n)
    probs = _prob_rows(rng, n, k)
    for target, tt in [(labels, torch.tensor(labels)), (probs, torch.tensor(probs))]:
        zt = torch.tensor(logits, requires_grad=True)
        lt = torch.nn.functional.cross_entropy(zt, tt)
        lt.backward()
        loss, d = ops.softmax_cross_entropy(logits, target)
        assert abs(loss - lt.item()) <= 1e-5 * max(abs(lt.item()), 1e-3)
        compare(d, zt.grad.numpy().astype(np.float64), name="cross_entropy vs torch")


# ---- mse / mae ----------------------------------------------------------------

@pytest.mark.parametrize("shape", EW_SHAPES)
@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_losses_match_reference(name, shape, rng):
    pred = f32(rng, *shape)
    target = f32(rng, *shape)
    loss, d = getattr(ops, name)(pred, target)
    assert np.shape(d) == np.shape(pred)
    _check_loss(loss, d, getattr(ref, name)(pred, target), name)


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_losses_finite_differences(name, rng):
    pred = f32(rng, 4, 6)
    target = (pred + np.sign(rng.standard_normal((4, 6))) * (0.1 + rng.random((4, 6)))).astype(
        np.float32)  # |pred - target| >= 0.1: mae has no kink near
    _, d = getattr(ops, name)(pred, target)
    fd_check(lambda p: getattr(ops, name)(p.astype(np.float32), target)[0], pred,
             np.array(1.0), d, eps=1e-2, name=name)


def test_mae_gradient_is_zero_where_equal(rng):
    pred = f32(rng, 3, 4)
    target = pred.copy()
    target[0] += 1.0
    loss, d = ops.mae(pred, target)
    np.testing.assert_array_equal(d[1:], 0.0)
    np.testing.assert_allclose(d[0], -1.0 / 12)
    assert abs(loss - 4.0 / 12) < 1e-6


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_losses_nan(name):
    pred = np.zeros((2, 3), np.float32)
    pred[1, 1] = np.nan
    loss, d = getattr(ops, name)(pred, np.ones((2, 3), np.float32))
    assert np.isnan(loss)
    assert np.isnan(d[1, 1]) and np.isfinite(np.delete(d.reshape(-1), 4)).all()


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_losses_bad_input(name):
    f = getattr(ops, name)
    ok = np.zeros((3, 4), np.float32)
    for bad in [np.zeros((4, 3), np.float32), np.zeros((3, 1), np.float32), np.zeros(12, np.float32),
                np.zeros((3, 4, 1), np.float32), np.zeros((0, 4), np.float32)]:
        with pytest.raises(ValueError, match="target"):
            f(ok, bad)
    for dtype in BAD_DTYPES:
        with pytest.raises(TypeError, match="pred"):
            f(np.zeros((3, 4), dtype), ok)
        with pytest.raises(TypeError, match="target"):
            f(ok, np.zeros((3, 4), dtype))
    with pytest.raises(TypeError):
        f(ok, None)


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_regression_losses_accept_any_layout(name, rng):
    pred = f32(rng, 6, 5)
    target = f32(rng, 6, 5)
    loss, d = getattr(ops, name)(pred, target)
    loss2, d2 = getattr(ops, name)(np.asfortranarray(pred.astype(np.float64)),
                                   np.repeat(target, 2, axis=0)[::2])
    assert loss == loss2
    same_bits(d, d2)


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(5,), (8, 3), (2, 3, 4, 5)])
def test_regression_losses_against_torch(shape, rng):
    torch = pytest.importorskip("torch")
    pred = f32(rng, *shape)
    target = f32(rng, *shape)
    for name, tf in [("mse", torch.nn.functional.mse_loss), ("mae", torch.nn.functional.l1_loss)]:
        pt = torch.tensor(pred, requires_grad=True)
        lt = tf(pt, torch.tensor(target))
        lt.backward()
        loss, d = getattr(ops, name)(pred, target)
        assert abs(loss - lt.item()) <= 1e-5 * abs(lt.item()), name
        compare(d, pt.grad.numpy().astype(np.float64), name=name + " vs torch")


# ---- threads -------------------------------------------------------------------

DET_CASES = [
    ("ce_index", lambda rs: ops.softmax_cross_entropy(f32(rs, 4000, 50, scale=3.0),
                                                      rs.integers(0, 50, 4000))),
    ("ce_prob", lambda rs: ops.softmax_cross_entropy(f32(rs, 4000, 50, scale=3.0),
                                                     _prob_rows(rs, 4000, 50))),
    ("mse", lambda rs: ops.mse(f32(rs, 300, 501), f32(rs, 300, 501))),
    ("mae", lambda rs: ops.mae(f32(rs, 300, 501), f32(rs, 300, 501))),
]


@pytest.mark.parametrize("name,fn", DET_CASES, ids=[c[0] for c in DET_CASES])
def test_one_and_two_threads_bitwise_identical(name, fn):
    with threads(1):
        l1, d1 = fn(np.random.default_rng(3))
    with threads(2):
        l2, d2 = fn(np.random.default_rng(3))
    assert np.float64(l1).tobytes() == np.float64(l2).tobytes(), name
    same_bits(d1, d2, name)
