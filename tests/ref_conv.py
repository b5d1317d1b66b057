"""float64 NumPy references: convolution (NHWC, HWIO) and GEMM."""
import math

import numpy as np


def conv_padding(h, w, r, s, stride, padding):
    """(top, bottom, left, right) for int / pair / 'valid' / 'same' (TensorFlow rule)."""
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        def split(n, k, st):
            total = max((math.ceil(n / st) - 1) * st + k - n, 0)
            return total // 2, total - total // 2
        return split(h, r, sh) + split(w, s, sw)
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    return ph, ph, pw, pw


def _pad_and_windows(x, r, s, stride, pads):
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    P = (xp.shape[1] - r) // sh + 1
    Q = (xp.shape[2] - s) // sw + 1
    return xp, P, Q, sh, sw


def conv2d(x, w, b=None, stride=1, padding=0):
    """y[n,p,q,k] = b[k] + sum_{r,s,c} xpad[n, p*sh+r, q*sw+s, c] * w[r,s,c,k]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    R, S, C, K = w.shape
    pads = conv_padding(x.shape[1], x.shape[2], R, S, stride, padding)
    xp, P, Q, sh, sw = _pad_and_windows(x, R, S, stride, pads)
    y = np.zeros((x.shape[0], P, Q, K))
    for r in range(R):
        for s in range(S):
            patch = xp[:, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw, :]
            y += patch @ w[r, s]
    if b is not None:
        y += np.asarray(b, np.float64)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0):
    """(dx, dw, db) of conv2d for the upstream gradient dy."""
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    R, S, C, K = w.shape
    pads = conv_padding(x.shape[1], x.shape[2], R, S, stride, padding)
    xp, P, Q, sh, sw = _pad_and_windows(x, R, S, stride, pads)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for r in range(R):
        for s in range(S):
            sl = (slice(None), slice(r, r + sh * (P - 1) + 1, sh), slice(s, s + sw * (Q - 1) + 1, sw))
            patch = xp[sl]
            dw[r, s] = np.einsum("npqc,npqk->ck", patch, dy)
            dxp[sl] += dy @ w[r, s].T
    pt, pb, pl, pr = pads
    dx = dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2], :]
    db = dy.sum(axis=(0, 1, 2))
    return dx, dw, db


def matmul(a, b):
    return np.asarray(a, np.float64) @ np.asarray(b, np.float64)
