"""Recurrent kernels: lstm/gru/rnn forward and backward through time."""
import zlib

import numpy as np
import pytest

import reference as ref
from helpers import compare, fd_check, same_bits, threads, f32
from fastnn import ops

CELLS = ["lstm", "gru", "rnn"]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def make(cell, rs, N, T, I, H, init=True, bias=True, scale=0.5):
    G = GATES[cell]
    x = f32(rs, N, T, I)
    k = f32(rs, I, G * H, scale=scale)
    rk = f32(rs, H, G * H, scale=scale)
    b = None
    if bias:
        b = f32(rs, 2, G * H, scale=scale) if cell == "gru" else f32(rs, G * H, scale=scale)
    h0 = f32(rs, N, H) if init else None
    c0 = f32(rs, N, H) if (init and cell == "lstm") else None
    return dict(x=x, kernel=k, recurrent_kernel=rk, bias=b, h0=h0, c0=c0)


def fwd(cell, a):
    """-> (h_seq, h_T, c_T or None, cache)"""
    if cell == "lstm":
        return ops.lstm_forward(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"],
                                h0=a["h0"], c0=a["c0"])
    f = ops.gru_forward if cell == "gru" else ops.rnn_forward
    h_seq, h_T, cache = f(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"], h0=a["h0"])
    return h_seq, h_T, None, cache


def bwd(cell, cache, dhs, dhT, dcT=None):
    """-> (dx, dk, drk, db, dh0, dc0 or None)"""
    if cell == "lstm":
        return ops.lstm_backward(dhs, cache, dh_T=dhT, dc_T=dcT)
    f = ops.gru_backward if cell == "gru" else ops.rnn_backward
    return tuple(f(dhs, cache, dh_T=dhT)) + (None,)


def ref_fwd(cell, a):
    if cell == "lstm":
        h_seq, h_T, c_T, _ = ref.lstm_ref(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"],
                                          a["h0"], a["c0"])
        return h_seq, h_T, c_T
    if cell == "gru":
        h_seq, h_T, _ = ref.gru_ref(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"], a["h0"])
    else:
        h_seq, h_T = ref.rnn_ref(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"], a["h0"])
    return h_seq, h_T, None


def ref_bwd(cell, a, dhs, dhT, dcT=None):
    args = (a["x"], a["kernel"], a["recurrent_kernel"], a["bias"], a["h0"])
    if cell == "lstm":
        return ref.lstm_backward_ref(*args, a["c0"], dh_seq=dhs, dh_T=dhT, dc_T=dcT)
    f = ref.gru_backward_ref if cell == "gru" else ref.rnn_backward_ref
    return tuple(f(*args, dh_seq=dhs, dh_T=dhT)) + (None,)


def grads_out(cell, rs, N, T, H, mode):
    dhs = f32(rs, N, T, H) if mode in ("seq", "both") else None
    dhT = f32(rs, N, H) if mode in ("final", "both") else None
    dcT = f32(rs, N, H) if (mode in ("final", "both") and cell == "lstm") else None
    return dhs, dhT, dcT


SHAPES = [(1, 1, 1, 5), (3, 4, 2, 20), (2, 7, 3, 33), (13, 3, 1, 17), (1, 2, 1, 1), (5, 15, 1, 20)]
NAMES = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("mode", ["seq", "final", "both"])
def test_against_reference(cell, shape, init, bias, mode):
    rs = np.random.default_rng(zlib.crc32(repr((cell, shape, init, bias, mode)).encode()))
    N, T, I, H = shape
    a = make(cell, rs, N, T, I, H, init, bias)
    h_seq, h_T, c_T, cache = fwd(cell, a)
    r_seq, r_T, r_cT = ref_fwd(cell, a)
    assert h_seq.dtype == np.float32 and h_seq.shape == (N, T, H)
    compare(h_seq, r_seq, name="h_seq")
    compare(h_T, r_T, name="h_T")
    if cell == "lstm":
        compare(c_T, r_cT, name="c_T")
    dhs, dhT, dcT = grads_out(cell, rs, N, T, H, mode)
    got = bwd(cell, cache, dhs, dhT, dcT)
    exp = ref_bwd(cell, a, dhs, dhT, dcT)
    for g, e, nm in zip(got, exp, NAMES):
        if e is None:
            assert g is None, nm
        else:
            assert g.dtype == np.float32
            # floor: a gradient summed from O(1) terms may cancel to ~1e-4 (T = 1, I = 1);
            # float32 then leaves ~1e-8 absolute error, so judge it against 1e-2.
            compare(g, e, name=nm, floor=1e-2)
    if cell == "gru" and bias:
        assert got[3].shape == (2, 3 * H)


@pytest.mark.parametrize("cell", CELLS)
def test_empty_batch(cell):
    rs = np.random.default_rng(0)
    a = make(cell, rs, 0, 3, 2, 4)
    h_seq, h_T, c_T, cache = fwd(cell, a)
    assert h_seq.shape == (0, 3, 4) and h_T.shape == (0, 4)
    g = bwd(cell, cache, np.zeros((0, 3, 4), np.float32), None)
    assert g[0].shape == (0, 3, 2) and g[4].shape == (0, 4)
    assert np.all(g[1] == 0) and np.all(g[2] == 0) and np.all(g[3] == 0)


# ---- finite differences of every gradient -------------------------------------
@pytest.mark.parametrize("cell, wrt", [(c, w) for c in CELLS
                                       for w in ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"]
                                       if w != "c0" or c == "lstm"])
def test_finite_differences(cell, wrt):
    rs = np.random.default_rng(7)
    N, T, I, H = 2, 3, 2, 3
    a = make(cell, rs, N, T, I, H)
    dhs, dhT, dcT = grads_out(cell, rs, N, T, H, "both")
    dy = np.concatenate([dhs.ravel(), dhT.ravel()] + ([dcT.ravel()] if cell == "lstm" else []))

    def f(v):
        b = dict(a)
        b[wrt] = v.astype(np.float32)
        h_seq, h_T, c_T, _ = fwd(cell, b)
        parts = [h_seq.ravel(), h_T.ravel()] + ([c_T.ravel()] if cell == "lstm" else [])
        return np.concatenate(parts)

    grads = bwd(cell, fwd(cell, a)[3], dhs, dhT, dcT)
    idx = ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"].index(wrt)
    fd_check(f, a[wrt], dy, grads[idx], name=f"{cell} d{wrt}")


# ---- PyTorch cross-checks --------------------------------------------------------
def _torch_setup(cell, torch, N, T, I, H, rs):
    mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    m = mod(I, H, batch_first=True).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.from_numpy(rs.standard_normal(tuple(p.shape)) * 0.4))
    return m


def _gru_reorder(w, H):  # torch rows r, z, n -> z, r, n
    return np.concatenate([w[H:2 * H], w[:H], w[2 * H:]], axis=0)


@pytest.mark.torch
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(4, 6, 3, 7), (2, 15, 1, 20)])
def test_against_torch(cell, shape):
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(3)
    N, T, I, H = shape
    m = _torch_setup(cell, torch, N, T, I, H, rs)
    Wi = m.weight_ih_l0.detach().numpy()
    Wh = m.weight_hh_l0.detach().numpy()
    bi = m.bias_ih_l0.detach().numpy()
    bh = m.bias_hh_l0.detach().numpy()
    if cell == "gru":
        k, rk = _gru_reorder(Wi, H).T, _gru_reorder(Wh, H).T
        bias = np.stack([_gru_reorder(bi, H), _gru_reorder(bh, H)])
    else:
        k, rk, bias = Wi.T, Wh.T, bi + bh
    x = rs.standard_normal((N, T, I))
    h0 = rs.standard_normal((N, H))
    c0 = rs.standard_normal((N, H))
    dhs, dhT, dcT = rs.standard_normal((N, T, H)), rs.standard_normal((N, H)), rs.standard_normal((N, H))
    a = dict(x=x.astype(np.float32), kernel=k.astype(np.float32), recurrent_kernel=rk.astype(np.float32),
             bias=bias.astype(np.float32), h0=h0.astype(np.float32),
             c0=c0.astype(np.float32) if cell == "lstm" else None)
    h_seq, h_T, c_T, cache = fwd(cell, a)
    got = bwd(cell, cache, dhs.astype(np.float32), dhT.astype(np.float32),
              dcT.astype(np.float32) if cell == "lstm" else None)

    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0[None], requires_grad=True)
    if cell == "lstm":
        tc0 = torch.tensor(c0[None], requires_grad=True)
        out, (hn, cn) = m(tx, (th0, tc0))
        loss = (out * torch.tensor(dhs)).sum() + (hn[0] * torch.tensor(dhT)).sum() + (cn[0] * torch.tensor(dcT)).sum()
    else:
        out, hn = m(tx, th0)
        loss = (out * torch.tensor(dhs)).sum() + (hn[0] * torch.tensor(dhT)).sum()
    loss.backward()
    compare(h_seq, out.detach().numpy(), name="h_seq")
    compare(h_T, hn[0].detach().numpy(), name="h_T")
    gWi, gWh = m.weight_ih_l0.grad.numpy(), m.weight_hh_l0.grad.numpy()
    gbi, gbh = m.bias_ih_l0.grad.numpy(), m.bias_hh_l0.grad.numpy()
    compare(got[0], tx.grad.numpy(), name="dx")
    compare(got[4], th0.grad.numpy()[0], name="dh0")
    if cell == "gru":
        compare(got[1], _gru_reorder(gWi, H).T, name="dkernel")
        compare(got[2], _gru_reorder(gWh, H).T, name="drecurrent_kernel")
        compare(got[3], np.stack([_gru_reorder(gbi, H), _gru_reorder(gbh, H)]), name="dbias")
    else:
        compare(got[1], gWi.T, name="dkernel")
        compare(got[2], gWh.T, name="drecurrent_kernel")
        compare(got[3], gbi, name="dbias")
        compare(got[3], gbh, name="dbias (b_hh)")
    if cell == "lstm":
        compare(c_T, cn[0].detach().numpy(), name="c_T")
        compare(got[5], tc0.grad.numpy()[0], name="dc0")


# ---- bad input -------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_bad_inputs(cell):
    rs = np.random.default_rng(1)
    N, T, I, H = 2, 3, 4, 5
    a = make(cell, rs, N, T, I, H)

    def run(**kw):
        b = dict(a)
        b.update(kw)
        return fwd(cell, b)

    with pytest.raises(ValueError, match="x"):
        run(x=a["x"][0])
    with pytest.raises(ValueError, match="x"):
        run(x=np.zeros((N, 0, I), np.float32))
    with pytest.raises(ValueError, match="x"):
        run(x=np.zeros((N, T, 0), np.float32))
    with pytest.raises(TypeError, match="x"):
        run(x=a["x"].astype(bool))
    with pytest.raises(TypeError, match="x"):
        run(x=a["x"].astype(np.complex64))
    with pytest.raises(TypeError, match="kernel"):
        run(kernel=np.array([[object()]]))
    with pytest.raises(ValueError, match="kernel"):
        run(kernel=a["kernel"][:-1])
    with pytest.raises(ValueError, match="kernel"):
        run(kernel=a["kernel"][..., None])
    if cell != "rnn":
        with pytest.raises(ValueError, match="kernel"):
            run(kernel=a["kernel"][:, :-1])
    with pytest.raises(ValueError, match="recurrent_kernel"):
        run(recurrent_kernel=a["recurrent_kernel"][:-1])
    with pytest.raises(ValueError, match="recurrent_kernel"):
        run(recurrent_kernel=a["recurrent_kernel"][:, :-1])
    with pytest.raises(ValueError, match="bias"):
        run(bias=np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="h0"):
        run(h0=np.zeros((N + 1, H), np.float32))
    if cell == "lstm":
        with pytest.raises(ValueError, match="c0"):
            run(c0=np.zeros((N, H + 1), np.float32))
    if cell == "gru":
        with pytest.raises(ValueError, match="bias"):
            run(bias=np.zeros(3 * H, np.float32))  # reset_after bias is (2, 3H)

    cache = fwd(cell, a)[3]
    dhs = np.zeros((N, T, H), np.float32)
    with pytest.raises(ValueError, match="dh_seq"):
        bwd(cell, cache, np.zeros((N, T + 1, H), np.float32), None)
    with pytest.raises(ValueError, match="dh_T"):
        bwd(cell, cache, dhs, np.zeros((N, T, H), np.float32))
    with pytest.raises(TypeError, match="dh_seq"):
        bwd(cell, cache, dhs.astype(bool), None)
    if cell == "lstm":
        with pytest.raises(ValueError, match="dc_T"):
            bwd(cell, cache, dhs, None, np.zeros((N + 1, H), np.float32))
    with pytest.raises(TypeError, match="cache"):
        bwd(cell, list(cache), dhs, None)
    with pytest.raises(ValueError, match="cache"):
        bwd(cell, cache[:-1], dhs, None)
    broken = list(cache)
    broken[-1] = np.asarray(broken[-1])[:, :-1]
    with pytest.raises(ValueError, match="cache"):
        bwd(cell, tuple(broken), dhs, None)
    broken = list(cache)
    broken[-1] = None
    with pytest.raises(TypeError, match="cache"):
        bwd(cell, tuple(broken), dhs, None)
    other = "gru" if cell == "lstm" else "lstm"
    with pytest.raises((TypeError, ValueError), match="cache"):
        bwd(cell, fwd(other, make(other, rs, N, T, I, H))[3], dhs, None)


@pytest.mark.parametrize("cell", CELLS)
def test_accepts_float64_and_noncontiguous(cell):
    rs = np.random.default_rng(2)
    a = make(cell, rs, 3, 4, 2, 6)
    b = dict(a)
    b["x"] = np.asfortranarray(a["x"].astype(np.float64))
    b["kernel"] = a["kernel"].T.copy().T  # non-contiguous view of the same values
    out1, out2 = fwd(cell, a), fwd(cell, b)
    same_bits(out1[0], out2[0], "h_seq")


@pytest.mark.parametrize("cell", CELLS)
def test_nan_propagates(cell):
    rs = np.random.default_rng(4)
    N, T, I, H = 3, 5, 2, 6
    a = make(cell, rs, N, T, I, H)
    a["x"][1, 2, 0] = np.nan
    h_seq, h_T, c_T, cache = fwd(cell, a)
    assert np.all(np.isnan(h_seq[1, 2:])) and np.all(np.isnan(h_T[1]))
    assert np.all(np.isfinite(h_seq[[0, 2]])) and np.all(np.isfinite(h_seq[1, :2]))
    g = bwd(cell, cache, np.ones((N, T, H), np.float32), None)
    assert np.isnan(g[1]).any() and np.all(np.isfinite(g[0][[0, 2]]))


# ---- determinism ----------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N,T,I,H", [(26, 5, 7, 100), (27, 4, 1, 20), (5, 3, 7, 300)],
                         ids=["rows-split", "rows-split-odd", "columns-split"])
def test_threads_bitwise(cell, N, T, I, H):
    """On 2 threads the time loop splits the batch by rows (small H, batch >= 8) or
    the hidden columns with a barrier per step (the others): same bits as 1 thread."""
    rs = np.random.default_rng(5)
    a = make(cell, rs, N, T, I, H, scale=0.1)
    dhs, dhT, dcT = grads_out(cell, rs, N, T, H, "both")
    outs = []
    for n in (1, 2):
        with threads(n):
            h_seq, h_T, c_T, cache = fwd(cell, a)
            outs.append((h_seq, h_T) + tuple(g for g in bwd(cell, cache, dhs, dhT, dcT) if g is not None))
    for p, q in zip(*outs):
        same_bits(p, q)


@pytest.mark.parametrize("cell", CELLS)
def test_batch_size_invariance(cell):
    rs = np.random.default_rng(6)
    N, T, I, H = 14, 4, 3, 21
    a = make(cell, rs, N, T, I, H)
    h_seq = fwd(cell, a)[0]
    for i in (0, 5, 13):
        b = dict(a)
        for key in ("x", "h0", "c0"):
            if b[key] is not None:
                b[key] = a[key][i:i + 1].copy()
        same_bits(fwd(cell, b)[0][0], h_seq[i], f"row {i}")


@pytest.mark.parametrize("isa", [None, "avx2", "generic"])
def test_cell_nonlinearities_accuracy_over_the_whole_range(isa):
    """One LSTM step from zero state isolates the cells' sigmoid and tanh:
    h = o * tanh(i * g) with (i, f, g, o) = act(x . kernel). Pre-activations sweep
    [-100, 100] (saturation included) and +-Inf; the documented bound is 2e-7
    absolute per non-linearity, so h may be off by a few 1e-7, never more."""
    import json
    import os
    import subprocess
    import sys
    code = r"""
import json, numpy as np
from fastnn import ops
z = np.concatenate([np.linspace(-100, 100, 20001), np.linspace(-3, 3, 6001), [np.inf, -np.inf]]).astype(np.float32)
x = z[:, None, None]                        # N samples, T = 1, I = 1; H = 1
kernel = np.array([[1.0, 0.5, -1.0, 2.0]], np.float32)
h, hT, cT, cache = ops.lstm_forward(x, kernel, np.zeros((1, 4), np.float32), None)
with np.errstate(invalid="ignore", over="ignore"):
    pre = z.astype(np.float64)[:, None] * kernel[0].astype(np.float64)
    sg = lambda v: 1 / (1 + np.exp(-v))
    i, f, g, o = sg(pre[:, 0]), sg(pre[:, 1]), np.tanh(pre[:, 2]), sg(pre[:, 3])
    c = i * g
    href = o * np.tanh(c)
gates = cache[8][:, 0].astype(np.float64)
print(json.dumps({"h": float(np.max(np.abs(hT[:, 0] - href))), "c": float(np.max(np.abs(cT[:, 0] - c))),
                  "gates": float(np.max(np.abs(gates - np.stack([i, f, g, o], 1))))}))
"""
    env = dict(os.environ)
    if isa:
        env["FASTNN_ISA"] = isa
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    err = json.loads(res.stdout.strip().splitlines()[-1])
    assert err["gates"] < 2.5e-7, err
    assert err["c"] < 5e-7 and err["h"] < 8e-7, err


# ---- need_dx ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N,T,I,H", [(9, 4, 3, 20), (32, 15, 1, 20)])
def test_backward_without_dx(cell, N, T, I, H):
    """need_dx=False: dx is None (not computed); every other gradient keeps its bits."""
    rs = np.random.default_rng(11)
    a = make(cell, rs, N, T, I, H)
    dhs, dhT, dcT = grads_out(cell, rs, N, T, H, "both")
    cache = fwd(cell, a)[3]
    full = bwd(cell, cache, dhs, dhT, dcT)
    f = {"lstm": ops.lstm_backward, "gru": ops.gru_backward, "rnn": ops.rnn_backward}[cell]
    kw = dict(dh_T=dhT, dc_T=dcT) if cell == "lstm" else dict(dh_T=dhT)
    part = f(dhs, cache, need_dx=False, **kw)
    assert part[0] is None
    assert len(part) == len(full) - (cell != "lstm")
    for name, p, q in zip(NAMES[1:], full[1:], part[1:]):
        same_bits(p, q, name)
    with pytest.raises(TypeError, match="need_dx|incompatible"):
        f(dhs, cache, need_dx="no", **kw)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_layer_backward_without_dx(cell):
    """The model passes need_dx=False to its first trainable layer: no dx, same gradients."""
    from fastnn import layers

    rs = np.random.default_rng(12)
    x = f32(rs, 6, 5, 3)
    layer = getattr(layers, cell)(7)
    layer(x)
    layer(x, training=True)
    dy = f32(rs, 6, 7)
    dx = layer.backward(dy, need_dx=True)
    grads = [w.grad.copy() for w in layer.weights]
    assert dx.shape == x.shape
    assert layer.backward(dy, need_dx=False) is None
    for w, g in zip(layer.weights, grads):
        same_bits(w.grad, g, w.name)
