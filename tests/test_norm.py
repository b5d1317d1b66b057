"""batch_norm / batch_norm_backward (channels last, Keras semantics) vs float64
references, finite differences, PyTorch, bad input and thread determinism."""
import numpy as np
import pytest

from fastnn import ops

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads

SHAPES = [
    (8, 3),
    (1, 4),          # one row: batch variance 0
    (5, 1),          # C = 1
    (300, 5),        # more rows than one statistics chunk (256)
    (2, 3, 3, 4),
    (1, 1, 1, 1),
    (3, 5, 7, 2),
    (4, 10, 10, 8),  # 400 rows
    (2, 7, 1),       # rank 3
    (0, 3),          # empty batch
    (0, 2, 2, 3),
]


def make_inputs(rs, shape, affine=(True, True)):
    C = shape[-1]
    x = (rs.standard_normal(shape) * 1.5 + 0.7).astype(np.float32)
    gamma = (1.0 + 0.5 * rs.standard_normal(C)).astype(np.float32) if affine[0] else None
    beta = (0.3 * rs.standard_normal(C)).astype(np.float32) if affine[1] else None
    rm = (0.2 * rs.standard_normal(C)).astype(np.float32)
    rv = (1.0 + rs.random(C)).astype(np.float32)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [(True, True), (False, False), (True, False)])
def test_batch_norm_forward_reference(shape, training, affine):
    rs = np.random.default_rng(10)
    x, gamma, beta, rm, rv = make_inputs(rs, shape, affine)
    momentum, eps = 0.9, 1e-3
    rm0, rv0 = rm.copy(), rv.copy()
    y, cache = ops.batch_norm(x, gamma, beta, rm, rv, training=training, momentum=momentum,
                              epsilon=eps)
    ry, rrm, rrv = ref.batch_norm(x, gamma, beta, rm0, rv0, training, momentum, eps)
    assert y.dtype == np.float32 and y.shape == x.shape
    compare(y, ry, name="y")
    if training and x.size:
        compare(rm, rrm, rtol=1e-6, name="running_mean")
        compare(rv, rrv, rtol=1e-6, name="running_var")
    else:  # inference and empty batches leave the running statistics alone
        same_bits(rm, rm0, "running_mean")
        same_bits(rv, rv0, "running_var")
    assert isinstance(cache, tuple)


def test_batch_norm_keras_defaults_and_stats():
    rs = np.random.default_rng(11)
    x = (rs.standard_normal((64, 6)) * 3 + 2).astype(np.float32)
    C = 6
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    y, _ = ops.batch_norm(x, np.ones(C), np.zeros(C), rm, rv, training=True)
    xd = x.astype(np.float64)
    # momentum 0.99, epsilon 1e-3, biased variance in the running update
    np.testing.assert_allclose(rm, 0.01 * xd.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rv, 0.99 + 0.01 * xd.var(0), rtol=1e-5)
    compare(y, (xd - xd.mean(0)) / np.sqrt(xd.var(0) + 1e-3), name="y")


def test_batch_norm_large_offset_is_stable():
    # mean >> std: the centred two-level statistics keep the variance accurate.
    rs = np.random.default_rng(12)
    x = (1000.0 + rs.standard_normal((4000, 3))).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y, _ = ops.batch_norm(x, None, None, rm, rv, training=True, momentum=0.0)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(rv, xd.var(0), rtol=1e-5)
    np.testing.assert_allclose(rm, xd.mean(0), rtol=1e-7)
    compare(y, (xd - xd.mean(0)) / np.sqrt(xd.var(0) + 1e-3), rtol=2e-4, name="y")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_reference(shape, training):
    rs = np.random.default_rng(13)
    x, gamma, beta, rm, rv = make_inputs(rs, shape)
    rm0, rv0 = rm.copy(), rv.copy()
    dy = f32(rs, *shape)
    _, cache = ops.batch_norm(x, gamma, beta, rm, rv, training=training)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)
    rdx, rdg, rdb = ref.batch_norm_backward(dy, x, gamma, rm0, rv0, training)
    assert dx.shape == x.shape and dgamma.shape == dbeta.shape == (shape[-1],)
    if int(np.prod(shape[:-1])) != 1 or not training:
        compare(dx, rdx, name="dx")
    else:  # one row in training mode: the true gradient is 0 (y = beta)
        assert np.max(np.abs(dx)) <= 1e-3 * np.max(np.abs(dy))
    compare(dgamma, rdg, floor=1e-3, name="dgamma")
    compare(dbeta, rdb, name="dbeta")
    # the cache can be reused: same bits twice
    for a, b in zip((dx, dgamma, dbeta), ops.batch_norm_backward(dy, cache)):
        same_bits(a, b)


def test_batch_norm_backward_none_affine():
    rs = np.random.default_rng(14)
    x, _, _, rm, rv = make_inputs(rs, (6, 4))
    dy = f32(rs, 6, 4)
    _, cache = ops.batch_norm(x, None, None, rm, rv, training=True)
    dx, dg, db = ops.batch_norm_backward(dy, cache)
    assert dg is None and db is None
    rdx, _, _ = ref.batch_norm_backward(dy, x, None, rm, rv, True)
    compare(dx, rdx, name="dx")


def test_batch_norm_gamma_copied_into_cache():
    rs = np.random.default_rng(15)
    x, gamma, beta, rm, rv = make_inputs(rs, (6, 4))
    dy = f32(rs, 6, 4)
    _, cache = ops.batch_norm(x, gamma, beta, rm, rv, training=True)
    before = ops.batch_norm_backward(dy, cache)
    gamma *= 3  # e.g. an optimizer step between forward and backward
    after = ops.batch_norm_backward(dy, cache)
    for a, b in zip(before, after):
        same_bits(a, b)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_finite_differences(shape, training):
    rs = np.random.default_rng(16)
    x, gamma, beta, rm, rv = make_inputs(rs, shape)
    dy = f32(rs, *shape)
    _, cache = ops.batch_norm(x, gamma, beta, rm.copy(), rv.copy(), training=training)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)

    def run(xx=x, gg=gamma, bb=beta):
        return ops.batch_norm(xx, gg, bb, rm.copy(), rv.copy(), training=training)[0]

    fd_check(lambda v: run(xx=v), x, dy, dx, name="dx")
    fd_check(lambda v: run(gg=v), gamma, dy, dgamma, name="dgamma")
    fd_check(lambda v: run(bb=v), beta, dy, dbeta, name="dbeta")


def test_batch_norm_threads_bitwise():
    rs = np.random.default_rng(17)
    x, gamma, beta, rm, rv = make_inputs(rs, (8, 16, 16, 24))
    dy = f32(rs, *x.shape)
    res = []
    for n in (1, 2):
        with threads(n):
            r_m, r_v = rm.copy(), rv.copy()
            y, cache = ops.batch_norm(x, gamma, beta, r_m, r_v, training=True)
            grads = ops.batch_norm_backward(dy, cache)
            yi, ci = ops.batch_norm(x, gamma, beta, rm, rv, training=False)
            res.append((y, r_m, r_v, *grads, yi, *ops.batch_norm_backward(dy, ci)))
    for i, (a, b) in enumerate(zip(*res)):
        same_bits(a, b, f"output {i}")


def test_batch_norm_inference_accepts_readonly_stats():
    rs = np.random.default_rng(18)
    x, gamma, beta, rm, rv = make_inputs(rs, (4, 3))
    rm.setflags(write=False)
    y, _ = ops.batch_norm(x, gamma, beta, rm, rv.astype(np.float64), training=False)
    compare(y, ref.batch_norm(x, gamma, beta, rm, rv, False)[0], name="y")
    with pytest.raises(ValueError, match="running_mean"):
        ops.batch_norm(x, gamma, beta, rm, rv, training=True)


def test_batch_norm_nan_passes_through():
    x = np.array([[1.0, 2.0], [np.nan, 3.0], [0.0, 1.0]], np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    y, _ = ops.batch_norm(x, None, None, rm, rv, training=True)
    assert np.isnan(y[:, 0]).all() and np.isfinite(y[:, 1]).all()
    assert np.isnan(rm[0]) and np.isfinite(rm[1])


@pytest.mark.parametrize("bad", [np.zeros((2, 3), bool), np.zeros((2, 3), complex),
                                 np.zeros((2, 3), object)])
def test_batch_norm_bad_dtype(bad):
    C = 3
    g, b = np.ones(C, np.float32), np.zeros(C, np.float32)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    with pytest.raises(TypeError, match="x"):
        ops.batch_norm(bad, g, b, rm, rv, training=True)
    with pytest.raises(TypeError, match="gamma"):
        ops.batch_norm(np.zeros((2, 3)), bad[0], b, rm, rv, training=True)
    with pytest.raises(TypeError, match="running_mean"):
        ops.batch_norm(np.zeros((2, 3)), g, b, rm.astype(np.float64), rv, training=True)
    with pytest.raises(TypeError, match="running_var"):
        ops.batch_norm(np.zeros((2, 3)), g, b, rm, list(rv), training=True)
    _, cache = ops.batch_norm(np.ones((2, 3)), g, b, rm, rv, training=True)
    with pytest.raises(TypeError, match="dy"):
        ops.batch_norm_backward(bad, cache)


def test_batch_norm_bad_shapes_and_values():
    C = 3
    x = np.ones((4, C), np.float32)
    g, b = np.ones(C, np.float32), np.zeros(C, np.float32)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    with pytest.raises(ValueError, match="x"):
        ops.batch_norm(np.ones(C, np.float32), g, b, rm, rv, training=True)
    with pytest.raises(ValueError, match="x"):
        ops.batch_norm(np.ones((4, 0), np.float32), g[:0], b[:0], rm[:0], rv[:0], training=True)
    with pytest.raises(ValueError, match="x"):
        ops.batch_norm(np.ones((4, 0, 2, C), np.float32), g, b, rm, rv, training=True)
    with pytest.raises(ValueError, match="gamma"):
        ops.batch_norm(x, np.ones(C + 1), b, rm, rv, training=True)
    with pytest.raises(ValueError, match="beta"):
        ops.batch_norm(x, g, np.ones((1, C)), rm, rv, training=True)
    with pytest.raises(ValueError, match="running_mean"):
        ops.batch_norm(x, g, b, np.zeros(C + 1, np.float32), rv, training=False)
    with pytest.raises(ValueError, match="running_var"):
        ops.batch_norm(x, g, b, rm, np.ones(2 * C, np.float32)[::2], training=True)  # non-contiguous
    ro = rv.copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="running_var"):
        ops.batch_norm(x, g, b, rm, ro, training=True)
    both = np.zeros(C, np.float32)
    with pytest.raises(ValueError, match="running_var"):
        ops.batch_norm(x, g, b, both, both, training=True)
    for m in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="momentum"):
            ops.batch_norm(x, g, b, rm, rv, training=True, momentum=m)
    for e in (-1e-3, np.inf):
        with pytest.raises(ValueError, match="epsilon"):
            ops.batch_norm(x, g, b, rm, rv, training=True, epsilon=e)
    with pytest.raises(TypeError):
        ops.batch_norm(x, g, b, rm, rv)  # training is required
    _, cache = ops.batch_norm(x, g, b, rm, rv, training=True)
    with pytest.raises(ValueError, match="dy"):
        ops.batch_norm_backward(np.ones((4, C + 1), np.float32), cache)
    with pytest.raises(ValueError, match="dy"):
        ops.batch_norm_backward(np.ones((2, 2, C), np.float32), cache)
    with pytest.raises(TypeError, match="cache"):
        ops.batch_norm_backward(x, [1, 2])
    with pytest.raises(ValueError, match="cache"):
        ops.batch_norm_backward(x, cache[:4])
    with pytest.raises(ValueError, match="cache"):
        ops.batch_norm_backward(x, (1, *cache[1:]))
    with pytest.raises(ValueError, match="cache"):
        ops.batch_norm_backward(x, cache[:4] + (np.zeros(C + 2, np.float32), cache[5]))


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3, 3), (1, 2, 2, 1)])
def test_batch_norm_vs_torch(shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(19)
    x, gamma, beta, rm, rv = make_inputs(rs, shape)
    dy = f32(rs, *shape)
    eps = 1e-3
    C = shape[-1]

    def to_torch(a):  # channels last -> torch (N, C, ...)
        t = torch.tensor(a, dtype=torch.float64)
        return t.movedim(-1, 1).contiguous()

    for training in (True, False):
        tx = to_torch(x).requires_grad_(True)
        tg = torch.tensor(gamma, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        trm = torch.tensor(rm, dtype=torch.float64)
        trv = torch.tensor(rv, dtype=torch.float64)
        ty = F.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.1, eps=eps)
        ty.backward(to_torch(dy))
        y, cache = ops.batch_norm(x, gamma, beta, rm.copy(), rv.copy(), training=training,
                                  epsilon=eps)
        dx, dg, db = ops.batch_norm_backward(dy, cache)
        # (torch's running_var update uses the unbiased variance: not compared.)
        compare(y, ty.detach().movedim(1, -1).numpy(), name=f"y training={training}")
        compare(dx, tx.grad.movedim(1, -1).numpy(), name=f"dx training={training}")
        compare(dg, tg.grad.numpy(), floor=1e-3, name=f"dgamma training={training}")
        compare(db, tb.grad.numpy(), name=f"dbeta training={training}")
        assert dg.shape == (C,)
