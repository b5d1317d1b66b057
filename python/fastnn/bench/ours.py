"""fastnn's side of every benchmark problem.

``build(prob, data)`` returns ``(step, check, weights)``: step() is the timed call, check()
returns the arrays compared with each peer (in fastnn's layouts) and weights is the list
of model weights (Keras order) a peer maps onto its own model, or None.
"""
from __future__ import annotations

import numpy as np

import fastnn
from fastnn import _core, ops

from .problems import Problem

VERIFY_ROWS = 64      # model problems compare predictions on at most this many samples


def build(prob: Problem, data: dict):
    p, w = prob.params, prob.word
    if prob.kind == "gemm":
        a, b = data["a"], data["b"]
        step = lambda: _core.matmul(a, b)  # noqa: E731
        return step, lambda: [step()], None
    if prob.kind == "conv":
        return _conv(prob, data) + (None,)
    if prob.kind == "pool":
        x, dy = data["x"], data["dy"]
        pool, stride, pad = (p["kh"], p["kw"]), (p["sh"], p["sw"]), (p["ph"], p["pw"])
        if w == "max":
            def step():
                y, idx = ops.max_pool2d(x, pool, stride=stride, padding=pad)
                return [y, ops.max_pool2d_backward(dy, idx, x.shape)]
        else:
            def step():
                y = ops.avg_pool2d(x, pool, stride=stride, padding=pad)
                return [y, ops.avg_pool2d_backward(dy, x.shape, pool, stride=stride, padding=pad)]
        return step, step, None
    if prob.kind == "lstm":
        x, k, rk, b, dh = (data[n] for n in ("x", "kernel", "recurrent_kernel", "bias", "dh"))
        if w == "fwd":
            def step():
                return [ops.lstm_forward(x, k, rk, b)[0]]
        else:
            def step():
                hs, _, _, cache = ops.lstm_forward(x, k, rk, b)
                dx, dk, drk, db, _, _ = ops.lstm_backward(dh, cache)
                return [hs, dx, dk, drk, db]
        return step, step, None
    if prob.kind in ("cnn_train", "cnn_predict"):
        from .workloads import build_fastnn_cnn
        fastnn.set_seed(0)
        model = build_fastnn_cnn()
        x, y, mb = data["x"], data["y"], p["mb"]
        check = lambda: [model.predict(x[:min(mb, VERIFY_ROWS)], batch_size=mb, verbose=0)]  # noqa: E731
        if prob.kind == "cnn_train":
            assert len(x) == mb * prob.per_call
            step = lambda: model.fit(x, y, batch_size=mb, epochs=1, verbose=0, shuffle=False)  # noqa: E731
        else:
            xb = x[:mb].copy()
            step = lambda: model.predict(xb, batch_size=mb, verbose=0)  # noqa: E731
        return step, check, model.get_weights()
    if prob.kind in ("lstm_train", "lstm_predict"):
        from .workloads import build_fastnn_lstm
        fastnn.set_seed(0)
        model = build_fastnn_lstm(p["t"], p["i"], p["h"])
        x, y, mb = data["x"], data["y"], p["mb"]
        check = lambda: [model.predict(x[:VERIFY_ROWS], batch_size=mb, verbose=0)]  # noqa: E731
        if prob.kind == "lstm_train":
            assert len(x) == mb * prob.per_call
            step = lambda: model.fit(x, y, batch_size=mb, epochs=1, verbose=0, shuffle=False)  # noqa: E731
        else:
            xb = x[:mb].copy()
            step = lambda: model.predict(xb, batch_size=mb, verbose=0)  # noqa: E731
        return step, check, model.get_weights()
    if prob.kind == "augment":
        from fastnn.data import ImageDataGenerator
        from .workloads import AUGMENT_ARGS
        x, mb = data["x"], p["mb"]
        flow = ImageDataGenerator(**AUGMENT_ARGS, seed=0).flow(x, batch_size=mb, shuffle=False)
        plain = ImageDataGenerator().flow(x, batch_size=mb, shuffle=False)
        return (lambda: next(flow)), (lambda: [np.asarray(next(plain))]), None
    raise ValueError(f"problem: no fastnn implementation for kind {prob.kind!r}")


def _conv(prob, data):
    p, w = prob.params, prob.word
    x, wt, b, dy = data["x"], data["w"], data["b"], data["dy"]
    stride, pad = (p["sh"], p["sw"]), (p["ph"], p["pw"])
    if w == "fwdbwd":
        need_dx = bool(p["dx"])

        def step():
            y = ops.conv2d(x, wt, b, stride=stride, padding=pad)
            dx, dw, db = ops.conv2d_backward(dy, x, wt, stride=stride, padding=pad, need_dx=need_dx)
            return [y, dx, dw, db]
    elif w == "fwd":
        def step():
            return [ops.conv2d(x, wt, b, stride=stride, padding=pad)]
    elif w == "bwdw":
        def step():
            return [ops.conv2d_backward(dy, x, wt, stride=stride, padding=pad, need_dx=False, need_db=False)[1]]
    else:  # bwdd
        # fastnn.ops has no data-gradient-only call (conv2d_backward always computes dw), so
        # the data gradient is computed as what it is for stride 1: the convolution of dy
        # with the kernel rotated by 180 degrees and its channels swapped, padding k-1-p.
        if stride != (1, 1):
            raise ValueError(f"problem: {prob.name}: bwdd is benchmarked for stride 1 only")
        qh, qw = p["kh"] - 1 - p["ph"], p["kw"] - 1 - p["pw"]
        if qh < 0 or qw < 0:
            raise ValueError(f"problem: {prob.name}: bwdd needs padding <= kernel - 1")

        def step():
            wr = np.ascontiguousarray(wt[::-1, ::-1].transpose(0, 1, 3, 2))
            return [ops.conv2d(dy, wr, None, stride=1, padding=(qh, qw))]
    return step, step
