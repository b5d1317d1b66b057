"""Second, independent guards of paths that had exactly one test each (issue 23): the
soft-target cross-entropy gradient, Adam's default epsilon, and the max-pool flat-index
general loop (any window other than 2x2 stride 2)."""
import numpy as np
import pytest

from fastnn import losses, ops, optimizers
from helpers import compare, f32, fd_check, threads


# ------------------------------------------------------------ soft-target cross-entropy
@pytest.mark.parametrize("n,k,tscale", [(1, 3, 1.0), (5, 7, 1.0), (4, 33, 0.3), (3, 17, 2.5)])
def test_soft_target_cross_entropy_gradient_float64(n, k, tscale):
    """d/dz of mean_n sum_j t_j (lse(z) - z_j) = (softmax(z) * sum_j t_j - t) / N, in
    float64, for rows that are not one-hot and (tscale != 1) do not sum to one."""
    rs = np.random.default_rng(n * 100 + k)
    z = f32(rs, n, k, scale=3.0)
    t = rs.random((n, k)).astype(np.float32)
    t = (t / t.sum(axis=1, keepdims=True) * tscale).astype(np.float32)
    loss, g = ops.softmax_cross_entropy(z, t)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    lse = np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1)) + z64.max(1)
    sm = np.exp(z64 - lse[:, None])
    assert loss == pytest.approx((t64 * (lse[:, None] - z64)).sum() / n, rel=1e-5)
    compare(g, (sm * t64.sum(1, keepdims=True) - t64) / n, name="dlogits")
    fd_check(lambda v: ops.softmax_cross_entropy(v.astype(np.float32), t)[0], z.astype(np.float64), 1.0, g,
             eps=1e-3, name="dCE/dz soft")


def test_soft_target_gradient_through_the_loss_class():
    """CategoricalCrossentropy(from_logits=True) on soft rows: its gradient is the kernel's."""
    rs = np.random.default_rng(5)
    z = f32(rs, 6, 5)
    t = rs.dirichlet(np.ones(5), size=6).astype(np.float32)
    v, d = losses.CategoricalCrossentropy(from_logits=True).value_and_grad(t, z)
    lv, lg = ops.softmax_cross_entropy(z, t)
    assert v == pytest.approx(lv, rel=1e-6)
    compare(d, lg)


# ------------------------------------------------------------ Adam's default epsilon
def test_adam_default_epsilon_is_used_in_the_step():
    """With v ~ g^2 tiny, the step size depends on epsilon: the default step matches
    epsilon = 1e-7 added to sqrt(v_hat) (Keras 3), and not 1e-8 or epsilon inside the root."""
    g = np.full(4, 3e-7, np.float32)
    p = np.zeros(4, np.float32)
    opt = optimizers.Adam(learning_rate=0.1)
    opt.build(p, [(0, 4)])
    opt.apply(p, g.copy())

    def step(eps, inside=False):
        # Keras 3: alpha = lr sqrt(1 - b2^t) / (1 - b1^t); p -= alpha m / (sqrt(v) + eps)
        m, v = 0.1 * 3e-7, 0.001 * (3e-7) ** 2
        alpha = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
        return -alpha * m / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)

    got = float(p[0])
    assert got == pytest.approx(step(1e-7), rel=1e-4)
    assert got != pytest.approx(step(1e-8), rel=1e-2)
    assert got != pytest.approx(step(1e-7, inside=True), rel=1e-2)


def test_adam_kernel_default_epsilon():
    """ops.adam_update without epsilon uses 1e-7 too."""
    g = np.full(3, 2e-7, np.float32)
    p1, p2 = np.zeros(3, np.float32), np.zeros(3, np.float32)
    ops.adam_update(p1, g, np.zeros(3, np.float32), np.zeros(3, np.float32), lr=0.1, step=1)
    ops.adam_update(p2, g, np.zeros(3, np.float32), np.zeros(3, np.float32), lr=0.1, step=1, epsilon=1e-7)
    assert np.array_equal(p1, p2)
    alpha = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
    m, v = 0.1 * 2e-7, 0.001 * (2e-7) ** 2
    assert p1[0] == pytest.approx(-alpha * m / (np.sqrt(v) + 1e-7), rel=1e-4)


# ------------------------------------------------------------ max-pool flat-index general loop
def _argmax_flat(x, k, s, pad):
    """Flat index into x of each window's first maximum (padding is -inf)."""
    N, H, W, C = x.shape
    P, Q = (H + 2 * pad - k) // s + 1, (W + 2 * pad - k) // s + 1
    idx = np.zeros((N, P, Q, C), np.int64)
    y = np.zeros((N, P, Q, C), np.float32)
    for n in range(N):
        for p in range(P):
            for q in range(Q):
                for c in range(C):
                    best, bi = -np.inf, -1
                    for i in range(k):
                        for j in range(k):
                            h, w = p * s - pad + i, q * s - pad + j
                            if 0 <= h < H and 0 <= w < W and (bi < 0 or x[n, h, w, c] > best):
                                best, bi = x[n, h, w, c], ((n * H + h) * W + w) * C + c
                    idx[n, p, q, c], y[n, p, q, c] = bi, best
    return y, idx


@pytest.mark.parametrize("shape,k,s,pad", [((2, 7, 6, 3), 3, 2, 1), ((1, 5, 9, 2), 3, 1, 0),
                                           ((2, 6, 6, 5), 2, 1, 0), ((1, 9, 8, 17), 3, 3, 1),
                                           ((3, 4, 5, 1), 2, 2, 1)])
def test_max_pool_flat_indices_general_loop(shape, k, s, pad):
    rs = np.random.default_rng(sum(shape) + k)
    x = rs.integers(-3, 3, size=shape).astype(np.float32)   # many ties: the first wins
    ry, ridx = _argmax_flat(x, k, s, pad)
    for n in (1, 2):
        with threads(n):
            y, idx = ops.max_pool2d(x, k, stride=s, padding=pad)
            assert idx.dtype == np.int64
            assert np.array_equal(y, ry)
            assert np.array_equal(idx, ridx)
            assert np.array_equal(x.reshape(-1)[idx], y)
            dy = f32(rs, *y.shape)
            dx = ops.max_pool2d_backward(dy, idx, x.shape)
            expect = np.zeros(x.size, np.float64)
            np.add.at(expect, ridx.reshape(-1), dy.reshape(-1).astype(np.float64))
            compare(dx, expect.reshape(x.shape), name="dx")
