"""A quick self-check of every kernel against small float64 NumPy computations.

Run by ``python -m fastnn info``. Each check prints one line; the whole run takes
well under a second. (The thorough tests live in the repository's tests/.)
"""
from __future__ import annotations

import time

import numpy as np

from . import _core, ops

TOL = 1e-4


def _rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _conv_ref(x, w, pad):
    R, S, C, K = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    P, Q = xp.shape[1] - R + 1, xp.shape[2] - S + 1
    y = np.zeros((x.shape[0], P, Q, K))
    for r in range(R):
        for s in range(S):
            y += xp[:, r:r + P, s:s + Q, :] @ w[r, s].astype(np.float64)
    return y


def _check_gemm(rs):
    a = rs.standard_normal((67, 129), dtype=np.float32)
    b = rs.standard_normal((129, 45), dtype=np.float32)
    return _rel(_core.matmul(a, b), a.astype(np.float64) @ b)


def _check_conv(rs):
    x = rs.standard_normal((2, 7, 6, 3), dtype=np.float32)
    w = rs.standard_normal((3, 3, 3, 5), dtype=np.float32)
    y = ops.conv2d(x, w, padding=1)
    err = _rel(y, _conv_ref(x, w, 1))
    dy = rs.standard_normal(y.shape, dtype=np.float32)
    dx, dw, db = ops.conv2d_backward(dy, x, w, padding=1)
    # adjoint identities: <conv(x), dy> = <x, dx>; dw by the same identity in w
    lhs = float(np.sum(y.astype(np.float64) * dy))
    err = max(err, abs(lhs - float(np.sum(x.astype(np.float64) * dx))) / max(abs(lhs), 1e-12))
    err = max(err, abs(lhs - float(np.sum(w.astype(np.float64) * dw))) / max(abs(lhs), 1e-12))
    err = max(err, _rel(db, dy.astype(np.float64).sum(axis=(0, 1, 2))))
    return err


def _check_pool(rs):
    x = rs.standard_normal((2, 6, 6, 3), dtype=np.float32)
    win = x.astype(np.float64).reshape(2, 3, 2, 3, 2, 3)
    y, idx = ops.max_pool2d(x, 2)
    err = _rel(y, win.max(axis=(2, 4)))
    err = max(err, _rel(ops.avg_pool2d(x, 2), win.mean(axis=(2, 4))))
    dx = ops.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    err = max(err, abs(float(dx.sum()) - y.size) / y.size)
    err = max(err, _rel(x.reshape(-1)[idx], y))
    da = ops.avg_pool2d_backward(np.ones_like(y), x.shape, 2)
    return max(err, _rel(da, np.full(x.shape, 0.25)))


def _check_dense(rs):
    x = rs.standard_normal((5, 7), dtype=np.float32)
    w = rs.standard_normal((7, 3), dtype=np.float32)
    b = rs.standard_normal(3, dtype=np.float32)
    err = _rel(ops.dense(x, w, b), x.astype(np.float64) @ w + b)
    dy = rs.standard_normal((5, 3), dtype=np.float32)
    dx, dw, db = ops.dense_backward(dy, x, w)
    err = max(err, _rel(dx, dy.astype(np.float64) @ w.T.astype(np.float64)))
    err = max(err, _rel(dw, x.T.astype(np.float64) @ dy))
    return max(err, _rel(db, dy.astype(np.float64).sum(0)))


def _check_activations(rs):
    x = rs.standard_normal((4, 9), dtype=np.float32)
    x64 = x.astype(np.float64)
    dy = rs.standard_normal((4, 9), dtype=np.float32)
    sig = 1 / (1 + np.exp(-x64))
    sm = np.exp(x64 - x64.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    errs = [_rel(ops.relu(x), np.maximum(x64, 0)), _rel(ops.sigmoid(x), sig), _rel(ops.tanh(x), np.tanh(x64)),
            _rel(ops.softmax(x), sm), _rel(ops.relu_backward(dy, x), dy * (x64 > 0)),
            _rel(ops.sigmoid_backward(dy, x), dy * sig * (1 - sig)),
            _rel(ops.tanh_backward(dy, x), dy * (1 - np.tanh(x64) ** 2)),
            _rel(ops.softmax_backward(dy, sm.astype(np.float32)), sm * (dy - (dy * sm).sum(1, keepdims=True)))]
    return max(errs)


def _check_dropout(rs):
    x = np.ones((64, 100), np.float32)
    y, mask = ops.dropout(x, 0.25, 7)
    err = _rel(y, mask / 0.75)
    keep = mask.mean()
    err = max(err, 0.0 if abs(keep - 0.75) < 0.02 else 1.0)
    return max(err, _rel(ops.dropout_backward(x, mask, 0.25), mask / 0.75))


def _check_batch_norm(rs):
    x = rs.standard_normal((8, 3, 3, 4), dtype=np.float32) * 2 + 1
    g, b = np.full(4, 1.5, np.float32), np.full(4, 0.5, np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y, cache = ops.batch_norm(x, g, b, rm, rv, training=True)
    x64 = x.astype(np.float64).reshape(-1, 4)
    ref = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-3) * 1.5 + 0.5
    err = _rel(y.reshape(-1, 4), ref)
    err = max(err, _rel(rm, 0.01 * x64.mean(0)))
    dx, dg, db = ops.batch_norm_backward(np.ones_like(y), cache)
    err = max(err, _rel(db, np.full(4, x64.shape[0])))
    return max(err, float(np.max(np.abs(dx))) / 10)  # d(sum y)/dx is 0 for batch norm


def _check_losses(rs):
    logits = rs.standard_normal((6, 4), dtype=np.float32)
    labels = np.array([0, 3, 1, 2, 3, 0])
    l64 = logits.astype(np.float64)
    lse = np.log(np.exp(l64).sum(1))
    loss, d = ops.softmax_cross_entropy(logits, labels)
    err = abs(loss - float(np.mean(lse - l64[np.arange(6), labels]))) / abs(loss)
    p = np.exp(l64 - lse[:, None])
    p[np.arange(6), labels] -= 1
    err = max(err, _rel(d, p / 6))
    t = rs.standard_normal((6, 4), dtype=np.float32)
    m, dm = ops.mse(logits, t)
    err = max(err, abs(m - float(np.mean((l64 - t) ** 2))) / m, _rel(dm, 2 * (l64 - t) / t.size))
    a, da = ops.mae(logits, t)
    return max(err, abs(a - float(np.mean(np.abs(l64 - t)))) / a, _rel(da, np.sign(l64 - t) / t.size))


def _check_optimizers(rs):
    p0 = rs.standard_normal(40, dtype=np.float32)
    g = rs.standard_normal(40, dtype=np.float32)
    p, v = p0.copy(), np.zeros(40, np.float32)
    ops.sgd_update(p, g, v, lr=0.1, momentum=0.9)
    err = _rel(p, p0.astype(np.float64) - 0.1 * g)
    p, m, vv = p0.copy(), np.zeros(40, np.float32), np.zeros(40, np.float32)
    ops.adam_update(p, g, m, vv, lr=0.01, step=1)
    g64 = g.astype(np.float64)
    err = max(err, _rel(p, p0 - 0.01 * g64 / (np.abs(g64) + 1e-7)))
    p, ms = p0.copy(), np.zeros(40, np.float32)
    ops.rmsprop_update(p, g, ms, lr=0.01)
    err = max(err, _rel(p, p0 - 0.01 * g64 / np.sqrt(0.1 * g64 ** 2 + 1e-7)))
    return max(err, abs(ops.global_norm([g]) - float(np.linalg.norm(g64))) / float(np.linalg.norm(g64)))


CHECKS = [("gemm", _check_gemm), ("conv2d fwd/bwd", _check_conv), ("pooling fwd/bwd", _check_pool),
          ("dense fwd/bwd", _check_dense), ("activations fwd/bwd", _check_activations),
          ("dropout fwd/bwd", _check_dropout), ("batch norm fwd/bwd", _check_batch_norm),
          ("losses + gradients", _check_losses), ("optimizer updates", _check_optimizers)]


def run(verbose=True) -> bool:
    rs = np.random.default_rng(0)
    ok = True
    t0 = time.perf_counter()
    for name, fn in CHECKS:
        try:
            err = fn(rs)
            good = err <= TOL
        except Exception as exc:  # report, don't hide
            err, good = float("nan"), False
            if verbose:
                print(f"  {name:22s} ERROR {type(exc).__name__}: {exc}")
        ok &= good
        if verbose and err == err:
            print(f"  {name:22s} max rel err {err:.1e}  {'ok' if good else 'FAIL'}")
    if verbose:
        print(f"self-check {'passed' if ok else 'FAILED'} ({len(CHECKS)} kernel families, "
              f"{(time.perf_counter() - t0) * 1e3:.0f} ms)")
    return ok
