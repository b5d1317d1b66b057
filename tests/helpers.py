"""Shared test helpers (in the spirit of tinygrad's helper_test_op).

compare(...)   float32 result vs float64 reference with the project's rule:
               max |err| <= rtol * max(|reference|, floor).
fd_grad(...)   central finite differences of sum(f(x) * dy) in float64 over a
               float64 reference or in float32 over a fastnn op.
same_bits(...) bitwise equality, for determinism tests.
"""
from __future__ import annotations

import contextlib

import numpy as np

import fastnn

RTOL = 1e-4  # DESIGN/issue: max error <= 1e-4 x the output's largest magnitude


def compare(actual, expected, rtol=RTOL, name="output", floor=1e-6):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != reference {expected.shape}"
    if expected.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), floor)
    err = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    assert err <= rtol * scale, f"{name}: max error {err:.3e} > {rtol:.0e} x {scale:.3e}"
    return err / scale


def fd_grad(f, x, dy, eps=1e-3, coords=None):
    """d/dx of sum(f(x) * dy) by central differences (float64 arithmetic).

    f maps an array shaped like x to an array shaped like dy. coords: a list of
    flat indices to probe (default: all)."""
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)
    idx = range(flat.size) if coords is None else coords
    g = np.zeros(flat.size)
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        fp = np.sum(np.asarray(f(x.reshape(x.shape)), dtype=np.float64) * dy)
        flat[i] = old - eps
        fm = np.sum(np.asarray(f(x.reshape(x.shape)), dtype=np.float64) * dy)
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g.reshape(x.shape)


def fd_check(f, x, dy, analytic, eps=1e-2, rtol=2e-2, n_coords=40, seed=0, name="grad"):
    """Finite-difference check of an analytic gradient at a random subset of coordinates.

    f runs the float32 fastnn op; eps is large enough for float32 round-off to
    stay well under rtol."""
    rs = np.random.default_rng(seed)
    size = int(np.prod(np.shape(x)))
    coords = rs.choice(size, size=min(n_coords, size), replace=False)
    num = fd_grad(f, x, dy, eps=eps, coords=coords).reshape(-1)[coords]
    ana = np.asarray(analytic, dtype=np.float64).reshape(-1)[coords]
    scale = max(np.max(np.abs(num)), np.max(np.abs(ana)), 1e-3)
    err = np.max(np.abs(num - ana))
    assert err <= rtol * scale, f"{name}: finite-difference mismatch {err:.3e} > {rtol} x {scale:.3e}"


def same_bits(a, b, name="output"):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, name
    assert a.tobytes() == b.tobytes(), f"{name}: results differ bitwise"


@contextlib.contextmanager
def threads(n):
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(n)
    try:
        yield
    finally:
        fastnn.set_num_threads(old)


def f32(rs, *shape, scale=1.0):
    return (rs.standard_normal(shape) * scale).astype(np.float32)
