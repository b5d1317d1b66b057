"""Denormals: kernels run with flush-to-zero / denormals-are-zero (MXCSR FTZ|DAZ) on the
calling thread and on every OpenMP thread of the team, and restore each thread's state
afterwards, so the caller's floating-point environment is unchanged."""
import os
import sys

import numpy as np
import pytest

from fastnn import _core, ops
from helpers import compare, same_bits, threads

sys.path.insert(0, os.path.dirname(__file__))
import bad_input_matrix  # noqa: E402

x86 = pytest.mark.skipif(_core._fp_state()["mxcsr"] == 0, reason="MXCSR is x86 only")
FTZ, DAZ = 0x8000, 0x0040
TINY = np.float32(1e-39)  # subnormal in float32


def _numpy_keeps_denormals():
    """With FTZ/DAZ leaked into the caller, NumPy's own float32 arithmetic would flush."""
    a = np.full(4, TINY, np.float32)
    return bool(np.all(a * np.float32(1.0) == a)) and bool(np.all(a + a > 0))


@x86
@pytest.mark.parametrize("n", [1, 2])
def test_caller_and_team_state_unchanged_after_every_op(n):
    with threads(n):
        before = _core._fp_state()
        team_before = _core._fp_state_of_team(False)
        assert not before["ftz"] and not before["daz"]
        for name, fn, args, kw in bad_input_matrix._valid_calls():
            fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kw)
            after = _core._fp_state()
            assert (after["mxcsr"] & (FTZ | DAZ)) == (before["mxcsr"] & (FTZ | DAZ)), name
        assert [w & (FTZ | DAZ) for w in _core._fp_state_of_team(False)] == [w & (FTZ | DAZ) for w in team_before]
        assert _numpy_keeps_denormals()


@x86
@pytest.mark.parametrize("n", [1, 2])
def test_kernels_see_ftz_daz_on_every_team_thread(n):
    with threads(n):
        inside = _core._fp_state_of_team(True)
        assert len(inside) == n
        assert all(w & FTZ and w & DAZ for w in inside), [hex(w) for w in inside]
        assert not any(w & (FTZ | DAZ) for w in _core._fp_state_of_team(False))
        assert not _core._fp_state()["ftz"]


@x86
def test_kernel_after_an_error_restores_the_state():
    with pytest.raises(ValueError):
        ops.conv2d(np.zeros((1, 2, 2, 1), np.float32), np.zeros((3, 3, 1, 1), np.float32), padding="valid")
    assert not _core._fp_state()["ftz"] and _numpy_keeps_denormals()


@x86
def test_denormal_inputs_follow_ftz_semantics_and_match_the_reference():
    """Subnormal inputs are read as zero (DAZ) and subnormal arithmetic results are flushed (FTZ);
    comparisons may pass a subnormal through:
    the float32 results stay within the usual tolerance of the float64 reference (whose
    values are ~1e-38 or below) and are bitwise identical for 1 and 2 threads."""
    rs = np.random.default_rng(0)
    x = (rs.standard_normal((4, 12, 12, 3)) * 1e-39).astype(np.float32)   # mostly subnormal
    assert np.count_nonzero(np.abs(x) < np.finfo(np.float32).tiny) > x.size // 2
    w = rs.standard_normal((3, 3, 3, 5)).astype(np.float32)
    dense_w = rs.standard_normal((12, 7)).astype(np.float32)
    res = {}
    for n in (1, 2):
        with threads(n):
            y = ops.conv2d(x, w, padding=1)
            d = ops.dense(x[:, 0, :, 0], dense_w)
            r = ops.relu(x)
            s = ops.sigmoid(x)
            res[n] = (y, d, r, s)
    for a, b in zip(res[1], res[2]):
        same_bits(a, b)
    y, d, r, s = res[1]
    x64 = x.astype(np.float64)
    assert not np.any(y) and not np.any(d), "DAZ: subnormal inputs act as zeros"
    # comparisons (relu, max-pool) may pass a subnormal through unchanged (x86 max with
    # DAZ returns an operand as is); it stays within tolerance of the reference
    compare(r, np.maximum(x64, 0))
    compare(s, 1 / (1 + np.exp(-x64)))
    compare(d, x64[:, 0, :, 0] @ dense_w)   # reference is ~1e-38: within rtol x floor
    # a product that underflows to a subnormal is flushed to zero (FTZ)
    small = np.full((2, 3), 1e-20, np.float32)
    out = ops.dense(small, np.full((3, 2), 1e-19, np.float32))
    assert np.all(out == 0.0)
    assert _numpy_keeps_denormals()
