"""Concurrent use from several Python threads: kernels release the GIL and keep no
shared mutable state, so predict from many threads equals serial predict."""
import threading

import numpy as np

import fastnn as fnn
from fastnn import layers, ops
from helpers import same_bits


def _model():
    fnn.set_seed(3)
    m = fnn.Sequential([
        layers.Conv2D(16, 3, padding="same", activation="relu", input_shape=(12, 12, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),   # Winograd path
        layers.MaxPool2D(2), layers.BatchNormalization(), layers.Flatten(),
        layers.Dense(32, activation="tanh"), layers.Dropout(0.5), layers.Dense(5, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def _run_threads(fn, inputs):
    results = [None] * len(inputs)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = fn(inputs[i])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return results


def test_predict_from_many_threads_equals_serial():
    m = _model()
    rs = np.random.default_rng(0)
    xs = [rs.random((n, 12, 12, 1), dtype=np.float32) for n in (1, 7, 32, 5, 64, 2)]
    serial = [m.predict(x, batch_size=16) for x in xs]
    parallel = _run_threads(lambda x: m.predict(x, batch_size=16), xs)
    for a, b in zip(serial, parallel):
        same_bits(a, b)


def test_ops_from_many_threads_equal_serial():
    rs = np.random.default_rng(1)
    w = rs.standard_normal((3, 3, 8, 24)).astype(np.float32)
    xs = [rs.standard_normal((n, 10, 9, 8)).astype(np.float32) for n in (1, 3, 4, 2)]

    def step(x):
        y = ops.conv2d(x, w, padding="same")
        dx, dw, db = ops.conv2d_backward(y, x, w, padding="same")
        p, idx = ops.max_pool2d(y, 2)
        return y, dx, dw, p

    serial = [step(x) for x in xs]
    parallel = _run_threads(step, xs)
    for a, b in zip(serial, parallel):
        for u, v in zip(a, b):
            same_bits(u, v)


def test_training_one_model_from_two_threads_raises():
    from fastnn import callbacks

    m = _model()
    x = np.random.default_rng(2).random((64, 12, 12, 1), dtype=np.float32)
    y = np.arange(64) % 5
    started, release = threading.Event(), threading.Event()

    class Hold(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            started.set()
            release.wait(30)

    t = threading.Thread(target=lambda: m.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Hold()]))
    t.start()
    assert started.wait(30)
    try:
        import pytest
        with pytest.raises(RuntimeError, match="already being trained"):
            m.fit(x, y, batch_size=32, epochs=1, verbose=0)
    finally:
        release.set()
        t.join()
    m.fit(x, y, batch_size=32, epochs=1, verbose=0)  # usable again afterwards
