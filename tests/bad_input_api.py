"""The bad-input matrix beyond the ops: scalar arguments of the ops (strides, pools,
paddings, rates, element-count overflow), every layer constructor, model build / fit /
predict / evaluate, the data helpers, the dataset loaders, fastnn.models.load and the
command line. Imported by bad_input_matrix.py, which runs everything in a child
process. Each case must return or raise one of the documented exceptions.

cases() yields (section, label, thunk, allowed_exceptions).
"""
import contextlib
import gzip
import io
import os
import struct
import tempfile
import zipfile

import numpy as np

import fastnn as fnn
from fastnn import layers, ops

F = np.float32
DOC = (TypeError, ValueError, MemoryError)
FILE = DOC + (FileNotFoundError,)
NOT_COMPILED = DOC + (RuntimeError,)   # documented: fit/evaluate before compile
HUGE = [2**31, 2**40, 2**62, 2**63 - 1, 2**64]   # int32 / int64 overflow and beyond any memory
BAD_INTS = [0, -1, -(2**63), 1.5, "2", None, True, float("nan")] + HUGE
BAD_PAIRS = BAD_INTS + [(0, 1), (1, -1), (1,), (1, 2, 3), (2**40, 1), ("a", 1), [], (1.0, 1)]


def _r(rs, *shape):
    return rs.standard_normal(shape).astype(F)


def _claimed(shape):
    """A read-only float32 view claiming `shape` with no memory behind it (zero strides)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, F), shape=shape, strides=(0,) * len(shape),
                                           writeable=False)


# --------------------------------------------------------------------------- ops scalars
def op_scalar_cases():
    rs = np.random.default_rng(1)
    x, w = _r(rs, 2, 6, 5, 3), _r(rs, 3, 3, 3, 4)
    y = ops.conv2d(x, w, padding=1)
    p, idx = ops.max_pool2d(x, 2)
    _, win = ops._max_pool2d_window(x, 2)
    bx = _r(rs, 8, 4)
    for v in BAD_PAIRS + [(2**31, 2**31)]:
        yield "ops", f"_max_pool2d_inference pool={v!r}", lambda v=v: ops._max_pool2d_inference(x, v)
        yield "ops", f"_max_pool2d_window pool={v!r}", lambda v=v: ops._max_pool2d_window(x, v)
        yield "ops", f"_max_pool2d_window stride={v!r}", lambda v=v: ops._max_pool2d_window(x, 2, stride=v)
        yield "ops", f"_max_pool2d_window_backward pool={v!r}", \
            lambda v=v: ops._max_pool2d_window_backward(p, win, x.shape, v)
        yield "ops", f"conv2d stride={v!r}", lambda v=v: ops.conv2d(x, w, stride=v)
        yield "ops", f"conv2d_backward stride={v!r}", lambda v=v: ops.conv2d_backward(y, x, w, stride=v, padding=1)
        yield "ops", f"max_pool2d pool={v!r}", lambda v=v: ops.max_pool2d(x, v)
        yield "ops", f"max_pool2d stride={v!r}", lambda v=v: ops.max_pool2d(x, 2, stride=v)
        yield "ops", f"avg_pool2d pool={v!r}", lambda v=v: ops.avg_pool2d(x, v)
        yield "ops", f"avg_pool2d_backward pool={v!r}", lambda v=v: ops.avg_pool2d_backward(p, x.shape, v)
    for v in [-1, -(2**40), 4, 7, 2**20, 2**31, 2**40, 2**62, (1, 2**40), (-1, 0), (0, 1, 2), "bogus",
              "SAME", None, 1.0]:
        # padding larger than the kernel, negative, absurd (output element count overflow)
        yield "ops", f"conv2d padding={v!r}", lambda v=v: ops.conv2d(x, w, padding=v)
        yield "ops", f"conv2d_backward padding={v!r}", lambda v=v: ops.conv2d_backward(y, x, w, padding=v)
        yield "ops", f"max_pool2d padding={v!r}", lambda v=v: ops.max_pool2d(x, 2, padding=v)
        yield "ops", f"_max_pool2d_inference padding={v!r}", lambda v=v: ops._max_pool2d_inference(x, 2, padding=v)
        yield "ops", f"_max_pool2d_window padding={v!r}", lambda v=v: ops._max_pool2d_window(x, 2, padding=v)
        yield "ops", f"_max_pool2d_window_backward padding={v!r}", \
            lambda v=v: ops._max_pool2d_window_backward(p, win, x.shape, 2, padding=v)
        yield "ops", f"avg_pool2d padding={v!r}", lambda v=v: ops.avg_pool2d(x, 3, padding=v)
    big_w = _r(rs, 7, 7, 3, 2)   # kernel larger than the 6x5 input
    yield "ops", "conv2d kernel > input valid", lambda: ops.conv2d(x, big_w, padding="valid")
    yield "ops", "conv2d kernel > input 0", lambda: ops.conv2d(x, big_w, padding=0)
    yield "ops", "conv2d_backward kernel > input", lambda: ops.conv2d_backward(y, x, big_w, padding="valid")
    yield "ops", "max_pool2d pool > input", lambda: ops.max_pool2d(x, 7)
    yield "ops", "avg_pool2d pool > input", lambda: ops.avg_pool2d(x, (7, 1))
    for alg in ["bogus", "", "WINOGRAD", None, 3]:
        yield "ops", f"conv2d algorithm={alg!r}", lambda a=alg: ops.conv2d(x, w, algorithm=a)
    yield "ops", "conv2d winograd 1x1", lambda: ops.conv2d(x, _r(rs, 1, 1, 3, 4), algorithm="winograd")
    yield "ops", "conv2d winograd stride 2", lambda: ops.conv2d(x, w, stride=2, algorithm="winograd")
    # element-count overflow: claimed inputs / shapes whose products overflow int32 and int64
    for shape in [(2**16, 2**16, 2**16, 1), (2**20, 2**20, 2**20, 1), (1, 2**29, 2**29, 3), (2**31, 1, 1, 3)]:
        cx = _claimed(shape)
        yield "ops", f"conv2d claimed x {shape}", lambda cx=cx: ops.conv2d(cx, _r(rs, 1, 1, shape[3], 4))
        yield "ops", f"max_pool2d claimed x {shape}", lambda cx=cx: ops.max_pool2d(cx, 1)
        yield "ops", f"_max_pool2d_window claimed x {shape}", lambda cx=cx: ops._max_pool2d_window(cx, 1)
        yield "ops", f"_max_pool2d_window_backward x_shape {shape}", \
            lambda s=shape: ops._max_pool2d_window_backward(p, win, s, 2)
        yield "ops", f"relu claimed x {shape}", lambda cx=cx: ops.relu(cx)
        yield "ops", f"max_pool2d_backward x_shape {shape}", lambda s=shape: ops.max_pool2d_backward(p, idx, s)
        yield "ops", f"avg_pool2d_backward x_shape {shape}", lambda s=shape: ops.avg_pool2d_backward(p, s)
    for s in [(2, 6, 5), (2, 6, 5, 3, 1), (2, -6, 5, 3), (2, 6, 5, 3.5), "abc", None, (2**63, 1, 1, 1),
              (-(2**63), 1, 1, 1), (2, 6, 5, 4)]:
        yield "ops", f"max_pool2d_backward x_shape={s!r}", lambda s=s: ops.max_pool2d_backward(p, idx, s)
        yield "ops", f"_max_pool2d_window_backward x_shape={s!r}", \
            lambda s=s: ops._max_pool2d_window_backward(p, win, s, 2)
        yield "ops", f"avg_pool2d_backward x_shape={s!r}", lambda s=s: ops.avg_pool2d_backward(p, s)
    cw = _claimed((2**20, 2**20, 3, 4))
    yield "ops", "conv2d claimed huge kernel", lambda: ops.conv2d(x, cw, padding="same")
    yield "ops", "dense claimed huge w", lambda: ops.dense(bx, _claimed((4, 2**44)))
    yield "ops", "dense claimed huge x", lambda: ops.dense(_claimed((2**44, 4)), _r(rs, 4, 3))
    yield "ops", "lstm claimed huge T", lambda: ops.lstm_forward(_claimed((2, 2**40, 3)), _r(rs, 3, 20),
                                                                 _r(rs, 5, 20), _r(rs, 20))
    for v in [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.5", None, 2**40]:
        yield "ops", f"dropout rate={v!r}", lambda v=v: ops.dropout(bx, v, 3)
        yield "ops", f"dropout_backward rate={v!r}", lambda v=v: ops.dropout_backward(bx, np.ones((8, 4), np.uint8), v)
    for v in [-1, 2**64, 1.5, None, "s"]:
        yield "ops", f"dropout seed={v!r}", lambda v=v: ops.dropout(bx, 0.5, v)
        yield "ops", f"dropout sample_offset={v!r}", lambda v=v: ops.dropout(bx, 0.5, 3, sample_offset=v)
    for lab in [np.full(8, -1), np.full(8, 4), np.full(8, 2**40), np.arange(7), np.arange(9), np.zeros((8, 1), int),
                np.full(8, 1.5), np.zeros(8, bool), np.zeros(8, np.uint64) + np.uint64(2**63)]:
        yield "ops", f"softmax_cross_entropy labels {lab.dtype}{lab.shape} {lab.flat[0]!r}", \
            lambda lab=lab: ops.softmax_cross_entropy(bx, lab)
    g, b4 = _r(rs, 4), _r(rs, 4)
    for kw in [dict(epsilon=-1.0), dict(epsilon=float("nan")), dict(momentum=float("nan")), dict(momentum=2.0),
               dict(epsilon=0.0), dict(training="yes")]:
        yield "ops", f"batch_norm {kw}", lambda kw=kw: ops.batch_norm(bx, g, b4, np.zeros(4, F), np.ones(4, F),
                                                                      **{"training": True, **kw})
    prm = _r(rs, 10)
    for kw in [dict(lr=float("nan")), dict(lr=-1.0), dict(lr=float("inf")), dict(lr=0.1, momentum=-1.0),
               dict(lr=0.1, momentum=float("nan")), dict(lr="x"), dict(lr=0.1, weight_decay=-1.0)]:
        yield "ops", f"sgd_update {kw}", lambda kw=kw: ops.sgd_update(prm.copy(), prm, np.zeros(10, F), **kw)
    for kw in [dict(lr=0.1, step=0), dict(lr=0.1, step=-1), dict(lr=0.1, step=2**63), dict(lr=0.1, step=1, beta_1=1.0),
               dict(lr=0.1, step=1, beta_2=-0.5), dict(lr=0.1, step=1, epsilon=-1.0), dict(lr=0.1, step=1.5)]:
        yield "ops", f"adam_update {kw}", lambda kw=kw: ops.adam_update(prm.copy(), prm, np.zeros(10, F), np.zeros(10, F), **kw)
    for kw in [dict(lr=0.1, rho=1.5), dict(lr=0.1, rho=float("nan")), dict(lr=0.1, epsilon=-1.0)]:
        yield "ops", f"rmsprop_update {kw}", lambda kw=kw: ops.rmsprop_update(prm.copy(), prm, np.zeros(10, F), **kw)
    for v in [float("nan"), -1.0, float("inf"), "x", None]:
        yield "ops", f"clip_by_value_ {v!r}", lambda v=v: ops.clip_by_value_(prm.copy(), v)
        yield "ops", f"scale_ {v!r}", lambda v=v: ops.scale_(prm.copy(), v)
    for arrs in [[], [None], [np.zeros(3, complex)], "abc", [[1, 2], "x"], [_claimed((2**40,))], None, 3]:
        yield "ops", f"global_norm {type(arrs).__name__}", lambda a=arrs: ops.global_norm(a)
    img = _r(rs, 2, 8, 8, 1)
    eye = np.tile(np.array([1, 0, 0, 0, 1, 0], F), (2, 1))
    for kw in [dict(fill_mode="bogus"), dict(fill_mode=None), dict(cval=float("nan")), dict(index=np.array([0, 5])),
               dict(index=np.array([-1, 0])), dict(index=np.array([0])), dict(index=np.array([0.5, 1.0]))]:
        yield "ops", f"affine_warp {kw}", lambda kw=kw: fnn._core.affine_warp(img, eye, **kw)
    for m in [eye[:1], eye[:, :5], np.full((2, 6), np.nan, F), np.full((2, 6), 1e30, F), eye.astype(complex)]:
        yield "ops", f"affine_warp matrices {m.shape} {m.dtype}", lambda m=m: fnn._core.affine_warp(img, m)
    for n in [0, -1, 2**31, 1.5, None]:
        yield "ops", f"set_num_threads({n!r})", lambda n=n: fnn.set_num_threads(n)
    fnn.set_num_threads(fnn.get_num_threads())


# --------------------------------------------------------------------------- layers
def layer_cases():
    rs = np.random.default_rng(2)
    for v in BAD_INTS + [[4], (4,)]:
        yield "layers", f"Dense(units={v!r})", lambda v=v: layers.Dense(v)
        yield "layers", f"Conv2D(filters={v!r})", lambda v=v: layers.Conv2D(v, 3)
        for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
            yield "layers", f"{cls.__name__}(units={v!r})", lambda v=v, c=cls: c(v)
    for v in BAD_PAIRS:
        yield "layers", f"Conv2D(kernel_size={v!r})", lambda v=v: layers.Conv2D(4, v)
        yield "layers", f"Conv2D(strides={v!r})", lambda v=v: layers.Conv2D(4, 3, strides=v)
        for cls in (layers.MaxPooling2D, layers.AveragePooling2D):
            yield "layers", f"{cls.__name__}(pool_size={v!r})", lambda v=v, c=cls: c(v)
            yield "layers", f"{cls.__name__}(strides={v!r})", lambda v=v, c=cls: c(2, strides=v)
    for v in ["bogus", "WINOGRAD", "", None, 3, ["gemm"]]:
        yield "layers", f"Conv2D(algorithm={v!r})", lambda v=v: layers.Conv2D(4, 3, algorithm=v)
    for v in ["full", "causal", 1, 0, None, ""]:
        yield "layers", f"Conv2D(padding={v!r})", lambda v=v: layers.Conv2D(4, 3, padding=v)
        yield "layers", f"MaxPooling2D(padding={v!r})", lambda v=v: layers.MaxPooling2D(2, padding=v)
    for v in ["bogus", 3, "Relu2", ["relu"]]:
        yield "layers", f"Dense(activation={v!r})", lambda v=v: layers.Dense(3, activation=v)
        yield "layers", f"Activation({v!r})", lambda v=v: layers.Activation(v)
        yield "layers", f"LSTM(activation={v!r})", lambda v=v: layers.LSTM(3, activation=v)
    for v in [-0.1, 1.0, 1.5, float("nan"), "x", None, [0.5]]:
        yield "layers", f"Dropout({v!r})", lambda v=v: layers.Dropout(v)
        yield "layers", f"LSTM(dropout={v!r})", lambda v=v: layers.LSTM(3, dropout=v)
        yield "layers", f"GRU(recurrent_dropout={v!r})", lambda v=v: layers.GRU(3, recurrent_dropout=v)
    for kw in [dict(momentum=-0.1), dict(momentum=1.5), dict(momentum=float("nan")), dict(epsilon=0.0),
               dict(epsilon=-1.0), dict(epsilon=float("nan")), dict(axis=5), dict(axis="x"), dict(axis=None)]:
        yield "layers", f"BatchNormalization({kw})", lambda kw=kw: layers.BatchNormalization(**kw)
    for v in [(0,), (-1, 4), (2**40, 2**40), "ab", None, (1.5,), 3, (2, None)]:
        yield "layers", f"Reshape({v!r})", lambda v=v: layers.Reshape(v)
        yield "layers", f"Input(shape={v!r})", lambda v=v: layers.Input(v)
        yield "layers", f"Dense(input_shape={v!r})", lambda v=v: layers.Dense(3, input_shape=v)
    for v in [layers.Dense(3), "lstm", None, layers.LSTM]:
        yield "layers", f"Bidirectional({v!r})", lambda v=v: layers.Bidirectional(v)
    for v in ["bogus", None, 3]:
        yield "layers", f"Bidirectional(merge_mode={v!r})", lambda v=v: layers.Bidirectional(layers.LSTM(3), merge_mode=v)
    for v in [3, "bogus_init", {"class_name": "Nope"}]:
        yield "layers", f"Dense(kernel_initializer={v!r}) build", \
            lambda v=v: fnn.Sequential([layers.Dense(3, kernel_initializer=v, input_shape=(4,))])
    for v in ["l3", 3, {"class_name": "L1", "config": {"l1": -1}}]:
        yield "layers", f"Dense(kernel_regularizer={v!r})", lambda v=v: layers.Dense(3, kernel_regularizer=v)
    # build-time: kernel / pool larger than the input with 'valid', absurd sizes, wrong ranks
    builds = [
        ("Conv2D 5x5 valid on 3x3", lambda: [layers.Conv2D(2, 5, input_shape=(3, 3, 1))]),
        ("Conv2D 1x9 valid on 8x8", lambda: [layers.Conv2D(2, (1, 9), input_shape=(8, 8, 1))]),
        ("MaxPooling2D 4 on 3x3", lambda: [layers.MaxPooling2D(4, input_shape=(3, 3, 1))]),
        ("AveragePooling2D (1,5) on 3x3", lambda: [layers.AveragePooling2D((1, 5), input_shape=(3, 3, 1))]),
        ("Conv2D on rank 2", lambda: [layers.Conv2D(2, 3, input_shape=(8, 8))]),
        ("MaxPooling2D on rank 1", lambda: [layers.MaxPooling2D(2, input_shape=(8,))]),
        ("LSTM on rank 1", lambda: [layers.LSTM(3, input_shape=(8,))]),
        ("LSTM on rank 3", lambda: [layers.LSTM(3, input_shape=(4, 4, 4))]),
        ("Bidirectional on rank 1", lambda: [layers.Bidirectional(layers.LSTM(3), input_shape=(8,))]),
        ("BatchNormalization axis 3 on rank 1", lambda: [layers.BatchNormalization(axis=3, input_shape=(8,))]),
        ("Reshape mismatch", lambda: [layers.Reshape((3, 3), input_shape=(8,))]),
        ("Dense 2**40 units", lambda: [layers.Dense(2**40, input_shape=(4,))]),
        ("Dense 2**62 units", lambda: [layers.Dense(2**62, input_shape=(4,))]),
        ("Dense 2**31 x 2**31", lambda: [layers.Dense(2**31, input_shape=(2**31,))]),
        ("Conv2D 2**40 filters", lambda: [layers.Conv2D(2**40, 3, input_shape=(8, 8, 1))]),
        ("Conv2D kernel 2**31", lambda: [layers.Conv2D(2, 2**31, padding="same", input_shape=(8, 8, 1))]),
        ("LSTM 2**40 units", lambda: [layers.LSTM(2**40, input_shape=(4, 2))]),
        ("GRU 2**33 units", lambda: [layers.GRU(2**33, input_shape=(4, 2))]),
        ("SimpleRNN 2**62 units", lambda: [layers.SimpleRNN(2**62, input_shape=(4, 2))]),
        ("Input huge", lambda: [layers.Input((2**40, 2**40)), layers.Flatten(), layers.Dense(2)]),
        ("Flatten huge", lambda: [layers.Input((2**31, 2**31, 4)), layers.Flatten()]),
    ]
    for label, ls in builds:
        yield "layers", f"build {label}", lambda ls=ls: fnn.Sequential(ls())
    yield "layers", "add non-layer", lambda: fnn.Sequential([layers.Dense(2, input_shape=(3,)), "relu"])
    yield "layers", "duplicate names", lambda: fnn.Sequential([layers.Dense(2, name="a", input_shape=(3,)),
                                                               layers.Dense(2, name="a")])
    yield "layers", "Input second", lambda: fnn.Sequential([layers.Dense(2, input_shape=(3,)), layers.Input((2,))])
    # layers called directly on wrong inputs
    m = fnn.Sequential([layers.Conv2D(2, 3, input_shape=(6, 6, 1)), layers.MaxPooling2D(2)])
    for xv in [_r(rs, 2, 6, 6, 3), _r(rs, 2, 6, 6), np.zeros((2, 6, 6, 1), complex), np.zeros((2, 2, 2, 1), F)]:
        yield "layers", f"Conv2D.forward {xv.shape} {xv.dtype}", lambda xv=xv: m.layers[0].forward(xv)
    lstm = fnn.Sequential([layers.LSTM(3, input_shape=(4, 2))])
    for xv in [_r(rs, 2, 4, 3), _r(rs, 2, 4), np.zeros((2, 4, 2), object)]:
        yield "layers", f"LSTM.forward {xv.shape} {xv.dtype}", lambda xv=xv: lstm.layers[0].forward(xv)


# --------------------------------------------------------------------------- models
def model_cases():
    rs = np.random.default_rng(3)
    x, y = _r(rs, 12, 6, 6, 1), np.arange(12) % 3

    def cnn():
        m = fnn.Sequential([layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)), layers.Flatten(),
                            layers.Dense(3, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    model = cnn()
    xs = [x.astype(np.float64), x.astype(np.int32), x.astype(bool), x.astype(complex), x.astype(object),
          x[..., 0], x[None], x[:, :5], np.zeros((0, 6, 6, 1), F), np.full(x.shape, np.nan, F),
          np.full(x.shape, np.inf, F), np.asfortranarray(x), x[::-1], x[::2], "abc", None, 3.0, [[1, 2]],
          _claimed((2**40, 6, 6, 1)), _claimed((2**55, 6, 6, 1))]
    for i, xv in enumerate(xs):
        d = f"{type(xv).__name__} {getattr(xv, 'dtype', '')} {getattr(xv, 'shape', '')}"
        yield "models", f"predict x[{i}] {d}", lambda xv=xv: model.predict(xv)
        yield "models", f"evaluate x[{i}] {d}", lambda xv=xv: model.evaluate(xv, y[:len(xv)] if hasattr(xv, "__len__")
                                                                            and len(xv) <= 12 else y)
        yield "models", f"fit x[{i}] {d}", lambda xv=xv: cnn().fit(xv, y, epochs=1, batch_size=4, verbose=0)
    ys = [y[:5], np.zeros((12, 7)), y.astype(complex), y.astype(object), np.full(12, -1), np.full(12, 3),
          np.full(12, 2**40), y.astype(np.float64) + 0.5, np.full(12, np.nan), None, "abc", y[:, None, None]]
    for i, yv in enumerate(ys):
        d = f"{type(yv).__name__} {getattr(yv, 'dtype', '')} {getattr(yv, 'shape', '')}"
        yield "models", f"fit y[{i}] {d}", lambda yv=yv: cnn().fit(x, yv, epochs=1, batch_size=4, verbose=0)
        yield "models", f"evaluate y[{i}] {d}", lambda yv=yv: model.evaluate(x, yv)
    for kw in [dict(batch_size=0), dict(batch_size=-1), dict(batch_size=2**63), dict(batch_size=1.5),
               dict(epochs=-1), dict(epochs="2"), dict(validation_split=1.0), dict(validation_split=-0.1),
               dict(validation_split=float("nan")), dict(validation_data=(x[:2],)), dict(validation_data=(x[:2], y[:3])),
               dict(validation_data=(x[:2, :4], y[:2])), dict(validation_data="xy"), dict(verbose=7),
               dict(initial_epoch=-1), dict(steps_per_epoch=0), dict(callbacks=["x"]), dict(callbacks=3),
               dict(shuffle="maybe"), dict(batch_size=2**31)]:
        yield "models", f"fit {kw}", lambda kw=kw: cnn().fit(x, y, **{"epochs": 1, "verbose": 0, **kw})
    for bs in [0, -1, 1.5, None, 2**63]:
        yield "models", f"predict batch_size={bs!r}", lambda bs=bs: model.predict(x, batch_size=bs)
        yield "models", f"evaluate batch_size={bs!r}", lambda bs=bs: model.evaluate(x, y, batch_size=bs)
    uncompiled = fnn.Sequential([layers.Dense(2, input_shape=(3,))])
    yield "models", "fit uncompiled", lambda: uncompiled.fit(np.zeros((2, 3), F), np.zeros((2, 2), F), verbose=0), NOT_COMPILED
    yield "models", "evaluate uncompiled", lambda: uncompiled.evaluate(np.zeros((2, 3), F), np.zeros((2, 2), F)), NOT_COMPILED
    yield "models", "predict empty model", lambda: fnn.Sequential().predict(np.zeros((2, 3), F))
    yield "models", "fit empty model", lambda: fnn.Sequential().fit(np.zeros((2, 3), F), np.zeros(2), verbose=0), NOT_COMPILED
    for kw in [dict(loss=None), dict(loss="bogus"), dict(loss=3), dict(optimizer="bogus", loss="mse"),
               dict(optimizer=3, loss="mse"), dict(loss="mse", metrics=["bogus"]), dict(loss="mse", metrics=3),
               dict(optimizer={"class_name": "Adam", "config": {"learning_rate": -1}}, loss="mse")]:
        yield "models", f"compile {kw}", lambda kw=kw: cnn().compile(**kw)
    for lr in [-1.0, float("nan"), "x", None]:
        yield "models", f"Adam(lr={lr!r})", lambda lr=lr: fnn.optimizers.Adam(learning_rate=lr)
        yield "models", f"SGD(momentum={lr!r})", lambda lr=lr: fnn.optimizers.SGD(momentum=lr)
    for ws in [[], [np.zeros(3)], "x", None, [np.zeros((3, 3, 1, 2), complex)] + model.get_weights()[1:],
               [_claimed((3, 3, 1, 2**40))] + model.get_weights()[1:]]:
        yield "models", f"set_weights {type(ws).__name__}", lambda ws=ws: model.set_weights(ws)
    yield "models", "build None dim", lambda: fnn.Sequential([layers.Dense(2)]).build((None, None))
    yield "models", "build no shape", lambda: fnn.Sequential([layers.Dense(2)]).build()
    yield "models", "summary unbuilt", lambda: fnn.Sequential([layers.Dense(2)]).summary()
    yield "models", "save unbuilt", lambda: fnn.Sequential([layers.Dense(2)]).save(os.path.join(_tmp(), "u.fnn"))
    yield "models", "save to directory", lambda: model.save(_tmp()), DOC + (IsADirectoryError,)
    yield "models", "save to missing dir", lambda: model.save(os.path.join(_tmp(), "no", "such", "m.fnn")), \
        DOC + (FileNotFoundError,)
    yield "models", "save to None", lambda: model.save(None)


_TMP = []


def _tmp():
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="fastnn-badinput-"))
    return _TMP[0]


def _write(name, data):
    path = os.path.join(_tmp(), name)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


# --------------------------------------------------------------------------- data helpers
def data_cases():
    from fastnn import data
    rs = np.random.default_rng(4)
    x, y = _r(rs, 10, 3), np.arange(10) % 2
    bads = [None, "abc", np.zeros(10, complex), np.zeros(10, object), np.zeros((0, 3)), np.full((10, 3), np.nan),
            _claimed((2**40, 3)), 3.0, [[1, 2], [3]]]
    for lab in [np.array([-1, 0]), np.array([0.5, 1]), np.array([2**40]), np.zeros(3, complex), "x", None,
                np.array([np.nan]), np.array([], int)]:
        yield "data", f"to_categorical {lab!r}", lambda lab=lab: data.to_categorical(lab)
    for nc in [0, -1, 2**40, 1.5, "3", 2**62]:
        yield "data", f"to_categorical num_classes={nc!r}", lambda nc=nc: data.to_categorical(y, nc)
    for i, b in enumerate(bads):
        yield "data", f"train_test_split x[{i}]", lambda b=b: data.train_test_split(b, y)
        yield "data", f"temporal_split x[{i}]", lambda b=b: data.temporal_split(b, y)
        yield "data", f"sliding_windows series[{i}]", lambda b=b: data.sliding_windows(b, 3)
        for S in (data.MinMaxScaler, data.StandardScaler):
            yield "data", f"{S.__name__}.fit[{i}]", lambda b=b, S=S: S().fit(b)
            yield "data", f"{S.__name__}.transform[{i}]", lambda b=b, S=S: S().fit(x).transform(b)
            yield "data", f"{S.__name__}.inverse_transform[{i}]", lambda b=b, S=S: S().fit(x).inverse_transform(b)
    for S in (data.MinMaxScaler, data.StandardScaler):
        yield "data", f"{S.__name__} unfitted", lambda S=S: S().transform(x)
        yield "data", f"{S.__name__} wrong features", lambda S=S: S().fit(x).transform(x[:, :2])
    for fr in [(1, 0), (0, 0), (np.nan, 1), "ab", (0, 1, 2), None]:
        yield "data", f"MinMaxScaler(feature_range={fr!r})", lambda fr=fr: data.MinMaxScaler(feature_range=fr).fit(x)
    for kw in [dict(y=y[:4]), dict(test_size=0), dict(test_size=1.0), dict(test_size=10), dict(test_size=-0.1),
               dict(test_size=float("nan")), dict(test_size="0.1"), dict(random_state=-1), dict(random_state="s"),
               dict(stratify=y[:3]), dict(stratify=np.arange(10))]:
        kw = {"y": y, **kw}
        yield "data", f"train_test_split {list(kw)[-1]}={str(list(kw.values())[-1])[:20]}", \
            lambda kw=kw: data.train_test_split(x, **kw)
    for kw in [dict(y=y[:4]), dict(train_fraction=0.0), dict(train_fraction=1.0), dict(train_fraction=float("nan")),
               dict(train_fraction="a"), dict(train_fraction=0.01)]:
        kw = {"y": y, **kw}
        yield "data", f"temporal_split {kw.get('train_fraction', 'y')!r}", lambda kw=kw: data.temporal_split(x, **kw)
    for lb, hz in [(0, 1), (-1, 1), (3, 0), (20, 1), (2**62, 1), (3, 2**63), (1.5, 1), ("3", 1), (3, None)]:
        yield "data", f"sliding_windows lookback={lb!r} horizon={hz!r}", \
            lambda lb=lb, hz=hz: data.sliding_windows(np.arange(10.0), lb, hz)
    yield "data", "sliding_windows rank 3", lambda: data.sliding_windows(np.zeros((4, 4, 4)), 2)
    img = _r(rs, 6, 8, 8, 1)
    for kw in [dict(rotation_range=-5), dict(zoom_range=-0.5), dict(zoom_range=(2, 1)), dict(width_shift_range="a"),
               dict(rotation_range=float("nan")), dict(fill_mode="bogus"), dict(zoom_range=(0, 0))]:
        yield "data", f"ImageDataGenerator({kw})", lambda kw=kw: data.ImageDataGenerator(**kw).flow(img, batch_size=2)[0]
    gen = data.ImageDataGenerator(rotation_range=10)
    for i, b in enumerate([img[..., 0], img.astype(complex), np.zeros((0, 8, 8, 1), F), _claimed((2**40, 8, 8, 1)),
                           None, "x"]):
        yield "data", f"flow x[{i}]", lambda b=b: gen.flow(b, batch_size=2)[0]
    for kw in [dict(y=np.arange(3)), dict(batch_size=0), dict(batch_size=-2), dict(batch_size=2**63), dict(seed=-1)]:
        yield "data", f"flow {kw}", lambda kw=kw: gen.flow(img, **kw)[0]
    yield "data", "flow index out of range", lambda: gen.flow(img, batch_size=2)[99], DOC + (IndexError,)


# --------------------------------------------------------------------------- dataset loaders
def _idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def dataset_cases():
    from fastnn import datasets
    good_img = _idx(0x803, (2, 28, 28), bytes(2 * 784))
    good_lab = _idx(0x801, (2,), bytes(2))
    variants = {
        "empty": b"", "short header": b"\x00\x00\x08", "bad magic": _idx(0x1234, (2, 28, 28), bytes(2 * 784)),
        "magic for labels": _idx(0x801, (2,), bytes(2)), "truncated payload": good_img[:-100],
        "extra payload": good_img + b"\x00" * 10, "wrong rows": _idx(0x803, (2, 27, 28), bytes(2 * 27 * 28)),
        "absurd count": _idx(0x803, (2**31, 28, 28), bytes(784)), "max count": _idx(0x803, (2**32 - 1, 2**16, 2**16), b""),
        "truncated gzip": gzip.compress(good_img)[:30], "gzip garbage": b"\x1f\x8b" + b"\x00" * 40,
        "gzip of garbage": gzip.compress(b"hello" * 50),
    }
    for name, blob in variants.items():
        def case(blob=blob, name=name):
            d = tempfile.mkdtemp(dir=_tmp())
            with open(os.path.join(d, "train-images-idx3-ubyte"), "wb") as f:
                f.write(blob)
            with open(os.path.join(d, "train-labels-idx1-ubyte"), "wb") as f:
                f.write(good_lab)
            return datasets.load_mnist(d)
        yield "datasets", f"load_mnist images: {name}", case, FILE
        def case_lab(blob=blob):
            d = tempfile.mkdtemp(dir=_tmp())
            with open(os.path.join(d, "train-images-idx3-ubyte"), "wb") as f:
                f.write(good_img)
            with open(os.path.join(d, "train-labels-idx1-ubyte"), "wb") as f:
                f.write(blob)
            return datasets.load_mnist(d)
        yield "datasets", f"load_mnist labels: {name}", case_lab, FILE
    yield "datasets", "load_mnist label count mismatch", lambda: _mnist_pair(good_img, _idx(0x801, (3,), bytes(3))), FILE
    yield "datasets", "load_mnist label 200", lambda: _mnist_pair(good_img, _idx(0x801, (2,), bytes([200, 1]))), FILE
    yield "datasets", "load_mnist missing dir", lambda: datasets.load_mnist(os.path.join(_tmp(), "nope")), FILE
    yield "datasets", "load_mnist empty dir", lambda: datasets.load_mnist(tempfile.mkdtemp(dir=_tmp())), FILE
    for name, text in [("header only", "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n"),
                       ("short row", "label,pixel0\n1,2\n"), ("text cell", "1," + ",".join(["x"] * 784) + "\n"),
                       ("value 300", "1," + ",".join(["300"] * 784) + "\n"), ("negative", "1," + ",".join(["-1"] * 784) + "\n"),
                       ("kaggle test", ",".join(f"pixel{i}" for i in range(784)) + "\n" + ",".join(["0"] * 784) + "\n"),
                       ("binary", "\x00\x01\x02" * 100), ("label 10", "10," + ",".join(["0"] * 784) + "\n"),
                       ("nan", "nan," + ",".join(["0"] * 784) + "\n"), ("empty", "")]:
        p = _write(f"mn-{abs(hash(name))}.csv", text)
        yield "datasets", f"load_mnist csv: {name}", lambda p=p: datasets.load_mnist(p), FILE
    for name, blob in [("garbage npz", b"PK\x03\x04garbage"), ("not zip", b"hello")]:
        p = _write(f"mn-{abs(hash(name))}.npz", blob)
        yield "datasets", f"load_mnist {name}", lambda p=p: datasets.load_mnist(p), FILE
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([object(), 1], dtype=object),
             x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.uint8))
    p = _write("pickled.npz", buf.getvalue())
    yield "datasets", "load_mnist npz with pickled object array", lambda: datasets.load_mnist(p), FILE
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((2, 27, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    p = _write("wrongshape.npz", buf.getvalue())
    yield "datasets", "load_mnist npz wrong shape / missing keys", lambda: datasets.load_mnist(p), FILE
    yield "datasets", "load_mnist path type", lambda: datasets.load_mnist(3), FILE
    yield "datasets", "load_mnist odd suffix", lambda: datasets.load_mnist(_write("x.bin", b"1")), FILE
    csvs = {
        "empty": "", "header only": "Date,Close\n", "no close column": "Date,Open\n2020-01-01,1\n",
        "no date column": "Day,Close\n2020-01-01,1\n", "bad date": "Date,Close\nyesterday,1\n2020-01-02,2\n",
        "bad number": "Date,Close\n2020-01-01,abc\n2020-01-02,2\n", "nan close": "Date,Close\n2020-01-01,nan\n",
        "inf close": "Date,Close\n2020-01-01,inf\n2020-01-02,1\n", "negative close": "Date,Close\n2020-01-01,-5\n",
        "ragged": "Date,Close\n2020-01-01\n2020-01-02,1,2,3\n", "duplicate dates": "Date,Close\n2020-01-01,1\n2020-01-01,2\n",
        "binary": "\x00\xff\x00garbage\x00", "huge number": "Date,Close\n2020-01-01,1e999\n",
        "month 13": "Date,Close\n2020-13-01,1\n", "quotes": 'Date,Close\n"2020-01-01,1\n', "null": "Date,Close\nnull,null\n",
        "one row": "Date,Close\n2020-01-01,1\n", "bom": "\ufeffDate,Close\n2020-01-01,1\n",
    }
    for name, text in csvs.items():
        p = _write(f"st-{abs(hash(name))}.csv", text)
        yield "datasets", f"load_stock_prices {name}", lambda p=p: datasets.load_stock_prices(path=p), FILE
    yield "datasets", "load_stock_prices binary bytes", \
        lambda: datasets.load_stock_prices(path=_write("bin.csv", bytes(range(256)) * 4)), FILE
    for kw in [dict(symbol=""), dict(symbol=None), dict(symbol="NOPE"), dict(symbol=3),
               dict(path=os.path.join(_tmp(), "missing.csv")), dict(path=3), dict(close_column=None),
               dict(date_column=""), dict(path=_tmp())]:
        yield "datasets", f"load_stock_prices {kw}", lambda kw=kw: datasets.load_stock_prices(**kw), FILE


def _mnist_pair(img, lab):
    from fastnn import datasets
    d = tempfile.mkdtemp(dir=_tmp())
    with open(os.path.join(d, "train-images-idx3-ubyte"), "wb") as f:
        f.write(img)
    with open(os.path.join(d, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(lab)
    return datasets.load_mnist(d)


# --------------------------------------------------------------------------- models.load
def load_cases():
    m = fnn.Sequential([layers.Conv2D(2, 3, input_shape=(5, 5, 1)), layers.Flatten(), layers.Dense(2)])
    m.compile("adam", "mse")
    good = os.path.join(_tmp(), "good.fnn")
    m.save(good)
    data = open(good, "rb").read()
    blobs = {"empty": b"", "garbage": os.urandom(512), "npy": b"\x93NUMPY" + bytes(64),
             "zip header only": data[:30], "gzip": gzip.compress(data)}
    for k in range(1, 16):
        blobs[f"truncated {k}/16"] = data[:len(data) * k // 16]
    rs = np.random.default_rng(5)
    for k in range(12):
        d = bytearray(data)
        for i in rs.integers(0, len(d), 4):
            d[i] = int(rs.integers(0, 256))
        blobs[f"4 random bytes #{k}"] = bytes(d)
    for name, blob in blobs.items():
        p = _write(f"ld-{abs(hash(name))}.fnn", blob)
        yield "load", f"models.load {name}", lambda p=p: fnn.models.load(p)
        yield "load", f"load_weights {name}", lambda p=p: m.load_weights(p)
    yield "load", "models.load missing file", lambda: fnn.models.load(os.path.join(_tmp(), "none.fnn")), FILE
    yield "load", "models.load directory", lambda: fnn.models.load(_tmp())
    yield "load", "models.load None", lambda: fnn.models.load(None)
    yield "load", "models.load int", lambda: fnn.models.load(12345)
    for name, edit in _meta_edits():
        p = os.path.join(_tmp(), f"meta-{abs(hash(name))}.fnn")
        _rewrite_meta(good, p, edit)
        yield "load", f"models.load model.json {name}", lambda p=p: fnn.models.load(p)


def _meta_edits():
    def setp(path, value):
        def edit(meta):
            d = meta
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return edit
    return [
        ("version 2", setp(["version"], 2)), ("version '1'", setp(["version"], "1")),
        ("version None", setp(["version"], None)), ("format other", setp(["format"], "keras")),
        ("layers not list", setp(["config", "layers"], 3)), ("unknown layer", setp(["config", "layers", 0, "class_name"], "Evil")),
        ("layer class __init__", setp(["config", "layers", 0, "class_name"], "__init__")),
        ("layer config str", setp(["config", "layers", 0, "config"], "x")),
        ("filters -1", setp(["config", "layers", 0, "config", "filters"], -1)),
        ("filters 2**40", setp(["config", "layers", 0, "config", "filters"], 2**40)),
        ("kernel_size huge", setp(["config", "layers", 0, "config", "kernel_size"], [2**31, 2**31])),
        ("input shape huge", setp(["config", "build_input_shape"], [None, 2**40, 2**40, 1])),
        ("input shape negative", setp(["config", "build_input_shape"], [None, -5, 5, 1])),
        ("input shape str", setp(["config", "build_input_shape"], "abc")),
        ("weights extra", setp(["weights"], ["a"] * 10)), ("weights not list", setp(["weights"], 5)),
        ("optimizer unknown", setp(["compile", "optimizer"], {"class_name": "Evil", "config": {}})),
        ("optimizer lr nan", setp(["compile", "optimizer", "config", "learning_rate"], "nan")),
        ("loss unknown", setp(["compile", "loss"], "os.system")), ("metrics bad", setp(["compile", "metrics"], [3])),
        ("optimizer_state unknown", setp(["optimizer_state"], ["../../etc/passwd"])),
        ("seed str", setp(["seed"], "x")), ("epoch huge", setp(["epoch"], 2**70)),
        ("callbacks bad", setp(["callbacks"], [{"class_name": "X", "index": "../a"}])),
        ("dropout_streams str", setp(["dropout_streams"], "x")),
    ]


def _rewrite_meta(src, dst, edit):
    import hashlib
    import json
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    meta = json.loads(members.pop("model.json"))
    try:
        edit(meta)
    except (KeyError, IndexError, TypeError):
        pass
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        for name, data in members.items():
            meta["checksums"][name] = hashlib.sha256(data).hexdigest()
            zf.writestr(name, data)


# --------------------------------------------------------------------------- command line
class _ExitCode(Exception):
    pass


def cli_cases():
    from fastnn import cli
    argvs = [[], ["bogus"], ["demo", "--bogus"], ["demo", "--epochs", "-1"], ["demo", "--epochs", "x"],
             ["demo", "--part", "nope"], ["demo", "--threads", "0"], ["demo", "--threads", "-3"],
             ["demo", "--stock-epochs", "0"], ["demo", "--verbose", "9"], ["demo", "--train-limit", "-5", "--quick"],
             ["demo", "--quick", "--part", "digits", "--data", os.path.join(_tmp(), "missing")],
             ["demo", "--quick", "--part", "stocks", "--stock-data", os.path.join(_tmp(), "missing.csv")],
             ["demo", "--quick", "--part", "stocks", "--stock-data", _write("cli.csv", "garbage\n")],
             ["demo", "--quick", "--part", "digits", "--data", _write("cli.npz", b"garbage")],
             ["bench", "--bogus"], ["bench", "--threads", "0"], ["info", "--bogus"], ["demo", "--out"]]
    for argv in argvs:
        yield "cli", f"fastnn {' '.join(argv)}", lambda argv=argv: _cli_exit(cli, argv), (_ExitCode,)


def _cli_exit(cli, argv):
    """Runs the CLI entry point in-process: a bad command line must end in a non-zero exit
    with a message (SystemExit / return code), never another exception (a traceback)."""
    err, out = io.StringIO(), io.StringIO()
    code = None
    cwd = os.getcwd()
    os.chdir(_tmp())  # anything a run writes (plots) lands in the temporary directory
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        finally:
            os.chdir(cwd)
    if code in (0, None):
        return  # accepted (e.g. '--seed -1' is a valid seed): fine as long as nothing else was raised
    if not (err.getvalue() or out.getvalue()).strip() and not isinstance(code, str):
        raise AssertionError(f"exit {code!r} without a message")
    raise _ExitCode(code)


SECTIONS = [op_scalar_cases, layer_cases, model_cases, data_cases, dataset_cases, load_cases, cli_cases]


def cases():
    for section in SECTIONS:
        for case in section():
            if len(case) == 3:
                yield case + (DOC,)
            else:
                yield case
