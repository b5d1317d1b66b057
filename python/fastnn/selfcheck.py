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


CHECKS = [("gemm", _check_gemm), ("conv2d fwd/bwd", _check_conv)]


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
