"""Float64 NumPy references for the recurrent kernels (LSTM, GRU reset_after=True,
SimpleRNN), forward and backward through time, written plainly (one loop over time).

Layouts (Keras): x (N, T, I); LSTM kernel (I, 4H), recurrent (H, 4H), bias (4H,),
gates i, f, c, o. GRU kernel (I, 3H), recurrent (H, 3H), bias (2, 3H), gates z, r, h,
h_t = z * h_{t-1} + (1 - z) * n. SimpleRNN h_t = tanh(x W + h U + b).
Each backward takes the float64 forward inputs and returns the gradients of
sum(h_seq * dh_seq) + sum(h_T * dh_T) (+ sum(c_T * dc_T)).
"""
import numpy as np


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _d(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def lstm_ref(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    """Returns h_seq, h_T, c_T, and the per-step values for the backward pass."""
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, _ = x.shape
    H = U.shape[0]
    b = np.zeros(4 * H) if bias is None else _d(bias)
    h = np.zeros((N, H)) if h0 is None else _d(h0)
    c = np.zeros((N, H)) if c0 is None else _d(c0)
    hs, steps = [], []
    for t in range(T):
        a = x[:, t] @ W + h @ U + b
        i = _sig(a[:, :H])
        f = _sig(a[:, H:2 * H])
        g = np.tanh(a[:, 2 * H:3 * H])
        o = _sig(a[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append((h, c, i, f, g, o, c_new))
        h, c = h_new, c_new
        hs.append(h)
    return np.stack(hs, axis=1), h, c, steps


def lstm_backward_ref(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None,
                      dh_seq=None, dh_T=None, dc_T=None):
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, I = x.shape
    H = U.shape[0]
    _, _, _, steps = lstm_ref(x, W, U, bias, h0, c0)
    dx = np.zeros_like(x)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros(4 * H)
    dh = np.zeros((N, H)) if dh_T is None else _d(dh_T).copy()
    dc = np.zeros((N, H)) if dc_T is None else _d(dc_T).copy()
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, g, o, c = steps[t]
        if dh_seq is not None:
            dh = dh + _d(dh_seq)[:, t]
        tc = np.tanh(c)
        dc = dc + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
        dx[:, t] = da @ W.T
        dW += x[:, t].T @ da
        dU += h_prev.T @ da
        db += da.sum(axis=0)
        dh = da @ U.T
        dc = dc * f
    return dx, dW, dU, (None if bias is None else db), dh, dc


def gru_ref(x, kernel, recurrent_kernel, bias=None, h0=None):
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, _ = x.shape
    H = U.shape[0]
    b = np.zeros((2, 3 * H)) if bias is None else _d(bias)
    h = np.zeros((N, H)) if h0 is None else _d(h0)
    hs, steps = [], []
    for t in range(T):
        ax = x[:, t] @ W + b[0]
        ah = h @ U + b[1]
        z = _sig(ax[:, :H] + ah[:, :H])
        r = _sig(ax[:, H:2 * H] + ah[:, H:2 * H])
        hh = ah[:, 2 * H:]
        n = np.tanh(ax[:, 2 * H:] + r * hh)
        h_new = z * h + (1 - z) * n
        steps.append((h, z, r, n, hh))
        h = h_new
        hs.append(h)
    return np.stack(hs, axis=1), h, steps


def gru_backward_ref(x, kernel, recurrent_kernel, bias=None, h0=None, dh_seq=None, dh_T=None):
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, I = x.shape
    H = U.shape[0]
    _, _, steps = gru_ref(x, W, U, bias, h0)
    dx = np.zeros_like(x)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros((2, 3 * H))
    dh = np.zeros((N, H)) if dh_T is None else _d(dh_T).copy()
    for t in reversed(range(T)):
        h_prev, z, r, n, hh = steps[t]
        if dh_seq is not None:
            dh = dh + _d(dh_seq)[:, t]
        dz = dh * (h_prev - n) * z * (1 - z)
        dn = dh * (1 - z) * (1 - n ** 2)
        dr = dn * hh * r * (1 - r)
        dax = np.concatenate([dz, dr, dn], axis=1)
        dah = np.concatenate([dz, dr, dn * r], axis=1)
        dx[:, t] = dax @ W.T
        dW += x[:, t].T @ dax
        dU += h_prev.T @ dah
        db[0] += dax.sum(axis=0)
        db[1] += dah.sum(axis=0)
        dh = dh * z + dah @ U.T
    return dx, dW, dU, (None if bias is None else db), dh


def rnn_ref(x, kernel, recurrent_kernel, bias=None, h0=None):
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, _ = x.shape
    H = U.shape[0]
    b = np.zeros(H) if bias is None else _d(bias)
    h = np.zeros((N, H)) if h0 is None else _d(h0)
    hs = []
    for t in range(T):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        hs.append(h)
    return np.stack(hs, axis=1), h


def rnn_backward_ref(x, kernel, recurrent_kernel, bias=None, h0=None, dh_seq=None, dh_T=None):
    x, W, U = _d(x), _d(kernel), _d(recurrent_kernel)
    N, T, I = x.shape
    H = U.shape[0]
    h_seq, _ = rnn_ref(x, W, U, bias, h0)
    hp0 = np.zeros((N, H)) if h0 is None else _d(h0)
    dx = np.zeros_like(x)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros(H)
    dh = np.zeros((N, H)) if dh_T is None else _d(dh_T).copy()
    for t in reversed(range(T)):
        if dh_seq is not None:
            dh = dh + _d(dh_seq)[:, t]
        h_prev = hp0 if t == 0 else h_seq[:, t - 1]
        da = dh * (1 - h_seq[:, t] ** 2)
        dx[:, t] = da @ W.T
        dW += x[:, t].T @ da
        dU += h_prev.T @ da
        db += da.sum(axis=0)
        dh = da @ U.T
    return dx, dW, dU, (None if bias is None else db), dh
