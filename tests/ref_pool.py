"""float64 NumPy references: pool kernels.

Written for clarity, not speed: one explicit loop over output windows. Layout
NHWC; pool / stride / padding are ints or (h, w) pairs, stride None = pool.
"""
import numpy as np  # noqa: F401

__all__ = ["pool_pair", "pool_geometry", "max_pool2d", "max_pool2d_backward",
           "max_pool2d_window", "max_pool2d_window_backward", "avg_pool2d", "avg_pool2d_backward"]


def pool_pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_geometry(x_shape, pool, stride, padding):
    """(kh, kw, sh, sw, ph, pw, P, Q) for an (N, H, W, C) input."""
    _, H, W, _ = x_shape
    kh, kw = pool_pair(pool)
    sh, sw = pool_pair(pool if stride is None else stride)
    ph, pw = pool_pair(padding)
    P = (H + 2 * ph - kh) // sh + 1
    Q = (W + 2 * pw - kw) // sw + 1
    return kh, kw, sh, sw, ph, pw, P, Q


def _windows(x_shape, pool, stride, padding):
    """Yields (p, q, h0, h1, w0, w1): window (p, q) covers real rows [h0, h1), cols [w0, w1)."""
    _, H, W, _ = x_shape
    kh, kw, sh, sw, ph, pw, P, Q = pool_geometry(x_shape, pool, stride, padding)
    for p in range(P):
        top = p * sh - ph
        for q in range(Q):
            left = q * sw - pw
            yield p, q, max(top, 0), min(top + kh, H), max(left, 0), min(left + kw, W)


def max_pool2d(x, pool=2, stride=None, padding=0):
    """Returns (y float64, idx int64); padding is -inf (never chosen), ties -> first
    maximum in row-major window order, a NaN in the window -> NaN at the first NaN."""
    x = np.asarray(x, dtype=np.float64)
    N, H, W, C = x.shape
    *_, P, Q = pool_geometry(x.shape, pool, stride, padding)
    y = np.zeros((N, P, Q, C))
    idx = np.zeros((N, P, Q, C), dtype=np.int64)
    if N == 0:
        return y, idx
    flat_index = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    for p, q, h0, h1, w0, w1 in _windows(x.shape, pool, stride, padding):
        vals = x[:, h0:h1, w0:w1, :].reshape(N, -1, C)  # window in row-major order
        where = flat_index[:, h0:h1, w0:w1, :].reshape(N, -1, C)
        isnan = np.isnan(vals)
        first_max = np.argmax(np.where(isnan, -np.inf, vals), axis=1)  # first maximum
        first_nan = np.argmax(isnan, axis=1)
        k = np.where(isnan.any(axis=1), first_nan, first_max)[:, None, :]  # (N, 1, C)
        y[:, p, q, :] = np.take_along_axis(vals, k, axis=1)[:, 0, :]
        idx[:, p, q, :] = np.take_along_axis(where, k, axis=1)[:, 0, :]
    return y, idx


def max_pool2d_backward(dy, idx, x_shape):
    dx = np.zeros(int(np.prod(x_shape)))
    np.add.at(dx, np.asarray(idx).reshape(-1), np.asarray(dy, dtype=np.float64).reshape(-1))
    return dx.reshape(x_shape)


def max_pool2d_window(x, pool=2, stride=None, padding=0):
    """The layer's private form: (y float64, win) with win the winner's offset dh*kw + dw
    inside its padded window ((dh, dw) from the window's top-left corner, padding
    included); same winners as max_pool2d."""
    y, idx = max_pool2d(x, pool, stride, padding)
    N, H, W, C = np.shape(x)
    kh, kw, sh, sw, ph, pw, P, Q = pool_geometry(np.shape(x), pool, stride, padding)
    h = (idx // (W * C)) % H
    w = (idx // C) % W
    top = (np.arange(P) * sh - ph)[None, :, None, None]
    left = (np.arange(Q) * sw - pw)[None, None, :, None]
    win = (h - top) * kw + (w - left)
    return y, win.astype(np.int64)


def max_pool2d_window_backward(dy, win, x_shape, pool=2, stride=None, padding=0):
    """dx (float64): dy added at the element each offset names."""
    N, H, W, C = x_shape
    kh, kw, sh, sw, ph, pw, P, Q = pool_geometry(x_shape, pool, stride, padding)
    win = np.asarray(win, dtype=np.int64)
    n = np.arange(N)[:, None, None, None]
    h = (np.arange(P) * sh - ph)[None, :, None, None] + win // kw
    w = (np.arange(Q) * sw - pw)[None, None, :, None] + win % kw
    c = np.arange(C)[None, None, None, :]
    dx = np.zeros(tuple(x_shape))
    np.add.at(dx, (np.broadcast_to(n, win.shape), h, w, np.broadcast_to(c, win.shape)),
              np.asarray(dy, dtype=np.float64))
    return dx


def _divisor(pool, h0, h1, w0, w1, count_include_pad):
    kh, kw = pool_pair(pool)
    return kh * kw if count_include_pad else (h1 - h0) * (w1 - w0)


def avg_pool2d(x, pool=2, stride=None, padding=0, count_include_pad=False):
    x = np.asarray(x, dtype=np.float64)
    N, H, W, C = x.shape
    *_, P, Q = pool_geometry(x.shape, pool, stride, padding)
    y = np.zeros((N, P, Q, C))
    for p, q, h0, h1, w0, w1 in _windows(x.shape, pool, stride, padding):
        d = _divisor(pool, h0, h1, w0, w1, count_include_pad)
        y[:, p, q, :] = x[:, h0:h1, w0:w1, :].sum(axis=(1, 2)) / d
    return y


def avg_pool2d_backward(dy, x_shape, pool=2, stride=None, padding=0, count_include_pad=False):
    dy = np.asarray(dy, dtype=np.float64)
    dx = np.zeros(tuple(x_shape))
    for p, q, h0, h1, w0, w1 in _windows(x_shape, pool, stride, padding):
        d = _divisor(pool, h0, h1, w0, w1, count_include_pad)
        dx[:, h0:h1, w0:w1, :] += dy[:, p, q, None, None, :] / d
    return dx
