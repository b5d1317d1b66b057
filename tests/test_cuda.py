"""The CUDA path: fastnn.cuda, the GPU Array, and every CUDA twin of fastnn.ops.

Two kinds of tests:
- device-independent ones (run everywhere, GPU or not): importing fastnn never
  loads the CUDA module, is_available()/build_info() agree, and GPU entry points
  raise a clear RuntimeError when CUDA cannot be used;
- kernel tests parametrized over devices ("cpu", "cuda"); the "cuda" cases are
  marked `cuda` and skip cleanly when fastnn.cuda.is_available() is False. Each
  runs the op where the data lives and checks it against the float64 reference
  in tests/reference.py with the project's rule (max error <= 1e-4 x the largest
  reference magnitude, helpers.compare), and the CUDA-only tests compare GPU and
  CPU results (bitwise where the kernels promise it: dropout masks, relu, pools,
  argmax indices; 1e-6 relative for the optimizer updates).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from helpers import compare, same_bits

import fastnn
import fastnn.cuda as fc
from fastnn import ops

HAVE_GPU = fc.is_available()
needs_gpu = [pytest.mark.cuda, pytest.mark.skipif(not HAVE_GPU, reason="no CUDA device (or fastnn built without CUDA)")]
DEVICES = ["cpu", pytest.param("cuda", marks=needs_gpu)]
F = np.float32


def to_dev(a, device):
    return fc.asarray(a) if device == "cuda" else a


def host(a):
    """numpy view of an op result from either device."""
    return a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else np.asarray(a)


def rnd(rs, *shape):
    return rs.standard_normal(shape).astype(F)


class FakeGpuArray:
    """Claims to be GPU memory; never dereferenced (tests of dispatch and errors)."""

    __cuda_array_interface__ = {"shape": (2,), "typestr": "<f4", "data": (0, False), "version": 3}


# ---------------------------------------------------------------------------
# device-independent: run on every machine


def test_import_does_not_load_cuda_module():
    code = "import sys, fastnn, fastnn.ops, fastnn.cuda; print('fastnn._cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    assert out.stdout.strip() == "False"


def test_build_info_and_is_available_agree():
    info = fastnn.build_info()["cuda"]
    if info is False:
        assert fc.is_available() is False
        assert fc.device_count() == 0
        return
    assert set(info) == {"archs", "runtime", "devices"}
    assert "sm_80" in info["archs"] and "sm_90" in info["archs"]
    major, minor = info["runtime"].split(".")
    assert int(major) >= 11 and minor.isdigit()
    assert info["devices"] == fc.device_count()
    assert fc.is_available() == (info["devices"] > 0)


def test_device_count_never_raises():
    n = fc.device_count()
    assert isinstance(n, int) and n >= 0


@pytest.mark.skipif(HAVE_GPU, reason="checks the no-GPU behaviour")
def test_entry_points_raise_clear_error_without_gpu():
    for call in (lambda: fc.asarray(np.zeros(3, F)), lambda: fc.zeros((2, 2)), lambda: fc.from_dlpack(np.zeros(3)),
                 lambda: fc.matmul(None, None), lambda: fc.synchronize()):
        with pytest.raises(RuntimeError, match="without CUDA|no CUDA device"):
            call()


@pytest.mark.skipif(HAVE_GPU, reason="checks the no-GPU behaviour")
def test_ops_dispatch_gpu_objects_and_fail_clearly_without_gpu():
    with pytest.raises(RuntimeError, match=r"ops\.relu: .*(without CUDA|no CUDA device)"):
        ops.relu(FakeGpuArray())
    with pytest.raises(RuntimeError, match=r"ops\.conv2d"):
        ops.conv2d(x=FakeGpuArray(), w=None)
    with pytest.raises(RuntimeError, match=r"ops\.global_norm"):
        ops.global_norm([FakeGpuArray()])


def test_ops_without_cuda_twin_reject_gpu_objects():
    with pytest.raises(TypeError, match="no CUDA kernel for lstm_forward"):
        ops.lstm_forward(FakeGpuArray(), None, None, None)
    with pytest.raises(TypeError, match="no CUDA kernel for gru_backward"):
        ops.gru_backward(dh_seq=FakeGpuArray(), cache=None)


def test_cpu_path_unchanged_for_host_inputs():
    x = np.array([[-1.0, 2.0]], F)
    same_bits(ops.relu(x), fastnn._core.relu(x))
    same_bits(ops.relu(x=[[-1.0, 2.0]]), fastnn._core.relu(x))  # list, by keyword
    with pytest.raises(TypeError):
        ops.relu(None)
    with pytest.raises(TypeError):
        ops.relu()
    assert ops.relu.__name__ == "relu" and ops.relu.__doc__ == fastnn._core.relu.__doc__


def test_array_placeholder_without_cuda_module():
    if fastnn.build_info()["cuda"] is not False:
        pytest.skip("the CUDA module is built")
    assert not isinstance(np.zeros(2), fc.Array)
    with pytest.raises(RuntimeError, match="without CUDA"):
        fc.Array((2,))


# ---------------------------------------------------------------------------
# the GPU Array (cuda only)


@pytest.mark.cuda
@pytest.mark.skipif(not HAVE_GPU, reason="no CUDA device")
class TestArray:
    @pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "uint8"])
    def test_round_trip(self, dtype):
        a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
        d = fc.asarray(a)
        assert isinstance(d, fc.Array)
        assert d.shape == (2, 3, 4) and d.dtype == np.dtype(dtype) and d.ndim == 3 and d.size == 24
        assert d.nbytes == a.nbytes and len(d) == 2
        same_bits(d.numpy(), a)
        same_bits(d.copy().numpy(), a)
        same_bits(d.reshape(6, -1).numpy(), a.reshape(6, 4))

    def test_host_dtype_rules(self):
        assert fc.asarray(np.zeros(3, np.float64)).dtype == np.float32
        assert fc.asarray(np.zeros(3, bool)).dtype == np.uint8
        assert fc.asarray(np.zeros(3, np.int16)).dtype == np.int64
        assert fc.asarray([1, 2, 3], dtype="int32").dtype == np.int32
        with pytest.raises(TypeError):
            fc.asarray(np.zeros(3, complex))
        with pytest.raises(TypeError):
            fc.asarray(np.zeros(3), dtype="float64")
        same_bits(fc.asarray(np.zeros((0, 3), F)).numpy(), np.zeros((0, 3), F))

    def test_cuda_array_interface(self):
        d = fc.asarray(np.ones((2, 5), F))
        cai = d.__cuda_array_interface__
        assert cai["shape"] == (2, 5) and cai["typestr"] == "<f4" and cai["version"] == 3
        assert cai["data"][0] == d.ptr and cai["strides"] is None
        again = fc.asarray(d)
        assert again is d

    def test_zeros_and_oom(self):
        same_bits(fc.zeros((3, 2)).numpy(), np.zeros((3, 2), F))
        with pytest.raises(MemoryError):
            fc.empty((2 ** 40,))  # 4 TiB
        with pytest.raises((MemoryError, ValueError)):
            fc.empty((2 ** 62, 2 ** 62))

    def test_torch_interop(self):
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch without CUDA")
        t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
        d = fc.asarray(t)                       # __cuda_array_interface__, no copy
        assert d.ptr == t.data_ptr()
        d2 = fc.from_dlpack(t)                  # DLPack, no copy
        assert d2.ptr == t.data_ptr()
        t.add_(1)
        same_bits(d2.numpy(), t.cpu().numpy())
        tt = t.t()                               # strided: copied once, contiguous
        same_bits(fc.asarray(tt).numpy(), tt.cpu().numpy())
        same_bits(fc.from_dlpack(tt).numpy(), tt.cpu().numpy())
        back = torch.from_dlpack(ops.relu(d))   # out again without a copy
        assert back.is_cuda and torch.equal(back, torch.relu(t))
        assert torch.as_tensor(d, device="cuda").data_ptr() == d.ptr
        with pytest.raises(ValueError, match="CUDA tensor"):
            fc.from_dlpack(torch.zeros(3))

    def test_cupy_interop(self):
        cp = pytest.importorskip("cupy")
        c = cp.arange(10, dtype=cp.float32)
        d = fc.asarray(c)
        assert d.ptr == c.data.ptr
        back = cp.asarray(ops.relu(d))
        assert cp.asnumpy(back).tolist() == list(range(10))
        assert cp.from_dlpack(d).data.ptr == d.ptr

    def test_mixed_devices_raise_type_error(self):
        d = fc.asarray(np.ones((2, 3), F))
        with pytest.raises(TypeError, match="w: expected a GPU array"):
            ops.dense(d, np.ones((3, 4), F))
        with pytest.raises(TypeError, match="float32"):
            ops.relu(fc.asarray(np.ones(3, np.int32)))


# ---------------------------------------------------------------------------
# kernels on every device vs the float64 reference

CONV_CASES = [
    # x shape, w shape, stride, padding
    ((2, 8, 8, 3), (3, 3, 3, 5), 1, "same"),
    ((1, 7, 9, 4), (3, 2, 4, 8), 2, "valid"),
    ((3, 6, 5, 1), (5, 5, 1, 32), 1, 2),
    ((2, 9, 7, 6), (3, 3, 6, 70), (2, 1), (1, 0)),   # K > 64: two column tiles
    ((1, 28, 28, 1), (5, 5, 1, 32), 1, "same"),      # the workbook's first layer
    ((2, 14, 14, 32), (3, 3, 32, 64), 1, "same"),    # C % 4 == 0: float4 gathers
    ((0, 5, 5, 2), (3, 3, 2, 4), 1, "same"),         # empty batch
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"{c[0]}-{c[1]}-s{c[2]}-p{c[3]}" for c in CONV_CASES])
def test_conv2d_forward_backward(device, case):
    xs, ws, stride, padding = case
    rs = np.random.default_rng(0)
    x, w, b = rnd(rs, *xs), rnd(rs, *ws), rnd(rs, ws[3])
    y = host(ops.conv2d(to_dev(x, device), to_dev(w, device), to_dev(b, device), stride=stride, padding=padding))
    compare(y, ref.conv2d(x, w, b, stride, padding), name="y")
    dy = rnd(rs, *y.shape)
    dx, dw, db = ops.conv2d_backward(to_dev(dy, device), to_dev(x, device), to_dev(w, device), stride=stride,
                                     padding=padding)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, stride, padding)
    compare(host(dx), rdx, name="dx")
    compare(host(dw), rdw, name="dw")
    compare(host(db), rdb, name="db")


POOL_CASES = [
    ((2, 7, 5, 3), 2, None, 0),
    ((2, 7, 5, 3), 3, 2, 1),
    ((2, 7, 5, 2), (2, 3), (2, 1), (1, 0)),
    ((3, 6, 6, 5), 3, 1, 1),
    ((1, 5, 7, 3), 2, 3, 0),
    ((0, 5, 5, 3), 2, None, 0),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", POOL_CASES, ids=[str(c) for c in POOL_CASES])
def test_pools(device, case):
    xs, pool, stride, padding = case
    rs = np.random.default_rng(1)
    x = rnd(rs, *xs)
    x.reshape(-1)[::7] = 0.5  # ties
    kw = dict(stride=stride, padding=padding)
    y, idx = ops.max_pool2d(to_dev(x, device), pool, **kw)
    ry, ridx = ref.max_pool2d(x, pool, stride, padding)
    compare(host(y), ry, name="max y")
    same_bits(host(idx), ridx, name="idx")
    dy = rnd(rs, *ry.shape)
    dx = ops.max_pool2d_backward(to_dev(dy, device), idx, xs)
    compare(host(dx), ref.max_pool2d_backward(dy, ridx, xs), name="max dx")
    for cip in (False, True):
        ya = ops.avg_pool2d(to_dev(x, device), pool, count_include_pad=cip, **kw)
        compare(host(ya), ref.avg_pool2d(x, pool, stride, padding, cip), name="avg y")
        dxa = ops.avg_pool2d_backward(to_dev(dy, device), xs, pool, count_include_pad=cip, **kw)
        compare(host(dxa), ref.avg_pool2d_backward(dy, xs, pool, stride, padding, cip), name="avg dx")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rows,inp,out", [(1, 3, 1), (86, 784, 256), (33, 130, 10), (5, 4, 67), (0, 8, 3),
                                          (7, 2000, 5)])
def test_dense(device, rows, inp, out):
    rs = np.random.default_rng(2)
    x, w, b, dy = rnd(rs, rows, inp), rnd(rs, inp, out), rnd(rs, out), rnd(rs, rows, out)
    y = ops.dense(to_dev(x, device), to_dev(w, device), to_dev(b, device))
    compare(host(y), ref.dense(x, w, b), name="y")
    dx, dw, db = ops.dense_backward(to_dev(dy, device), to_dev(x, device), to_dev(w, device))
    rdx, rdw, rdb = ref.dense_backward(dy, x, w)
    compare(host(dx), rdx, name="dx")
    compare(host(dw), rdw, name="dw")
    compare(host(db), rdb, name="db")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations(device, name):
    rs = np.random.default_rng(3)
    x = rnd(rs, 3, 1001) * 6
    x[0, :4] = [0.0, -0.0, 40.0, -40.0]
    dy = rnd(rs, 3, 1001)
    y = getattr(ops, name)(to_dev(x, device))
    compare(host(y), getattr(ref, name)(x), name=name)
    dx = getattr(ops, name + "_backward")(to_dev(dy, device), to_dev(x, device))
    compare(host(dx), getattr(ref, name + "_backward")(dy, x), name=name + "_backward")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((3, 5, 7), 1), ((2, 3, 4), 0), ((2, 1000), -1)])
def test_softmax(device, shape, axis):
    rs = np.random.default_rng(4)
    x, dy = rnd(rs, *shape) * 4, rnd(rs, *shape)
    y = host(ops.softmax(to_dev(x, device), axis=axis))
    compare(y, ref.softmax(x, axis), name="softmax")
    dx = ops.softmax_backward(to_dev(dy, device), to_dev(y, device), axis=axis)
    compare(host(dx), ref.softmax_backward(dy, y, axis), name="softmax_backward")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8, "onehot"])
def test_softmax_cross_entropy(device, label_dtype):
    rs = np.random.default_rng(5)
    logits = rnd(rs, 86, 10) * 3
    labels = rs.integers(0, 10, 86)
    lab = np.eye(10, dtype=F)[labels] if label_dtype == "onehot" else labels.astype(label_dtype)
    loss, d = ops.softmax_cross_entropy(to_dev(logits, device), to_dev(lab, device))
    rloss, rd = ref.softmax_cross_entropy(logits, lab)
    assert abs(loss - rloss) <= 1e-5 * max(1.0, abs(rloss))
    compare(host(d), rd, name="dlogits")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["mse", "mae"])
def test_pointwise_losses(device, name):
    rs = np.random.default_rng(6)
    p, t = rnd(rs, 40000), rnd(rs, 40000)  # more than one 16384-element chunk
    loss, d = getattr(ops, name)(to_dev(p, device), to_dev(t, device))
    rloss, rd = getattr(ref, name)(p, t)
    assert abs(loss - rloss) <= 1e-6 * max(1.0, abs(rloss))
    compare(host(d), rd, name="dpred")


@pytest.mark.parametrize("device", DEVICES)
def test_dropout(device):
    rs = np.random.default_rng(7)
    x, dy = rnd(rs, 16, 30), rnd(rs, 16, 30)
    y, mask = ops.dropout(to_dev(x, device), 0.3, 1234, sample_offset=5)
    y, mask = host(y), host(mask)
    compare(y, ref.dropout_apply(x, mask, 0.3), name="y")
    assert 0.2 < 1 - mask.mean() < 0.4
    dx = ops.dropout_backward(to_dev(dy, device), to_dev(mask, device), 0.3)
    compare(host(dx), ref.dropout_apply(dy, mask, 0.3), name="dx")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 5, 4, 3), (2000, 7), (0, 4)])
def test_batch_norm(device, training, shape):
    rs = np.random.default_rng(14)
    C = shape[-1]
    x, dy = rnd(rs, *shape) * 3 + 1, rnd(rs, *shape)
    gamma, beta = rnd(rs, C), rnd(rs, C)
    rm, rv = rnd(rs, C), np.abs(rnd(rs, C)) + 0.5
    y_ref, rm_ref, rv_ref = ref.batch_norm(x, gamma, beta, rm, rv, training)
    drm, drv = to_dev(rm.copy(), device), to_dev(rv.copy(), device)
    y, cache = ops.batch_norm(to_dev(x, device), to_dev(gamma, device), to_dev(beta, device), drm, drv,
                              training=training)
    compare(host(y), y_ref, name="y")
    compare(host(drm), rm_ref, name="running_mean")
    compare(host(drv), rv_ref, name="running_var")
    dx, dgamma, dbeta = ops.batch_norm_backward(to_dev(dy, device), cache)
    rdx, rdg, rdb = ref.batch_norm_backward(dy, x, gamma, rm, rv, training)
    compare(host(dx), rdx, name="dx", rtol=2e-4)
    compare(host(dgamma), rdg, name="dgamma")
    compare(host(dbeta), rdb, name="dbeta")


OPT_CASES = [
    ("sgd_update", ref.sgd, 1, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_update", ref.sgd, 0, dict(lr=0.1)),
    ("rmsprop_update", ref.rmsprop, 1, dict(lr=1e-3, rho=0.9)),
    ("adam_update", ref.adam, 2, dict(lr=1e-3, step=3, weight_decay=0.004)),
    ("adagrad_update", ref.adagrad, 1, dict(lr=0.01)),
    ("adadelta_update", ref.adadelta, 2, dict(lr=1.0)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", OPT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPT_CASES)])
def test_optimizer_updates(device, case):
    name, reference, n_states, kw = case
    rs = np.random.default_rng(8)
    p, g = rnd(rs, 20000), rnd(rs, 20000)
    states = [np.abs(rnd(rs, 20000)) for _ in range(n_states)]
    expected = reference(p, g, *states, **kw)
    dp, dstates = to_dev(p.copy(), device), [to_dev(s.copy(), device) for s in states]
    assert getattr(ops, name)(dp, to_dev(g, device), *dstates, **kw) is None
    got = [host(dp)] + [host(s) for s in dstates]
    exp = expected if isinstance(expected, tuple) else (expected,)
    for i, (a, e) in enumerate(zip(got, exp)):
        compare(a, e, name=f"{name} output {i}")


@pytest.mark.parametrize("device", DEVICES)
def test_clipping_helpers(device):
    rs = np.random.default_rng(9)
    arrays = [rnd(rs, 100000), rnd(rs, 3, 3)]
    norm = ops.global_norm([to_dev(a, device) for a in arrays])
    assert abs(norm - ref.global_norm(arrays)) <= 1e-9 * norm
    g = to_dev(arrays[0].copy(), device)
    ops.clip_by_value_(g, 0.5)
    compare(host(g), ref.clip_by_value(arrays[0], 0.5), name="clip")
    ops.scale_(g, 0.25)
    compare(host(g), ref.clip_by_value(arrays[0], 0.5) * 0.25, name="scale")


# ---------------------------------------------------------------------------
# CUDA only: agreement with the CPU kernels, determinism, GEMM shapes, bad input

gpu = pytest.mark.cuda
skip_no_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no CUDA device")


@gpu
@skip_no_gpu
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (64, 64, 16), (65, 63, 17), (130, 70, 3), (5, 7, 100000),
                                   (300, 257, 1000), (2, 300, 4096)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_shapes(m, n, k, ta, tb):
    rs = np.random.default_rng(10)
    a = rnd(rs, *((k, m) if ta else (m, k)))
    b = rnd(rs, *((n, k) if tb else (k, n)))
    c = fc.matmul(fc.asarray(a), fc.asarray(b), transpose_a=ta, transpose_b=tb).numpy()
    compare(c, ref.matmul(a.T if ta else a, b.T if tb else b), name="c")


@gpu
@skip_no_gpu
def test_bitwise_agreement_with_cpu():
    rs = np.random.default_rng(11)
    x = rnd(rs, 4, 12, 12, 6)
    for fn, kw in ((ops.relu, {}), (ops.max_pool2d, dict(pool=3, stride=2, padding=1)),
                   (ops.avg_pool2d, dict(pool=2)), (ops.dropout, dict(rate=0.4, seed=99, sample_offset=3))):
        args = (x,) if fn is not ops.dropout else (x, kw.pop("rate"), kw.pop("seed"))
        gargs = (fc.asarray(x),) + args[1:]
        cpu, gpu_out = fn(*args, **kw), fn(*gargs, **kw)
        cpu = cpu if isinstance(cpu, tuple) else (cpu,)
        gpu_out = gpu_out if isinstance(gpu_out, tuple) else (gpu_out,)
        for c, g in zip(cpu, gpu_out):
            same_bits(g.numpy(), c, name=fn.__name__)
    y, idx = ops.max_pool2d(x, 2)
    dy = rnd(rs, *y.shape)
    same_bits(ops.max_pool2d_backward(fc.asarray(dy), fc.asarray(idx), x.shape).numpy(),
              ops.max_pool2d_backward(dy, idx, x.shape), name="max_pool2d_backward")


@gpu
@skip_no_gpu
def test_optimizer_close_to_cpu():
    rs = np.random.default_rng(12)
    p, g, m, v = rnd(rs, 5000), rnd(rs, 5000), rnd(rs, 5000), np.abs(rnd(rs, 5000))
    cp_, cm, cv = p.copy(), m.copy(), v.copy()
    ops.adam_update(cp_, g, cm, cv, lr=1e-3, step=7)
    gp, gm, gv = fc.asarray(p), fc.asarray(m), fc.asarray(v)
    ops.adam_update(gp, fc.asarray(g), gm, gv, lr=1e-3, step=7)
    for a, b in ((gp, cp_), (gm, cm), (gv, cv)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-6, atol=1e-7)


@gpu
@skip_no_gpu
def test_deterministic_and_batch_invariant():
    rs = np.random.default_rng(13)
    x, w = rnd(rs, 64, 28, 28, 1), rnd(rs, 5, 5, 1, 32)
    gx, gw = fc.asarray(x), fc.asarray(w)
    y1 = ops.conv2d(gx, gw, padding="same")
    dy = fc.asarray(rnd(rs, *y1.shape))
    r1 = ops.conv2d_backward(dy, gx, gw, padding="same")
    r2 = ops.conv2d_backward(dy, gx, gw, padding="same")
    for a, b in zip(r1, r2):
        same_bits(a.numpy(), b.numpy())
    one = ops.conv2d(fc.asarray(x[5:6]), gw, padding="same").numpy()
    same_bits(one[0], y1.numpy()[5], name="batch invariance")


@gpu
@skip_no_gpu
def test_bad_input_on_gpu():
    d = fc.asarray(np.ones((2, 3), F))
    with pytest.raises(ValueError, match="dy: expected the shape of x"):
        ops.relu_backward(fc.asarray(np.ones((3, 2), F)), d)
    with pytest.raises(ValueError, match="w: expected 3 rows"):
        ops.dense(d, fc.asarray(np.ones((4, 2), F)))
    with pytest.raises(ValueError, match="class indices"):
        ops.softmax_cross_entropy(d, fc.asarray(np.array([0, 3])))
    with pytest.raises(ValueError, match="algorithm"):
        ops.conv2d(fc.asarray(np.ones((1, 4, 4, 1), F)), fc.asarray(np.ones((3, 3, 1, 1), F)), algorithm="winograd")
    x = np.ones((1, 4, 4, 2), F)
    y, idx = ops.max_pool2d(fc.asarray(x), 2)
    bad = idx.numpy()
    bad[0, 0, 0, 0] = 10 ** 6
    with pytest.raises(ValueError, match="idx"):
        ops.max_pool2d_backward(y, fc.asarray(bad), x.shape)
    with pytest.raises(ValueError, match="rate"):
        ops.dropout(d, 1.0, 0)
    with pytest.raises(ValueError, match="lr"):
        ops.sgd_update(d, d.copy(), lr=-1.0)
    with pytest.raises(ValueError, match="share memory"):
        ops.sgd_update(d, d, lr=0.1)
    # an empty batch returns empty results of the right shape
    e = ops.conv2d(fc.asarray(np.ones((0, 4, 4, 1), F)), fc.asarray(np.ones((3, 3, 1, 2), F)), padding="same")
    assert e.shape == (0, 4, 4, 2)
