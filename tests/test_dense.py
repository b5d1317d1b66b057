"""dense / dense_backward / _core.dense_relu vs float64 references, finite
differences, PyTorch, bad input and thread determinism."""
import numpy as np
import pytest

import fastnn
from fastnn import _core, ops

import reference as ref
from helpers import compare, f32, fd_check, same_bits, threads

# (x shape, units O)
SHAPES = [
    ((1, 1), 1),
    ((1, 7), 3),
    ((2, 3), 5),
    ((5, 17), 9),
    ((33, 64), 10),
    ((0, 8), 4),          # empty batch
    ((7, 300), 33),       # K > GEMM K block (256)
    ((3, 4, 6), 5),       # rank-3 x (N, T, I)
    ((2, 3, 2, 5), 7),    # rank-4
    ((0, 3, 6), 2),       # empty batch, rank 3
]


@pytest.mark.parametrize("xshape,units", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_reference(xshape, units, bias):
    rs = np.random.default_rng(1)
    x = f32(rs, *xshape)
    w = f32(rs, xshape[-1], units, scale=0.3)
    b = f32(rs, units) if bias else None
    y = ops.dense(x, w, b)
    assert y.dtype == np.float32 and y.shape == xshape[:-1] + (units,)
    compare(y, ref.dense(x, w, b), name="y")
    yr = _core.dense_relu(x, w, b)
    compare(yr, ref.dense(x, w, b, relu=True), name="relu y")
    assert np.all(yr >= 0)


@pytest.mark.parametrize("xshape,units", SHAPES)
def test_dense_backward_reference(xshape, units):
    rs = np.random.default_rng(2)
    x = f32(rs, *xshape)
    w = f32(rs, xshape[-1], units, scale=0.3)
    dy = f32(rs, *xshape[:-1], units)
    dx, dw, db = ops.dense_backward(dy, x, w)
    rdx, rdw, rdb = ref.dense_backward(dy, x, w)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    compare(dx, rdx, name="dx")
    if x.size == 0:  # empty batch: zero gradients of the right shape
        assert dw.shape == w.shape and not dw.any()
        assert db.shape == (units,) and not db.any()
    else:
        compare(dw, rdw, name="dw")
        compare(db, rdb, name="db")


def test_dense_backward_flags():
    rs = np.random.default_rng(3)
    x, w, dy = f32(rs, 4, 5), f32(rs, 5, 3), f32(rs, 4, 3)
    dx, dw, db = ops.dense_backward(dy, x, w, need_dx=False)
    assert dx is None and dw.shape == (5, 3) and db.shape == (3,)
    dx2, dw2, db2 = ops.dense_backward(dy, x, w, need_db=False)
    assert db2 is None and dx2.shape == x.shape
    same_bits(dw, dw2, "dw")
    dx3, dw3, db3 = ops.dense_backward(dy, x, w, need_dx=False, need_db=False)
    assert dx3 is None and db3 is None
    same_bits(dw, dw3, "dw")


def test_dense_large_db_rows():
    # Many rows and many columns: db is accumulated in double per column.
    rs = np.random.default_rng(4)
    dy = (rs.standard_normal((3000, 130)) + 100.0).astype(np.float32)
    x = f32(rs, 3000, 2)
    w = f32(rs, 2, 130)
    _, _, db = ops.dense_backward(dy, x, w)
    compare(db, dy.astype(np.float64).sum(axis=0), rtol=1e-6, name="db")


@pytest.mark.parametrize("xshape", [(3, 4), (2, 3, 5)])
def test_dense_finite_differences(xshape):
    rs = np.random.default_rng(5)
    units = 3
    x = f32(rs, *xshape)
    w = f32(rs, xshape[-1], units)
    b = f32(rs, units)
    dy = f32(rs, *xshape[:-1], units)
    dx, dw, db = ops.dense_backward(dy, x, w)
    fd_check(lambda v: ops.dense(v, w, b), x, dy, dx, name="dx")
    fd_check(lambda v: ops.dense(x, v, b), w, dy, dw, name="dw")
    fd_check(lambda v: ops.dense(x, w, v), b, dy, db, name="db")


def test_dense_batch_size_invariance():
    rs = np.random.default_rng(6)
    x = f32(rs, 37, 300)
    w = f32(rs, 300, 70)
    b = f32(rs, 70)
    y = ops.dense(x, w, b)
    yr = _core.dense_relu(x, w, b)
    for i in (0, 1, 17, 36):
        same_bits(y[i:i + 1], ops.dense(x[i:i + 1], w, b), f"row {i}")
        same_bits(yr[i:i + 1], _core.dense_relu(x[i:i + 1], w, b), f"relu row {i}")
    same_bits(y[5:20], ops.dense(x[5:20], w, b), "rows 5:20")


def test_dense_threads_bitwise():
    rs = np.random.default_rng(7)
    x = f32(rs, 300, 257)
    w = f32(rs, 257, 190)
    b = f32(rs, 190)
    dy = f32(rs, 300, 190)
    out = []
    for n in (1, 2):
        with threads(n):
            out.append((ops.dense(x, w, b), _core.dense_relu(x, w, b), *ops.dense_backward(dy, x, w)))
    for a, b_, name in zip(out[0], out[1], ["y", "relu", "dx", "dw", "db"]):
        same_bits(a, b_, name)


def test_dense_accepts_other_inputs():
    rs = np.random.default_rng(8)
    x = rs.standard_normal((6, 4))                    # float64
    w = np.asfortranarray(rs.standard_normal((4, 3)))  # Fortran order
    b = np.arange(3)                                   # int
    xs = np.asarray(x[::-1], dtype=np.float32)[::-1]    # negative stride
    y = ops.dense(x, w, b)
    compare(y, ref.dense(x.astype(np.float32), w.astype(np.float32), b), name="y")
    same_bits(ops.dense(xs, w, b), y)
    x.setflags(write=False)
    same_bits(ops.dense(x, w, b), y)


def test_dense_nan_passes_through():
    x = np.array([[np.nan, 1.0], [1.0, 2.0]], np.float32)
    w = np.ones((2, 2), np.float32)
    y = ops.dense(x, w)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()
    assert np.isnan(_core.dense_relu(x, w)[0]).all()


@pytest.mark.parametrize("bad", [np.zeros((2, 3), bool), np.zeros((2, 3), complex),
                                 np.zeros((2, 3), object), "abc"])
def test_dense_bad_dtype(bad):
    w = np.zeros((3, 2), np.float32)
    with pytest.raises(TypeError, match="x"):
        ops.dense(bad, w)
    with pytest.raises(TypeError, match="w"):
        ops.dense(np.zeros((2, 3), np.float32), bad if not isinstance(bad, str) else bad)
    with pytest.raises(TypeError, match="dy"):
        ops.dense_backward(bad, np.zeros((2, 3), np.float32), w)


def test_dense_bad_shapes():
    x = np.zeros((2, 3), np.float32)
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="x"):
        ops.dense(np.zeros(3, np.float32), w)              # rank 1
    with pytest.raises(ValueError, match="w"):
        ops.dense(x, np.zeros((4, 4), np.float32))         # I mismatch
    with pytest.raises(ValueError, match="w"):
        ops.dense(x, np.zeros((3,), np.float32))           # w rank 1
    with pytest.raises(ValueError, match="w"):
        ops.dense(x, np.zeros((3, 0), np.float32))         # zero units
    with pytest.raises(ValueError, match="x"):
        ops.dense(np.zeros((2, 0), np.float32), np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="x"):
        ops.dense(np.zeros((2, 0, 3), np.float32), w)      # zero non-batch dim
    with pytest.raises(ValueError, match="b"):
        ops.dense(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="b"):
        ops.dense(x, w, np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="dy"):
        ops.dense_backward(np.zeros((2, 5), np.float32), x, w)
    with pytest.raises(ValueError, match="dy"):
        ops.dense_backward(np.zeros((3, 4), np.float32), x, w)
    with pytest.raises(ValueError, match="w"):
        ops.dense_backward(np.zeros((2, 4), np.float32), x, np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError):
        ops.dense_backward(np.zeros((2, 4), np.float32), x, w, True)  # flags are keyword-only


@pytest.mark.torch
@pytest.mark.parametrize("xshape,units", [((4, 9), 5), ((2, 3, 7), 6), ((1, 300), 2)])
def test_dense_vs_torch(xshape, units):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(9)
    x = f32(rs, *xshape)
    w = f32(rs, xshape[-1], units)
    b = f32(rs, units)
    dy = f32(rs, *xshape[:-1], units)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w.T.copy(), dtype=torch.float64, requires_grad=True)  # torch (O, I)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ty = F.linear(tx, tw, tb)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    compare(ops.dense(x, w, b), ty.detach().numpy(), name="y")
    compare(_core.dense_relu(x, w, b), torch.relu(ty).detach().numpy(), name="relu y")
    dx, dw, db = ops.dense_backward(dy, x, w)
    compare(dx, tx.grad.numpy(), name="dx")
    compare(dw, tw.grad.numpy().T, name="dw")
    compare(db, tb.grad.numpy(), name="db")
